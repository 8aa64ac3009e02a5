//! The event bus this host runs on, as the runtime config and the manifest resolve it
//! ([`crate::RuntimeConfig::messaging`]); the bus crate opens it.

use std::collections::BTreeMap;
use std::time::Duration;

/// Which backend, and its settings; resolved by the app from the runtime config and
/// the manifest's `[application.trigger.kafka]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusConfig {
    Embedded(EmbeddedConfig),
    Kafka(KafkaConfig),
}

/// `[messaging]` settings of the embedded backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedConfig {
    /// Partitions of a topic created by this host.
    pub partitions: u32,
    /// How long a message is kept once every consumer group of its topic has handled
    /// it, as Kafka's `retention.ms` ([`DEFAULT_RETENTION`] is Kafka's default). Messages
    /// of a topic no group has joined are kept this long, as on Kafka.
    pub retention: Duration,
}

/// Kafka's default `retention.ms`: a week.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// `[messaging]` settings of the Kafka backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `host:port,host:port`: the bootstrap servers.
    pub brokers: String,
    /// Partitions of a topic created by this host.
    pub partitions: u32,
    /// Replication factor of a topic created by this host.
    pub replication_factor: u16,
    /// Extra librdkafka properties (`security.protocol`, `sasl.*`, ...), passed as is.
    pub properties: BTreeMap<String, String>,
}
