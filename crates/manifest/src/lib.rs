//! Loading and validating a Spin application manifest (`spin.toml`,
//! `spin_manifest_version = 2`).
//!
//! The schema follows Spin's (spinframework/spin `crates/manifest`, `crates/loader`):
//! the same keys, the same identifier rules, the same normalisation of inline
//! components. What estore cannot honour (SQLite, AI models, component dependencies,
//! remote sources, Wagi, other trigger types, ...) is refused by name rather than
//! ignored, so an application never runs with less than its manifest asks for.
//! estore adds: `[application.trigger.http] base` (which Spin 3 refuses unless it is
//! `/`), `[component.<id>.limits]`, a `[[trigger.http]]` entry's own
//! `request_timeout_ms`, and messaging: `[[trigger.kafka]]`,
//! `[application.trigger.kafka]` and a component's `allowed_publish_topics`.
//!
//! Every error names the file, the key (`component.hello.source`,
//! `trigger.http[2].route`) and, when it can be found, the line and column.
//! Validation does not touch the file system: [`Manifest::check_sources`] does that,
//! so that `estore build` can run before anything is built.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub mod allowed_hosts;
pub mod routes;
pub mod topics;

mod application;
mod check;
mod components;
mod de;
mod error;
mod files;
mod raw;
#[cfg(test)]
mod tests;
mod triggers;
mod variables;

pub use application::join_brokers;
pub use error::{ManifestError, line_col};
pub use variables::{render_template, template_references};

use check::{Checked, Checker, Loc};
use components::check_component_id;
use de::{Node, Table};
use error::display_key;
use raw::RawManifest;
#[cfg(doc)]
use allowed_hosts::parse_allowed_host;
#[cfg(doc)]
use topics::validate_topic;

/// A loaded and validated manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The manifest file as given.
    pub path: PathBuf,
    /// Its directory (absolute when the working directory is known): the base for
    /// every relative path in the manifest.
    pub dir: PathBuf,
    pub application: Application,
    /// `[variables]`: application variables.
    pub variables: BTreeMap<String, VariableDecl>,
    /// `[[trigger.http]]`, in file order.
    pub http_triggers: Vec<HttpTrigger>,
    /// `[[trigger.kafka]]`, in file order.
    pub kafka_triggers: Vec<KafkaTrigger>,
    /// `[component.<id>]`, plus inline components of triggers under their generated ids.
    pub components: BTreeMap<String, ComponentDecl>,
}

/// `[application]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    pub name: String,
    pub version: Option<String>,
    pub description: Option<String>,
    pub authors: Vec<String>,
    /// `[application.trigger.http] base`, `/` by default; prefixed to every route.
    pub http_base: String,
    /// `[application.trigger.kafka]`; all unset by default.
    pub kafka: KafkaApplicationSettings,
}

/// `[application.trigger.kafka]`: what the application asks of message delivery.
/// Each setting is a default that the operator's runtime config overrides
/// (`RuntimeConfig::messaging`); values are positive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KafkaApplicationSettings {
    /// `host:port,host:port`, from a string or an array of strings; see [`join_brokers`].
    pub brokers: Option<String>,
    /// Deliveries of one message before it is dead-lettered.
    pub max_attempts: Option<u32>,
    pub initial_backoff_ms: Option<u64>,
    /// Not below `initial_backoff_ms` when both are set.
    pub max_backoff_ms: Option<u64>,
    /// Messages handled at once across all partitions of all Kafka triggers.
    pub concurrency: Option<u32>,
}

/// An entry of `[variables]`. Exactly one of `default` and `required` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableDecl {
    pub default: Option<String>,
    pub required: bool,
    pub secret: bool,
    pub description: Option<String>,
}

/// A `[[trigger.http]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTrigger {
    /// The `id` as written, if any.
    pub id: Option<String>,
    pub route: HttpRoute,
    /// The id of the component it runs (generated for an inline component).
    pub component: String,
    /// `request_timeout_ms`, an estore extension: the deadline of the requests this
    /// route takes, instead of the component's (so one long-lived route, a stream,
    /// does not lend its deadline to every other route of the component). Public
    /// routes only; positive.
    pub request_timeout_ms: Option<u64>,
}

/// A `[[trigger.kafka]]` entry: a component handles the messages of some topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaTrigger {
    /// The `id` as written, if any.
    pub id: Option<String>,
    /// The id of the component it runs (generated for an inline component).
    pub component: String,
    /// At least one, each valid per [`validate_topic`], none twice.
    pub topics: Vec<String>,
    /// The consumer group that records how far the trigger got; the component id
    /// unless written. No two triggers of one group share a topic.
    pub group: String,
}

/// `route = "/x/..."` or `route = { private = true }` (reachable only by chaining).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpRoute {
    /// The route as written; valid per [`routes::validate_route`].
    Path(String),
    Private,
}

/// A `[component.<id>]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentDecl {
    pub id: String,
    pub description: Option<String>,
    /// The Wasm file, resolved against the manifest directory.
    pub source: PathBuf,
    /// As written (templates unresolved); each valid per [`parse_allowed_host`].
    pub allowed_outbound_hosts: Vec<String>,
    /// Topics the component may publish to; each valid per [`validate_topic`].
    pub allowed_publish_topics: Vec<String>,
    /// Whether the component may send e-mail (`allow_email = true`; false unless written).
    pub allow_email: bool,
    /// Whether the component may run platform operations: list and roll back
    /// components, read and replay dead letters (`allow_operations = true`).
    pub allow_operations: bool,
    pub key_value_stores: Vec<String>,
    /// Database labels granted to the component (`sql_databases`).
    pub sql_databases: Vec<String>,
    /// Spin's SQLite databases granted to the component (`sqlite_databases`), for
    /// `spin:sqlite`: each label one SQLite file of the component's own.
    pub sqlite_databases: Vec<String>,
    /// Folder of ordered `.sql` migration files, resolved against the manifest directory.
    pub sql_migrations: Option<PathBuf>,
    /// Name -> template, e.g. `"{{ greeting }}, {{ target }}"`.
    pub variables: BTreeMap<String, String>,
    pub environment: BTreeMap<String, String>,
    pub files: Vec<FileMount>,
    pub build: Option<BuildConfig>,
    pub limits: ComponentLimits,
}

/// An entry of a component's `files`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileMount {
    /// A glob (or plain path) relative to the manifest directory; what it matches is
    /// mounted at the same relative path under `/`. Never absolute, never `..`.
    Pattern(String),
    /// `{ source = "dir-or-file", destination = "/guest/path" }`.
    Mapping {
        /// Resolved against the manifest directory.
        source: PathBuf,
        /// Absolute guest path.
        destination: String,
    },
}

/// `[component.<id>.build]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildConfig {
    /// The shell command to run. Spin also accepts a list of commands run in turn
    /// until one fails; they are joined here with ` && `.
    pub command: String,
    /// The commands as listed (one element for the string form).
    pub commands: Vec<String>,
    /// Resolved against the manifest directory; the manifest directory if absent.
    pub workdir: Option<PathBuf>,
    pub watch: Vec<String>,
}

/// `[component.<id>.limits]`, an estore extension. Values are positive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ComponentLimits {
    pub request_timeout_ms: Option<u64>,
    pub max_memory_mb: Option<u64>,
    /// The largest request body the component is handed; a larger one is refused
    /// with 413 before an instance starts.
    pub max_request_body_bytes: Option<u64>,
    /// WASI 0.3 components only (a WASI 0.2 one gets a fresh instance per request):
    /// how many requests one instance serves in all before it is dropped, how many
    /// at once, and how long it may sit idle. Spin's `--max-instance-reuse-count`,
    /// `--max-instance-concurrent-reuse-count` and `--idle-instance-timeout`.
    pub max_instance_reuse_count: Option<u64>,
    pub max_instance_concurrent_reuse_count: Option<u64>,
    pub idle_instance_timeout_ms: Option<u64>,
}

impl Manifest {
    /// Reads, parses and validates a manifest. Does not require the components'
    /// source files (or `files`) to exist: see [`Manifest::check_sources`].
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|e| ManifestError {
            file: path.to_path_buf(),
            key: None,
            line_col: None,
            message: format!("cannot read the manifest: {e}"),
        })?;
        Manifest::parse(path, &text)
    }

    /// Parses and validates manifest text; `path` names the file in errors and
    /// gives the base directory.
    pub fn parse(path: &Path, text: &str) -> Result<Manifest, ManifestError> {
        let doc: Node<Table<RawManifest>> = toml::from_str(text).map_err(|e| ManifestError {
            file: path.to_path_buf(),
            key: None,
            line_col: e.span().and_then(|s| line_col(text, s.start)),
            message: format!("invalid TOML: {}", e.message()),
        })?;
        let checker = Checker { file: path, text };
        checker.manifest(&doc.value, path, manifest_dir(path))
    }

    /// Checks that every component's source file, and every `files` source, exists.
    /// Call before serving (`estore up`), after any build.
    pub fn check_sources(&self) -> Result<(), ManifestError> {
        for component in self.components.values() {
            let key = format!("component.{}", display_key(&component.id));
            let shown = |p: &Path| p.strip_prefix(&self.dir).unwrap_or(p).display().to_string();
            if !component.source.exists() {
                let hint = if component.build.is_some() {
                    "; run `estore build`?"
                } else {
                    " (and the component has no build command)"
                };
                return Err(self.error(
                    format!("{key}.source"),
                    format!("file `{}` does not exist{hint}", shown(&component.source)),
                ));
            }
            if component.source.is_dir() {
                return Err(self.error(
                    format!("{key}.source"),
                    format!(
                        "`{}` is a directory, not a Wasm file",
                        shown(&component.source)
                    ),
                ));
            }
            if let Some(folder) = &component.sql_migrations
                && !folder.is_dir()
            {
                return Err(self.error(
                    format!("{key}.sql_migrations"),
                    format!("`{}` is not a folder", shown(folder)),
                ));
            }
            for (i, mount) in component.files.iter().enumerate() {
                match mount {
                    FileMount::Mapping { source, .. } if !source.exists() => {
                        return Err(self.error(
                            format!("{key}.files[{i}].source"),
                            format!("`{}` does not exist", shown(source)),
                        ));
                    }
                    FileMount::Pattern(pattern)
                        if glob::Pattern::escape(pattern) == *pattern
                            && !self.dir.join(pattern).exists() =>
                    {
                        return Err(self.error(
                            format!("{key}.files[{i}]"),
                            format!("`{pattern}` does not exist and is not a glob pattern"),
                        ));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// The public routes in file order, as (route as written, its trigger): the
    /// router takes each route with its trigger's component
    /// ([`routes::Router::build`]), and the trigger's own settings go with it.
    pub fn http_routes(&self) -> Vec<(&str, &HttpTrigger)> {
        self.http_triggers
            .iter()
            .filter_map(|t| match &t.route {
                HttpRoute::Path(route) => Some((route.as_str(), t)),
                HttpRoute::Private => None,
            })
            .collect()
    }

    /// The ids of the components that a trigger of any type runs: those to load.
    pub fn triggered_components(&self) -> BTreeSet<&str> {
        let http = self.http_triggers.iter().map(|t| t.component.as_str());
        let kafka = self.kafka_triggers.iter().map(|t| t.component.as_str());
        http.chain(kafka).collect()
    }

    fn error(&self, key: String, message: String) -> ManifestError {
        ManifestError {
            file: self.path.clone(),
            key: Some(key),
            line_col: None,
            message,
        }
    }
}

fn manifest_dir(path: &Path) -> PathBuf {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::path::absolute(&dir).unwrap_or(dir)
}

impl Checker<'_> {
    /// The whole document, in the order Spin reads it: version, application,
    /// variables, components, then the triggers that refer to them.
    fn manifest(
        &self,
        doc: &de::Typed<Table<RawManifest>>,
        path: &Path,
        dir: PathBuf,
    ) -> Checked<Manifest> {
        let root = Loc::default();
        let doc = self.table(&root, doc)?;
        self.version(&root, doc)?;
        self.check_keys(&root, doc, &[])?;
        let d = &doc.fields;
        let application = match root.field(doc, "application", &d.application) {
            Some((at, v)) => self.application(&at, v)?,
            None => {
                return Err(self.error(
                    &root.missing("application"),
                    "missing `[application]` table (with at least `name`)",
                ));
            }
        };
        let variables = match root.field(doc, "variables", &d.variables) {
            Some((at, v)) => self.variables(&at, v)?,
            None => BTreeMap::new(),
        };
        let mut components = BTreeMap::new();
        if let Some((cloc, value)) = root.field(doc, "component", &d.component) {
            for (key, decl) in &self.table(&cloc, value)?.0 {
                let here = cloc.entry(key, decl);
                check_component_id(&key.name).map_err(|e| self.key_error(&here, e))?;
                let table = self.table(&here, &decl.value)?;
                let component = self.component(&here, table, &key.name, &dir, &variables)?;
                components.insert(key.name.clone(), component);
            }
        }
        let tloc = match root.field(doc, "trigger", &d.trigger) {
            Some((at, _)) => at,
            None => root.missing("trigger"),
        };
        let (http_triggers, kafka_triggers) =
            self.triggers(&tloc, d.trigger.as_ref(), &mut components, &dir, &variables)?;
        Ok(Manifest {
            path: path.to_path_buf(),
            dir,
            application,
            variables,
            http_triggers,
            kafka_triggers,
            components,
        })
    }
}
