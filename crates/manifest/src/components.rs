//! Components: `[component.<id>]` tables and the inline components of triggers,
//! with their build, limits and the capabilities they are granted.
//!
//! Contract: ids are kebab-case; `source` is a local path (remote and registry
//! sources are refused by name, as are Spin features estore lacks); every grant
//! (hosts, topics, stores, databases, variables) is checked where it is written.

use std::collections::BTreeMap;
use std::path::Path;

use crate::allowed_hosts::parse_allowed_host;
use crate::check::{Checked, Checker, Loc};
use crate::de::{StringOr, Table, Typed};
use crate::raw::{RawBuild, RawComponent, RawLimits};
use crate::variables::check_variable_name;
use crate::{BuildConfig, ComponentDecl, ComponentLimits, VariableDecl};

/// Spin keys that estore refuses by name rather than ignore (unless empty).
const COMPONENT_UNSUPPORTED: &[(&str, &str)] = &[
    ("ai_models", "Serverless AI models"),
    ("dependencies", "component dependencies"),
    (
        "dependencies_inherit_configuration",
        "component dependencies",
    ),
    ("exclude_files", "excluding files from `files` mounts"),
    (
        "allowed_http_hosts",
        "deprecated in Spin: use `allowed_outbound_hosts = [\"https://example.com\"]`",
    ),
    ("profile", "build profiles"),
    ("targets", "deployment targets"),
];

/// Component ids in kebab case: lower-case letters and digits in words separated by
/// single `-`, starting with a letter (Spin also allows all-upper-case words).
pub(crate) fn check_component_id(id: &str) -> Result<(), String> {
    let problem = if id.is_empty() {
        Some("it is empty".to_string())
    } else if id.contains('_') {
        Some("words must be separated with `-`, not `_`".to_string())
    } else if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        Some(format!("{c:?} is not allowed"))
    } else if !id.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("it must start with a lower-case letter".to_string())
    } else if id.split('-').any(str::is_empty) {
        Some("words must not be empty (no leading, trailing or double `-`)".to_string())
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(why) => Err(format!(
            "invalid component id `{id}`: {why} (ids are kebab-case: lower-case letters and digits, words separated by single `-`, starting with a letter)"
        )),
    }
}

fn check_store_label(label: &str) -> Result<(), String> {
    if label.is_empty()
        || !label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return Err(format!(
            "invalid label `{label}`: use lower-case letters, digits, `_` and `-`"
        ));
    }
    Ok(())
}

/// Spin's id for an inline component: `<trigger-id>-component`, or else the first
/// free `inline-component<n>`.
pub(crate) fn inline_component_id(
    trigger_id: &str,
    components: &BTreeMap<String, ComponentDecl>,
) -> String {
    let natural = format!("{trigger_id}-component");
    if check_component_id(&natural).is_ok() && !components.contains_key(&natural) {
        return natural;
    }
    let mut n = 1;
    loop {
        let candidate = format!("inline-component{n}");
        if !components.contains_key(&candidate) {
            return candidate;
        }
        n += 1;
    }
}

impl Checker<'_> {
    pub(crate) fn component(
        &self,
        loc: &Loc,
        table: &Table<RawComponent>,
        id: &str,
        dir: &Path,
        variables: &BTreeMap<String, VariableDecl>,
    ) -> Checked<ComponentDecl> {
        self.check_keys(loc, table, COMPONENT_UNSUPPORTED)?;
        let c = &table.fields;

        let Some((at, source)) = loc.field(table, "source", &c.source) else {
            return Err(self.error(
                loc,
                "missing `source` (the component's Wasm file, e.g. `source = \"target/wasm32-wasip2/release/app.wasm\"`)",
            ));
        };
        let source = match self.expect(&at, source, "the path of a Wasm file")? {
            StringOr::String(s) if s.trim().is_empty() => {
                return Err(self.error(&at, "`source` is empty"));
            }
            StringOr::String(s) => dir.join(s),
            StringOr::Other(t) => {
                let has = |name: &str| t.0.iter().any(|(k, _)| k.name == name);
                let message = if has("url") {
                    "remote sources (`source = { url = ..., digest = ... }`) are not supported by estore: download the Wasm file and give its path"
                } else if has("package") || has("registry") {
                    "registry sources (`source = { registry = ..., package = ..., version = ... }`) are not supported by estore: give the path of a Wasm file"
                } else {
                    "expected the path of a Wasm file, found a table"
                };
                return Err(self.error(&at, message));
            }
        };

        let mut component_variables = BTreeMap::new();
        if let Some((vloc, v)) = loc.field(table, "variables", &c.variables) {
            for (key, template) in &self.table(&vloc, v)?.0 {
                let (name, here) = (&key.name, vloc.entry(key, template));
                check_variable_name(name).map_err(|e| self.key_error(&here, e))?;
                let template = self.string(&here, &template.value)?;
                self.template(
                    template,
                    &here,
                    &format!("component variable `{name}`"),
                    variables,
                )?;
                component_variables.insert(name.clone(), template.to_string());
            }
        }

        let mut environment = BTreeMap::new();
        if let Some((eloc, v)) = loc.field(table, "environment", &c.environment) {
            environment = self.string_map(&eloc, v)?;
            let entries = self.table(&eloc, v)?;
            if let Some((key, value)) = entries
                .0
                .iter()
                .find(|(k, _)| k.name.is_empty() || k.name.contains(['=', '\0']))
            {
                return Err(self.key_error(
                    &eloc.entry(key, value),
                    format!("invalid environment variable name {:?}", key.name),
                ));
            }
        }

        let mut files = Vec::new();
        if let Some((floc, v)) = loc.field(table, "files", &c.files) {
            for (i, entry) in self.array(&floc, v)?.iter().enumerate() {
                files.push(self.file_mount(&floc.index(i, entry), &entry.value, dir)?);
            }
        }

        let mut allowed_outbound_hosts = Vec::new();
        if let Some((hloc, v)) =
            loc.field(table, "allowed_outbound_hosts", &c.allowed_outbound_hosts)
        {
            let items = self.array(&hloc, v)?;
            for (i, (entry, node)) in self.items(&hloc, items)?.into_iter().zip(items).enumerate() {
                let here = hloc.index(i, node);
                if entry.contains("{{") {
                    // Checked again once the variables are known, as in Spin.
                    self.template(&entry, &here, &format!("`{entry}`"), variables)?;
                } else {
                    parse_allowed_host(&entry).map_err(|e| {
                        self.error(&here, format!("invalid outbound host `{entry}`: {e}"))
                    })?;
                }
                allowed_outbound_hosts.push(entry);
            }
        }

        let allowed_publish_topics =
            match loc.field(table, "allowed_publish_topics", &c.allowed_publish_topics) {
                Some((at, v)) => self.topics(&at, v)?,
                None => Vec::new(),
            };
        let allow_email = self.flag(loc, table, "allow_email", &c.allow_email)?;
        let allow_operations = self.flag(loc, table, "allow_operations", &c.allow_operations)?;
        let labels = |name: &str, node| match loc.field(table, name, node) {
            Some((at, v)) => self.checked_strings(&at, v, check_store_label),
            None => Ok(Vec::new()),
        };
        let key_value_stores = labels("key_value_stores", &c.key_value_stores)?;
        let sql_databases = labels("sql_databases", &c.sql_databases)?;
        let sqlite_databases = labels("sqlite_databases", &c.sqlite_databases)?;
        let sql_migrations = match loc.field(table, "sql_migrations", &c.sql_migrations) {
            Some((at, v)) => {
                let folder = self.string(&at, v)?;
                if sql_databases.is_empty() {
                    return Err(self.error(
                        &at,
                        format!("migrations `{folder}` but no `sql_databases` to apply them to"),
                    ));
                }
                Some(dir.join(folder))
            }
            None => None,
        };

        let build = match loc.field(table, "build", &c.build) {
            Some((at, v)) => Some(self.build(&at, v, dir)?),
            None => None,
        };
        let limits = match loc.field(table, "limits", &c.limits) {
            Some((at, v)) => self.limits(&at, v)?,
            None => ComponentLimits::default(),
        };
        if let Some((at, v)) = loc.field(table, "tool", &c.tool) {
            self.table(&at, v)?;
        }

        Ok(ComponentDecl {
            id: id.to_string(),
            description: self.opt_string(loc, table, "description", &c.description)?,
            source,
            allowed_outbound_hosts,
            allowed_publish_topics,
            allow_email,
            allow_operations,
            key_value_stores,
            sql_databases,
            sqlite_databases,
            sql_migrations,
            variables: component_variables,
            environment,
            files,
            build,
            limits,
        })
    }

    fn build(&self, loc: &Loc, value: &Typed<Table<RawBuild>>, dir: &Path) -> Checked<BuildConfig> {
        let table = self.table(loc, value)?;
        self.check_keys(loc, table, &[])?;
        let b = &table.fields;
        let Some((cloc, command)) = loc.field(table, "command", &b.command) else {
            return Err(self.error(
                loc,
                "missing `command` (the shell command that builds the component)",
            ));
        };
        let commands = self.string_or_strings(&cloc, command, "a command or a list of commands")?;
        if commands.is_empty() || commands.iter().any(|c| c.trim().is_empty()) {
            return Err(self.error(&cloc, "empty build command"));
        }
        Ok(BuildConfig {
            command: commands.join(" && "),
            commands,
            workdir: self
                .opt_string(loc, table, "workdir", &b.workdir)?
                .map(|w| dir.join(w)),
            watch: match loc.field(table, "watch", &b.watch) {
                Some((at, v)) => self.strings(&at, v)?,
                None => Vec::new(),
            },
        })
    }

    fn limits(&self, loc: &Loc, value: &Typed<Table<RawLimits>>) -> Checked<ComponentLimits> {
        let table = self.table(loc, value)?;
        self.check_keys(loc, table, &[])?;
        let l = &table.fields;
        Ok(ComponentLimits {
            request_timeout_ms: self.opt_positive(
                loc,
                table,
                "request_timeout_ms",
                &l.request_timeout_ms,
            )?,
            max_memory_mb: self.opt_positive(loc, table, "max_memory_mb", &l.max_memory_mb)?,
            max_request_body_bytes: self.opt_positive(
                loc,
                table,
                "max_request_body_bytes",
                &l.max_request_body_bytes,
            )?,
            max_instance_reuse_count: self.opt_positive(
                loc,
                table,
                "max_instance_reuse_count",
                &l.max_instance_reuse_count,
            )?,
            max_instance_concurrent_reuse_count: self.opt_positive(
                loc,
                table,
                "max_instance_concurrent_reuse_count",
                &l.max_instance_concurrent_reuse_count,
            )?,
            idle_instance_timeout_ms: self.opt_positive(
                loc,
                table,
                "idle_instance_timeout_ms",
                &l.idle_instance_timeout_ms,
            )?,
        })
    }
}
