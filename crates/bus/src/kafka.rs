//! The Apache Kafka bus, through rdkafka (librdkafka built from the crate's bundled
//! sources).
//!
//! - Publishing: one idempotent producer (`enable.idempotence`, `acks=all`), keys
//!   partitioned with `murmur2_random` as the Java client does, so an application
//!   sharing topics with Java services puts each key in the same partition they do.
//! - Subscribing: one consumer per subscription, each assigned partition its own
//!   bounded feed ([`consumer`] says how, and how offsets are committed).
//! - A broker that is down is never an error at start: librdkafka connects and
//!   reconnects in the background; a publish that cannot complete in time reports
//!   [`BusError::Unavailable`] with librdkafka's last error as the reason.
//!
//! `properties` from the config go to every client after the defaults set here, so an
//! operator can change any of them (security, timeouts, tuning).

mod consumer;
mod logging;
mod reader;

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

pub use estore_runtime_config::bus::KafkaConfig;

use super::{BusError, Delivery, Outgoing, Position, Read, Subscription};
use logging::ClientLog;


/// How long librdkafka keeps trying to deliver a message. A publish that gave up
/// earlier (its own timeout) may still be delivered until then, which the consumers'
/// at-least-once handling absorbs; bounded so a long outage does not pile up copies of
/// messages their publishers already retried.
const MESSAGE_TIMEOUT: &str = "30000";

/// How long creating topics waits for the cluster before reporting it unavailable.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(15);

pub struct KafkaBus {
    config: KafkaConfig,
    producer: FutureProducer<ClientLog>,
    /// The producer's log, for the last error it saw.
    producer_log: ClientLog,
}

impl KafkaBus {
    /// Creates the producer. It connects in the background, so a broker that is down
    /// now is not an error; an invalid property is.
    pub fn open(config: &KafkaConfig) -> anyhow::Result<KafkaBus> {
        let producer_log = ClientLog::new("producer");
        let producer = client_config(
            config,
            &[("enable.idempotence", "true"), ("acks", "all"), ("partitioner", "murmur2_random"), ("message.timeout.ms", MESSAGE_TIMEOUT)],
        )
        .create_with_context(producer_log.clone())
        .with_context(|| format!("create a Kafka producer for {}", config.brokers))?;
        Ok(KafkaBus { config: config.clone(), producer, producer_log })
    }

    pub async fn publish(&self, message: Outgoing, timeout: Duration) -> Result<Position, BusError> {
        super::validate_topic(&message.topic)?;
        let mut record = FutureRecord::<[u8], [u8]>::to(&message.topic).payload(&message.payload).headers(headers(&message.headers));
        if let Some(key) = &message.key {
            record = record.key(key);
        }
        // `send`'s own timeout only bounds waiting for room in librdkafka's queue; the
        // delivery report can take up to `message.timeout.ms`.
        let no_answer = || BusError::Unavailable(self.no_answer(&format!("did not acknowledge a message to `{}`", message.topic), timeout));
        match tokio::time::timeout(timeout, self.producer.send(record, timeout)).await {
            Ok(Ok(delivery)) => position(delivery.partition, delivery.offset),
            Ok(Err((error, _message))) if error_code(&error).is_some_and(is_timeout) => Err(no_answer()),
            Ok(Err((error, _message))) => Err(bus_error(&format!("publish to `{}`", message.topic), &error)),
            Err(_elapsed) => Err(no_answer()),
        }
    }

    /// Creates the topics that do not exist yet. The admin client lives only for this
    /// call: nothing would serve its event queue between calls, and this runs rarely
    /// (at start).
    pub async fn ensure_topics(&self, topics: &[String]) -> Result<(), BusError> {
        let names: BTreeSet<&str> = topics.iter().map(String::as_str).collect();
        for name in &names {
            super::validate_topic(name)?;
        }
        if names.is_empty() {
            return Ok(());
        }
        let partitions = i32::try_from(self.config.partitions)
            .map_err(|_| BusError::Invalid(format!("{} partitions are more than Kafka allows", self.config.partitions)))?;
        let replication = i32::from(self.config.replication_factor);
        let new_topics: Vec<NewTopic<'_>> =
            names.iter().map(|name| NewTopic::new(name, partitions, TopicReplication::Fixed(replication))).collect();
        let admin: AdminClient<ClientLog> = client_config(&self.config, &[])
            .create_with_context(ClientLog::new("admin"))
            .map_err(|e| bus_error("create a Kafka admin client", &e))?;
        let options = AdminOptions::new().request_timeout(Some(ADMIN_TIMEOUT)).operation_timeout(Some(ADMIN_TIMEOUT));
        let results = admin.create_topics(&new_topics, &options).await;
        let no_answer = || BusError::Unavailable(self.no_answer("did not answer a request to create topics", ADMIN_TIMEOUT));
        let created = match results {
            Ok(results) => results.into_iter().try_for_each(|result| match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => Ok(()),
                Err((_, code)) if is_timeout(code) => Err(no_answer()),
                Err((name, code)) => Err(bus_error(&format!("create topic `{name}`"), &KafkaError::AdminOp(code))),
            }),
            Err(error) if error_code(&error).is_some_and(is_timeout) => Err(no_answer()),
            Err(error) => Err(bus_error("create topics", &error)),
        };
        let names: Vec<String> = names.into_iter().map(str::to_owned).collect();
        // Blocking metadata calls, and dropping an admin client joins its thread and
        // destroys the client: not on a runtime worker.
        let wait = created.is_ok();
        let visible = tokio::task::spawn_blocking(move || wait && await_metadata(&admin, &names)).await;
        match (created, visible) {
            (Err(e), _) => Err(e),
            (Ok(()), Ok(true)) => Ok(()),
            (Ok(()), _) => Err(no_answer()),
        }
    }

    pub async fn subscribe(&self, group: &str, topics: &[String]) -> Result<Subscription, BusError> {
        for topic in topics {
            super::validate_topic(topic)?;
        }
        if topics.is_empty() {
            return Err(BusError::Invalid(format!("consumer group `{group}` subscribes to no topic")));
        }
        if group.is_empty() {
            return Err(BusError::Invalid("a consumer group needs a name".into()));
        }
        consumer::subscribe(&self.config, group, topics)
    }

    pub async fn read(&self, topic: &str, which: Read) -> Result<Vec<Delivery>, BusError> {
        let (config, topic) = (self.config.clone(), topic.to_owned());
        tokio::task::spawn_blocking(move || reader::read(&config, &topic, which))
            .await
            .map_err(|e| BusError::Other(format!("reading a topic ended abnormally: {e}")))?
    }

    pub fn describe(&self) -> String {
        format!("Apache Kafka at {}", self.config.brokers)
    }

    /// Asks the cluster for its metadata (a blocking librdkafka call, so off the
    /// runtime's workers).
    pub async fn check(&self, timeout: Duration) -> Result<(), BusError> {
        let producer = self.producer.clone();
        let answered = tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, timeout).map(drop)).await;
        match answered {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(BusError::Unavailable(self.no_answer("did not answer a metadata request", timeout))),
            Err(e) => Err(BusError::Other(format!("the metadata request ended abnormally: {e}"))),
        }
    }

    /// Why the cluster did not answer in time, with librdkafka's last complaint.
    fn no_answer(&self, what: &str, timeout: Duration) -> String {
        let mut reason = format!("Kafka at {} {what} within {} ms", self.config.brokers, timeout.as_millis());
        if let Some(error) = self.producer_log.last_error() {
            reason.push_str(&format!("; last error: {error}"));
        }
        reason
    }
}

/// Waits until the broker's metadata lists every topic of `names` with partitions. A
/// topic the controller has just created reaches the brokers' metadata a moment later,
/// and a consumer that subscribes before then would not see it until its next metadata
/// refresh.
fn await_metadata(admin: &AdminClient<ClientLog>, names: &[String]) -> bool {
    let deadline = std::time::Instant::now() + ADMIN_TIMEOUT;
    while std::time::Instant::now() < deadline {
        if let Ok(metadata) = admin.inner().fetch_metadata(None, Duration::from_secs(5)) {
            let known = |name: &String| {
                metadata.topics().iter().any(|t| t.name() == name && t.error().is_none() && !t.partitions().is_empty())
            };
            if names.iter().all(known) {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// A client's properties: the brokers, this module's `defaults`, then the operator's
/// properties, which win.
fn client_config(config: &KafkaConfig, defaults: &[(&str, &str)]) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.brokers);
    // librdkafka waits up to 10 s between reconnection attempts by default: a broker
    // that is back would stay unused for that long.
    client.set("reconnect.backoff.max.ms", "1000");
    // Topics created after a consumer subscribed (by another host, a dead-letter topic)
    // are seen within this time rather than librdkafka's default five minutes.
    client.set("topic.metadata.refresh.interval.ms", "10000");
    for (key, value) in defaults {
        client.set(*key, *value);
    }
    for (key, value) in &config.properties {
        client.set(key, value);
    }
    client
}

fn headers(headers: &[(String, Vec<u8>)]) -> OwnedHeaders {
    headers.iter().fold(OwnedHeaders::new_with_capacity(headers.len()), |all, (key, value)| all.insert(Header { key, value: Some(value) }))
}

/// The broker's answer as a [`Position`]; a negative number would be a broker bug.
fn position(partition: i32, offset: i64) -> Result<Position, BusError> {
    match (u32::try_from(partition), u64::try_from(offset)) {
        (Ok(partition), Ok(offset)) => Ok(Position { partition, offset }),
        _ => Err(BusError::Other(format!("the broker stored the message at an impossible position ({partition}, {offset})"))),
    }
}

/// The librdkafka error code of `error`. rdkafka's own `rdkafka_error_code` leaves out
/// the code of a failed admin operation.
fn error_code(error: &KafkaError) -> Option<RDKafkaErrorCode> {
    match error {
        KafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    }
}

/// librdkafka gave up waiting for the cluster.
fn is_timeout(code: RDKafkaErrorCode) -> bool {
    matches!(code, RDKafkaErrorCode::OperationTimedOut | RDKafkaErrorCode::RequestTimedOut | RDKafkaErrorCode::MessageTimedOut)
}

/// A librdkafka error as the bus's: what the caller may retry, what it must fix.
fn bus_error(doing: &str, error: &KafkaError) -> BusError {
    use RDKafkaErrorCode as Code;
    let message = format!("{doing}: {error}");
    match error_code(error) {
        Some(
            Code::MessageTimedOut
            | Code::QueueFull
            | Code::BrokerTransportFailure
            | Code::AllBrokersDown
            | Code::Resolve
            | Code::OperationTimedOut
            | Code::RequestTimedOut
            | Code::TimedOutQueue
            | Code::NetworkException
            | Code::LeaderNotAvailable
            | Code::NotLeaderForPartition
            | Code::BrokerNotAvailable
            | Code::NotEnoughReplicas
            | Code::NotEnoughReplicasAfterAppend
            | Code::CoordinatorNotAvailable
            | Code::CoordinatorLoadInProgress
            | Code::NotController
            | Code::WaitingForCoordinator,
        ) => BusError::Unavailable(message),
        Some(
            Code::InvalidTopic
            | Code::UnknownTopic
            | Code::UnknownTopicOrPartition
            | Code::UnknownPartition
            | Code::MessageSizeTooLarge
            | Code::InvalidMessageSize
            | Code::MessageBatchTooLarge
            | Code::InvalidMessage
            | Code::InvalidRecord
            | Code::InvalidPartitions
            | Code::InvalidReplicationFactor
            | Code::InvalidConfig
            | Code::PolicyViolation,
        ) => BusError::Invalid(message),
        _ => BusError::Other(message),
    }
}
