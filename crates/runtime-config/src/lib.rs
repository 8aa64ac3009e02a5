//! `runtime-config.toml`: the operator's half of the configuration.
//!
//! The manifest says what an application needs (a key-value store called `cache`);
//! the runtime config says where this host gets it from (which file), and how hard the
//! host may be pushed (limits). It is Spin's runtime config file, extended with the
//! sections this platform adds; unknown sections are an error, so a typo does not
//! silently fall back to a default.

use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

pub mod bus;

use bus::{BusConfig, DEFAULT_RETENTION, EmbeddedConfig, KafkaConfig};
use estore_manifest::{Manifest, join_brokers};

/// Defaults chosen so a request that misbehaves is stopped long before it hurts its
/// neighbours, while a normal request (a few database calls) never comes close.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_MEMORY_MB: u64 = 128;
pub const DEFAULT_MAX_INSTANCES: u32 = 1000;
/// The store's requests are JSON of a few kilobytes; 1 MiB leaves room for any form
/// while a client cannot make the host hold more than that per connection.
pub const DEFAULT_MAX_REQUEST_BODY_BYTES: u64 = 1 << 20;
/// A WASI 0.3 instance's reuse, as Spin 4 and `wasmtime serve` default it: 128
/// requests in all, 16 at once, dropped after 1 s idle.
pub const DEFAULT_MAX_INSTANCE_REUSE_COUNT: u64 = 128;
pub const DEFAULT_MAX_INSTANCE_CONCURRENT_REUSE_COUNT: u64 = 16;
pub const DEFAULT_IDLE_INSTANCE_TIMEOUT: Duration = Duration::from_secs(1);
/// A component may take a quarter of the pool: a flood on up to three components at
/// once still leaves instances for every other one (and for message handlers).
const DEFAULT_INSTANCE_SHARE: u32 = 4;

/// Server defaults: a client gets ample time for a request's head (10 s) and a 1 MiB
/// body (30 s, about 35 kB/s), and an idle keep-alive connection is kept 30 s, so one
/// that dawdles holds only its connection, never an instance, and not for long. Open
/// connections are capped well above what a shop serves at once and below common
/// open-file limits (each connection is a file descriptor).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_CONNECTIONS: u32 = 4096;

/// Delivery defaults: a failing message gets five tries, 200 ms apart at first and
/// never more than 10 s, before it is dead-lettered, so a broken handler holds its
/// partition for seconds, not minutes; 64 messages at once keep a small host busy
/// without letting a burst take all its instances.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(200);
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(10);
pub const DEFAULT_CONCURRENCY: usize = 64;
pub const DEFAULT_PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
/// Topics the host creates: a few partitions so one slow key does not hold back
/// the others; one replica, which suits a single broker (production sets more).
pub const DEFAULT_PARTITIONS: u32 = 4;
pub const DEFAULT_REPLICATION_FACTOR: u16 = 1;

/// Environment variable overriding `[messaging] brokers`.
pub const BROKERS_ENV: &str = "ESTORE_KAFKA_BROKERS";

/// librdkafka properties the host sets itself: overriding them would break what the
/// bus promises (where it connects, which group, committing only handled messages).
const RESERVED_KAFKA_PROPERTIES: &[(&str, &str)] = &[
    ("bootstrap.servers", "set `messaging.brokers` instead"),
    ("group.id", "each Kafka trigger's `group` in the manifest sets it"),
    ("enable.auto.commit", "the trigger commits a message only once it has been handled"),
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    #[serde(skip)]
    pub path: Option<PathBuf>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub key_value_store: BTreeMap<String, KeyValueStoreConfig>,
    /// `[key_value]`: the quota of every key-value store that does not set its own.
    #[serde(default)]
    pub key_value: KeyValueQuota,
    #[serde(default)]
    pub sql: SqlConfig,
    #[serde(default)]
    pub messaging: MessagingConfig,
    /// `[email]`: read by the e-mail capability ([`RuntimeConfig::section`]).
    #[serde(default)]
    pub email: Section,
    /// The file's text, for the sections capabilities read themselves.
    #[serde(skip)]
    text: String,
}

/// A section a capability reads and checks for itself ([`RuntimeConfig::section`]):
/// the file only names it, so that a misspelt section is still refused here.
#[derive(Debug, Default)]
pub struct Section;

impl<'de> Deserialize<'de> for Section {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Section, D::Error> {
        IgnoredAny::deserialize(deserializer).map(|_| Section)
    }
}

/// Deserializes the value of one key of a table, skipping the others: a section read
/// from the whole file, so its errors keep their line and column.
struct Pick<'a, T> {
    key: &'a str,
    section: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Pick<'_, T> {
    type Value = Option<T>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<T>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Pick<'_, T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a table")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<T>, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == self.key {
                found = Some(map.next_value::<T>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// A TOML error as `file:line:col: message`.
fn toml_error(path: &Path, text: &str, error: &toml::de::Error) -> anyhow::Error {
    let at = error
        .span()
        .and_then(|s| estore_manifest::line_col(text, s.start))
        .map(|(l, c)| format!(":{l}:{c}"))
        .unwrap_or_default();
    anyhow::anyhow!("{}{at}: {}", path.display(), error.message())
}

/// `[sql]`: where components' databases live, and the limits of one call.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlConfig {
    #[serde(default)]
    pub backend: SqlBackend,
    /// PostgreSQL connection URL of a role that may create roles and schemas.
    /// `ESTORE_SQL_URL` overrides it.
    pub url: Option<String>,
    /// Connections per component database.
    pub max_connections: Option<u32>,
    pub statement_timeout_ms: Option<u64>,
    /// Rows one query may return.
    pub max_rows: Option<u64>,
    /// Bytes of values one query may return.
    pub max_result_bytes: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqlBackend {
    #[default]
    Sqlite,
    Postgres,
}

/// `[messaging]`: the event bus the host runs on, and how the Kafka trigger delivers.
/// Each delivery setting overrides the manifest's `[application.trigger.kafka]`; see
/// [`RuntimeConfig::messaging`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagingConfig {
    #[serde(default)]
    pub backend: MessagingBackend,
    /// Kafka's bootstrap servers, `"host:port,host:port"` or an array of them (see
    /// [`join_brokers`]). `ESTORE_KAFKA_BROKERS` overrides it.
    #[serde(default, deserialize_with = "brokers")]
    pub brokers: Option<String>,
    /// Partitions of a topic the host creates.
    pub partitions: Option<u32>,
    /// Replication factor of a topic the host creates (Kafka only).
    pub replication_factor: Option<u16>,
    /// Deliveries of one message before it is dead-lettered.
    pub max_attempts: Option<u32>,
    pub initial_backoff_ms: Option<u64>,
    pub max_backoff_ms: Option<u64>,
    /// Messages handled at once across all partitions of all Kafka triggers.
    pub concurrency: Option<u32>,
    /// How long publishing waits for the bus to take a message.
    pub publish_timeout_ms: Option<u64>,
    /// `[messaging.kafka_properties]`: extra librdkafka properties
    /// (`security.protocol`, `sasl.*`, ...), passed as they are.
    #[serde(default)]
    pub kafka_properties: BTreeMap<String, String>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessagingBackend {
    /// One SQLite file in the state dir; nothing to start.
    #[default]
    Embedded,
    Kafka,
}

/// `brokers` as a string or an array of strings, joined as the manifest joins them.
fn brokers<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    use serde::de::Error;
    const EXPECTED: &str = "expected `\"host:port,host:port\"` or an array of `\"host:port\"`";
    let entries = match toml::Value::deserialize(deserializer)? {
        toml::Value::String(list) => vec![list],
        toml::Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                toml::Value::String(broker) => Ok(broker),
                _ => Err(D::Error::custom(EXPECTED)),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(D::Error::custom(EXPECTED)),
    };
    join_brokers(&entries).map(Some).map_err(D::Error::custom)
}

/// How the Kafka trigger delivers messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// Deliveries of one message before it is dead-lettered (at least 1).
    pub max_attempts: u32,
    /// The wait before the first redelivery; it grows up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Never below `initial_backoff`.
    pub max_backoff: Duration,
    /// Messages handled at once across all partitions of all Kafka triggers.
    pub concurrency: usize,
    /// How long publishing waits for the bus to take a message.
    pub publish_timeout: Duration,
}

/// Host-wide defaults; a component's `[component.<id>.limits]` overrides them (the
/// instance counts are the operator's alone).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub request_timeout_ms: Option<u64>,
    pub max_memory_mb: Option<u64>,
    /// The largest request body a component is handed.
    pub max_request_body_bytes: Option<u64>,
    /// Instances alive at once across all components (the pooling allocator's size).
    pub max_instances: Option<u32>,
    /// Instances one component may have serving requests at once; at most
    /// `max_instances`.
    pub max_instances_per_component: Option<u32>,
    /// A WASI 0.3 instance's reuse (Spin's `--max-instance-reuse-count`,
    /// `--max-instance-concurrent-reuse-count`, `--idle-instance-timeout`); a
    /// component's own limits override them. WASI 0.2 instances serve one request.
    pub max_instance_reuse_count: Option<u64>,
    pub max_instance_concurrent_reuse_count: Option<u64>,
    pub idle_instance_timeout_ms: Option<u64>,
}

/// `[http]`: how long the HTTP server waits for a client, and how many it serves at once.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub header_read_timeout_ms: Option<u64>,
    pub body_read_timeout_ms: Option<u64>,
    pub keep_alive_timeout_ms: Option<u64>,
    pub max_connections: Option<u32>,
}

/// What the HTTP server allows a client, resolved from `[http]` and the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// From a connection's start, or the first byte of its next request, until that
    /// request's head is complete.
    pub header_read_timeout: Duration,
    /// From a request's head until its whole body has arrived.
    pub body_read_timeout: Duration,
    /// How long a connection may wait for its next request.
    pub keep_alive_timeout: Duration,
    pub max_connections: usize,
}

/// `[key_value_store.<label>]`, as in Spin, plus the store's own quota. Only the
/// embedded SQLite backend (`spin`) exists so far.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, tag = "type", rename_all = "snake_case")]
pub enum KeyValueStoreConfig {
    Spin { path: Option<PathBuf>, max_entries: Option<NonZeroU64>, max_bytes: Option<NonZeroU64> },
}

/// How much one key-value store may hold, so that a component writing distinct keys
/// in a loop fills its quota, not the disk. A store's bytes are its keys' and values'
/// lengths. Zero is refused when the file is read (`NonZeroU64`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyValueQuota {
    pub max_entries: Option<NonZeroU64>,
    pub max_bytes: Option<NonZeroU64>,
}

/// The quota of a store that sets none: generous for caches and small state, far
/// below what fills a disk.
pub const DEFAULT_KEY_VALUE_MAX_ENTRIES: u64 = 100_000;
pub const DEFAULT_KEY_VALUE_MAX_BYTES: u64 = 64 * 1024 * 1024;

impl RuntimeConfig {
    /// Reads the file, resolving relative paths in it against the file's directory.
    pub fn load(path: &Path) -> anyhow::Result<RuntimeConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read runtime config {}", path.display()))?;
        RuntimeConfig::parse(path, &text)
    }

    /// Parses and validates the text of the file at `path`.
    pub fn parse(path: &Path, text: &str) -> anyhow::Result<RuntimeConfig> {
        let mut config: RuntimeConfig = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
        config.text = text.to_owned();
        let dir = path.parent().unwrap_or(Path::new("."));
        for store in config.key_value_store.values_mut() {
            let KeyValueStoreConfig::Spin { path: Some(p), .. } = store else { continue };
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
        config.validate(path)?;
        config.path = Some(path.to_owned());
        Ok(config)
    }

    fn validate(&self, path: &Path) -> anyhow::Result<()> {
        let limits = [
            ("limits.request_timeout_ms", self.limits.request_timeout_ms),
            ("limits.max_memory_mb", self.limits.max_memory_mb),
            ("limits.max_request_body_bytes", self.limits.max_request_body_bytes),
            ("limits.max_instances", self.limits.max_instances.map(u64::from)),
            ("limits.max_instances_per_component", self.limits.max_instances_per_component.map(u64::from)),
            ("limits.max_instance_reuse_count", self.limits.max_instance_reuse_count),
            ("limits.max_instance_concurrent_reuse_count", self.limits.max_instance_concurrent_reuse_count),
            ("limits.idle_instance_timeout_ms", self.limits.idle_instance_timeout_ms),
            ("http.header_read_timeout_ms", self.http.header_read_timeout_ms),
            ("http.body_read_timeout_ms", self.http.body_read_timeout_ms),
            ("http.keep_alive_timeout_ms", self.http.keep_alive_timeout_ms),
            ("http.max_connections", self.http.max_connections.map(u64::from)),
            ("sql.max_connections", self.sql.max_connections.map(u64::from)),
            ("sql.statement_timeout_ms", self.sql.statement_timeout_ms),
            ("sql.max_rows", self.sql.max_rows),
            ("sql.max_result_bytes", self.sql.max_result_bytes),
            ("messaging.partitions", self.messaging.partitions.map(u64::from)),
            ("messaging.replication_factor", self.messaging.replication_factor.map(u64::from)),
            ("messaging.max_attempts", self.messaging.max_attempts.map(u64::from)),
            ("messaging.initial_backoff_ms", self.messaging.initial_backoff_ms),
            ("messaging.max_backoff_ms", self.messaging.max_backoff_ms),
            ("messaging.concurrency", self.messaging.concurrency.map(u64::from)),
            ("messaging.publish_timeout_ms", self.messaging.publish_timeout_ms),
        ];
        for (key, value) in limits {
            if value == Some(0) {
                bail!("{}: {key}: must be greater than zero", path.display());
            }
        }
        if let Some(share) = self.limits.max_instances_per_component
            && share > self.max_instances()
        {
            bail!(
                "{}: limits.max_instances_per_component: {share} is above limits.max_instances ({}): one component could take every instance",
                path.display(),
                self.max_instances()
            );
        }
        if let (Some(initial), Some(max)) = (self.messaging.initial_backoff_ms, self.messaging.max_backoff_ms)
            && max < initial
        {
            bail!(
                "{}: messaging.max_backoff_ms: {max} is below messaging.initial_backoff_ms ({initial}): the backoff only grows",
                path.display()
            );
        }
        for (property, why) in RESERVED_KAFKA_PROPERTIES {
            if self.messaging.kafka_properties.contains_key(*property) {
                bail!(
                    "{}: messaging.kafka_properties.\"{property}\": the host sets this property: {why}",
                    path.display()
                );
            }
        }
        Ok(())
    }

    /// Section `key` (`[email]`), read by the capability it belongs to into its own
    /// type; the type's default when the file has none. Errors name the file, line and
    /// column as the file's own do.
    pub fn section<T: DeserializeOwned + Default>(&self, key: &str) -> anyhow::Result<T> {
        let Some(path) = &self.path else { return Ok(T::default()) };
        let picked = Pick { key, section: PhantomData }.deserialize(toml::Deserializer::new(&self.text));
        Ok(picked.map_err(|e| toml_error(path, &self.text, &e))?.unwrap_or_default())
    }

    pub fn request_timeout(&self) -> Duration {
        self.limits.request_timeout_ms.map(Duration::from_millis).unwrap_or(DEFAULT_REQUEST_TIMEOUT)
    }

    pub fn max_memory_mb(&self) -> u64 {
        self.limits.max_memory_mb.unwrap_or(DEFAULT_MAX_MEMORY_MB)
    }

    /// Requests one WASI 0.3 instance serves in all, and at once.
    pub fn instance_reuse(&self) -> (u64, u64) {
        (
            self.limits.max_instance_reuse_count.unwrap_or(DEFAULT_MAX_INSTANCE_REUSE_COUNT),
            self.limits.max_instance_concurrent_reuse_count.unwrap_or(DEFAULT_MAX_INSTANCE_CONCURRENT_REUSE_COUNT),
        )
    }

    pub fn idle_instance_timeout(&self) -> Duration {
        self.limits.idle_instance_timeout_ms.map(Duration::from_millis).unwrap_or(DEFAULT_IDLE_INSTANCE_TIMEOUT)
    }

    pub fn max_instances(&self) -> u32 {
        self.limits.max_instances.unwrap_or(DEFAULT_MAX_INSTANCES)
    }

    /// Store `label`'s quota (entries, bytes): its own section's, else `[key_value]`'s,
    /// else the defaults.
    pub fn key_value_quota(&self, label: &str) -> (u64, u64) {
        let own = match self.key_value_store.get(label) {
            Some(KeyValueStoreConfig::Spin { max_entries, max_bytes, .. }) => {
                KeyValueQuota { max_entries: *max_entries, max_bytes: *max_bytes }
            }
            None => KeyValueQuota::default(),
        };
        let pick = |own: Option<NonZeroU64>, all: Option<NonZeroU64>, default| own.or(all).map_or(default, NonZeroU64::get);
        (
            pick(own.max_entries, self.key_value.max_entries, DEFAULT_KEY_VALUE_MAX_ENTRIES),
            pick(own.max_bytes, self.key_value.max_bytes, DEFAULT_KEY_VALUE_MAX_BYTES),
        )
    }

    pub fn max_instances_per_component(&self) -> u32 {
        self.limits.max_instances_per_component.unwrap_or_else(|| (self.max_instances() / DEFAULT_INSTANCE_SHARE).max(1))
    }

    pub fn max_request_body_bytes(&self) -> u64 {
        self.limits.max_request_body_bytes.unwrap_or(DEFAULT_MAX_REQUEST_BODY_BYTES)
    }

    pub fn server_limits(&self) -> ServerLimits {
        let http = &self.http;
        let millis = |ms: Option<u64>, default| ms.map_or(default, Duration::from_millis);
        ServerLimits {
            header_read_timeout: millis(http.header_read_timeout_ms, DEFAULT_HEADER_READ_TIMEOUT),
            body_read_timeout: millis(http.body_read_timeout_ms, DEFAULT_BODY_READ_TIMEOUT),
            keep_alive_timeout: millis(http.keep_alive_timeout_ms, DEFAULT_KEEP_ALIVE_TIMEOUT),
            max_connections: usize::try_from(http.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS)).unwrap_or(usize::MAX),
        }
    }

    /// The bus and delivery policy: the runtime config wins over the manifest's
    /// `[application.trigger.kafka]`, which wins over the defaults.
    ///
    /// The backend is the operator's choice alone (`[messaging] backend`, embedded by
    /// default): brokers written in the manifest never switch the host to Kafka. With
    /// `backend = "kafka"` the brokers come from `ESTORE_KAFKA_BROKERS` (when set and
    /// not empty), else `[messaging] brokers`, else the manifest's `brokers`, and
    /// having none is an error. Partitions, replication factor, Kafka properties and
    /// the publish timeout are the operator's alone too.
    pub fn messaging(&self, manifest: &Manifest) -> anyhow::Result<(BusConfig, DeliveryPolicy)> {
        let env_brokers = std::env::var(BROKERS_ENV).ok();
        Ok((self.bus(manifest, env_brokers.as_deref())?, self.delivery(manifest)?))
    }

    /// The bus, given the value of `ESTORE_KAFKA_BROKERS`.
    fn bus(&self, manifest: &Manifest, env_brokers: Option<&str>) -> anyhow::Result<BusConfig> {
        let config = &self.messaging;
        let partitions = config.partitions.unwrap_or(DEFAULT_PARTITIONS);
        if config.backend == MessagingBackend::Embedded {
            return Ok(BusConfig::Embedded(EmbeddedConfig { partitions, retention: DEFAULT_RETENTION }));
        }
        let brokers = match env_brokers.filter(|b| !b.trim().is_empty()) {
            Some(list) => Some(join_brokers(&[list]).map_err(|e| anyhow!("{BROKERS_ENV}: {e}"))?),
            None => config.brokers.clone().or_else(|| manifest.application.kafka.brokers.clone()),
        };
        let brokers = brokers.with_context(|| {
            format!(
                "{}: messaging.backend = \"kafka\" needs brokers: set `brokers` in [messaging], or {BROKERS_ENV}, or `brokers` in [application.trigger.kafka] of {}",
                self.file(),
                manifest.path.display()
            )
        })?;
        Ok(BusConfig::Kafka(KafkaConfig {
            brokers,
            partitions,
            replication_factor: config.replication_factor.unwrap_or(DEFAULT_REPLICATION_FACTOR),
            properties: config.kafka_properties.clone(),
        }))
    }

    fn delivery(&self, manifest: &Manifest) -> anyhow::Result<DeliveryPolicy> {
        let (ours, app) = (&self.messaging, &manifest.application.kafka);
        let initial_backoff =
            ours.initial_backoff_ms.or(app.initial_backoff_ms).map_or(DEFAULT_INITIAL_BACKOFF, Duration::from_millis);
        let max_backoff = match ours.max_backoff_ms.or(app.max_backoff_ms) {
            Some(ms) => Duration::from_millis(ms),
            // Set nowhere: the default, unless the initial backoff asks for more.
            None => DEFAULT_MAX_BACKOFF.max(initial_backoff),
        };
        if max_backoff < initial_backoff {
            bail!(
                "the max backoff ({} ms) is below the initial backoff ({} ms): check `max_backoff_ms` and `initial_backoff_ms` in [messaging] of {} and in [application.trigger.kafka] of {}",
                max_backoff.as_millis(),
                initial_backoff.as_millis(),
                self.file(),
                manifest.path.display()
            );
        }
        Ok(DeliveryPolicy {
            max_attempts: ours.max_attempts.or(app.max_attempts).unwrap_or(DEFAULT_MAX_ATTEMPTS),
            initial_backoff,
            max_backoff,
            concurrency: ours
                .concurrency
                .or(app.concurrency)
                .map_or(DEFAULT_CONCURRENCY, |n| usize::try_from(n).unwrap_or(usize::MAX)),
            publish_timeout: ours.publish_timeout_ms.map_or(DEFAULT_PUBLISH_TIMEOUT, Duration::from_millis),
        })
    }

    /// The file, for errors about values that are not checked when it is loaded.
    pub fn file(&self) -> String {
        match &self.path {
            Some(path) => path.display().to_string(),
            None => "the runtime config (none given)".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "/etc/estore/runtime-config.toml";

    fn config(text: &str) -> RuntimeConfig {
        match RuntimeConfig::parse(Path::new(FILE), text) {
            Ok(config) => config,
            Err(e) => panic!("should parse, got: {e:#}"),
        }
    }

    fn config_error(text: &str) -> String {
        match RuntimeConfig::parse(Path::new(FILE), text) {
            Ok(config) => panic!("should fail, got: {config:?}"),
            Err(e) => format!("{e:#}"),
        }
    }

    /// A manifest with one HTTP trigger, plus `kafka` as its `[application.trigger.kafka]`.
    fn manifest(kafka: &str) -> Manifest {
        let text = format!(
            "spin_manifest_version = 2\n[application]\nname = \"app\"\n[application.trigger.kafka]\n{kafka}[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n"
        );
        match Manifest::parse(Path::new("/srv/app/spin.toml"), &text) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }

    fn kafka_brokers(bus: anyhow::Result<BusConfig>) -> String {
        match bus {
            Ok(BusConfig::Kafka(kafka)) => kafka.brokers,
            other => panic!("expected the Kafka bus, got {other:?}"),
        }
    }

    const DEFAULT_POLICY: DeliveryPolicy = DeliveryPolicy {
        max_attempts: 5,
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(10),
        concurrency: 64,
        publish_timeout: Duration::from_secs(10),
    };

    #[test]
    fn messaging_defaults_to_the_embedded_bus_and_default_policy() {
        let (bus, policy) = match RuntimeConfig::default().messaging(&manifest("")) {
            Ok(resolved) => resolved,
            Err(e) => panic!("{e:#}"),
        };
        assert_eq!(bus, BusConfig::Embedded(EmbeddedConfig { partitions: 4, retention: DEFAULT_RETENTION }));
        assert_eq!(policy, DEFAULT_POLICY);
    }

    #[test]
    fn delivery_settings_come_from_the_runtime_config_then_the_manifest() {
        let app = manifest("max_attempts = 3\ninitial_backoff_ms = 100\nmax_backoff_ms = 1000\nconcurrency = 8\n");
        let from_manifest = RuntimeConfig::default().delivery(&app).ok();
        assert_eq!(
            from_manifest,
            Some(DeliveryPolicy {
                max_attempts: 3,
                initial_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(1),
                concurrency: 8,
                publish_timeout: Duration::from_secs(10),
            })
        );
        let ours = config("[messaging]\nmax_attempts = 7\nconcurrency = 2\npublish_timeout_ms = 500\n");
        assert_eq!(
            ours.delivery(&app).ok(),
            Some(DeliveryPolicy {
                max_attempts: 7,
                initial_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(1),
                concurrency: 2,
                publish_timeout: Duration::from_millis(500),
            })
        );
        let all = config("[messaging]\ninitial_backoff_ms = 300\nmax_backoff_ms = 3000\n");
        let policy = all.delivery(&app).ok();
        assert_eq!(
            policy.map(|p| (p.initial_backoff, p.max_backoff)),
            Some((Duration::from_millis(300), Duration::from_secs(3)))
        );
    }

    #[test]
    fn backoffs_from_both_files_must_still_grow() {
        // An initial backoff above the default maximum raises the maximum with it...
        let long = config("[messaging]\ninitial_backoff_ms = 30000\n");
        let policy = long.delivery(&manifest("")).ok();
        assert_eq!(policy.map(|p| p.max_backoff), Some(Duration::from_secs(30)));
        // ...but not one that is written down.
        let short_max = manifest("max_backoff_ms = 1000\n");
        let e = match config("[messaging]\ninitial_backoff_ms = 2000\n").delivery(&short_max) {
            Ok(policy) => panic!("should fail, got {policy:?}"),
            Err(e) => e.to_string(),
        };
        for needle in ["max backoff (1000 ms) is below the initial backoff (2000 ms)", FILE, "/srv/app/spin.toml"] {
            assert!(e.contains(needle), "`{needle}` not in: {e}");
        }
    }

    #[test]
    fn the_runtime_config_alone_chooses_the_backend() {
        let app = manifest("brokers = \"manifest:9092\"\n");
        assert_eq!(
            RuntimeConfig::default().bus(&app, Some("env:9092")).ok(),
            Some(BusConfig::Embedded(EmbeddedConfig { partitions: 4, retention: DEFAULT_RETENTION }))
        );
        let embedded = config("[messaging]\nbackend = \"embedded\"\npartitions = 2\nbrokers = \"ours:9092\"\n");
        assert_eq!(embedded.bus(&app, None).ok(), Some(BusConfig::Embedded(EmbeddedConfig { partitions: 2, retention: DEFAULT_RETENTION })));
    }

    #[test]
    fn kafka_brokers_come_from_the_env_then_the_runtime_config_then_the_manifest() {
        let ours = config("[messaging]\nbackend = \"kafka\"\nbrokers = [\"ours-1:9092\", \"ours-2:9092\"]\n");
        let bare = config("[messaging]\nbackend = \"kafka\"\n");
        let app = manifest("brokers = \"manifest:9092\"\n");
        assert_eq!(kafka_brokers(ours.bus(&app, Some(" env-1:9092, env-2:9092 "))), "env-1:9092,env-2:9092");
        assert_eq!(kafka_brokers(ours.bus(&app, None)), "ours-1:9092,ours-2:9092");
        // An empty variable is as good as unset.
        assert_eq!(kafka_brokers(ours.bus(&app, Some(""))), "ours-1:9092,ours-2:9092");
        assert_eq!(kafka_brokers(bare.bus(&app, None)), "manifest:9092");

        let e = match bare.bus(&manifest(""), None) {
            Ok(bus) => panic!("no brokers anywhere, got {bus:?}"),
            Err(e) => e.to_string(),
        };
        for needle in [
            FILE,
            "needs brokers",
            "`brokers` in [messaging]",
            BROKERS_ENV,
            "[application.trigger.kafka] of /srv/app/spin.toml",
        ] {
            assert!(e.contains(needle), "`{needle}` not in: {e}");
        }
        let e = ours.bus(&app, Some("a:1,,b:2")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.starts_with(&format!("{BROKERS_ENV}: an empty entry")), "{e}");
    }

    #[test]
    fn the_kafka_bus_takes_the_operators_topic_settings_and_properties() {
        let ours = config(
            "[messaging]\nbackend = \"kafka\"\nbrokers = \"k:9092\"\npartitions = 12\nreplication_factor = 3\n[messaging.kafka_properties]\n\"security.protocol\" = \"SASL_SSL\"\n",
        );
        assert_eq!(
            ours.bus(&manifest(""), None).ok(),
            Some(BusConfig::Kafka(KafkaConfig {
                brokers: "k:9092".into(),
                partitions: 12,
                replication_factor: 3,
                properties: BTreeMap::from([("security.protocol".to_string(), "SASL_SSL".to_string())]),
            }))
        );
        let defaults = config("[messaging]\nbackend = \"kafka\"\nbrokers = \"k:9092\"\n");
        let Ok(BusConfig::Kafka(kafka)) = defaults.bus(&manifest(""), None) else { panic!("expected Kafka") };
        assert_eq!((kafka.partitions, kafka.replication_factor), (4, 1));
        assert!(kafka.properties.is_empty());
    }

    #[test]
    fn bad_messaging_settings_name_the_file_and_the_key_or_position() {
        for key in [
            "partitions",
            "replication_factor",
            "max_attempts",
            "initial_backoff_ms",
            "max_backoff_ms",
            "concurrency",
            "publish_timeout_ms",
        ] {
            let e = config_error(&format!("[messaging]\n{key} = 0\n"));
            assert_eq!(e, format!("{FILE}: messaging.{key}: must be greater than zero"));
        }
        let cases: &[(&str, &[&str])] = &[
            ("[messaging]\nbackend = \"rabbitmq\"\n", &[":2:11", "unknown variant `rabbitmq`", "embedded", "kafka"]),
            ("[messaging]\nbrokres = \"k:9092\"\n", &[":2:1", "unknown field `brokres`"]),
            ("[messaging]\nbrokers = \"\"\n", &[":2:11", "no brokers"]),
            ("[messaging]\nbrokers = \"a:1,,b:2\"\n", &[":2:11", "an empty entry"]),
            ("[messaging]\nbrokers = [\"k:9092\", 9093]\n", &[":2:11", "or an array of"]),
            ("[messaging]\nbrokers = 9092\n", &[":2:11", "expected `\"host:port,host:port\"`"]),
            ("[messaging]\nconcurrency = -1\n", &[":2:15", "expected u32"]),
            ("[messaging]\nreplication_factor = 70000\n", &[":2:22", "expected u16"]),
            ("[messaging]\nkafka_properties = { \"linger.ms\" = 5 }\n", &[":2:", "string"]),
            (
                "[messaging]\ninitial_backoff_ms = 500\nmax_backoff_ms = 100\n",
                &["messaging.max_backoff_ms: 100 is below messaging.initial_backoff_ms (500)"],
            ),
            (
                "[messaging.kafka_properties]\n\"group.id\" = \"x\"\n",
                &["messaging.kafka_properties.\"group.id\"", "`group` in the manifest"],
            ),
            (
                "[messaging.kafka_properties]\n\"bootstrap.servers\" = \"k:9092\"\n",
                &["set `messaging.brokers` instead"],
            ),
            ("[messaging.kafka_properties]\n\"enable.auto.commit\" = \"true\"\n", &["only once it has been handled"]),
        ];
        for (text, needles) in cases {
            let e = config_error(text);
            assert!(e.starts_with(FILE), "{e}");
            for needle in *needles {
                assert!(e.contains(needle), "`{needle}` not in: {e}");
            }
        }
    }

    #[test]
    fn key_value_quotas_come_from_the_store_then_all_stores_then_the_defaults() {
        let defaults = RuntimeConfig::default();
        assert_eq!(defaults.key_value_quota("default"), (DEFAULT_KEY_VALUE_MAX_ENTRIES, DEFAULT_KEY_VALUE_MAX_BYTES));
        let ours = config(
            "[key_value]\nmax_entries = 50\n[key_value_store.cache]\ntype = \"spin\"\nmax_bytes = 4096\n\
             [key_value_store.big]\ntype = \"spin\"\nmax_entries = 900\nmax_bytes = 9000\n",
        );
        assert_eq!(ours.key_value_quota("default"), (50, DEFAULT_KEY_VALUE_MAX_BYTES));
        assert_eq!(ours.key_value_quota("cache"), (50, 4096));
        assert_eq!(ours.key_value_quota("big"), (900, 9000));
        for text in ["[key_value]\nmax_entries = 0\n", "[key_value_store.c]\ntype = \"spin\"\nmax_bytes = 0\n"] {
            let e = config_error(text);
            assert!(e.starts_with(FILE) && e.contains("nonzero"), "{e}");
        }
        assert!(config_error("[key_value]\nmax_keys = 5\n").contains("unknown field `max_keys`"));
    }

    #[test]
    fn server_limits_default_safely_and_follow_the_file() {
        let defaults = RuntimeConfig::default();
        assert_eq!(
            defaults.server_limits(),
            ServerLimits {
                header_read_timeout: Duration::from_secs(10),
                body_read_timeout: Duration::from_secs(30),
                keep_alive_timeout: Duration::from_secs(30),
                max_connections: 4096,
            }
        );
        assert_eq!((defaults.max_request_body_bytes(), defaults.max_instances_per_component()), (1 << 20, 250));
        let ours = config(
            "[http]\nheader_read_timeout_ms = 500\nbody_read_timeout_ms = 700\nkeep_alive_timeout_ms = 900\nmax_connections = 64\n\
             [limits]\nmax_request_body_bytes = 4096\nmax_instances = 16\nmax_instances_per_component = 16\n",
        );
        assert_eq!(
            ours.server_limits(),
            ServerLimits {
                header_read_timeout: Duration::from_millis(500),
                body_read_timeout: Duration::from_millis(700),
                keep_alive_timeout: Duration::from_millis(900),
                max_connections: 64,
            }
        );
        assert_eq!((ours.max_request_body_bytes(), ours.max_instances_per_component()), (4096, 16));
        // A small pool still lets each component have an instance.
        assert_eq!(config("[limits]\nmax_instances = 2\n").max_instances_per_component(), 1);
    }

    #[test]
    fn bad_server_limits_name_the_file_and_the_key() {
        for key in ["http.header_read_timeout_ms", "http.body_read_timeout_ms", "http.keep_alive_timeout_ms", "http.max_connections", "limits.max_request_body_bytes", "limits.max_instances_per_component"] {
            let (section, name) = key.split_once('.').unwrap();
            let e = config_error(&format!("[{section}]\n{name} = 0\n"));
            assert_eq!(e, format!("{FILE}: {key}: must be greater than zero"));
        }
        let e = config_error("[limits]\nmax_instances_per_component = 300\nmax_instances = 200\n");
        assert_eq!(
            e,
            format!("{FILE}: limits.max_instances_per_component: 300 is above limits.max_instances (200): one component could take every instance")
        );
        let e = config_error("[limits]\nmax_instances_per_component = 1001\n");
        assert!(e.contains("above limits.max_instances (1000)"), "{e}");
        let e = config_error("[http]\nread_timeout_ms = 5\n");
        assert!(e.starts_with(&format!("{FILE}:2:1")) && e.contains("unknown field `read_timeout_ms`"), "{e}");
    }
}
