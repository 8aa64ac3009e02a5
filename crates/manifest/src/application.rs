//! The top of the manifest: `spin_manifest_version`, `[application]` and its
//! per-trigger settings (`[application.trigger.http]`, `[application.trigger.kafka]`),
//! and the broker lists they share with the runtime config.
//!
//! Contract: only version 2 passes; a trigger type other than `http` and `kafka` is
//! refused by name; numbers are positive; the HTTP base is `/` unless written.

use toml::Value;

use crate::check::{Checked, Checker, Loc};
use crate::de::{StringOr, Table, Typed};
use crate::raw::{RawApplication, RawHttpSettings, RawKafkaSettings, RawManifest, Strings};
use crate::{Application, KafkaApplicationSettings, routes};

impl Checker<'_> {
    pub(crate) fn version(&self, root: &Loc, doc: &Table<RawManifest>) -> Checked<()> {
        const ONLY_V2: &str = "estore supports only Spin manifest version 2";
        if let Some((key, value)) = doc.unknown.iter().find(|(k, _)| k.name == "spin_version") {
            return Err(self.key_error(
                &root.entry(key, value),
                format!(
                    "this is a version 1 Spin manifest; {ONLY_V2} (`spin_manifest_version = 2`)"
                ),
            ));
        }
        let name = "spin_manifest_version";
        let Some((loc, version)) = root.field(doc, name, &doc.fields.spin_manifest_version) else {
            return Err(self.error(
                &root.missing(name),
                format!("missing `spin_manifest_version`; {ONLY_V2} (`spin_manifest_version = 2`)"),
            ));
        };
        // Any value reads as a `Value`: there is no kind to refuse.
        match self.expect(&loc, version, "a value")? {
            Value::Integer(2) => Ok(()),
            Value::Integer(1) => Err(self.error(
                &loc,
                format!("version 1 manifests are not supported; {ONLY_V2}"),
            )),
            Value::String(s) if s == "1" => Err(self.error(
                &loc,
                format!("version 1 manifests are not supported; {ONLY_V2}"),
            )),
            Value::String(s) if s == "2" => Err(self.error(
                &loc,
                "the version is an integer: write `spin_manifest_version = 2` (no quotes)",
            )),
            v => Err(self.error(&loc, format!("unsupported manifest version {v}; {ONLY_V2}"))),
        }
    }

    pub(crate) fn application(
        &self,
        loc: &Loc,
        value: &Typed<Table<RawApplication>>,
    ) -> Checked<Application> {
        let table = self.table(loc, value)?;
        self.check_keys(loc, table, &[])?;
        let app = &table.fields;
        let Some((name_at, name)) = loc.field(table, "name", &app.name) else {
            return Err(self.error(loc, "missing `name`"));
        };
        let name = self.string(&name_at, name)?.to_string();
        if name.trim().is_empty() {
            return Err(self.error(&name_at, "the application name is empty"));
        }
        let authors = match loc.field(table, "authors", &app.authors) {
            Some((at, v)) => self.strings(&at, v)?,
            None => Vec::new(),
        };
        if let Some((at, v)) = loc.field(table, "targets", &app.targets) {
            self.array(&at, v)?;
        }
        if let Some((at, v)) = loc.field(table, "tool", &app.tool) {
            self.table(&at, v)?;
        }
        let mut http_base = None;
        let mut kafka = KafkaApplicationSettings::default();
        if let Some((tloc, v)) = loc.field(table, "trigger", &app.trigger) {
            let triggers = self.table(&tloc, v)?;
            for key in triggers.sorted_keys() {
                let t = &triggers.fields;
                match key.name.as_str() {
                    "http" => {
                        if let Some((at, v)) = tloc.field(triggers, "http", &t.http) {
                            http_base = self.http_base(&at, v)?;
                        }
                    }
                    "kafka" => {
                        if let Some((at, v)) = tloc.field(triggers, "kafka", &t.kafka) {
                            kafka = self.kafka_settings(&at, v)?;
                        }
                    }
                    name => {
                        return Err(
                            self.unsupported_trigger(&tloc.undeclared(triggers, name), name)
                        );
                    }
                }
            }
        }
        Ok(Application {
            name,
            version: self.opt_string(loc, table, "version", &app.version)?,
            description: self.opt_string(loc, table, "description", &app.description)?,
            authors,
            http_base: http_base.unwrap_or_else(|| "/".to_string()),
            kafka,
        })
    }

    pub(crate) fn unsupported_trigger(&self, loc: &Loc, name: &str) -> crate::ManifestError {
        self.key_error(
            loc,
            format!("trigger type `{name}` is not supported by estore (only `http` and `kafka`)"),
        )
    }

    /// `[application.trigger.http]`: the `base`, if written.
    fn http_base(
        &self,
        loc: &Loc,
        value: &Typed<Table<RawHttpSettings>>,
    ) -> Checked<Option<String>> {
        let config = self.table(loc, value)?;
        self.check_keys(loc, config, &[])?;
        let Some((at, base)) = loc.field(config, "base", &config.fields.base) else {
            return Ok(None);
        };
        let base = self.string(&at, base)?;
        routes::validate_base(base).map_err(|e| self.error(&at, e))?;
        Ok(Some(base.to_string()))
    }

    /// `[application.trigger.kafka]`.
    fn kafka_settings(
        &self,
        loc: &Loc,
        value: &Typed<Table<RawKafkaSettings>>,
    ) -> Checked<KafkaApplicationSettings> {
        let table = self.table(loc, value)?;
        self.check_keys(loc, table, &[])?;
        let k = &table.fields;
        let brokers = match loc.field(table, "brokers", &k.brokers) {
            Some((at, v)) => Some(self.brokers(&at, v)?),
            None => None,
        };
        let settings = KafkaApplicationSettings {
            brokers,
            max_attempts: self.opt_positive(loc, table, "max_attempts", &k.max_attempts)?,
            initial_backoff_ms: self.opt_positive(
                loc,
                table,
                "initial_backoff_ms",
                &k.initial_backoff_ms,
            )?,
            max_backoff_ms: self.opt_positive(loc, table, "max_backoff_ms", &k.max_backoff_ms)?,
            concurrency: self.opt_positive(loc, table, "concurrency", &k.concurrency)?,
        };
        if let (Some(initial), Some(max)) = (settings.initial_backoff_ms, settings.max_backoff_ms)
            && let Some((at, _)) = loc.field(table, "max_backoff_ms", &k.max_backoff_ms)
            && max < initial
        {
            return Err(self.error(
                &at,
                format!("{max} is below `initial_backoff_ms` ({initial}): the backoff only grows"),
            ));
        }
        Ok(settings)
    }

    /// `brokers = "host:port,host:port"` or `brokers = ["host:port", ...]`.
    fn brokers(&self, loc: &Loc, value: &Typed<StringOr<Strings>>) -> Checked<String> {
        let entries = self.string_or_strings(
            loc,
            value,
            "`\"host:port,host:port\"` or an array of `\"host:port\"`",
        )?;
        join_brokers(&entries).map_err(|e| self.error(loc, e))
    }

    /// A string, or an array of strings (Spin's build `command`, `brokers`); `expected`
    /// describes both forms for the error.
    pub(crate) fn string_or_strings(
        &self,
        loc: &Loc,
        value: &Typed<StringOr<Strings>>,
        expected: &str,
    ) -> Checked<Vec<String>> {
        match self.expect(loc, value, expected)? {
            StringOr::String(s) => Ok(vec![s.clone()]),
            StringOr::Other(items) => self.items(loc, items),
        }
    }
}

/// A broker list as librdkafka's `bootstrap.servers` takes it: the entries (each
/// possibly itself `host:port,host:port`) joined with `,`, spaces around names
/// dropped. The manifest and the runtime config accept the same forms through this.
pub fn join_brokers<S: AsRef<str>>(entries: &[S]) -> Result<String, String> {
    const FORM: &str = "expected `host:port`, several separated by `,`";
    let brokers: Vec<&str> = entries
        .iter()
        .flat_map(|entry| entry.as_ref().split(','))
        .map(str::trim)
        .collect();
    let joined = brokers.join(",");
    if brokers.iter().all(|b| b.is_empty()) {
        return Err(format!("no brokers: {FORM}"));
    }
    if brokers.iter().any(|b| b.is_empty()) {
        return Err(format!(
            "an empty entry in the broker list `{joined}`: {FORM}"
        ));
    }
    if let Some(bad) = brokers.iter().find(|b| b.contains(char::is_whitespace)) {
        return Err(format!("invalid broker `{bad}`: {FORM}"));
    }
    Ok(joined)
}
