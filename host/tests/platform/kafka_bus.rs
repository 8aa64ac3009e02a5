//! The Kafka event bus (`estore_bus::Bus` on its Kafka backend) against a real
//! broker: publishing, consumer groups and their commits, partitions that do not hold
//! each other back, and a broker that goes away and comes back.
//!
//! Tests that leave the broker running share one (a start costs seconds), each with
//! its own topics and groups; the two that stop it have their own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use estore_bus::kafka::KafkaConfig;
use estore_bus::{Bus, BusConfig, BusError, Delivery, Outgoing, PartitionFeed, Position, Subscription};

use crate::kafka::Kafka;

const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a test waits for messages: joining a group and fetching take a few seconds.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// A topic or group name no other test uses.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

async fn open_bus(kafka: &Kafka, partitions: u32) -> Bus {
    // The bus's warnings (librdkafka's among them) in a failing test's output.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    let config = KafkaConfig { brokers: kafka.bootstrap(), partitions, replication_factor: 1, properties: BTreeMap::new() };
    Bus::open(&BusConfig::Kafka(config), Path::new("/nonexistent")).await.expect("open the Kafka bus")
}

/// A new topic, created through the bus (so with its partition count).
async fn new_topic(bus: &Bus, prefix: &str) -> String {
    let topic = unique(prefix);
    bus.ensure_topics(std::slice::from_ref(&topic)).await.expect("create the topic");
    topic
}

fn message(topic: &str, key: &str, payload: &str) -> Outgoing {
    Outgoing {
        topic: topic.to_owned(),
        key: Some(key.as_bytes().to_vec()),
        payload: payload.as_bytes().to_vec(),
        headers: vec![("payload".to_owned(), payload.as_bytes().to_vec()), ("kind".to_owned(), b"test".to_vec())],
    }
}

async fn publish(bus: &Bus, topic: &str, key: &str, payload: &str) -> Position {
    bus.publish(message(topic, key, payload), PUBLISH_TIMEOUT).await.unwrap_or_else(|e| panic!("publish {payload}: {e}"))
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A subscription and the feeds it has handed out, read the way the trigger does.
struct Reader {
    subscription: Subscription,
    feeds: Vec<PartitionFeed>,
}

impl Reader {
    async fn subscribe(bus: &Bus, group: &str, topic: &str) -> Reader {
        let subscription = bus.subscribe(group, &[topic.to_owned()]).await.expect("subscribe");
        Reader { subscription, feeds: Vec::new() }
    }

    /// Takes the feeds handed out since the last call.
    fn take_feeds(&mut self) {
        while let Ok(feed) = self.subscription.feeds.try_recv() {
            self.feeds.push(feed);
        }
    }

    /// The next `count` messages from any partition, committing none.
    async fn read(&mut self, count: usize) -> Vec<Delivery> {
        self.read_where(count, |_| true).await
    }

    /// The next `count` messages from the feeds `wanted` picks; the others are left
    /// unread. Panics if they do not arrive within [`READ_TIMEOUT`].
    async fn read_where(&mut self, count: usize, wanted: impl Fn(&PartitionFeed) -> bool) -> Vec<Delivery> {
        let deadline = Instant::now() + READ_TIMEOUT;
        let mut read = Vec::new();
        while read.len() < count {
            self.take_feeds();
            let mut idle = true;
            for feed in self.feeds.iter_mut().filter(|feed| wanted(feed)) {
                if let Ok(delivery) = feed.messages.try_recv() {
                    read.push(delivery);
                    idle = false;
                }
            }
            // Revoked (or ended) feeds are closed and empty: forget them.
            self.feeds.retain(|feed| !(feed.messages.is_closed() && feed.messages.is_empty()));
            if idle {
                assert!(Instant::now() < deadline, "read {} of {count} messages in {READ_TIMEOUT:?}: {read:#?}", read.len());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        read
    }

    /// The feed of `partition`, once assigned.
    async fn feed(&mut self, topic: &str, partition: u32) -> &mut PartitionFeed {
        let deadline = Instant::now() + READ_TIMEOUT;
        loop {
            self.take_feeds();
            if let Some(index) = self.feeds.iter().rposition(|f| f.topic == topic && f.partition == partition) {
                return &mut self.feeds[index];
            }
            assert!(Instant::now() < deadline, "partition {topic}/{partition} not assigned within {READ_TIMEOUT:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Commits `delivery` as handled, as the trigger does after each success.
    async fn commit(&mut self, delivery: &Delivery) -> Result<(), BusError> {
        let feed = self.feed(&delivery.topic, delivery.partition).await;
        feed.commit.commit(delivery.offset + 1).await
    }

    /// Asserts nothing more arrives for a while.
    async fn assert_quiet(&mut self, wait: Duration) {
        tokio::time::sleep(wait).await;
        self.take_feeds();
        for feed in &mut self.feeds {
            if let Ok(delivery) = feed.messages.try_recv() {
                panic!("unexpected message: {delivery:?}");
            }
        }
    }
}

/// The payloads read, per partition, in the order read.
fn by_partition(deliveries: &[Delivery]) -> BTreeMap<u32, Vec<String>> {
    let mut partitions: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for delivery in deliveries {
        partitions.entry(delivery.partition).or_default().push(text(&delivery.payload));
    }
    partitions
}

/// The group's committed offset of `topic`/`partition`, as the broker reports it.
fn committed_offset(kafka: &Kafka, group: &str, topic: &str, partition: u32) -> Option<u64> {
    let out = kafka.tool("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", &["--describe", "--group", group], None);
    out.lines().find_map(|line| {
        let columns: Vec<&str> = line.split_whitespace().collect();
        match columns.as_slice() {
            [_group, t, p, current, ..] if *t == topic && *p == partition.to_string() => current.parse().ok(),
            _ => None,
        }
    })
}

/// Waits until the group has no members: a closed consumer left it (rather than
/// timing out of it after `session.timeout.ms`, 45 s).
fn assert_group_left(kafka: &Kafka, group: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out =
            kafka.tool("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", &["--describe", "--group", group, "--members"], None);
        // A header line, then one line per member.
        if !out.lines().any(|line| line.starts_with(&format!("{group} "))) {
            return;
        }
        assert!(Instant::now() < deadline, "group {group} still has members after its subscription was dropped:\n{out}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_topics_creates_the_missing_ones_with_the_partition_count() {
    let kafka = crate::kafka::shared();
    let bus = open_bus(kafka, 4).await;
    assert_eq!(bus.describe(), format!("Apache Kafka at {}", kafka.bootstrap()));
    let (first, second) = (unique("created"), unique("created"));
    kafka.create_topic(&second, 1);

    bus.ensure_topics(&[first.clone(), second.clone(), first.clone()]).await.expect("create the missing topic");
    bus.ensure_topics(std::slice::from_ref(&first)).await.expect("an existing topic is fine");

    let topics = kafka.topics();
    assert!(topics.contains(&first) && topics.contains(&second), "{topics:?}");
    let describe = kafka.tool("org.apache.kafka.tools.TopicCommand", &["--describe", "--topic", &first], None);
    assert!(describe.contains("PartitionCount: 4"), "{describe}");
    let existing = kafka.tool("org.apache.kafka.tools.TopicCommand", &["--describe", "--topic", &second], None);
    assert!(existing.contains("PartitionCount: 1"), "an existing topic was changed: {existing}");

    let invalid = bus.ensure_topics(&["no spaces".to_owned()]).await;
    assert!(matches!(invalid, Err(BusError::Invalid(_))), "{invalid:?}");
    let invalid = bus.publish(message("bad/topic", "k", "v"), PUBLISH_TIMEOUT).await;
    assert!(matches!(invalid, Err(BusError::Invalid(_))), "{invalid:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_receives_everything_in_partition_order() {
    let kafka = crate::kafka::shared();
    let bus = open_bus(kafka, 3).await;
    let topic = new_topic(&bus, "ordered").await;

    let before = now_ms();
    let mut published = BTreeMap::new();
    for i in 0..30 {
        let payload = format!("m{i:02}");
        let position = publish(&bus, &topic, &format!("key{}", i % 5), &payload).await;
        published.insert(payload, position);
    }
    let after = now_ms();

    let mut reader = Reader::subscribe(&bus, &unique("group"), &topic).await;
    let read = reader.read(30).await;
    for delivery in &read {
        let payload = text(&delivery.payload);
        let position = published[&payload];
        assert_eq!((delivery.partition, delivery.offset), (position.partition, position.offset), "{delivery:?}");
        assert_eq!(delivery.topic, topic);
        let i: usize = payload[1..].parse().unwrap();
        assert_eq!(delivery.key.as_deref(), Some(format!("key{}", i % 5).as_bytes()));
        assert_eq!(delivery.header("payload"), Some(payload.as_bytes()));
        assert_eq!(delivery.header("KIND"), Some(&b"test"[..]), "header names match case-insensitively");
        assert_eq!(delivery.headers.len(), 2);
        assert!((before..=after).contains(&delivery.timestamp_ms), "{} not within {before}..={after}", delivery.timestamp_ms);
    }
    for (partition, payloads) in by_partition(&read) {
        let mut in_publish_order = payloads.clone();
        in_publish_order.sort();
        assert_eq!(payloads, in_publish_order, "partition {partition} out of order");
    }
    assert_eq!(read.iter().map(|d| text(&d.payload)).collect::<BTreeSet<_>>().len(), 30, "duplicates: {read:#?}");
    reader.assert_quiet(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_keys_share_a_partition_chosen_as_the_java_client_does() {
    let kafka = crate::kafka::shared();
    let bus = open_bus(kafka, 3).await;
    let topic = new_topic(&bus, "keyed").await;
    let keys: Vec<String> = (0..12).map(|i| format!("customer-{i}")).collect();

    // Kafka's own (Java) producer places each key first... (`Kafka::produce_keyed`
    // passes `--reader-property`, which Kafka 4.1's console producer calls `--property`.)
    let java: String = keys.iter().map(|key| format!("{key}\tjava\n")).collect();
    kafka.tool(
        "org.apache.kafka.tools.ConsoleProducer",
        &["--topic", &topic, "--producer-property", "acks=all", "--property", "parse.key=true", "--property", "key.separator=\t"],
        Some(&java),
    );
    let mut reader = Reader::subscribe(&bus, &unique("group"), &topic).await;
    let java_partitions: BTreeMap<Vec<u8>, u32> =
        reader.read(keys.len()).await.into_iter().map(|d| (d.key.unwrap(), d.partition)).collect();

    // ...and the bus puts every message of a key in the same partition.
    for round in 0..3 {
        for key in &keys {
            let position = publish(&bus, &topic, key, &format!("{key}/{round}")).await;
            assert_eq!(position.partition, java_partitions[key.as_bytes()], "key {key} (round {round})");
        }
    }
    let used: BTreeSet<u32> = java_partitions.values().copied().collect();
    assert!(used.len() > 1, "12 keys all in one partition: {java_partitions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_resumes_after_its_last_commit() {
    let kafka = crate::kafka::shared();
    let bus = open_bus(kafka, 1).await;
    let topic = new_topic(&bus, "resume").await;
    let group = unique("group");
    for i in 0..10 {
        publish(&bus, &topic, "k", &format!("m{i}")).await;
    }

    let mut reader = Reader::subscribe(&bus, &group, &topic).await;
    let read = reader.read(10).await;
    for delivery in &read[..6] {
        reader.commit(delivery).await.expect("commit");
    }
    drop(reader);
    assert_group_left(kafka, &group);
    assert_eq!(committed_offset(kafka, &group, &topic, 0), Some(6), "the last commit was not committed when the consumer closed");

    let mut reader = Reader::subscribe(&bus, &group, &topic).await;
    let again = reader.read(4).await;
    assert_eq!(again.iter().map(|d| text(&d.payload)).collect::<Vec<_>>(), ["m6", "m7", "m8", "m9"]);
    assert_eq!(again[0].offset, 6);
    publish(&bus, &topic, "k", "m10").await;
    let later = reader.read(1).await;
    assert_eq!(text(&later[0].payload), "m10");
    reader.assert_quiet(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncommitted_messages_are_delivered_again() {
    let kafka = crate::kafka::shared();
    let bus = open_bus(kafka, 2).await;
    let topic = new_topic(&bus, "redeliver").await;
    let group = unique("group");
    for i in 0..6 {
        publish(&bus, &topic, &format!("k{i}"), &format!("m{i}")).await;
    }

    let mut reader = Reader::subscribe(&bus, &group, &topic).await;
    let first: BTreeSet<(u32, u64)> = reader.read(6).await.iter().map(|d| (d.partition, d.offset)).collect();
    drop(reader);

    let mut reader = Reader::subscribe(&bus, &group, &topic).await;
    let second: BTreeSet<(u32, u64)> = reader.read(6).await.iter().map(|d| (d.partition, d.offset)).collect();
    assert_eq!(first, second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_partition_does_not_hold_back_another() {
    let kafka = crate::kafka::shared();
    let bus = open_bus(kafka, 2).await;
    let topic = new_topic(&bus, "stall").await;
    let (slow_key, fast_key) = keys_in_different_partitions(&bus).await;
    // Many times what a feed buffers.
    for i in 0..200 {
        publish(&bus, &topic, &slow_key, &format!("slow-{i}")).await;
    }
    let slow_partition = publish(&bus, &topic, &slow_key, "slow-200").await.partition;
    let fast_partition = 1 - slow_partition;

    let mut reader = Reader::subscribe(&bus, &unique("group"), &topic).await;
    let fast = |feed: &PartitionFeed| feed.partition == fast_partition;
    reader.feed(&topic, slow_partition).await;
    for i in 0..40 {
        publish(&bus, &topic, &fast_key, &format!("fast-{i}")).await;
    }
    let read: Vec<String> = reader.read_where(40, fast).await.iter().map(|d| text(&d.payload)).collect();
    assert_eq!(read, (0..40).map(|i| format!("fast-{i}")).collect::<Vec<_>>());

    // The slow partition then delivers everything, in order.
    let slow = |feed: &PartitionFeed| feed.partition == slow_partition;
    let read: Vec<String> = reader.read_where(201, slow).await.iter().map(|d| text(&d.payload)).collect();
    assert_eq!(read, (0..=200).map(|i| format!("slow-{i}")).collect::<Vec<_>>());
}

/// The next feed a subscription hands out.
async fn next_feed(subscription: &mut Subscription) -> PartitionFeed {
    tokio::time::timeout(READ_TIMEOUT, subscription.feeds.recv())
        .await
        .unwrap_or_else(|_| panic!("no partition assigned within {READ_TIMEOUT:?}"))
        .expect("the subscription ended")
}

/// Waits until a feed is closed (after what it still buffered).
async fn assert_closes(feed: &mut PartitionFeed) {
    let drained = tokio::time::timeout(READ_TIMEOUT, async { while feed.messages.recv().await.is_some() {} }).await;
    assert!(drained.is_ok(), "the feed of partition {} stayed open", feed.partition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_partition_closes_its_feed_and_refuses_commits() {
    let kafka = crate::kafka::shared();
    let bus = open_bus(kafka, 2).await;
    let topic = new_topic(&bus, "revoke").await;
    let group = unique("group");
    let mut first = bus.subscribe(&group, std::slice::from_ref(&topic)).await.expect("subscribe");
    let mut revoked = [next_feed(&mut first).await, next_feed(&mut first).await];

    // A second member joins: the group takes the partitions back and shares them out.
    let mut second = bus.subscribe(&group, std::slice::from_ref(&topic)).await.expect("subscribe");
    for feed in &mut revoked {
        assert_closes(feed).await;
        let refused = feed.commit.commit(0).await;
        assert!(matches!(refused, Err(BusError::Other(_))), "{refused:?}");
    }
    let (mut kept, taken) = (next_feed(&mut first).await, next_feed(&mut second).await);
    assert_ne!(kept.partition, taken.partition);
    kept.commit.commit(0).await.expect("commit an assigned partition");

    // Dropping a subscription closes its feeds.
    drop(first);
    assert_closes(&mut kept).await;
}

/// Two keys the bus puts in different partitions of a two-partition topic, found on a
/// topic of their own (the partition depends only on the key and the count).
async fn keys_in_different_partitions(bus: &Bus) -> (String, String) {
    let probes = new_topic(bus, "probes").await;
    let first = publish(bus, &probes, "key-0", "probe").await.partition;
    for i in 1.. {
        let key = format!("key-{i}");
        if publish(bus, &probes, &key, "probe").await.partition != first {
            return ("key-0".to_owned(), key);
        }
    }
    unreachable!("keys run out")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_broker_is_unavailable_and_publishing_resumes_when_it_is_back() {
    let kafka = Kafka::start();
    let bus = open_bus(&kafka, 1).await;
    let topic = new_topic(&bus, "outage").await;
    publish(&bus, &topic, "k", "before").await;

    kafka.stop();
    let timeout = Duration::from_secs(3);
    let started = Instant::now();
    let result = bus.publish(message(&topic, "k", "during"), timeout).await;
    let took = started.elapsed();
    match &result {
        Err(BusError::Unavailable(reason)) => assert!(reason.contains(&kafka.bootstrap()), "{reason}"),
        other => panic!("publish with the broker down: {other:?}"),
    }
    assert!(took >= timeout && took < timeout + Duration::from_secs(2), "took {took:?}");
    let created = bus.ensure_topics(&[unique("never")]).await;
    assert!(matches!(created, Err(BusError::Unavailable(_))), "{created:?}");

    kafka.start_again();
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        match bus.publish(message(&topic, "k", "after"), PUBLISH_TIMEOUT).await {
            Ok(_) => break,
            Err(e) => assert!(Instant::now() < deadline, "publishing did not resume: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_stream_loses_nothing() {
    let kafka = Kafka::start();
    let bus = open_bus(&kafka, 3).await;
    let topic = new_topic(&bus, "restart").await;
    let group = unique("group");
    let mut reader = Reader::subscribe(&bus, &group, &topic).await;
    let mut expected = BTreeSet::new();
    for i in 0..30 {
        let payload = format!("before-{i:02}");
        publish(&bus, &topic, &format!("k{}", i % 7), &payload).await;
        expected.insert(payload);
    }
    // Handle (and commit) some, as the trigger does, before the broker goes.
    // A commit may fail when a rebalance revoked the partition: it is then redelivered.
    let mut read = reader.read(10).await;
    for delivery in &read {
        let _ = reader.commit(delivery).await;
    }

    kafka.stop();
    // A publish while the broker is down completes once it is back.
    let waiting = {
        let bus = bus.clone();
        let topic = topic.clone();
        tokio::spawn(async move { bus.publish(message(&topic, "k0", "during"), Duration::from_secs(25)).await })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    kafka.start_again();
    waiting.await.unwrap().expect("the publish waiting for the broker");
    expected.insert("during".to_owned());
    for i in 0..30 {
        let payload = format!("after-{i:02}");
        publish(&bus, &topic, &format!("k{}", i % 7), &payload).await;
        expected.insert(payload);
    }

    while read.iter().map(|d| text(&d.payload)).collect::<BTreeSet<_>>() != expected {
        let more = reader.read(1).await;
        let _ = reader.commit(&more[0]).await;
        read.extend(more);
    }
    // Redelivery after a rebalance is allowed; within a partition, the order is kept.
    for (partition, payloads) in by_partition(&read) {
        let mut first_seen = Vec::new();
        for payload in payloads {
            if !first_seen.contains(&payload) {
                first_seen.push(payload);
            }
        }
        let before: Vec<&String> = first_seen.iter().filter(|p| p.starts_with("before")).collect();
        let after: Vec<&String> = first_seen.iter().filter(|p| p.starts_with("after")).collect();
        assert!(before.is_sorted() && after.is_sorted(), "partition {partition} out of order: {first_seen:?}");
    }
}
