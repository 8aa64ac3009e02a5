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
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use toml::{Table, Value};

pub mod allowed_hosts;
pub mod routes;
pub mod topics;

use allowed_hosts::parse_allowed_host;
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
}

/// Why a manifest was refused. Displays on one line as
/// `file:line:col: key: message` (the parts that are known).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(.file, .key, .line_col, .message))]
pub struct ManifestError {
    pub file: PathBuf,
    /// The TOML path of the offending key, e.g. `component.hello.source` or
    /// `trigger.http[2].component` (for an unknown key: the table that holds it).
    pub key: Option<String>,
    /// 1-based line and column (in characters), when known.
    pub line_col: Option<(usize, usize)>,
    pub message: String,
}

fn describe(
    file: &Path,
    key: &Option<String>,
    line_col: &Option<(usize, usize)>,
    message: &str,
) -> String {
    let mut out = file.display().to_string();
    if let Some((line, col)) = line_col {
        out.push_str(&format!(":{line}:{col}"));
    }
    out.push_str(": ");
    if let Some(key) = key {
        out.push_str(key);
        out.push_str(": ");
    }
    // One line, whatever the message (toml's own messages may span several).
    let message: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    out.push_str(&message.join("; "));
    out
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
        let doc: Table = toml::from_str(text).map_err(|e| ManifestError {
            file: path.to_path_buf(),
            key: None,
            line_col: e.span().and_then(|s| line_col(text, s.start)),
            message: format!("invalid TOML: {}", e.message()),
        })?;
        let checker = Checker {
            file: path,
            text,
            spans: toml::from_str::<SpanNode>(text).ok(),
        };
        checker.manifest(&doc, path, manifest_dir(path))
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
            if let Some(folder) = &component.sql_migrations {
                if !folder.is_dir() {
                    return Err(self.error(
                        format!("{key}.sql_migrations"),
                        format!("`{}` is not a folder", shown(folder)),
                    ));
                }
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

// ---------------------------------------------------------------------------
// Templates

enum Part<'a> {
    Literal(&'a str),
    Variable(&'a str),
}

/// Spin's template syntax: `{{` opens an expression that runs to the next `}}`
/// (trimmed); there is no escape; an unmatched `{{` is an error, a lone `}}` is text.
fn parse_template(template: &str) -> Result<Vec<Part<'_>>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("{{") {
            let Some((expr, tail)) = after.split_once("}}") else {
                return Err("unmatched `{{` in template".to_string());
            };
            parts.push(Part::Variable(expr.trim()));
            rest = tail;
        } else {
            let end = rest.find("{{").unwrap_or(rest.len());
            let (literal, tail) = rest.split_at(end);
            parts.push(Part::Literal(literal));
            rest = tail;
        }
    }
    Ok(parts)
}

/// Expands `{{ name }}` references (whitespace inside the braces optional) with
/// `lookup`. Fails on a malformed template or a name `lookup` does not know.
pub fn render_template(
    template: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    for part in parse_template(template)? {
        match part {
            Part::Literal(text) => out.push_str(text),
            Part::Variable(name) => match lookup(name) {
                Some(value) => out.push_str(&value),
                None => return Err(format!("no value for variable `{name}`")),
            },
        }
    }
    Ok(out)
}

/// The variable names a template refers to, in order of first appearance. For a
/// malformed template, those before the error.
#[allow(dead_code, reason = "API for callers that list a template's inputs")]
pub fn template_references(template: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some((expr, tail)) = rest[start + 2..].split_once("}}") else {
            break;
        };
        let name = expr.trim();
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
        rest = tail;
    }
    names
}

// ---------------------------------------------------------------------------
// Names

/// Spin's variable-name rule (`spin_expressions::Key`): lower-case ASCII letters,
/// digits and single underscores, starting with a letter and not ending with `_`.
fn check_variable_name(name: &str) -> Result<(), String> {
    let problem = if name.is_empty() {
        Some("it is empty".to_string())
    } else if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        Some(format!("{c:?} is not allowed"))
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("it must start with a lower-case letter".to_string())
    } else if name.ends_with('_') {
        Some("it must not end with `_`".to_string())
    } else if name.contains("__") {
        Some("it must not contain `__`".to_string())
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(why) => Err(format!(
            "invalid variable name `{name}`: {why} (names are lower-case letters, digits and single `_`, starting with a letter)"
        )),
    }
}

/// Component ids in kebab case: lower-case letters and digits in words separated by
/// single `-`, starting with a letter (Spin also allows all-upper-case words).
fn check_component_id(id: &str) -> Result<(), String> {
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

fn is_component_id(id: &str) -> bool {
    check_component_id(id).is_ok()
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

// ---------------------------------------------------------------------------
// Key paths and source locations

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct KeyPath(Vec<Seg>);

impl KeyPath {
    fn key(&self, key: &str) -> KeyPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_string()));
        KeyPath(segs)
    }

    fn index(&self, i: usize) -> KeyPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(i));
        KeyPath(segs)
    }

    fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => f.write_str(&display_key(k))?,
                Seg::Key(k) => write!(f, ".{}", display_key(k))?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A key as TOML would write it: bare when it can be, quoted otherwise.
fn display_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

/// 1-based line and column of a byte offset, for error messages.
pub fn line_col(text: &str, offset: usize) -> Option<(usize, usize)> {
    let before = text.get(..offset)?;
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, col))
}

// The document again, with the byte spans toml knows, to place errors. toml hands
// out spans through serde_spanned's private protocol: asking for a struct with these
// names. Should that protocol change, spans are simply missing (no line:col) and
// nothing else breaks.
const SPANNED_NAME: &str = "$__serde_spanned_private_Spanned";
const SPANNED_START: &str = "$__serde_spanned_private_start";
const SPANNED_END: &str = "$__serde_spanned_private_end";
const SPANNED_VALUE: &str = "$__serde_spanned_private_value";
const SPANNED_FIELDS: &[&str] = &[SPANNED_START, SPANNED_END, SPANNED_VALUE];

#[derive(Debug, Default)]
struct SpanNode {
    span: Option<Range<usize>>,
    kind: SpanKind,
}

#[derive(Debug, Default)]
enum SpanKind {
    #[default]
    Leaf,
    Array(Vec<SpanNode>),
    Table(Vec<(SpanKey, SpanNode)>),
}

#[derive(Debug)]
struct SpanKey {
    name: String,
    span: Option<Range<usize>>,
}

impl<'de> Deserialize<'de> for SpanNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, NodeVisitor { spanned: true })
    }
}

/// The value inside a span: must not ask for a span again.
struct Unspanned(SpanNode);

impl<'de> Deserialize<'de> for Unspanned {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor { spanned: false })
            .map(Unspanned)
    }
}

struct NodeVisitor {
    spanned: bool,
}

impl NodeVisitor {
    fn leaf<E>(self) -> Result<SpanNode, E> {
        Ok(SpanNode::default())
    }
}

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = SpanNode;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<SpanNode, E> {
        self.leaf()
    }
    fn visit_i64<E>(self, _: i64) -> Result<SpanNode, E> {
        self.leaf()
    }
    fn visit_u64<E>(self, _: u64) -> Result<SpanNode, E> {
        self.leaf()
    }
    fn visit_f64<E>(self, _: f64) -> Result<SpanNode, E> {
        self.leaf()
    }
    fn visit_str<E>(self, _: &str) -> Result<SpanNode, E> {
        self.leaf()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SpanNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<SpanNode>()? {
            items.push(item);
        }
        Ok(SpanNode {
            span: None,
            kind: SpanKind::Array(items),
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SpanNode, A::Error> {
        let Some(first) = map.next_key::<SpanKey>()? else {
            return Ok(SpanNode {
                span: None,
                kind: SpanKind::Table(Vec::new()),
            });
        };
        if self.spanned && first.name == SPANNED_START && first.span.is_none() {
            let start: usize = map.next_value()?;
            let (mut end, mut inner) = (None, None);
            while let Some(field) = map.next_key::<String>()? {
                if field == SPANNED_END {
                    end = Some(map.next_value::<usize>()?);
                } else if field == SPANNED_VALUE {
                    inner = Some(map.next_value::<Unspanned>()?.0);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            let mut node = inner.unwrap_or_default();
            node.span = end.map(|end| start..end);
            return Ok(node);
        }
        let mut entries = vec![(first, map.next_value::<SpanNode>()?)];
        while let Some(key) = map.next_key::<SpanKey>()? {
            let value = map.next_value::<SpanNode>()?;
            entries.push((key, value));
        }
        Ok(SpanNode {
            span: None,
            kind: SpanKind::Table(entries),
        })
    }
}

impl<'de> Deserialize<'de> for SpanKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = SpanKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a TOML key")
            }
            fn visit_str<E>(self, name: &str) -> Result<SpanKey, E> {
                Ok(SpanKey {
                    name: name.to_string(),
                    span: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SpanKey, A::Error> {
                let (mut start, mut end, mut name) = (None, None, None);
                while let Some(field) = map.next_key::<String>()? {
                    if field == SPANNED_START {
                        start = Some(map.next_value::<usize>()?);
                    } else if field == SPANNED_END {
                        end = Some(map.next_value::<usize>()?);
                    } else if field == SPANNED_VALUE {
                        name = Some(map.next_value::<String>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(SpanKey {
                    name: name.unwrap_or_default(),
                    span: start.zip(end).map(|(s, e)| s..e),
                })
            }
        }
        d.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, KeyVisitor)
    }
}

/// Where to point for an error about a key: at the key itself, or at its value.
#[derive(Clone, Copy)]
enum At {
    Key,
    Value,
}

impl SpanNode {
    /// The best known position for `path`: its key or value span, or failing that
    /// the nearest enclosing key that has one.
    fn locate(&self, path: &KeyPath, at: At) -> Option<usize> {
        let mut best = None;
        let mut node = self;
        for (depth, seg) in path.0.iter().enumerate() {
            let last = depth + 1 == path.0.len();
            let (key_span, child) = match (seg, &node.kind) {
                (Seg::Key(k), SpanKind::Table(entries)) => {
                    match entries.iter().find(|(key, _)| key.name == *k) {
                        Some((key, child)) => (key.span.as_ref(), child),
                        None => break,
                    }
                }
                (Seg::Index(i), SpanKind::Array(items)) => match items.get(*i) {
                    Some(child) => (None, child),
                    None => break,
                },
                _ => break,
            };
            let here = match (at, last) {
                (At::Value, true) => child.span.as_ref().or(key_span),
                _ => key_span.or(child.span.as_ref()),
            };
            if let Some(span) = here {
                best = Some(span.start);
            }
            node = child;
        }
        best
    }
}

// ---------------------------------------------------------------------------
// Validation

type Checked<T> = Result<T, ManifestError>;

struct Checker<'a> {
    file: &'a Path,
    text: &'a str,
    spans: Option<SpanNode>,
}

const APPLICATION_KEYS: &[&str] = &[
    "name",
    "version",
    "description",
    "authors",
    "targets",
    "tool",
    "trigger",
];
const VARIABLE_KEYS: &[&str] = &["default", "required", "secret", "description"];
const HTTP_TRIGGER_KEYS: &[&str] = &["id", "route", "component", "executor", "request_timeout_ms"];
const HTTP_TRIGGER_UNSUPPORTED: &[(&str, &str)] = &[
    ("static_response", "static responses"),
    ("components", "the reserved `components` key"),
];
const KAFKA_TRIGGER_KEYS: &[&str] = &["id", "component", "topics", "group"];
const KAFKA_TRIGGER_UNSUPPORTED: &[(&str, &str)] =
    &[("components", "the reserved `components` key")];
const KAFKA_SETTINGS_KEYS: &[&str] = &[
    "brokers",
    "max_attempts",
    "initial_backoff_ms",
    "max_backoff_ms",
    "concurrency",
];
const COMPONENT_KEYS: &[&str] = &[
    "source",
    "description",
    "variables",
    "environment",
    "files",
    "allowed_outbound_hosts",
    "allowed_publish_topics",
    "allow_email",
    "allow_operations",
    "key_value_stores",
    "sql_databases",
    "sql_migrations",
    "build",
    "limits",
    "tool",
];
const COMPONENT_UNSUPPORTED: &[(&str, &str)] = &[
    ("sqlite_databases", "SQLite databases"),
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
const BUILD_KEYS: &[&str] = &["command", "workdir", "watch"];
const LIMITS_KEYS: &[&str] = &["request_timeout_ms", "max_memory_mb", "max_request_body_bytes"];

/// The trigger types estore runs: `[[trigger.<name>]]` and
/// `[application.trigger.<name>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TriggerType {
    Http,
    Kafka,
}

impl TriggerType {
    fn from_name(name: &str) -> Option<TriggerType> {
        match name {
            "http" => Some(TriggerType::Http),
            "kafka" => Some(TriggerType::Kafka),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            TriggerType::Http => "http",
            TriggerType::Kafka => "kafka",
        }
    }

    /// The keys of one `[[trigger.<name>]]` entry: those allowed, and those refused
    /// by name (see [`Checker::check_keys`]).
    fn keys(
        self,
    ) -> (
        &'static [&'static str],
        &'static [(&'static str, &'static str)],
    ) {
        match self {
            TriggerType::Http => (HTTP_TRIGGER_KEYS, HTTP_TRIGGER_UNSUPPORTED),
            TriggerType::Kafka => (KAFKA_TRIGGER_KEYS, KAFKA_TRIGGER_UNSUPPORTED),
        }
    }
}

/// A `[[trigger.<name>]]` entry whose shape, keys and `id` have been checked.
struct TriggerEntry<'a> {
    trigger_type: TriggerType,
    path: KeyPath,
    table: &'a Table,
    /// The `id` as written.
    id: Option<String>,
}

impl Checker<'_> {
    fn error_at(
        &self,
        key: &KeyPath,
        locate: &KeyPath,
        at: At,
        message: impl Into<String>,
    ) -> ManifestError {
        ManifestError {
            file: self.file.to_path_buf(),
            key: (!key.is_root()).then(|| key.to_string()),
            line_col: self
                .spans
                .as_ref()
                .and_then(|s| s.locate(locate, at))
                .and_then(|offset| line_col(self.text, offset)),
            message: message.into(),
        }
    }

    /// An error about the value at `path`.
    fn error(&self, path: &KeyPath, message: impl Into<String>) -> ManifestError {
        self.error_at(path, path, At::Value, message)
    }

    /// An error about the key at `path` itself (unknown, unsupported, misnamed).
    fn key_error(&self, path: &KeyPath, message: impl Into<String>) -> ManifestError {
        self.error_at(path, path, At::Key, message)
    }

    fn position(&self, path: &KeyPath) -> usize {
        self.spans
            .as_ref()
            .and_then(|s| s.locate(path, At::Key))
            .unwrap_or(usize::MAX)
    }

    /// Refuses keys that are not in `allowed`, and keys in `unsupported` unless their
    /// value is empty (`[]`, `{}`, `false`), reporting the first one in the file.
    fn check_keys(
        &self,
        table: &Table,
        path: &KeyPath,
        allowed: &[&str],
        unsupported: &[(&str, &str)],
    ) -> Checked<()> {
        let mut bad: Vec<(&String, &Value)> = table
            .iter()
            .filter(|(k, v)| {
                let harmless = unsupported.iter().any(|(u, _)| u == k) && is_empty_value(v);
                !(allowed.contains(&k.as_str()) || harmless)
            })
            .collect();
        bad.sort_by_key(|(k, _)| (self.position(&path.key(k)), k.to_string()));
        let Some((key, _)) = bad.first() else {
            return Ok(());
        };
        if let Some((_, what)) = unsupported.iter().find(|(u, _)| u == key) {
            return Err(self.key_error(
                &path.key(key),
                format!("`{key}` is not supported by estore ({what})"),
            ));
        }
        let mut message = format!(
            "unknown key `{key}` (expected one of: {})",
            allowed.join(", ")
        );
        if let Some(close) = allowed.iter().find(|a| is_close(a, key)) {
            message.push_str(&format!("; did you mean `{close}`?"));
        }
        Err(self.error_at(path, &path.key(key), At::Key, message))
    }

    fn table<'v>(&self, value: &'v Value, path: &KeyPath) -> Checked<&'v Table> {
        value
            .as_table()
            .ok_or_else(|| self.error(path, format!("expected a table, found {}", kind(value))))
    }

    fn string<'v>(&self, value: &'v Value, path: &KeyPath) -> Checked<&'v str> {
        value
            .as_str()
            .ok_or_else(|| self.error(path, format!("expected a string, found {}", kind(value))))
    }

    fn boolean(&self, value: &Value, path: &KeyPath) -> Checked<bool> {
        value.as_bool().ok_or_else(|| {
            self.error(
                path,
                format!("expected true or false, found {}", kind(value)),
            )
        })
    }

    fn array<'v>(&self, value: &'v Value, path: &KeyPath) -> Checked<&'v Vec<Value>> {
        value
            .as_array()
            .ok_or_else(|| self.error(path, format!("expected an array, found {}", kind(value))))
    }

    fn strings(&self, value: &Value, path: &KeyPath) -> Checked<Vec<String>> {
        let items = self.array(value, path)?;
        items
            .iter()
            .enumerate()
            .map(|(i, v)| self.string(v, &path.index(i)).map(str::to_string))
            .collect()
    }

    fn string_map(&self, value: &Value, path: &KeyPath) -> Checked<BTreeMap<String, String>> {
        let table = self.table(value, path)?;
        table
            .iter()
            .map(|(k, v)| Ok((k.clone(), self.string(v, &path.key(k))?.to_string())))
            .collect()
    }

    /// An array of strings, each passing `check` (errors point at the element).
    fn checked_strings(
        &self,
        value: &Value,
        path: &KeyPath,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> Checked<Vec<String>> {
        let items = self.strings(value, path)?;
        for (i, item) in items.iter().enumerate() {
            check(item).map_err(|e| self.error(&path.index(i), e))?;
        }
        Ok(items)
    }

    /// A string, or an array of strings (Spin's build `command`, `brokers`); `expected`
    /// describes both forms for the error.
    fn string_or_strings(
        &self,
        value: &Value,
        path: &KeyPath,
        expected: &str,
    ) -> Checked<Vec<String>> {
        match value {
            Value::String(s) => Ok(vec![s.clone()]),
            Value::Array(_) => self.strings(value, path),
            other => Err(self.error(path, format!("expected {expected}, found {}", kind(other)))),
        }
    }

    /// A list of store or database labels (`key_value_stores`, `sql_databases`).
    fn labels(&self, table: &Table, path: &KeyPath, key: &str) -> Checked<Vec<String>> {
        match table.get(key) {
            Some(value) => self.checked_strings(value, &path.key(key), check_store_label),
            None => Ok(Vec::new()),
        }
    }

    /// A list of topic names, none twice: a duplicate is a slip, never a meaning.
    fn topics(&self, value: &Value, path: &KeyPath) -> Checked<Vec<String>> {
        let topics = self.checked_strings(value, path, |t| {
            validate_topic(t).map_err(|e| e.to_string())
        })?;
        if let Some(i) = (1..topics.len()).find(|&i| topics[..i].contains(&topics[i])) {
            return Err(self.error(
                &path.index(i),
                format!("topic `{}` is listed twice", topics[i]),
            ));
        }
        Ok(topics)
    }

    fn opt_string(&self, table: &Table, path: &KeyPath, key: &str) -> Checked<Option<String>> {
        table
            .get(key)
            .map(|v| self.string(v, &path.key(key)).map(str::to_string))
            .transpose()
    }

    fn positive(&self, value: &Value, path: &KeyPath) -> Checked<u64> {
        match value.as_integer() {
            Some(n) if n > 0 => Ok(n.unsigned_abs()),
            Some(n) => Err(self.error(path, format!("must be a positive integer, not {n}"))),
            None => Err(self.error(
                path,
                format!("expected a positive integer, found {}", kind(value)),
            )),
        }
    }

    /// An optional positive integer that must fit `T` (`u64`, `u32`).
    fn opt_positive<T: TryFrom<u64>>(
        &self,
        table: &Table,
        path: &KeyPath,
        key: &str,
    ) -> Checked<Option<T>> {
        let Some(value) = table.get(key) else {
            return Ok(None);
        };
        let kpath = path.key(key);
        let n = self.positive(value, &kpath)?;
        T::try_from(n)
            .map(Some)
            .map_err(|_| self.error(&kpath, format!("{n} is too large")))
    }

    // -- the document --------------------------------------------------------

    fn manifest(&self, doc: &Table, path: &Path, dir: PathBuf) -> Checked<Manifest> {
        let root = KeyPath::default();
        self.version(doc)?;
        self.check_keys(
            doc,
            &root,
            &[
                "spin_manifest_version",
                "application",
                "variables",
                "trigger",
                "component",
            ],
            &[],
        )?;
        let application = match doc.get("application") {
            Some(v) => self.application(v, &root.key("application"))?,
            None => {
                return Err(self.error(
                    &root.key("application"),
                    "missing `[application]` table (with at least `name`)",
                ));
            }
        };
        let variables = match doc.get("variables") {
            Some(v) => self.variables(v, &root.key("variables"))?,
            None => BTreeMap::new(),
        };
        let mut components = BTreeMap::new();
        if let Some(value) = doc.get("component") {
            let path = root.key("component");
            for (id, decl) in self.table(value, &path)? {
                let here = path.key(id);
                check_component_id(id).map_err(|e| self.key_error(&here, e))?;
                let component = self.component(decl, &here, id, &dir, &variables)?;
                components.insert(id.clone(), component);
            }
        }
        let (http_triggers, kafka_triggers) =
            self.triggers(doc, &mut components, &dir, &variables)?;
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

    fn version(&self, doc: &Table) -> Checked<()> {
        let path = KeyPath::default().key("spin_manifest_version");
        const ONLY_V2: &str = "estore supports only Spin manifest version 2";
        if doc.contains_key("spin_version") {
            return Err(self.key_error(
                &KeyPath::default().key("spin_version"),
                format!(
                    "this is a version 1 Spin manifest; {ONLY_V2} (`spin_manifest_version = 2`)"
                ),
            ));
        }
        match doc.get("spin_manifest_version") {
            None => Err(self.error(
                &path,
                format!("missing `spin_manifest_version`; {ONLY_V2} (`spin_manifest_version = 2`)"),
            )),
            Some(Value::Integer(2)) => Ok(()),
            Some(Value::Integer(1)) => Err(self.error(
                &path,
                format!("version 1 manifests are not supported; {ONLY_V2}"),
            )),
            Some(Value::String(s)) if s == "1" => Err(self.error(
                &path,
                format!("version 1 manifests are not supported; {ONLY_V2}"),
            )),
            Some(Value::String(s)) if s == "2" => Err(self.error(
                &path,
                "the version is an integer: write `spin_manifest_version = 2` (no quotes)",
            )),
            Some(v) => Err(self.error(
                &path,
                format!("unsupported manifest version {v}; {ONLY_V2}"),
            )),
        }
    }

    fn application(&self, value: &Value, path: &KeyPath) -> Checked<Application> {
        let table = self.table(value, path)?;
        self.check_keys(table, path, APPLICATION_KEYS, &[])?;
        let name = match table.get("name") {
            Some(v) => self.string(v, &path.key("name"))?.to_string(),
            None => return Err(self.error(path, "missing `name`")),
        };
        if name.trim().is_empty() {
            return Err(self.error(&path.key("name"), "the application name is empty"));
        }
        let authors = match table.get("authors") {
            Some(v) => self.strings(v, &path.key("authors"))?,
            None => Vec::new(),
        };
        if let Some(v) = table.get("targets") {
            // Spin's deployment-compatibility list; nothing for estore to do.
            self.array(v, &path.key("targets"))?;
        }
        if let Some(v) = table.get("tool") {
            // Settings for other tools; Spin ignores them too.
            self.table(v, &path.key("tool"))?;
        }
        let mut http_base = None;
        let mut kafka = KafkaApplicationSettings::default();
        if let Some(v) = table.get("trigger") {
            let tpath = path.key("trigger");
            for (name, config) in self.table(v, &tpath)? {
                let here = tpath.key(name);
                match TriggerType::from_name(name) {
                    Some(TriggerType::Http) => http_base = self.http_base(config, &here)?,
                    Some(TriggerType::Kafka) => kafka = self.kafka_settings(config, &here)?,
                    None => return Err(self.unsupported_trigger(&here, name)),
                }
            }
        }
        Ok(Application {
            name,
            version: self.opt_string(table, path, "version")?,
            description: self.opt_string(table, path, "description")?,
            authors,
            http_base: http_base.unwrap_or_else(|| "/".to_string()),
            kafka,
        })
    }

    fn unsupported_trigger(&self, path: &KeyPath, name: &str) -> ManifestError {
        self.key_error(
            path,
            format!("trigger type `{name}` is not supported by estore (only `http` and `kafka`)"),
        )
    }

    /// `[application.trigger.http]`: the `base`, if written.
    fn http_base(&self, value: &Value, path: &KeyPath) -> Checked<Option<String>> {
        let config = self.table(value, path)?;
        self.check_keys(config, path, &["base"], &[])?;
        let Some(base) = config.get("base") else {
            return Ok(None);
        };
        let bpath = path.key("base");
        let base = self.string(base, &bpath)?;
        routes::validate_base(base).map_err(|e| self.error(&bpath, e))?;
        Ok(Some(base.to_string()))
    }

    /// `[application.trigger.kafka]`.
    fn kafka_settings(&self, value: &Value, path: &KeyPath) -> Checked<KafkaApplicationSettings> {
        let table = self.table(value, path)?;
        self.check_keys(table, path, KAFKA_SETTINGS_KEYS, &[])?;
        let brokers = match table.get("brokers") {
            Some(v) => Some(self.brokers(v, &path.key("brokers"))?),
            None => None,
        };
        let settings = KafkaApplicationSettings {
            brokers,
            max_attempts: self.opt_positive(table, path, "max_attempts")?,
            initial_backoff_ms: self.opt_positive(table, path, "initial_backoff_ms")?,
            max_backoff_ms: self.opt_positive(table, path, "max_backoff_ms")?,
            concurrency: self.opt_positive(table, path, "concurrency")?,
        };
        if let (Some(initial), Some(max)) = (settings.initial_backoff_ms, settings.max_backoff_ms)
            && max < initial
        {
            return Err(self.error(
                &path.key("max_backoff_ms"),
                format!("{max} is below `initial_backoff_ms` ({initial}): the backoff only grows"),
            ));
        }
        Ok(settings)
    }

    /// `brokers = "host:port,host:port"` or `brokers = ["host:port", ...]`.
    fn brokers(&self, value: &Value, path: &KeyPath) -> Checked<String> {
        let entries = self.string_or_strings(
            value,
            path,
            "`\"host:port,host:port\"` or an array of `\"host:port\"`",
        )?;
        join_brokers(&entries).map_err(|e| self.error(path, e))
    }

    fn variables(&self, value: &Value, path: &KeyPath) -> Checked<BTreeMap<String, VariableDecl>> {
        let mut out = BTreeMap::new();
        for (name, decl) in self.table(value, path)? {
            let here = path.key(name);
            check_variable_name(name).map_err(|e| self.key_error(&here, e))?;
            let table = decl.as_table().ok_or_else(|| {
                self.error(
                    &here,
                    format!(
                        "expected a table such as `{{ default = \"...\" }}` or `{{ required = true }}`, found {}",
                        kind(decl)
                    ),
                )
            })?;
            self.check_keys(table, &here, VARIABLE_KEYS, &[])?;
            let default = self.opt_string(table, &here, "default")?;
            let flag = |key: &str| match table.get(key) {
                Some(v) => self.boolean(v, &here.key(key)),
                None => Ok(false),
            };
            let required = flag("required")?;
            let secret = flag("secret")?;
            match (required, &default) {
                (true, Some(_)) => {
                    return Err(self.error(
                        &here.key("default"),
                        format!("variable `{name}` is `required = true` and has a `default`: it must be one or the other"),
                    ));
                }
                (false, None) => {
                    return Err(self.error(
                        &here,
                        format!("variable `{name}` needs a `default` or `required = true`"),
                    ));
                }
                _ => {}
            }
            out.insert(
                name.clone(),
                VariableDecl {
                    default,
                    required,
                    secret,
                    description: self.opt_string(table, &here, "description")?,
                },
            );
        }
        Ok(out)
    }

    /// Checks a template and that every variable it names is declared.
    fn template(
        &self,
        template: &str,
        path: &KeyPath,
        what: &str,
        variables: &BTreeMap<String, VariableDecl>,
    ) -> Checked<()> {
        let parts =
            parse_template(template).map_err(|e| self.error(path, format!("{what}: {e}")))?;
        for part in parts {
            if let Part::Variable(name) = part {
                if check_variable_name(name).is_err() {
                    return Err(self.error(
                        path,
                        format!("{what}: `{{{{ {name} }}}}` does not name a variable"),
                    ));
                }
                if !variables.contains_key(name) {
                    return Err(self.error(
                        path,
                        format!("{what} references the application variable `{name}`, which is not declared in [variables]"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn component(
        &self,
        value: &Value,
        path: &KeyPath,
        id: &str,
        dir: &Path,
        variables: &BTreeMap<String, VariableDecl>,
    ) -> Checked<ComponentDecl> {
        let table = self.table(value, path)?;
        self.check_keys(table, path, COMPONENT_KEYS, COMPONENT_UNSUPPORTED)?;

        let source = match table.get("source") {
            None => {
                return Err(self.error(
                    path,
                    "missing `source` (the component's Wasm file, e.g. `source = \"target/wasm32-wasip2/release/app.wasm\"`)",
                ));
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Err(self.error(&path.key("source"), "`source` is empty"));
            }
            Some(Value::String(s)) => dir.join(s),
            Some(Value::Table(t)) if t.contains_key("url") => {
                return Err(self.error(
                    &path.key("source"),
                    "remote sources (`source = { url = ..., digest = ... }`) are not supported by estore: download the Wasm file and give its path",
                ));
            }
            Some(Value::Table(t)) if t.contains_key("package") || t.contains_key("registry") => {
                return Err(self.error(
                    &path.key("source"),
                    "registry sources (`source = { registry = ..., package = ..., version = ... }`) are not supported by estore: give the path of a Wasm file",
                ));
            }
            Some(other) => {
                return Err(self.error(
                    &path.key("source"),
                    format!("expected the path of a Wasm file, found {}", kind(other)),
                ));
            }
        };

        let mut component_variables = BTreeMap::new();
        if let Some(v) = table.get("variables") {
            let vpath = path.key("variables");
            for (name, template) in self.table(v, &vpath)? {
                let here = vpath.key(name);
                check_variable_name(name).map_err(|e| self.key_error(&here, e))?;
                let template = self.string(template, &here)?;
                self.template(
                    template,
                    &here,
                    &format!("component variable `{name}`"),
                    variables,
                )?;
                component_variables.insert(name.clone(), template.to_string());
            }
        }

        let environment = match table.get("environment") {
            Some(v) => self.string_map(v, &path.key("environment"))?,
            None => BTreeMap::new(),
        };
        for name in environment.keys() {
            if name.is_empty() || name.contains(['=', '\0']) {
                return Err(self.key_error(
                    &path.key("environment").key(name),
                    format!("invalid environment variable name {name:?}"),
                ));
            }
        }

        let mut files = Vec::new();
        if let Some(v) = table.get("files") {
            let fpath = path.key("files");
            for (i, entry) in self.array(v, &fpath)?.iter().enumerate() {
                files.push(self.file_mount(entry, &fpath.index(i), dir)?);
            }
        }

        let mut allowed_outbound_hosts = Vec::new();
        if let Some(v) = table.get("allowed_outbound_hosts") {
            let hpath = path.key("allowed_outbound_hosts");
            for (i, entry) in self.strings(v, &hpath)?.into_iter().enumerate() {
                let here = hpath.index(i);
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

        let allowed_publish_topics = match table.get("allowed_publish_topics") {
            Some(v) => self.topics(v, &path.key("allowed_publish_topics"))?,
            None => Vec::new(),
        };
        let allow_email = match table.get("allow_email") {
            Some(v) => self.boolean(v, &path.key("allow_email"))?,
            None => false,
        };
        let allow_operations = match table.get("allow_operations") {
            Some(v) => self.boolean(v, &path.key("allow_operations"))?,
            None => false,
        };
        let key_value_stores = self.labels(table, path, "key_value_stores")?;
        let sql_databases = self.labels(table, path, "sql_databases")?;
        let sql_migrations = match self.opt_string(table, path, "sql_migrations")? {
            Some(folder) if sql_databases.is_empty() => {
                return Err(self.error(
                    &path.key("sql_migrations"),
                    format!("migrations `{folder}` but no `sql_databases` to apply them to"),
                ));
            }
            Some(folder) => Some(dir.join(folder)),
            None => None,
        };

        let build = match table.get("build") {
            Some(v) => Some(self.build(v, &path.key("build"), dir)?),
            None => None,
        };

        let mut limits = ComponentLimits::default();
        if let Some(v) = table.get("limits") {
            let lpath = path.key("limits");
            let lt = self.table(v, &lpath)?;
            self.check_keys(lt, &lpath, LIMITS_KEYS, &[])?;
            limits = ComponentLimits {
                request_timeout_ms: self.opt_positive(lt, &lpath, "request_timeout_ms")?,
                max_memory_mb: self.opt_positive(lt, &lpath, "max_memory_mb")?,
                max_request_body_bytes: self.opt_positive(lt, &lpath, "max_request_body_bytes")?,
            };
        }

        if let Some(v) = table.get("tool") {
            self.table(v, &path.key("tool"))?;
        }

        Ok(ComponentDecl {
            id: id.to_string(),
            description: self.opt_string(table, path, "description")?,
            source,
            allowed_outbound_hosts,
            allowed_publish_topics,
            allow_email,
            allow_operations,
            key_value_stores,
            sql_databases,
            sql_migrations,
            variables: component_variables,
            environment,
            files,
            build,
            limits,
        })
    }

    fn file_mount(&self, entry: &Value, path: &KeyPath, dir: &Path) -> Checked<FileMount> {
        let inside = |p: &str| {
            !Path::new(p).is_absolute()
                && !p.starts_with('/')
                && !Path::new(p)
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
        };
        match entry {
            Value::String(pattern) => {
                if pattern.trim().is_empty() {
                    return Err(self.error(path, "empty file pattern"));
                }
                if !inside(pattern) {
                    return Err(self.error(
                        path,
                        format!("`{pattern}` must be relative to the manifest directory and stay inside it (no absolute path, no `..`); use `{{ source = ..., destination = ... }}` to mount elsewhere"),
                    ));
                }
                glob::Pattern::new(pattern).map_err(|e| {
                    self.error(path, format!("invalid glob pattern `{pattern}`: {e}"))
                })?;
                Ok(FileMount::Pattern(pattern.clone()))
            }
            Value::Table(table) => {
                self.check_keys(table, path, &["source", "destination"], &[])?;
                let source = match table.get("source") {
                    Some(v) => self.string(v, &path.key("source"))?,
                    None => return Err(self.error(path, "missing `source`")),
                };
                let destination = match table.get("destination") {
                    Some(v) => self.string(v, &path.key("destination"))?,
                    None => return Err(self.error(path, "missing `destination`")),
                };
                if source.trim().is_empty() || !inside(source) {
                    return Err(self.error(
                        &path.key("source"),
                        format!("`{source}` must be a path relative to the manifest directory, inside it (no absolute path, no `..`)"),
                    ));
                }
                if !destination.starts_with('/') {
                    return Err(self.error(
                        &path.key("destination"),
                        format!(
                            "`{destination}` must be an absolute guest path (starting with `/`)"
                        ),
                    ));
                }
                Ok(FileMount::Mapping {
                    source: dir.join(source),
                    destination: destination.to_string(),
                })
            }
            other => Err(self.error(
                path,
                format!(
                    "expected a path pattern or `{{ source = ..., destination = ... }}`, found {}",
                    kind(other)
                ),
            )),
        }
    }

    fn build(&self, value: &Value, path: &KeyPath, dir: &Path) -> Checked<BuildConfig> {
        let table = self.table(value, path)?;
        self.check_keys(table, path, BUILD_KEYS, &[])?;
        let cpath = path.key("command");
        let commands = match table.get("command") {
            None => {
                return Err(self.error(
                    path,
                    "missing `command` (the shell command that builds the component)",
                ));
            }
            Some(v) => self.string_or_strings(v, &cpath, "a command or a list of commands")?,
        };
        if commands.is_empty() || commands.iter().any(|c| c.trim().is_empty()) {
            return Err(self.error(&cpath, "empty build command"));
        }
        Ok(BuildConfig {
            command: commands.join(" && "),
            commands,
            workdir: self
                .opt_string(table, path, "workdir")?
                .map(|w| dir.join(w)),
            watch: match table.get("watch") {
                Some(v) => self.strings(v, &path.key("watch"))?,
                None => Vec::new(),
            },
        })
    }

    /// `[[trigger.http]]` and `[[trigger.kafka]]`, each in file order. Inline
    /// components are added to `components`.
    fn triggers(
        &self,
        doc: &Table,
        components: &mut BTreeMap<String, ComponentDecl>,
        dir: &Path,
        variables: &BTreeMap<String, VariableDecl>,
    ) -> Checked<(Vec<HttpTrigger>, Vec<KafkaTrigger>)> {
        let tpath = KeyPath::default().key("trigger");
        const NO_TRIGGERS: &str = "the application has no triggers: add a `[[trigger.http]]` with a `route` and a `component`, or a `[[trigger.kafka]]` with `topics` and a `component`";
        let Some(value) = doc.get("trigger") else {
            return Err(self.error(&tpath, NO_TRIGGERS));
        };
        let entries = self.trigger_entries(self.table(value, &tpath)?, &tpath)?;
        if entries.is_empty() {
            return Err(self.error(&tpath, NO_TRIGGERS));
        }
        let trigger_ids = normalized_trigger_ids(&entries);

        let (mut http, mut kafka) = (Vec::new(), Vec::new());
        for (entry, trigger_id) in entries.iter().zip(&trigger_ids) {
            let component =
                self.trigger_component(entry, trigger_id, components, dir, variables)?;
            match entry.trigger_type {
                TriggerType::Http => http.push(self.http_trigger(entry, component)?),
                TriggerType::Kafka => kafka.push(self.kafka_trigger(entry, component)?),
            }
        }
        self.check_component_references(&entries, components)?;
        self.check_duplicate_routes(&http, &tpath.key("http"))?;
        self.check_shared_topics(&kafka, &tpath.key("kafka"))?;
        Ok((http, kafka))
    }

    /// First pass over `[trigger]`: the shape, keys and `id` of every entry of every
    /// type, which Spin's id normalisation needs before anything else.
    fn trigger_entries<'t>(
        &self,
        table: &'t Table,
        tpath: &KeyPath,
    ) -> Checked<Vec<TriggerEntry<'t>>> {
        let mut entries = Vec::new();
        for (name, list) in table {
            let here = tpath.key(name);
            let Some(trigger_type) = TriggerType::from_name(name) else {
                return Err(self.unsupported_trigger(&here, name));
            };
            let list = list.as_array().ok_or_else(|| {
                self.error(
                    &here,
                    format!(
                        "expected an array of tables (write `[[trigger.{name}]]`), found {}",
                        kind(list)
                    ),
                )
            })?;
            let (allowed, unsupported) = trigger_type.keys();
            for (i, entry) in list.iter().enumerate() {
                let path = here.index(i);
                let table = entry.as_table().ok_or_else(|| {
                    self.error(&path, format!("expected a table, found {}", kind(entry)))
                })?;
                self.check_keys(table, &path, allowed, unsupported)?;
                let id = self.opt_string(table, &path, "id")?;
                entries.push(TriggerEntry {
                    trigger_type,
                    path,
                    table,
                    id,
                });
            }
        }
        Ok(entries)
    }

    /// The id of the component a trigger runs; an inline component is checked and
    /// added to `components` under the id Spin would give it.
    fn trigger_component(
        &self,
        entry: &TriggerEntry,
        trigger_id: &str,
        components: &mut BTreeMap<String, ComponentDecl>,
        dir: &Path,
        variables: &BTreeMap<String, VariableDecl>,
    ) -> Checked<String> {
        let cpath = entry.path.key("component");
        match entry.table.get("component") {
            None => Err(self.error(
                &entry.path,
                "missing `component` (the id of the component to run)",
            )),
            Some(Value::String(name)) => Ok(name.clone()),
            Some(inline @ Value::Table(_)) => {
                let generated = inline_component_id(trigger_id, components);
                let decl = self.component(inline, &cpath, &generated, dir, variables)?;
                components.insert(generated.clone(), decl);
                Ok(generated)
            }
            Some(other) => Err(self.error(
                &cpath,
                format!(
                    "expected a component id or an inline component table, found {}",
                    kind(other)
                ),
            )),
        }
    }

    fn http_trigger(&self, entry: &TriggerEntry, component: String) -> Checked<HttpTrigger> {
        let route = self.route(entry.table, &entry.path)?;
        if let Some(executor) = entry.table.get("executor") {
            self.executor(executor, &entry.path.key("executor"))?;
        }
        let request_timeout_ms = self.opt_positive(entry.table, &entry.path, "request_timeout_ms")?;
        if request_timeout_ms.is_some() && route == HttpRoute::Private {
            return Err(self.key_error(
                &entry.path.key("request_timeout_ms"),
                format!(
                    "a private route takes no requests of its own: chained requests get the component's deadline; set `request_timeout_ms` in [component.{}.limits] instead",
                    display_key(&component)
                ),
            ));
        }
        Ok(HttpTrigger {
            id: entry.id.clone(),
            route,
            component,
            request_timeout_ms,
        })
    }

    fn kafka_trigger(&self, entry: &TriggerEntry, component: String) -> Checked<KafkaTrigger> {
        let (table, path) = (entry.table, &entry.path);
        let topics = match table.get("topics") {
            Some(v) => self.topics(v, &path.key("topics"))?,
            None => {
                return Err(self.error(
                    path,
                    "missing `topics` (the topics whose messages the component handles, e.g. `topics = [\"orders\"]`)",
                ));
            }
        };
        if topics.is_empty() {
            return Err(self.error(&path.key("topics"), "no topics: list at least one"));
        }
        let group = match self.opt_string(table, path, "group")? {
            Some(group) if group.trim().is_empty() => {
                return Err(self.error(&path.key("group"), "the consumer group is empty"));
            }
            Some(group) => group,
            None => component.clone(),
        };
        Ok(KafkaTrigger {
            id: entry.id.clone(),
            component,
            topics,
            group,
        })
    }

    /// Every component a trigger names by id exists (inline ones were just added).
    fn check_component_references(
        &self,
        entries: &[TriggerEntry],
        components: &BTreeMap<String, ComponentDecl>,
    ) -> Checked<()> {
        for entry in entries {
            let Some(Value::String(name)) = entry.table.get("component") else {
                continue;
            };
            if components.contains_key(name) {
                continue;
            }
            let known: Vec<&str> = components.keys().map(String::as_str).collect();
            let mut message = if known.is_empty() {
                format!("no component `{name}` (no components are defined)")
            } else {
                format!("no component `{name}` (defined: {})", known.join(", "))
            };
            if let Some(close) = known.iter().find(|k| is_close(k, name)) {
                message.push_str(&format!("; did you mean `{close}`?"));
            }
            return Err(self.error(&entry.path.key("component"), message));
        }
        Ok(())
    }

    /// No two public routes match the same requests.
    fn check_duplicate_routes(&self, triggers: &[HttpTrigger], hpath: &KeyPath) -> Checked<()> {
        let describe = |i: usize| {
            describe_trigger(hpath, i, triggers[i].id.as_deref(), &triggers[i].component)
        };
        let mut seen: BTreeMap<String, (usize, &str)> = BTreeMap::new();
        for (i, trigger) in triggers.iter().enumerate() {
            let HttpRoute::Path(route) = &trigger.route else {
                continue;
            };
            let rpath = hpath.index(i).key("route");
            let key = routes::route_key(route).map_err(|e| self.error(&rpath, e))?;
            if let Some(&(first, earlier_route)) = seen.get(&key) {
                return Err(self.error(
                    &rpath,
                    format!(
                        "route `{route}` of {} duplicates route `{earlier_route}` of {}: both match the same requests",
                        describe(i),
                        describe(first)
                    ),
                ));
            }
            seen.insert(key, (i, route));
        }
        Ok(())
    }

    /// No topic is consumed twice by one group: the group's members would split its
    /// partitions, so each trigger would get only part of the messages.
    fn check_shared_topics(&self, triggers: &[KafkaTrigger], kpath: &KeyPath) -> Checked<()> {
        let describe = |i: usize| {
            describe_trigger(kpath, i, triggers[i].id.as_deref(), &triggers[i].component)
        };
        let mut seen: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for (i, trigger) in triggers.iter().enumerate() {
            for (j, topic) in trigger.topics.iter().enumerate() {
                let Some(&first) = seen.get(&(trigger.group.as_str(), topic.as_str())) else {
                    seen.insert((&trigger.group, topic), i);
                    continue;
                };
                return Err(self.error(
                    &kpath.index(i).key("topics").index(j),
                    format!(
                        "topic `{topic}` is already consumed by group `{}` in {}: two triggers of one group would each get only part of its messages; give {} another `group`",
                        trigger.group,
                        describe(first),
                        describe(i)
                    ),
                ));
            }
        }
        Ok(())
    }

    fn route(&self, trigger: &Table, path: &KeyPath) -> Checked<HttpRoute> {
        let rpath = path.key("route");
        match trigger.get("route") {
            None => Err(self.error(
                path,
                "missing `route` (e.g. `route = \"/hello/...\"` or `route = { private = true }`)",
            )),
            Some(Value::String(route)) => {
                routes::validate_route(route)
                    .map_err(|e| self.error(&rpath, format!("invalid route `{route}`: {e}")))?;
                Ok(HttpRoute::Path(route.clone()))
            }
            Some(Value::Table(t)) => {
                self.check_keys(t, &rpath, &["private"], &[])?;
                let private = match t.get("private") {
                    Some(v) => self.boolean(v, &rpath.key("private"))?,
                    None => false,
                };
                if private {
                    Ok(HttpRoute::Private)
                } else {
                    Err(self.error(
                        &rpath,
                        "a route must be a path pattern or `{ private = true }`",
                    ))
                }
            }
            Some(other) => Err(self.error(
                &rpath,
                format!(
                    "expected a path pattern or `{{ private = true }}`, found {}",
                    kind(other)
                ),
            )),
        }
    }

    fn executor(&self, value: &Value, path: &KeyPath) -> Checked<()> {
        let table = self.table(value, path)?;
        let tpath = path.key("type");
        let kind_name = match table.get("type") {
            Some(v) => self.string(v, &tpath)?,
            None => {
                return Err(self.error(path, "missing `type` (`executor = { type = \"spin\" }`)"));
            }
        };
        match kind_name {
            "spin" | "http" => self.check_keys(table, path, &["type"], &[]),
            "wagi" => Err(self.error(
                &tpath,
                "the Wagi executor is not supported by estore: only HTTP components (`executor = { type = \"spin\" }`, the default)",
            )),
            other => Err(self.error(
                &tpath,
                format!("unknown executor type `{other}` (expected `spin`)"),
            )),
        }
    }
}

/// A trigger as errors name it, e.g. ``trigger `front` (trigger.http[0], component `c`)``.
fn describe_trigger(list: &KeyPath, i: usize, id: Option<&str>, component: &str) -> String {
    let at = list.index(i);
    match id {
        Some(id) => format!("trigger `{id}` ({at}, component `{component}`)"),
        None => format!("{at} (component `{component}`)"),
    }
}

/// Spin's trigger-id normalisation, needed to name inline components as Spin does:
/// a trigger without `id` gets `<component>-<type>-trigger`, or else
/// `<type>-trigger<n>`, unique across the triggers of all types.
fn normalized_trigger_ids(entries: &[TriggerEntry]) -> Vec<String> {
    let mut taken: BTreeSet<String> = entries
        .iter()
        .map(|entry| entry.id.clone().unwrap_or_default())
        .collect();
    let mut counters: BTreeMap<&str, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for entry in entries {
        if let Some(id) = entry.id.as_ref().filter(|id| !id.is_empty()) {
            out.push(id.clone());
            continue;
        }
        let type_name = entry.trigger_type.name();
        if let Some(Value::String(component)) = entry.table.get("component") {
            let candidate = format!("{component}-{type_name}-trigger");
            if taken.insert(candidate.clone()) {
                out.push(candidate);
                continue;
            }
        }
        let counter = counters.entry(type_name).or_insert(1);
        loop {
            let candidate = format!("{type_name}-trigger{counter}");
            if taken.insert(candidate.clone()) {
                out.push(candidate);
                break;
            }
            *counter += 1;
        }
    }
    out
}

/// Spin's id for an inline component: `<trigger-id>-component`, or else the first
/// free `inline-component<n>`.
fn inline_component_id(trigger_id: &str, components: &BTreeMap<String, ComponentDecl>) -> String {
    let natural = format!("{trigger_id}-component");
    if is_component_id(&natural) && !components.contains_key(&natural) {
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

fn kind(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

fn is_empty_value(value: &Value) -> bool {
    match value {
        Value::Array(a) => a.is_empty(),
        Value::Table(t) => t.is_empty(),
        Value::Boolean(b) => !b,
        _ => false,
    }
}

/// Close enough to be a typo: edit distance at most 2 (1 for short words).
fn is_close(candidate: &str, typed: &str) -> bool {
    let limit = if typed.chars().count() <= 4 { 1 } else { 2 };
    let a: Vec<char> = candidate.chars().collect();
    let b: Vec<char> = typed.chars().collect();
    if a.len().abs_diff(b.len()) > limit {
        return false;
    }
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous.last().is_some_and(|d| *d <= limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "spin_manifest_version = 2\n[application]\nname = \"app\"\n";

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(Path::new("/srv/app/spin.toml"), text)
    }

    fn ok(text: &str) -> Manifest {
        match parse(text) {
            Ok(m) => m,
            Err(e) => panic!("should parse, got: {e}"),
        }
    }

    fn err(text: &str) -> ManifestError {
        match parse(text) {
            Ok(m) => panic!("should fail, got: {m:?}"),
            Err(e) => e,
        }
    }

    /// A minimal valid app with one component `hello` at `/hello/...`, plus `extra`
    /// appended to the component table.
    fn with_component(extra: &str) -> String {
        format!(
            "{HEAD}[[trigger.http]]\nroute = \"/hello/...\"\ncomponent = \"hello\"\n\n[component.hello]\nsource = \"hello.wasm\"\n{extra}"
        )
    }

    fn assert_err(text: &str, key: Option<&str>, needles: &[&str]) -> ManifestError {
        let e = err(text);
        assert_eq!(e.key.as_deref(), key, "key of: {e}");
        for needle in needles {
            assert!(e.message.contains(needle), "`{needle}` not in: {e}");
        }
        assert!(!e.to_string().contains('\n'), "one line: {e}");
        e
    }

    const FULL: &str = r#"
spin_manifest_version = 2

[application]
name = "shop"
version = "1.2.3"
description = "A shop"
authors = ["Ann <ann@example.com>"]
targets = ["spin-up:3.3"]
[application.trigger.http]
base = "/api"
[application.trigger.kafka]
brokers = ["kafka-1:9092", "kafka-2:9092"]
max_attempts = 3
initial_backoff_ms = 100
max_backoff_ms = 5000
concurrency = 16
[application.tool.lint]
level = "high"

[variables]
greeting = { default = "Hello" }
target = { required = true, secret = true, description = "who" }
api_host = { default = "api.example.com" }

[[trigger.http]]
id = "front"
route = "/hello/..."
component = "hello"
executor = { type = "spin" }

[[trigger.http]]
route = { private = true }
component = "backend"

[[trigger.http]]
route = "/users/:id"
component = { source = "inline.wasm" }
request_timeout_ms = 120000

[[trigger.kafka]]
id = "orders"
component = "backend"
topics = ["orders", "orders.retry"]

[[trigger.kafka]]
component = { source = "audit.wasm" }
topics = ["audit_log"]
group = "audit"

[component.hello]
description = "Says hello"
source = "target/hello.wasm"
allowed_outbound_hosts = ["https://{{ api_host }}", "http://backend.spin.internal", "https://*.example.com:8443", "*://localhost:*", "http://127.0.0.1:3000..3010"]
allowed_publish_topics = ["orders", "audit_log"]
allow_email = true
allow_operations = true
key_value_stores = ["default", "cart_items", "user-data"]
variables = { message = "{{ greeting }}, {{target}}!", plain = "text" }
environment = { RUST_LOG = "info" }
files = ["static/**/*", { source = "assets", destination = "/assets" }]
[component.hello.build]
command = ["cargo build", "wasm-tools strip"]
workdir = "hello"
watch = ["src/**/*.rs"]
[component.hello.limits]
request_timeout_ms = 1500
max_memory_mb = 64
max_request_body_bytes = 65536
[component.hello.tool.clean]
command = "rm -rf target"

[component.backend]
source = "backend.wasm"

[component.unused]
source = "unused.wasm"
"#;

    #[test]
    fn parses_a_full_manifest() {
        let m = ok(FULL);
        assert_eq!(m.path, Path::new("/srv/app/spin.toml"));
        assert_eq!(m.dir, Path::new("/srv/app"));
        assert_eq!(
            m.application,
            Application {
                name: "shop".into(),
                version: Some("1.2.3".into()),
                description: Some("A shop".into()),
                authors: vec!["Ann <ann@example.com>".into()],
                http_base: "/api".into(),
                kafka: KafkaApplicationSettings {
                    brokers: Some("kafka-1:9092,kafka-2:9092".into()),
                    max_attempts: Some(3),
                    initial_backoff_ms: Some(100),
                    max_backoff_ms: Some(5000),
                    concurrency: Some(16),
                },
            }
        );
        assert_eq!(m.variables.len(), 3);
        let target = &m.variables["target"];
        assert!(target.required && target.secret && target.default.is_none());
        assert_eq!(m.variables["greeting"].default.as_deref(), Some("Hello"));

        assert_eq!(m.http_triggers.len(), 3);
        assert_eq!(m.http_triggers[0].id.as_deref(), Some("front"));
        assert_eq!(
            m.http_triggers[0].route,
            HttpRoute::Path("/hello/...".into())
        );
        assert_eq!(m.http_triggers[1].route, HttpRoute::Private);
        assert_eq!(m.http_triggers[1].component, "backend");
        let timeouts: Vec<Option<u64>> = m.http_triggers.iter().map(|t| t.request_timeout_ms).collect();
        assert_eq!(timeouts, vec![None, None, Some(120000)]);
        // Spin names an inline component after its trigger's (generated) id.
        assert_eq!(m.http_triggers[2].component, "http-trigger1-component");
        assert_eq!(
            m.components["http-trigger1-component"].source,
            Path::new("/srv/app/inline.wasm")
        );
        let routes: Vec<(&str, &str)> =
            m.http_routes().into_iter().map(|(route, t)| (route, t.component.as_str())).collect();
        assert_eq!(
            routes,
            vec![("/hello/...", "hello"), ("/users/:id", "http-trigger1-component")]
        );
        assert_eq!(
            m.kafka_triggers,
            vec![
                KafkaTrigger {
                    id: Some("orders".into()),
                    component: "backend".into(),
                    topics: vec!["orders".into(), "orders.retry".into()],
                    group: "backend".into(),
                },
                KafkaTrigger {
                    id: None,
                    component: "kafka-trigger1-component".into(),
                    topics: vec!["audit_log".into()],
                    group: "audit".into(),
                },
            ]
        );
        assert_eq!(
            m.components["kafka-trigger1-component"].source,
            Path::new("/srv/app/audit.wasm")
        );
        assert_eq!(
            m.triggered_components(),
            BTreeSet::from([
                "backend",
                "hello",
                "http-trigger1-component",
                "kafka-trigger1-component"
            ])
        );

        let hello = m.components.get("hello").expect("hello");
        assert_eq!(hello.source, Path::new("/srv/app/target/hello.wasm"));
        assert_eq!(hello.description.as_deref(), Some("Says hello"));
        assert_eq!(hello.allowed_outbound_hosts.len(), 5);
        assert_eq!(hello.allowed_publish_topics, vec!["orders", "audit_log"]);
        assert!(hello.allow_email);
        assert!(!m.components["backend"].allow_email);
        assert!(hello.allow_operations);
        assert!(!m.components["backend"].allow_operations, "operations are granted, never implied");
        assert_eq!(
            hello.key_value_stores,
            vec!["default", "cart_items", "user-data"]
        );
        assert_eq!(hello.variables["message"], "{{ greeting }}, {{target}}!");
        assert_eq!(hello.environment["RUST_LOG"], "info");
        assert_eq!(
            hello.files,
            vec![
                FileMount::Pattern("static/**/*".into()),
                FileMount::Mapping {
                    source: PathBuf::from("/srv/app/assets"),
                    destination: "/assets".into()
                },
            ]
        );
        let build = hello.build.as_ref().expect("build");
        assert_eq!(build.command, "cargo build && wasm-tools strip");
        assert_eq!(build.commands, vec!["cargo build", "wasm-tools strip"]);
        assert_eq!(build.workdir.as_deref(), Some(Path::new("/srv/app/hello")));
        assert_eq!(build.watch, vec!["src/**/*.rs"]);
        assert_eq!(
            hello.limits,
            ComponentLimits {
                request_timeout_ms: Some(1500),
                max_memory_mb: Some(64),
                max_request_body_bytes: Some(65536),
            }
        );
        assert_eq!(m.components["backend"].limits, ComponentLimits::default());
        // A component no trigger uses is fine.
        assert!(m.components.contains_key("unused"));
    }

    #[test]
    fn the_projects_own_manifest_is_valid() {
        let m = ok(include_str!("../../../spin.toml"));
        assert!(!m.http_triggers.is_empty());
    }

    #[test]
    fn defaults_when_optional_parts_are_absent() {
        let m = ok(&with_component(""));
        assert_eq!(m.application.http_base, "/");
        assert_eq!(m.application.kafka, KafkaApplicationSettings::default());
        assert!(m.kafka_triggers.is_empty());
        assert!(m.components["hello"].allowed_publish_topics.is_empty());
        assert!(!m.components["hello"].allow_email);
        assert_eq!(m.application.version, None);
        assert!(m.application.authors.is_empty());
        assert!(m.variables.is_empty());
        let hello = &m.components["hello"];
        assert!(hello.build.is_none() && hello.files.is_empty());
        assert_eq!(hello.limits, ComponentLimits::default());
    }

    #[test]
    fn relative_manifest_path_gets_an_absolute_dir() {
        let m = match Manifest::parse(Path::new("spin.toml"), &with_component("")) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(m.path, Path::new("spin.toml"));
        assert!(m.dir.is_absolute(), "{}", m.dir.display());
        assert_eq!(m.components["hello"].source, m.dir.join("hello.wasm"));
    }

    #[test]
    fn error_display_is_one_line_with_file_position_and_key() {
        let e = err(&with_component("sourc = \"x\"\n"));
        assert_eq!(e.key.as_deref(), Some("component.hello"));
        assert_eq!(e.line_col, Some((10, 1)));
        assert_eq!(
            e.to_string(),
            "/srv/app/spin.toml:10:1: component.hello: unknown key `sourc` (expected one of: source, description, variables, environment, files, allowed_outbound_hosts, allowed_publish_topics, allow_email, allow_operations, key_value_stores, sql_databases, sql_migrations, build, limits, tool); did you mean `source`?"
        );
        let no_position = ManifestError {
            file: "spin.toml".into(),
            key: None,
            line_col: None,
            message: "first\nsecond".into(),
        };
        assert_eq!(no_position.to_string(), "spin.toml: first; second");
    }

    #[test]
    fn bad_toml_syntax_reports_line_and_column() {
        let e = err("spin_manifest_version = 2\n[application\nname = \"x\"\n");
        assert_eq!(e.key, None);
        assert_eq!(e.line_col, Some((2, 13)));
        assert!(e.message.starts_with("invalid TOML"), "{e}");
        assert!(!e.to_string().contains('\n'));
        let e = err("spin_manifest_version = 2\n[application]\nname = \"x\"\nname = \"y\"\n");
        assert_eq!(e.line_col.map(|(l, _)| l), Some(4));
        assert!(e.message.contains("duplicate key"), "{e}");
    }

    #[test]
    fn only_manifest_version_2_is_supported() {
        let body = "[application]\nname = \"x\"\n";
        let e = assert_err(
            body,
            Some("spin_manifest_version"),
            &["missing", "only Spin manifest version 2"],
        );
        assert_eq!(e.line_col, None);
        assert_err(
            &format!("spin_manifest_version = 1\n{body}"),
            Some("spin_manifest_version"),
            &["version 1", "only Spin manifest version 2"],
        );
        assert_err(
            &format!("spin_manifest_version = \"1\"\n{body}"),
            Some("spin_manifest_version"),
            &["version 1"],
        );
        assert_err(
            &format!("spin_manifest_version = 3\n{body}"),
            Some("spin_manifest_version"),
            &[
                "unsupported manifest version 3",
                "only Spin manifest version 2",
            ],
        );
        assert_err(
            &format!("spin_manifest_version = \"2\"\n{body}"),
            Some("spin_manifest_version"),
            &["no quotes"],
        );
        let e = assert_err(
            "spin_version = \"1\"\nname = \"old\"\ntrigger = { type = \"http\" }\n",
            Some("spin_version"),
            &["version 1", "only Spin manifest version 2"],
        );
        assert_eq!(e.line_col, Some((1, 1)));
    }

    #[test]
    fn unknown_keys_are_refused_everywhere_with_their_table() {
        let cases: Vec<(String, &str, &str, (usize, usize))> = vec![
            (format!("colour = 1\n{HEAD}"), "", "colour", (1, 1)),
            (format!("{HEAD}nmae = 2\n"), "application", "nmae", (4, 1)),
            (
                with_component("[component.hello.build]\ncommand = \"x\"\ncwd = \".\"\n"),
                "component.hello.build",
                "cwd",
                (12, 1),
            ),
            (
                with_component("limits = { timeout = 5 }\n"),
                "component.hello.limits",
                "timeout",
                (10, 12),
            ),
            (
                format!(
                    "{HEAD}[variables]\nx = {{ default = \"1\", secrett = true }}\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
                ),
                "variables.x",
                "secrett",
                (5, 22),
            ),
            (
                format!(
                    "{HEAD}[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\nroutes = \"/x\"\n[component.c]\nsource = \"c.wasm\"\n"
                ),
                "trigger.http[0]",
                "routes",
                (7, 1),
            ),
            (
                format!(
                    "{HEAD}[[trigger.http]]\nroute = {{ private = true, public = false }}\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
                ),
                "trigger.http[0].route",
                "public",
                (5, 27),
            ),
            (
                with_component(
                    "files = [{ source = \"a\", destination = \"/a\", mode = \"ro\" }]\n",
                ),
                "component.hello.files[0]",
                "mode",
                (10, 46),
            ),
            (
                format!(
                    "{HEAD}[application.trigger.http]\nbase = \"/\"\nport = 80\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
                ),
                "application.trigger.http",
                "port",
                (6, 1),
            ),
            (
                format!(
                    "{HEAD}[[trigger.kafka]]\ncomponent = \"c\"\ntopics = [\"t\"]\npartition = 1\n[component.c]\nsource = \"c.wasm\"\n"
                ),
                "trigger.kafka[0]",
                "partition",
                (7, 1),
            ),
            (
                format!(
                    "{HEAD}[application.trigger.kafka]\nmax_attempts = 2\nretries = 3\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
                ),
                "application.trigger.kafka",
                "retries",
                (6, 1),
            ),
        ];
        for (text, key, unknown, position) in cases {
            let e = err(&text);
            assert_eq!(e.key.as_deref().unwrap_or(""), key, "{e}");
            assert!(
                e.message
                    .starts_with(&format!("unknown key `{unknown}` (expected one of: ")),
                "{e}"
            );
            assert_eq!(e.line_col, Some(position), "{e}");
        }
    }

    #[test]
    fn unknown_key_suggests_a_close_name() {
        let e = err(&with_component("allowed_outbound_host = []\n"));
        assert!(
            e.message
                .ends_with("did you mean `allowed_outbound_hosts`?"),
            "{e}"
        );
        let e = err(&with_component("zzz = 1\n"));
        assert!(!e.message.contains("did you mean"), "{e}");
    }

    #[test]
    fn trigger_naming_an_unknown_component_lists_the_defined_ones() {
        let text = format!(
            "{HEAD}[[trigger.http]]\nroute = \"/\"\ncomponent = \"helo\"\n[component.hello]\nsource = \"a.wasm\"\n[component.world]\nsource = \"b.wasm\"\n"
        );
        let e = assert_err(
            &text,
            Some("trigger.http[0].component"),
            &[
                "no component `helo`",
                "defined: hello, world",
                "did you mean `hello`?",
            ],
        );
        assert_eq!(e.line_col, Some((6, 13)));
        let text = format!("{HEAD}[[trigger.http]]\nroute = \"/\"\ncomponent = \"x\"\n");
        assert_err(
            &text,
            Some("trigger.http[0].component"),
            &["no components are defined"],
        );
    }

    #[test]
    fn trigger_needs_route_and_component() {
        let text = format!(
            "{HEAD}[[trigger.http]]\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
        );
        assert_err(&text, Some("trigger.http[0]"), &["missing `route`"]);
        let text = format!("{HEAD}[[trigger.http]]\nroute = \"/\"\n");
        assert_err(&text, Some("trigger.http[0]"), &["missing `component`"]);
        assert_err(HEAD, Some("trigger"), &["no triggers"]);
        assert_err(
            &format!("trigger.http = []\n{HEAD}"),
            Some("trigger"),
            &["no triggers"],
        );
        assert_err(
            &format!("{HEAD}[trigger.http]\nroute = \"/\"\ncomponent = \"c\"\n"),
            Some("trigger.http"),
            &["`[[trigger.http]]`"],
        );
    }

    #[test]
    fn duplicate_routes_name_both_triggers() {
        let text = format!(
            "{HEAD}[[trigger.http]]\nroute = \"/a\"\ncomponent = \"one\"\n[[trigger.http]]\nid = \"second\"\nroute = \"/a/\"\ncomponent = \"two\"\n[component.one]\nsource = \"1.wasm\"\n[component.two]\nsource = \"2.wasm\"\n"
        );
        let e = assert_err(
            &text,
            Some("trigger.http[1].route"),
            &[
                "`/a/`",
                "trigger `second`",
                "`/a`",
                "trigger.http[0] (component `one`)",
            ],
        );
        assert_eq!(e.line_col, Some((9, 9)));
        for (a, b) in [("/x/...", "/x/*"), ("/u/:id", "/u/:name"), ("/", "/")] {
            let text = format!(
                "{HEAD}[[trigger.http]]\nroute = \"{a}\"\ncomponent = \"c\"\n[[trigger.http]]\nroute = \"{b}\"\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
            );
            assert_err(&text, Some("trigger.http[1].route"), &["duplicates"]);
        }
        // Private routes never clash; exact and wildcard are different routes.
        ok(&format!(
            "{HEAD}[[trigger.http]]\nroute = {{ private = true }}\ncomponent = \"c\"\n[[trigger.http]]\nroute = {{ private = true }}\ncomponent = \"c\"\n[[trigger.http]]\nroute = \"/a\"\ncomponent = \"c\"\n[[trigger.http]]\nroute = \"/a/...\"\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
        ));
    }

    #[test]
    fn routes_must_be_well_formed() {
        for bad in [
            "hello",
            "",
            "/a/.../b",
            "/.../x",
            "/a/*/b",
            "/:",
            "/:a/:a",
            "/:file.json",
        ] {
            let text = format!(
                "{HEAD}[[trigger.http]]\nroute = \"{bad}\"\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
            );
            assert_err(&text, Some("trigger.http[0].route"), &["invalid route"]);
        }
        let text = format!(
            "{HEAD}[[trigger.http]]\nroute = {{ private = false }}\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
        );
        assert_err(
            &text,
            Some("trigger.http[0].route"),
            &["{ private = true }"],
        );
        let text = format!(
            "{HEAD}[[trigger.http]]\nroute = 5\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
        );
        assert_err(&text, Some("trigger.http[0].route"), &["found an integer"]);
    }

    #[test]
    fn base_must_be_a_plain_absolute_path() {
        for bad in ["api", "/a//b", "/api/..."] {
            let text = format!(
                "{HEAD}[application.trigger.http]\nbase = \"{bad}\"\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
            );
            assert_err(&text, Some("application.trigger.http.base"), &[bad]);
        }
    }

    /// An app whose only trigger is the `[[trigger.kafka]]` entry `entry` (further
    /// entries may follow it), with components `orders` and `audit`.
    fn with_kafka_trigger(entry: &str) -> String {
        format!(
            "{HEAD}[[trigger.kafka]]\n{entry}[component.orders]\nsource = \"orders.wasm\"\n[component.audit]\nsource = \"audit.wasm\"\n"
        )
    }

    #[test]
    fn an_application_may_have_only_kafka_triggers() {
        let m = ok(&with_kafka_trigger(
            "component = \"orders\"\ntopics = [\"orders\"]\n",
        ));
        assert!(m.http_triggers.is_empty() && m.http_routes().is_empty());
        assert_eq!(
            m.kafka_triggers,
            vec![KafkaTrigger {
                id: None,
                component: "orders".into(),
                topics: vec!["orders".into()],
                group: "orders".into(),
            }]
        );
        assert_eq!(m.triggered_components(), BTreeSet::from(["orders"]));
        assert_err(
            HEAD,
            Some("trigger"),
            &["no triggers", "`[[trigger.http]]`", "`[[trigger.kafka]]`"],
        );
        assert_err(
            &format!("trigger.kafka = []\n{HEAD}"),
            Some("trigger"),
            &["no triggers"],
        );
        assert_err(
            &format!("{HEAD}[trigger.kafka]\ncomponent = \"c\"\ntopics = [\"t\"]\n"),
            Some("trigger.kafka"),
            &["`[[trigger.kafka]]`"],
        );
    }

    #[test]
    fn kafka_triggers_need_a_component_and_valid_topics() {
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "topics = [\"orders\"]\n",
                "trigger.kafka[0]",
                &["missing `component`"],
            ),
            (
                "component = \"orders\"\n",
                "trigger.kafka[0]",
                &["missing `topics`"],
            ),
            (
                "component = \"orders\"\ntopics = []\n",
                "trigger.kafka[0].topics",
                &["no topics"],
            ),
            (
                "component = \"orders\"\ntopics = \"orders\"\n",
                "trigger.kafka[0].topics",
                &["expected an array, found a string"],
            ),
            (
                "component = \"orders\"\ntopics = [1]\n",
                "trigger.kafka[0].topics[0]",
                &["expected a string"],
            ),
            (
                "component = \"orders\"\ntopics = [\"ok\", \"no spaces\"]\n",
                "trigger.kafka[0].topics[1]",
                &["invalid topic name `no spaces`"],
            ),
            (
                "component = \"orders\"\ntopics = [\"..\"]\n",
                "trigger.kafka[0].topics[0]",
                &["invalid topic name `..`"],
            ),
            (
                "component = \"orders\"\ntopics = [\"a\", \"b\", \"a\"]\n",
                "trigger.kafka[0].topics[2]",
                &["topic `a` is listed twice"],
            ),
            (
                "component = \"orders\"\ntopics = [\"a\"]\ngroup = \"\"\n",
                "trigger.kafka[0].group",
                &["the consumer group is empty"],
            ),
            (
                "component = \"orders\"\ntopics = [\"a\"]\ngroup = 5\n",
                "trigger.kafka[0].group",
                &["expected a string, found an integer"],
            ),
            (
                "id = 3\ncomponent = \"orders\"\ntopics = [\"a\"]\n",
                "trigger.kafka[0].id",
                &["expected a string"],
            ),
            (
                "component = \"order\"\ntopics = [\"a\"]\n",
                "trigger.kafka[0].component",
                &[
                    "no component `order`",
                    "defined: audit, orders",
                    "did you mean `orders`?",
                ],
            ),
            (
                "component = 5\ntopics = [\"a\"]\n",
                "trigger.kafka[0].component",
                &["expected a component id or an inline component table"],
            ),
            (
                "component = \"orders\"\ntopic = [\"a\"]\n",
                "trigger.kafka[0]",
                &["unknown key `topic`", "did you mean `topics`?"],
            ),
            (
                "component = \"orders\"\ntopics = [\"a\"]\nroute = \"/\"\n",
                "trigger.kafka[0]",
                &["unknown key `route`"],
            ),
            (
                "component = \"orders\"\ntopics = [\"a\"]\ncomponents = { x = \"orders\" }\n",
                "trigger.kafka[0].components",
                &["is not supported by estore"],
            ),
        ];
        for (entry, key, needles) in cases {
            assert_err(&with_kafka_trigger(entry), Some(key), needles);
        }
        let e = err(&with_kafka_trigger(
            "component = \"orders\"\ntopics = [\"ok\", \"no spaces\"]\n",
        ));
        assert_eq!(e.line_col, Some((6, 17)), "{e}");
        let long = "t".repeat(250);
        assert_err(
            &with_kafka_trigger(&format!("component = \"orders\"\ntopics = [\"{long}\"]\n")),
            Some("trigger.kafka[0].topics[0]"),
            &["invalid topic name"],
        );
    }

    #[test]
    fn one_group_consumes_a_topic_in_one_trigger_only() {
        let text = with_kafka_trigger(
            "component = \"orders\"\ntopics = [\"a\", \"b\"]\n[[trigger.kafka]]\nid = \"again\"\ncomponent = \"orders\"\ntopics = [\"c\", \"b\"]\n",
        );
        assert_err(
            &text,
            Some("trigger.kafka[1].topics[1]"),
            &[
                "topic `b` is already consumed by group `orders` in trigger.kafka[0] (component `orders`)",
                "give trigger `again` (trigger.kafka[1], component `orders`) another `group`",
            ],
        );
        let m = ok(&text.replace(
            "topics = [\"c\", \"b\"]",
            "topics = [\"c\", \"b\"]\ngroup = \"second\"",
        ));
        let groups: Vec<&str> = m.kafka_triggers.iter().map(|t| t.group.as_str()).collect();
        assert_eq!(groups, vec!["orders", "second"]);
        // A group written out is shared like any other.
        assert_err(
            &with_kafka_trigger(
                "component = \"orders\"\ntopics = [\"a\"]\ngroup = \"g\"\n[[trigger.kafka]]\ncomponent = \"audit\"\ntopics = [\"a\"]\ngroup = \"g\"\n",
            ),
            Some("trigger.kafka[1].topics[0]"),
            &["already consumed by group `g`"],
        );
        // Each component in its own group sees every message; one group may read
        // several topics through several triggers.
        ok(&with_kafka_trigger(
            "component = \"orders\"\ntopics = [\"a\"]\n[[trigger.kafka]]\ncomponent = \"audit\"\ntopics = [\"a\"]\n[[trigger.kafka]]\ncomponent = \"audit\"\ntopics = [\"b\"]\n",
        ));
    }

    #[test]
    fn kafka_inline_components_are_named_like_spin_does() {
        let text = format!(
            "{HEAD}[[trigger.http]]\nroute = \"/\"\ncomponent = {{ source = \"web.wasm\" }}\n[[trigger.kafka]]\ncomponent = {{ source = \"a.wasm\" }}\ntopics = [\"a\"]\n[[trigger.kafka]]\nid = \"audit\"\ncomponent = {{ source = \"b.wasm\" }}\ntopics = [\"b\"]\n[[trigger.kafka]]\ncomponent = {{ source = \"c.wasm\" }}\ntopics = [\"c\"]\n"
        );
        let m = ok(&text);
        assert_eq!(m.http_triggers[0].component, "http-trigger1-component");
        let names: Vec<(&str, &str)> = m
            .kafka_triggers
            .iter()
            .map(|t| (t.component.as_str(), t.group.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("kafka-trigger1-component", "kafka-trigger1-component"),
                ("audit-component", "audit-component"),
                ("kafka-trigger2-component", "kafka-trigger2-component"),
            ]
        );
        assert_eq!(
            m.components["audit-component"].source,
            Path::new("/srv/app/b.wasm")
        );
        assert_err(
            &text.replace(
                "{ source = \"b.wasm\" }",
                "{ source = \"b.wasm\", colour = 1 }",
            ),
            Some("trigger.kafka[1].component"),
            &["unknown key `colour`"],
        );
    }

    #[test]
    fn application_kafka_settings_are_positive_and_brokers_a_list() {
        let app = |settings: &str| {
            format!(
                "{}[application.trigger.kafka]\n{settings}",
                with_component("")
            )
        };
        let kafka = |settings: &str| ok(&app(settings)).application.kafka;
        assert_eq!(kafka(""), KafkaApplicationSettings::default());
        assert_eq!(
            kafka("brokers = \" a:9092 , b:9093\"\n").brokers.as_deref(),
            Some("a:9092,b:9093")
        );
        assert_eq!(
            kafka("brokers = [\"a:9092\", \"b:9093,c:9094\"]\n")
                .brokers
                .as_deref(),
            Some("a:9092,b:9093,c:9094")
        );
        assert_eq!(
            kafka(
                "max_attempts = 1\nconcurrency = 1\ninitial_backoff_ms = 50\nmax_backoff_ms = 50\n"
            ),
            KafkaApplicationSettings {
                brokers: None,
                max_attempts: Some(1),
                initial_backoff_ms: Some(50),
                max_backoff_ms: Some(50),
                concurrency: Some(1),
            }
        );
        let cases: &[(&str, &str, &[&str])] = &[
            ("brokers = \"\"", "brokers", &["no brokers", "host:port"]),
            ("brokers = []", "brokers", &["no brokers"]),
            (
                "brokers = \"a:1,,b:2\"",
                "brokers",
                &["an empty entry", "`a:1,,b:2`"],
            ),
            (
                "brokers = [\"a :1\"]",
                "brokers",
                &["invalid broker `a :1`"],
            ),
            (
                "brokers = 9092",
                "brokers",
                &["expected `\"host:port,host:port\"`", "found an integer"],
            ),
            ("brokers = [9092]", "brokers[0]", &["expected a string"]),
            (
                "max_attempts = 0",
                "max_attempts",
                &["must be a positive integer, not 0"],
            ),
            (
                "max_attempts = 4294967296",
                "max_attempts",
                &["4294967296 is too large"],
            ),
            (
                "concurrency = -2",
                "concurrency",
                &["must be a positive integer, not -2"],
            ),
            (
                "concurrency = \"8\"",
                "concurrency",
                &["expected a positive integer, found a string"],
            ),
            (
                "initial_backoff_ms = 0",
                "initial_backoff_ms",
                &["positive integer"],
            ),
            ("max_backoff_ms = 1.5", "max_backoff_ms", &["found a float"]),
            (
                "initial_backoff_ms = 500\nmax_backoff_ms = 100",
                "max_backoff_ms",
                &["100 is below `initial_backoff_ms` (500)"],
            ),
        ];
        for (settings, key, needles) in cases {
            assert_err(
                &app(&format!("{settings}\n")),
                Some(&format!("application.trigger.kafka.{key}")),
                needles,
            );
        }
        assert_err(
            &app("max_attempt = 3\n"),
            Some("application.trigger.kafka"),
            &["unknown key `max_attempt`", "did you mean `max_attempts`?"],
        );
        assert_err(
            &format!(
                "{}[application]\nname = \"x\"\ntrigger = {{ kafka = 5 }}\n",
                "spin_manifest_version = 2\n"
            ),
            Some("application.trigger.kafka"),
            &["expected a table, found an integer"],
        );
    }

    #[test]
    fn allowed_publish_topics_are_topic_names() {
        let m = ok(&with_component(
            "allowed_publish_topics = [\"orders\", \"a.b_c-1\"]\n",
        ));
        assert_eq!(
            m.components["hello"].allowed_publish_topics,
            vec!["orders", "a.b_c-1"]
        );
        ok(&with_component("allowed_publish_topics = []\n"));
        for (bad, key, why) in [
            ("[\"bad topic\"]", "[0]", "invalid topic name `bad topic`"),
            ("[\"ok\", \".\"]", "[1]", "invalid topic name `.`"),
            ("[\"a\", \"a\"]", "[1]", "topic `a` is listed twice"),
            ("[1]", "[0]", "expected a string"),
            ("\"orders\"", "", "expected an array"),
        ] {
            assert_err(
                &with_component(&format!("allowed_publish_topics = {bad}\n")),
                Some(&format!("component.hello.allowed_publish_topics{key}")),
                &[why],
            );
        }
    }

    #[test]
    fn allow_email_is_a_boolean() {
        assert!(ok(&with_component("allow_email = true\n")).components["hello"].allow_email);
        assert!(!ok(&with_component("allow_email = false\n")).components["hello"].allow_email);
        for bad in ["\"true\"", "1", "[]"] {
            assert_err(
                &with_component(&format!("allow_email = {bad}\n")),
                Some("component.hello.allow_email"),
                &["expected true or false"],
            );
        }
        let e = assert_err(&with_component("allow_emails = true\n"), Some("component.hello"), &["unknown key `allow_emails`"]);
        assert!(e.message.contains("did you mean `allow_email`?"), "{e}");
    }

    #[test]
    fn broker_lists_are_joined_with_commas() {
        assert_eq!(
            join_brokers(&["a:1", " b:2 ,c:3 "]),
            Ok("a:1,b:2,c:3".to_string())
        );
        assert_eq!(join_brokers(&["a"]), Ok("a".to_string()));
        for bad in [&[][..], &[""], &[" , "]] {
            assert!(
                join_brokers(bad).is_err_and(|e| e.starts_with("no brokers")),
                "{bad:?}"
            );
        }
        assert!(join_brokers(&["a:1,"]).is_err_and(|e| e.contains("an empty entry")));
        assert!(join_brokers(&["a:1", "b\t:2"]).is_err_and(|e| e.contains("invalid broker")));
    }

    #[test]
    fn component_ids_are_kebab_case() {
        for good in ["hello", "hello-world", "a1", "api-v2", "x-1y"] {
            assert_eq!(check_component_id(good), Ok(()), "{good}");
            ok(&format!(
                "{HEAD}[[trigger.http]]\nroute = \"/\"\ncomponent = \"{good}\"\n[component.{good}]\nsource = \"c.wasm\"\n"
            ));
        }
        for bad in [
            "Hello",
            "hello_world",
            "1st",
            "-a",
            "a-",
            "a--b",
            "a.b",
            "héllo",
            "HELLO",
        ] {
            let text = format!(
                "{HEAD}[[trigger.http]]\nroute = \"/\"\ncomponent = \"{bad}\"\n[component.\"{bad}\"]\nsource = \"c.wasm\"\n"
            );
            let e = err(&text);
            assert!(e.message.contains("invalid component id"), "{bad}: {e}");
            assert!(
                e.key
                    .as_deref()
                    .is_some_and(|k| k.starts_with("component.")),
                "{e}"
            );
        }
        assert!(
            err(&with_component("").replace("hello", "my_app"))
                .message
                .contains("not `_`")
        );
    }

    #[test]
    fn variable_names_follow_spins_rule() {
        for good in ["a", "abc", "a1b2", "a_1", "api_host"] {
            assert_eq!(check_variable_name(good), Ok(()), "{good}");
        }
        for bad in ["", "aX", "1bc", "_x", "x.y", "x_", "a__b", "x-y"] {
            assert!(check_variable_name(bad).is_err(), "{bad}");
        }
        let text = format!(
            "{HEAD}[variables]\nApiHost = {{ default = \"x\" }}\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
        );
        let e = assert_err(
            &text,
            Some("variables.ApiHost"),
            &["invalid variable name `ApiHost`"],
        );
        assert_eq!(e.line_col, Some((5, 1)));
        let e = err(&with_component("variables = { BadName = \"x\" }\n"));
        assert_eq!(e.key.as_deref(), Some("component.hello.variables.BadName"));
        assert!(e.message.contains("invalid variable name"), "{e}");
    }

    #[test]
    fn a_variable_is_either_required_or_has_a_default() {
        let app = |decl: &str| {
            format!(
                "{HEAD}[variables]\nv = {decl}\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
            )
        };
        assert_err(
            &app("{ required = true, default = \"x\" }"),
            Some("variables.v.default"),
            &["`required = true` and has a `default`"],
        );
        assert_err(
            &app("{ secret = true }"),
            Some("variables.v"),
            &["needs a `default` or `required = true`"],
        );
        assert_err(
            &app("\"just a string\""),
            Some("variables.v"),
            &["expected a table"],
        );
        assert_err(
            &app("{ required = \"yes\" }"),
            Some("variables.v.required"),
            &["true or false"],
        );
        ok(&app("{ required = false, default = \"\" }"));
    }

    #[test]
    fn component_variables_may_only_reference_declared_variables() {
        let text = format!(
            "{HEAD}[variables]\ngreeting = {{ default = \"hi\" }}\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\nvariables = {{ message = \"{{{{ greeting }}}} {{{{ target }}}}\" }}\n"
        );
        let e = assert_err(
            &text,
            Some("component.c.variables.message"),
            &[
                "component variable `message`",
                "application variable `target`",
                "not declared",
            ],
        );
        assert_eq!(e.line_col.map(|(l, _)| l), Some(11));
        assert_err(
            &with_component("variables = { m = \"{{ unclosed\" }\n"),
            Some("component.hello.variables.m"),
            &["unmatched `{{`"],
        );
        assert_err(
            &with_component("variables = { m = \"{{ not a name }}\" }\n"),
            Some("component.hello.variables.m"),
            &["does not name a variable"],
        );
        assert_err(
            &with_component("variables = { m = 3 }\n"),
            Some("component.hello.variables.m"),
            &["expected a string"],
        );
    }

    #[test]
    fn allowed_outbound_hosts_are_checked_where_they_stand() {
        let e = assert_err(
            &with_component(
                "allowed_outbound_hosts = [\"https://ok.example.com\", \"example.com\"]\n",
            ),
            Some("component.hello.allowed_outbound_hosts[1]"),
            &["invalid outbound host `example.com`", "no scheme"],
        );
        assert_eq!(e.line_col, Some((10, 53)));
        // Templates are checked once resolved, but their variables must exist.
        let text = format!(
            "{HEAD}[variables]\nhost = {{ default = \"x\" }}\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\nallowed_outbound_hosts = [\"https://{{{{ host }}}}:{{{{ port }}}}\"]\n"
        );
        assert_err(
            &text,
            Some("component.c.allowed_outbound_hosts[0]"),
            &["`port`", "not declared"],
        );
        ok(&text.replace(":{{ port }}", ""));
    }

    #[test]
    fn key_value_store_labels() {
        ok(&with_component(
            "key_value_stores = [\"default\", \"a_b-c9\"]\n",
        ));
        for bad in ["", "Default", "a b", "a.b"] {
            let e = err(&with_component(&format!(
                "key_value_stores = [\"{bad}\"]\n"
            )));
            assert_eq!(
                e.key.as_deref(),
                Some("component.hello.key_value_stores[0]"),
                "{e}"
            );
            assert!(e.message.contains("invalid label"), "{e}");
        }
        assert_err(
            &with_component("key_value_stores = \"default\"\n"),
            Some("component.hello.key_value_stores"),
            &["expected an array"],
        );
    }

    #[test]
    fn build_needs_a_command() {
        assert_err(
            &with_component("[component.hello.build]\nwatch = [\"src/*.rs\"]\n"),
            Some("component.hello.build"),
            &["missing `command`"],
        );
        assert_err(
            &with_component("[component.hello.build]\ncommand = []\n"),
            Some("component.hello.build.command"),
            &["empty build command"],
        );
        assert_err(
            &with_component("[component.hello.build]\ncommand = 1\n"),
            Some("component.hello.build.command"),
            &["found an integer"],
        );
        let m = ok(&with_component(
            "[component.hello.build]\ncommand = \"make\"\n",
        ));
        let build = m.components["hello"].build.clone().expect("build");
        assert_eq!((build.command.as_str(), build.workdir), ("make", None));
    }

    #[test]
    fn only_the_spin_http_executor_is_supported() {
        let app = |executor: &str| {
            format!(
                "{HEAD}[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\n{executor}\n[component.c]\nsource = \"c.wasm\"\n"
            )
        };
        ok(&app(""));
        ok(&app("executor = { type = \"spin\" }"));
        ok(&app("executor = { type = \"http\" }"));
        assert_err(
            &app("executor = { type = \"wagi\", argv = \"${SCRIPT_NAME}\" }"),
            Some("trigger.http[0].executor.type"),
            &["Wagi executor is not supported"],
        );
        assert_err(
            &app("executor = { type = \"cgi\" }"),
            Some("trigger.http[0].executor.type"),
            &["unknown executor type `cgi`"],
        );
        assert_err(
            &app("executor = { type = \"spin\", argv = \"x\" }"),
            Some("trigger.http[0].executor"),
            &["unknown key `argv`"],
        );
        assert_err(
            &app("executor = { }"),
            Some("trigger.http[0].executor"),
            &["missing `type`"],
        );
    }

    #[test]
    fn limits_must_be_positive() {
        for bad in ["0", "-5"] {
            assert_err(
                &with_component(&format!(
                    "[component.hello.limits]\nmax_memory_mb = {bad}\n"
                )),
                Some("component.hello.limits.max_memory_mb"),
                &["positive integer"],
            );
        }
        assert_err(
            &with_component("[component.hello.limits]\nrequest_timeout_ms = 1.5\n"),
            Some("component.hello.limits.request_timeout_ms"),
            &["positive integer", "float"],
        );
        assert_err(
            &with_component("[component.hello.limits]\nmax_request_body_bytes = 0\n"),
            Some("component.hello.limits.max_request_body_bytes"),
            &["positive integer"],
        );
    }

    #[test]
    fn a_route_may_have_its_own_timeout() {
        let text = format!(
            "{HEAD}[[trigger.http]]\nroute = \"/orders/...\"\ncomponent = \"orders\"\n\
             [[trigger.http]]\nroute = \"/orders/:id/events\"\ncomponent = \"orders\"\nrequest_timeout_ms = 300000\n\
             [component.orders]\nsource = \"orders.wasm\"\n"
        );
        let m = ok(&text);
        let timeouts: Vec<Option<u64>> = m.http_triggers.iter().map(|t| t.request_timeout_ms).collect();
        assert_eq!(timeouts, vec![None, Some(300000)]);

        let bad = text.replace("request_timeout_ms = 300000", "request_timeout_ms = 0");
        assert_err(&bad, Some("trigger.http[1].request_timeout_ms"), &["positive integer"]);
        let private = format!(
            "{HEAD}[[trigger.http]]\nroute = \"/a\"\ncomponent = \"a\"\n[[trigger.http]]\nroute = {{ private = true }}\ncomponent = \"b\"\nrequest_timeout_ms = 5000\n\
             [component.a]\nsource = \"a.wasm\"\n[component.b]\nsource = \"b.wasm\"\n"
        );
        let e = assert_err(
            &private,
            Some("trigger.http[1].request_timeout_ms"),
            &["a private route takes no requests of its own", "[component.b.limits]"],
        );
        assert_eq!(e.line_col, Some((10, 1)), "{e}");
    }

    #[test]
    fn unsupported_spin_features_say_so() {
        for (extra, key, what) in [
            (
                "sqlite_databases = [\"default\"]\n",
                "sqlite_databases",
                "SQLite",
            ),
            ("ai_models = [\"llama2-chat\"]\n", "ai_models", "AI"),
            (
                "dependencies = { \"a:b/c\" = \"1.0.0\" }\n",
                "dependencies",
                "dependencies",
            ),
            (
                "exclude_files = [\"secret/*\"]\n",
                "exclude_files",
                "excluding",
            ),
            (
                "allowed_http_hosts = [\"example.com\"]\n",
                "allowed_http_hosts",
                "allowed_outbound_hosts",
            ),
        ] {
            let e = assert_err(
                &with_component(extra),
                Some(&format!("component.hello.{key}")),
                &["is not supported by estore", what],
            );
            assert_eq!(e.line_col, Some((10, 1)), "{e}");
        }
        // Empty lists ask for nothing, so they are harmless.
        ok(&with_component(
            "sqlite_databases = []\nai_models = []\ndependencies_inherit_configuration = false\n",
        ));

        let remote = with_component("").replace(
            "source = \"hello.wasm\"",
            "source = { url = \"https://example.com/x.wasm\", digest = \"sha256:00\" }",
        );
        assert_err(
            &remote,
            Some("component.hello.source"),
            &["remote sources", "not supported by estore"],
        );
        let registry = with_component("").replace(
            "source = \"hello.wasm\"",
            "source = { registry = \"ttl.sh\", package = \"a:b\", version = \"1.0.0\" }",
        );
        assert_err(
            &registry,
            Some("component.hello.source"),
            &["registry sources", "not supported"],
        );

        assert_err(
            &format!("{HEAD}[[trigger.redis]]\nchannel = \"x\"\ncomponent = \"c\"\n"),
            Some("trigger.redis"),
            &["trigger type `redis` is not supported by estore"],
        );
        assert_err(
            &format!(
                "{}[application.trigger.redis]\naddress = \"redis://x\"\n",
                with_component("")
            ),
            Some("application.trigger.redis"),
            &["trigger type `redis` is not supported by estore"],
        );
        assert_err(
            &format!(
                "{HEAD}[[trigger.http]]\nroute = \"/\"\nstatic_response = {{ body = \"hi\" }}\n"
            ),
            Some("trigger.http[0].static_response"),
            &["not supported by estore", "static responses"],
        );
    }

    #[test]
    fn files_are_relative_patterns_or_mappings_to_absolute_paths() {
        let m = ok(&with_component(
            "files = [\"a.txt\", \"static/**\", { source = \"data\", destination = \"/var/data\" }]\n",
        ));
        assert_eq!(m.components["hello"].files.len(), 3);
        for (bad, key, why) in [
            ("\"/etc/passwd\"", "files[0]", "relative"),
            ("\"../secret\"", "files[0]", "relative"),
            ("\"[\"", "files[0]", "invalid glob"),
            (
                "{ source = \"data\", destination = \"data\" }",
                "files[0].destination",
                "absolute guest path",
            ),
            (
                "{ source = \"../data\", destination = \"/d\" }",
                "files[0].source",
                "relative",
            ),
            ("{ destination = \"/d\" }", "files[0]", "missing `source`"),
            ("3", "files[0]", "found an integer"),
        ] {
            assert_err(
                &with_component(&format!("files = [{bad}]\n")),
                Some(&format!("component.hello.{key}")),
                &[why],
            );
        }
    }

    #[test]
    fn inline_components_are_named_like_spin_does() {
        let text = format!(
            "{HEAD}[[trigger.http]]\nid = \"front\"\nroute = \"/a\"\ncomponent = {{ source = \"a.wasm\" }}\n[[trigger.http]]\nroute = \"/b\"\ncomponent = {{ source = \"b.wasm\" }}\n[[trigger.http]]\nid = \"Not_Kebab\"\nroute = \"/c\"\ncomponent = {{ source = \"c.wasm\" }}\n[[trigger.http]]\nroute = \"/d\"\ncomponent = \"front-component\"\n"
        );
        let m = ok(&text);
        let ids: Vec<&str> = m
            .http_triggers
            .iter()
            .map(|t| t.component.as_str())
            .collect();
        assert_eq!(
            ids,
            vec![
                "front-component",
                "http-trigger1-component",
                "inline-component1",
                "front-component"
            ]
        );
        assert_eq!(
            m.components["inline-component1"].source,
            Path::new("/srv/app/c.wasm")
        );
        let e = err(&format!(
            "{HEAD}[[trigger.http]]\nroute = \"/a\"\ncomponent = {{ source = \"a.wasm\", colour = 1 }}\n"
        ));
        assert_eq!(e.key.as_deref(), Some("trigger.http[0].component"), "{e}");
    }

    #[test]
    fn type_errors_name_the_key() {
        assert_err(
            "spin_manifest_version = 2\napplication = 5\n",
            Some("application"),
            &["expected a table, found an integer"],
        );
        assert_err(
            "spin_manifest_version = 2\n[application]\nversion = \"1\"\n",
            Some("application"),
            &["missing `name`"],
        );
        assert_err(
            "spin_manifest_version = 2\n[application]\nname = \"x\"\nauthors = [1]\n",
            Some("application.authors[0]"),
            &["expected a string"],
        );
        assert_err(
            &with_component("environment = { A = 1 }\n"),
            Some("component.hello.environment.A"),
            &["expected a string"],
        );
        assert_err(
            &with_component("environment = { \"A=B\" = \"1\" }\n"),
            Some("component.hello.environment.\"A=B\""),
            &["invalid environment variable name"],
        );
        assert_err(
            &with_component("").replace("source = \"hello.wasm\"", "source = \"\""),
            Some("component.hello.source"),
            &["empty"],
        );
        assert_err(
            &with_component("").replace("source = \"hello.wasm\"", "description = \"d\""),
            Some("component.hello"),
            &["missing `source`"],
        );
    }

    #[test]
    fn templates_render_and_list_references() {
        let lookup = |name: &str| match name {
            "greeting" => Some("Hello".to_string()),
            "target" => Some("world".to_string()),
            _ => None,
        };
        assert_eq!(
            render_template("{{ greeting }}, {{target}}!", lookup),
            Ok("Hello, world!".to_string())
        );
        assert_eq!(
            render_template("{{greeting}}{{ greeting }}", lookup),
            Ok("HelloHello".to_string())
        );
        assert_eq!(
            render_template("no templates } here }}", lookup),
            Ok("no templates } here }}".to_string())
        );
        assert_eq!(render_template("", lookup), Ok(String::new()));
        assert!(render_template("{{ missing }}", lookup).is_err_and(|e| e.contains("missing")));
        assert!(render_template("{{ greeting", lookup).is_err_and(|e| e.contains("unmatched")));
        assert_eq!(
            template_references("https://{{ host }}:{{port}}/{{ host }}"),
            vec!["host", "port"]
        );
        assert_eq!(template_references("plain"), Vec::<String>::new());
        assert_eq!(template_references("{{ a }} {{ b"), vec!["a"]);
    }

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir =
                std::env::temp_dir().join(format!("estore-manifest-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            if let Err(e) = std::fs::create_dir_all(&dir) {
                panic!("cannot create {}: {e}", dir.display());
            }
            TempDir(dir)
        }

        fn write(&self, rel: &str, contents: &str) {
            let path = self.0.join(rel);
            if let Some(parent) = path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            if let Err(e) = std::fs::write(&path, contents) {
                panic!("cannot write {}: {e}", path.display());
            }
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn load_reads_the_file_and_check_sources_finds_missing_files() {
        let tmp = TempDir::new("sources");
        let manifest = format!(
            "{HEAD}[[trigger.http]]\nroute = \"/\"\ncomponent = \"hello\"\n[component.hello]\nsource = \"target/hello.wasm\"\nfiles = [\"static/*.css\", \"notes.txt\", {{ source = \"data\", destination = \"/data\" }}]\n[component.hello.build]\ncommand = \"make\"\n[component.plain]\nsource = \"plain.wasm\"\n"
        );
        tmp.write("spin.toml", &manifest);
        let path = tmp.0.join("spin.toml");
        let m = match Manifest::load(&path) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(m.dir, tmp.0);

        let e = match m.check_sources() {
            Ok(()) => panic!("hello.wasm is missing"),
            Err(e) => e,
        };
        assert_eq!(e.file, path);
        assert_eq!(e.key.as_deref(), Some("component.hello.source"));
        assert_eq!(
            e.message,
            "file `target/hello.wasm` does not exist; run `estore build`?"
        );
        assert!(
            e.to_string()
                .contains("component.hello.source: file `target/hello.wasm` does not exist")
        );

        tmp.write("target/hello.wasm", "\0asm");
        let source_error = || m.check_sources().err().map(|e| e.to_string()).unwrap_or_default();
        let e = source_error();
        assert!(
            e.contains("component.hello.files[1]: `notes.txt` does not exist"),
            "{e}"
        );
        tmp.write("notes.txt", "n");
        let e = source_error();
        assert!(
            e.contains("component.hello.files[2].source: `data` does not exist"),
            "{e}"
        );
        let _ = std::fs::create_dir_all(tmp.0.join("data"));
        let e = source_error();
        assert!(e.contains("component.plain.source: file `plain.wasm` does not exist (and the component has no build command)"), "{e}");
        let _ = std::fs::create_dir_all(tmp.0.join("plain.wasm"));
        let e = source_error();
        assert!(e.contains("is a directory"), "{e}");
        let _ = std::fs::remove_dir_all(tmp.0.join("plain.wasm"));
        tmp.write("plain.wasm", "\0asm");
        // The glob `static/*.css` may match nothing.
        assert_eq!(m.check_sources(), Ok(()));

        let missing = tmp.0.join("nope.toml");
        let e = match Manifest::load(&missing) {
            Ok(_) => panic!("no such file"),
            Err(e) => e,
        };
        assert_eq!((e.file, e.key), (missing, None));
        assert!(
            e.message.starts_with("cannot read the manifest"),
            "{}",
            e.message
        );
    }

    #[test]
    fn never_panics_on_damaged_input() {
        // Every prefix of a rich manifest, and a few mangled variants: each must
        // parse or fail cleanly.
        let mut inputs: Vec<String> = FULL
            .char_indices()
            .map(|(i, _)| FULL[..i].to_string())
            .collect();
        inputs.push(FULL.replace('"', "'"));
        inputs.push(FULL.replace('=', "= ["));
        inputs.push(FULL.replace("[[", "["));
        inputs.push(FULL.replace('\n', "\r\n"));
        inputs.push("\u{feff}".to_string() + FULL);
        inputs.push("é = 1\n".repeat(3));
        for input in &inputs {
            let result = std::panic::catch_unwind(|| parse(input).map(|_| ()));
            assert!(result.is_ok(), "panicked on:\n{input}");
            if let Ok(Err(e)) = result {
                assert!(!e.to_string().contains('\n'), "{e}");
            }
        }
    }
}
