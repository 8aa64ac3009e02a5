//! The manifest as written: serde structs that mirror `spin.toml`, before any check.
//!
//! Contract: every field is optional and read as a [`Node`] (its position, and its
//! value or the kind of value found instead), so reading never fails on content;
//! the checker ([`crate::check`] and the modules per concern) turns these into the
//! public types. The declaration order of a struct's fields is the order in which an
//! unknown-key error lists the expected keys.

use serde::Deserialize;
use toml::Value;

use crate::de::{Entries, Node, StringOr, Table};

/// The document.
#[derive(Deserialize)]
pub(crate) struct RawManifest {
    pub spin_manifest_version: Option<Node<Value>>,
    pub application: Option<Node<Table<RawApplication>>>,
    pub variables: Option<Node<Entries<Table<RawVariable>>>>,
    pub trigger: Option<Node<Table<RawTriggers>>>,
    pub component: Option<Node<Entries<Table<RawComponent>>>>,
}

/// `[application]`.
#[derive(Deserialize)]
pub(crate) struct RawApplication {
    pub name: Option<Node<String>>,
    pub version: Option<Node<String>>,
    pub description: Option<Node<String>>,
    pub authors: Option<Node<Strings>>,
    /// Spin's deployment-compatibility list; nothing for estore to do.
    pub targets: Option<Node<Vec<Node<Value>>>>,
    /// Settings for other tools; Spin ignores them too.
    pub tool: Option<Node<Entries<Value>>>,
    pub trigger: Option<Node<Table<RawApplicationTriggers>>>,
}

/// `[application.trigger]`: a table per trigger type.
#[derive(Deserialize)]
pub(crate) struct RawApplicationTriggers {
    pub http: Option<Node<Table<RawHttpSettings>>>,
    pub kafka: Option<Node<Table<RawKafkaSettings>>>,
}

/// `[application.trigger.http]`.
#[derive(Deserialize)]
pub(crate) struct RawHttpSettings {
    pub base: Option<Node<String>>,
}

/// `[application.trigger.kafka]`.
#[derive(Deserialize)]
pub(crate) struct RawKafkaSettings {
    pub brokers: Option<Node<StringOr<Strings>>>,
    pub max_attempts: Option<Node<i64>>,
    pub initial_backoff_ms: Option<Node<i64>>,
    pub max_backoff_ms: Option<Node<i64>>,
    pub concurrency: Option<Node<i64>>,
}

/// An entry of `[variables]`.
#[derive(Deserialize)]
pub(crate) struct RawVariable {
    pub default: Option<Node<String>>,
    pub required: Option<Node<bool>>,
    pub secret: Option<Node<bool>>,
    pub description: Option<Node<String>>,
}

/// `[trigger]`: an array of tables per trigger type.
#[derive(Deserialize)]
pub(crate) struct RawTriggers {
    pub http: Option<Node<Vec<Node<Table<RawHttpTrigger>>>>>,
    pub kafka: Option<Node<Vec<Node<Table<RawKafkaTrigger>>>>>,
}

/// A `[[trigger.http]]` entry.
#[derive(Deserialize)]
pub(crate) struct RawHttpTrigger {
    pub id: Option<Node<String>>,
    pub route: Option<Node<StringOr<Table<RawPrivateRoute>>>>,
    pub component: Option<Node<ComponentRef>>,
    pub executor: Option<Node<Table<RawExecutor>>>,
    pub request_timeout_ms: Option<Node<i64>>,
}

/// `route = { private = true }`.
#[derive(Deserialize)]
pub(crate) struct RawPrivateRoute {
    pub private: Option<Node<bool>>,
}

/// `executor = { type = "spin" }`.
#[derive(Deserialize)]
pub(crate) struct RawExecutor {
    #[serde(rename = "type")]
    pub kind: Option<Node<String>>,
}

/// A `[[trigger.kafka]]` entry.
#[derive(Deserialize)]
pub(crate) struct RawKafkaTrigger {
    pub id: Option<Node<String>>,
    pub component: Option<Node<ComponentRef>>,
    pub topics: Option<Node<Strings>>,
    pub group: Option<Node<String>>,
}

/// A trigger's `component`: the id of a component, or an inline component.
pub(crate) type ComponentRef = StringOr<Table<RawComponent>>;

/// An array of strings.
pub(crate) type Strings = Vec<Node<String>>;

/// A `[component.<id>]` table, or an inline component.
#[derive(Deserialize)]
pub(crate) struct RawComponent {
    /// A path; a table is a remote or registry source, which estore refuses.
    pub source: Option<Node<StringOr<Entries<Value>>>>,
    pub description: Option<Node<String>>,
    pub variables: Option<Node<Entries<String>>>,
    pub environment: Option<Node<Entries<String>>>,
    pub files: Option<Node<Vec<Node<FileEntry>>>>,
    pub allowed_outbound_hosts: Option<Node<Strings>>,
    pub allowed_publish_topics: Option<Node<Strings>>,
    pub allow_email: Option<Node<bool>>,
    pub allow_operations: Option<Node<bool>>,
    pub key_value_stores: Option<Node<Strings>>,
    pub sql_databases: Option<Node<Strings>>,
    pub sqlite_databases: Option<Node<Strings>>,
    pub sql_migrations: Option<Node<String>>,
    pub build: Option<Node<Table<RawBuild>>>,
    pub limits: Option<Node<Table<RawLimits>>>,
    /// Settings for other tools, as in `[application]`.
    pub tool: Option<Node<Entries<Value>>>,
}

/// An entry of `files`: a pattern, or a mapping.
pub(crate) type FileEntry = StringOr<Table<RawFileMapping>>;

/// `files = [{ source = "...", destination = "/..." }]`.
#[derive(Deserialize)]
pub(crate) struct RawFileMapping {
    pub source: Option<Node<String>>,
    pub destination: Option<Node<String>>,
}

/// `[component.<id>.build]`.
#[derive(Deserialize)]
pub(crate) struct RawBuild {
    pub command: Option<Node<StringOr<Strings>>>,
    pub workdir: Option<Node<String>>,
    pub watch: Option<Node<Strings>>,
}

/// `[component.<id>.limits]`.
#[derive(Deserialize)]
pub(crate) struct RawLimits {
    pub request_timeout_ms: Option<Node<i64>>,
    pub max_memory_mb: Option<Node<i64>>,
    pub max_request_body_bytes: Option<Node<i64>>,
    pub max_instance_reuse_count: Option<Node<i64>>,
    pub max_instance_concurrent_reuse_count: Option<Node<i64>>,
    pub idle_instance_timeout_ms: Option<Node<i64>>,
}
