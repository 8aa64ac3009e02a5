//! The event bus: topics of partitioned, ordered, durable messages, and consumer
//! groups that commit how far they have handled each partition.
//!
//! Two backends keep the same semantics behind one API, so the Kafka trigger, the
//! publisher capability and the outbox relay never know which one runs:
//! - [`embedded`]: the default, nothing to start; one SQLite file in the state dir.
//! - [`kafka`]: Apache Kafka through rdkafka (librdkafka built from the crate's
//!   bundled sources).
//!
//! Delivery is at least once: a message is redelivered when its partition's commit
//! did not happen (a crash, a rebalance). Handling it once is the trigger's job, with
//! the handled-message record it keeps in the component's own database.

// Built without Kafka, the one backend left makes some matches irrefutable and some
// arguments unused (the embedded bus needs no timeout to reach its own file).
#![cfg_attr(not(feature = "kafka"), allow(irrefutable_let_patterns, unused_variables))]

pub mod dead_letters;
pub mod embedded;
#[cfg(feature = "kafka")]
pub mod kafka;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::mpsc;

/// A message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub topic: String,
    /// Messages with equal keys land in the same partition; no key spreads them.
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Where the bus stored a published message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub partition: u32,
    pub offset: u64,
}

/// A message read from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    /// Milliseconds since the Unix epoch, as stamped when published.
    pub timestamp_ms: u64,
}

impl Delivery {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }
}

/// Which messages [`Bus::read`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// The newest ones, at most this many, oldest first.
    Newest(u32),
    /// The one message at this place, if it is there.
    At(Position),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// The bus could not be reached, or did not take the message in time. The
    /// backend keeps reconnecting by itself; the caller may retry.
    #[error("the event bus is unavailable: {0}")]
    Unavailable(String),
    /// A topic name or a message the bus refuses.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Other(String),
}

pub use estore_runtime_config::bus::BusConfig;


/// Commits a partition's progress for a consumer group: every message before
/// `next_offset` has been handled. Called in offset order, only after success.
pub trait Commit: Send + Sync {
    fn commit(&self, next_offset: u64) -> BoxFuture<'_, Result<(), BusError>>;

    /// Asked before each message taken from the feed: whether the partition is still
    /// this member's. Once a rebalance has begun to move it, the answer is no, and
    /// the messages still buffered in the feed are left to the next owner. A message
    /// taken while it was yes counts as in progress until the next commit: the
    /// rebalance waits for it, so two hosts never handle it at once.
    fn still_assigned(&self) -> bool {
        true
    }
}

/// One partition assigned to this host's member of a consumer group: its messages in
/// offset order, starting at the group's committed offset. The channel is bounded
/// (a slow handler holds back only its own partition) and closes when the partition
/// is revoked or the subscription ends.
pub struct PartitionFeed {
    pub topic: String,
    pub partition: u32,
    pub messages: mpsc::Receiver<Delivery>,
    pub commit: Arc<dyn Commit>,
}

/// A consumer group membership. New partition assignments arrive on `feeds`; dropping
/// the subscription leaves the group and closes every feed.
pub struct Subscription {
    pub feeds: mpsc::Receiver<PartitionFeed>,
    /// Whatever keeps the backend's consumer alive; dropped with the subscription.
    pub(crate) _membership: Box<dyn Send + Sync>,
}

/// How many messages a partition feed buffers ahead of its handler.
pub const FEED_BUFFER: usize = 16;

/// The bus the application runs on.
#[derive(Clone)]
pub enum Bus {
    Embedded(Arc<embedded::EmbeddedBus>),
    #[cfg(feature = "kafka")]
    Kafka(Arc<kafka::KafkaBus>),
}

impl Bus {
    /// Opens the configured backend. The embedded bus lives under `state_dir`. A
    /// Kafka broker that is down at start is not an error: the client connects when it
    /// comes up, and publishing waits or reports [`BusError::Unavailable`].
    pub async fn open(config: &BusConfig, state_dir: &std::path::Path) -> anyhow::Result<Bus> {
        Ok(match config {
            BusConfig::Embedded(config) => Bus::Embedded(Arc::new(embedded::EmbeddedBus::open(config, state_dir).await?)),
            #[cfg(feature = "kafka")]
            BusConfig::Kafka(config) => Bus::Kafka(Arc::new(kafka::KafkaBus::open(config)?)),
            #[cfg(not(feature = "kafka"))]
            BusConfig::Kafka(_) => {
                anyhow::bail!("this estore was built without Kafka (the estore-bus `kafka` feature): use the embedded bus")
            }
        })
    }

    /// Publishes one message and waits until the bus has stored it (for Kafka: acked
    /// by all in-sync replicas), at most `timeout`.
    pub async fn publish(&self, message: Outgoing, timeout: Duration) -> Result<Position, BusError> {
        match self {
            Bus::Embedded(bus) => bus.publish(message).await,
            #[cfg(feature = "kafka")]
            Bus::Kafka(bus) => bus.publish(message, timeout).await,
        }
    }

    /// Creates the topics that do not exist yet, with the configured partition count.
    pub async fn ensure_topics(&self, topics: &[String]) -> Result<(), BusError> {
        match self {
            Bus::Embedded(bus) => bus.ensure_topics(topics).await,
            #[cfg(feature = "kafka")]
            Bus::Kafka(bus) => bus.ensure_topics(topics).await,
        }
    }

    /// Joins consumer group `group` for `topics`. A new group starts at the earliest
    /// message, so nothing published before its first start is missed.
    pub async fn subscribe(&self, group: &str, topics: &[String]) -> Result<Subscription, BusError> {
        match self {
            Bus::Embedded(bus) => bus.subscribe(group, topics).await,
            #[cfg(feature = "kafka")]
            Bus::Kafka(bus) => bus.subscribe(group, topics).await,
        }
    }

    /// Reads messages of `topic` outside any consumer group, committing nothing: what
    /// an operator looks at (dead letters). A topic that does not exist has none.
    pub async fn read(&self, topic: &str, which: Read) -> Result<Vec<Delivery>, BusError> {
        validate_topic(topic)?;
        match self {
            Bus::Embedded(bus) => bus.read(topic, which).await,
            #[cfg(feature = "kafka")]
            Bus::Kafka(bus) => bus.read(topic, which).await,
        }
    }

    /// Whether the bus answers within `timeout`: the broker's metadata for Kafka, a
    /// read of the file for the embedded bus. Part of the host's readiness.
    pub async fn check(&self, timeout: Duration) -> Result<(), BusError> {
        match self {
            Bus::Embedded(bus) => bus.check().await,
            #[cfg(feature = "kafka")]
            Bus::Kafka(bus) => bus.check(timeout).await,
        }
    }

    /// Brings the consumer-lag metric up to date where it is read on demand (the
    /// embedded bus); Kafka's consumers report theirs in their statistics.
    pub async fn report_lag(&self) {
        if let Bus::Embedded(bus) = self {
            bus.report_lag().await;
        }
    }

    /// One line for the start-up banner and logs.
    pub fn describe(&self) -> String {
        match self {
            Bus::Embedded(bus) => bus.describe(),
            #[cfg(feature = "kafka")]
            Bus::Kafka(bus) => bus.describe(),
        }
    }
}

/// How long to wait before asking an unreachable bus again.
const RETRY_DELAY: Duration = Duration::from_secs(2);

/// Runs `attempt` until it succeeds, for start-up work that has to wait for a broker:
/// the first failure is logged (not every retry), and so is the recovery.
pub async fn retry_until_ready<T, F>(what: &str, mut attempt: impl FnMut() -> F) -> T
where
    F: Future<Output = Result<T, BusError>>,
{
    let mut failed = false;
    loop {
        match attempt().await {
            Ok(value) => {
                if failed {
                    tracing::info!("{what}: done after all");
                }
                return value;
            }
            Err(e) => {
                if !failed {
                    tracing::warn!("{what}: {e}; retrying every {} s", RETRY_DELAY.as_secs());
                    failed = true;
                }
                tokio::time::sleep(RETRY_DELAY).await;
            }
        }
    }
}

/// Topic names as Kafka accepts them (both backends use the same rule, so an
/// application moves between them unchanged): 1 to 249 of `[a-zA-Z0-9._-]`, not `.`
/// or `..`.
pub fn validate_topic(name: &str) -> Result<(), BusError> {
    estore_manifest::topics::validate_topic(name).map_err(BusError::Invalid)
}
