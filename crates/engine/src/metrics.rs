//! Prometheus metrics of the host, served at `GET /metrics` on the admin listener.
//!
//! Counters and histograms are updated where the work happens (the triggers, the
//! instance's life); what is a level rather than an event (outbox backlog, database
//! pools, consumer lag, memory) is read when Prometheus scrapes, so it is never stale.
//! One set per process: the triggers and the Kafka client's statistics callback
//! reach it through [`global`].

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ComponentLabel {
    pub component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub component: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub component: String,
    /// `trap`, `timeout`, `memory` or `instantiate`.
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    pub component: String,
    /// `body_too_large`, `body_timeout`, `body_unreadable` or `at_capacity`.
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MessageLabels {
    pub component: String,
    pub topic: String,
    /// `handled`, `retried` or `dead_lettered`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub group: String,
    pub topic: String,
    pub partition: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DatabaseLabels {
    pub component: String,
    pub database: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    pub component: String,
    pub database: String,
    /// `forged` (not signed by the host), `not_granted`, `unreadable` or
    /// `refused_by_bus`.
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub component: String,
    pub database: String,
    /// `in_use` or `idle`.
    pub state: &'static str,
}

fn histogram() -> Histogram {
    // 1 ms to about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: Family<ComponentLabel, Histogram, fn() -> Histogram>,
    pub instances: Family<ComponentLabel, Gauge>,
    pub failures: Family<FailureLabels, Counter>,
    pub refusals: Family<RefusalLabels, Counter>,
    pub connections: Gauge,
    pub messages: Family<MessageLabels, Counter>,
    pub consumer_lag: Family<PartitionLabels, Gauge>,
    pub outbox_backlog: Family<DatabaseLabels, Gauge>,
    pub outbox_dropped: Family<DropLabels, Counter>,
    pub pool_connections: Family<PoolLabels, Gauge>,
    pub resident_memory: Gauge,
    /// Kafka consumers report their lag in librdkafka's statistics, every few seconds.
    kafka_lag: Mutex<HashMap<PartitionLabels, i64>>,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("estore");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered, by component and status", requests.clone());
        let request_seconds = Family::<ComponentLabel, Histogram, fn() -> Histogram>::new_with_constructor(histogram as fn() -> Histogram);
        registry.register("http_request_duration_seconds", "Time to the response head, by component", request_seconds.clone());
        let instances = Family::<ComponentLabel, Gauge>::default();
        registry.register("instances_running", "Live component instances (requests and messages in progress)", instances.clone());
        let failures = Family::<FailureLabels, Counter>::default();
        registry.register("instance_failures", "Instances that trapped, timed out, ran out of memory or did not start", failures.clone());
        let refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "http_requests_refused",
            "Requests answered without running their component: body too large (413), too slow (408) or unreadable (400), component at its instance cap (503)",
            refusals.clone(),
        );
        let connections = Gauge::default();
        registry.register("http_connections", "Open client connections of the HTTP server", connections.clone());
        let messages = Family::<MessageLabels, Counter>::default();
        registry.register("messages", "Messages by outcome: handled, retried (an attempt failed), dead_lettered", messages.clone());
        let consumer_lag = Family::<PartitionLabels, Gauge>::default();
        registry.register("consumer_lag", "Messages on a partition not yet committed by the consumer group", consumer_lag.clone());
        let outbox_backlog = Family::<DatabaseLabels, Gauge>::default();
        registry.register("outbox_backlog", "Committed messages waiting in a database's outbox for the relay", outbox_backlog.clone());
        let outbox_dropped = Family::<DropLabels, Counter>::default();
        registry.register("outbox_dropped", "Outbox rows deleted without being published, by reason", outbox_dropped.clone());
        let pool_connections = Family::<PoolLabels, Gauge>::default();
        registry.register("database_pool_connections", "Open database connections, in use or idle", pool_connections.clone());
        let resident_memory = Gauge::default();
        registry.register("resident_memory_bytes", "Resident memory of the host process", resident_memory.clone());
        Metrics {
            registry,
            requests,
            request_seconds,
            instances,
            failures,
            refusals,
            connections,
            messages,
            consumer_lag,
            outbox_backlog,
            outbox_dropped,
            pool_connections,
            resident_memory,
            kafka_lag: Mutex::new(HashMap::new()),
        }
    }

    pub fn count_request(&self, component: &str, status: u16, took: Duration) {
        self.requests.get_or_create(&RequestLabels { component: component.to_owned(), status }).inc();
        self.request_seconds.get_or_create(&ComponentLabel { component: component.to_owned() }).observe(took.as_secs_f64());
    }

    pub fn count_failure(&self, component: &str, kind: &'static str) {
        self.failures.get_or_create(&FailureLabels { component: component.to_owned(), kind }).inc();
    }

    pub fn count_refusal(&self, component: &str, reason: &'static str) {
        self.refusals.get_or_create(&RefusalLabels { component: component.to_owned(), reason }).inc();
    }

    pub fn count_message(&self, component: &str, topic: &str, outcome: &'static str) {
        self.messages.get_or_create(&MessageLabels { component: component.to_owned(), topic: topic.to_owned(), outcome }).inc();
    }

    /// A Kafka consumer's latest statistics for one partition (-1: not known yet).
    pub fn record_kafka_lag(&self, partition: PartitionLabels, lag: i64) {
        self.kafka_lag.lock().unwrap_or_else(PoisonError::into_inner).insert(partition, lag);
    }

    /// The levels read at scrape time that are not per database: memory and the
    /// Kafka lag the statistics last reported.
    pub fn refresh_host_levels(&self) {
        self.resident_memory.set(resident_memory_bytes());
        for (partition, lag) in self.kafka_lag.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            // Not known, or no longer assigned here (librdkafka says -1).
            if *lag < 0 {
                self.consumer_lag.remove(partition);
            } else {
                self.consumer_lag.get_or_create(partition).set(*lag);
            }
        }
    }

    /// The OpenMetrics text Prometheus scrapes.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// Counts a live instance for as long as it is held.
pub struct LiveInstance(String);

impl LiveInstance {
    pub fn new(component: &str) -> LiveInstance {
        global().instances.get_or_create(&ComponentLabel { component: component.to_owned() }).inc();
        LiveInstance(component.to_owned())
    }
}

impl Drop for LiveInstance {
    fn drop(&mut self) {
        global().instances.get_or_create(&ComponentLabel { component: std::mem::take(&mut self.0) }).dec();
    }
}

fn resident_memory_bytes() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("VmRSS:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<i64>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}
