//! Consumer group membership: one librdkafka consumer per subscription, each assigned
//! partition its own bounded feed.
//!
//! - **No head-of-line blocking.** When a partition is assigned, its messages are split
//!   off the consumer queue into a queue of its own, in the rebalance callback before
//!   librdkafka starts fetching it, and a task per partition moves them into the feed's
//!   channel (capacity [`FEED_BUFFER`]). A full feed stalls only its task; librdkafka
//!   stops prefetching a partition once its queue holds `queued.min.messages` (or
//!   `queued.max.messages.kbytes`), so memory stays bounded while the others flow.
//! - **Offsets.** `enable.auto.commit=true` with `enable.auto.offset.store=false`: a
//!   feed's [`Commit`] stores the offset in librdkafka, which commits stored offsets to
//!   the group every second, when partitions are revoked, and when the consumer closes.
//!   Nothing else is ever stored, so a crash redelivers what was handled since the last
//!   commit and never skips a message. (A broker round trip per handled message would
//!   cap a partition at one message per round trip.)
//! - **Revocation.** The rebalance callback first stops the trigger from taking more of
//!   a revoked partition's messages ([`Commit::still_assigned`]), then waits (up to
//!   [`REVOKE_WAIT`]) for the message being handled to be committed, so its offset goes
//!   out with the revocation's commit and the next owner does not handle it a second
//!   time, at once. Then the partition's task is aborted, which closes the feed, and
//!   its `Commit` fails from then on: a handler slower than the wait cannot store an
//!   offset for a partition another member now owns.
//! - **A thread per subscription** polls the consumer queue: it runs the rebalance
//!   callbacks and, once the subscription is dropped, closes the consumer (the final
//!   commit, leaving the group), which blocks, away from the runtime's workers.

use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use rdkafka::bindings as librdkafka;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::runtime::Handle;
use tokio::sync::{Notify, mpsc};
use tokio::task::AbortHandle;

use super::logging::ClientLog;
use super::{KafkaConfig, bus_error, client_config};
use crate::{BusError, Commit, Delivery, FEED_BUFFER, PartitionFeed, Subscription};
use estore_engine::metrics::PartitionLabels;
use rdkafka::statistics::Statistics;

type GroupConsumer = BaseConsumer<GroupMember>;

/// How long one poll of the consumer queue waits, so a dropped subscription is noticed
/// within this.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How long a rebalance waits for the messages being handled on revoked partitions.
/// Heartbeats go on meanwhile (librdkafka sends them from its own thread).
const REVOKE_WAIT: Duration = Duration::from_secs(5);

/// New feeds waiting for the trigger to take them. When it does not, the rebalance
/// callback waits (new partitions start later), so nothing is dropped.
const NEW_FEEDS_BUFFER: usize = 64;

/// Joins `group` for `topics`. Feeds arrive as partitions are assigned.
pub fn subscribe(config: &KafkaConfig, group: &str, topics: &[String]) -> Result<Subscription, BusError> {
    let runtime = Handle::try_current().map_err(|_| BusError::Other("subscribing needs a Tokio runtime".into()))?;
    let (new_feeds, feeds) = mpsc::channel(NEW_FEEDS_BUFFER);
    let member = GroupMember {
        group: group.to_owned(),
        log: ClientLog::new(format!("consumer group {group}")),
        runtime,
        new_feeds,
        consumer: OnceLock::new(),
        feeds: Mutex::new(HashMap::new()),
        opened: Mutex::new(Vec::new()),
    };
    let consumer: Arc<GroupConsumer> = Arc::new(
        client_config(
            config,
            &[
                ("group.id", group),
                ("enable.auto.commit", "true"),
                ("enable.auto.offset.store", "false"),
                ("auto.commit.interval.ms", "1000"),
                ("auto.offset.reset", "earliest"),
                // A host that died gives up its partitions after this long, instead of
                // librdkafka's 45 s; heartbeats go every 3 s.
                ("session.timeout.ms", "10000"),
                ("queued.min.messages", "1000"),
                // The consumer lag the metrics report comes with these statistics.
                ("statistics.interval.ms", "5000"),
                ("queued.max.messages.kbytes", "8192"),
            ],
        )
        .create_with_context(member)
        .map_err(|e| bus_error(&format!("create a Kafka consumer for group `{group}`"), &e))?,
    );
    // Fresh, so never set before.
    let _ = consumer.context().consumer.set(Arc::downgrade(&consumer));
    let topic_names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topic_names).map_err(|e| bus_error(&format!("subscribe group `{group}` to {topics:?}"), &e))?;

    let stop = Arc::new(AtomicBool::new(false));
    std::thread::Builder::new()
        .name("kafka-consumer".into())
        .spawn({
            let stop = stop.clone();
            move || serve(consumer, &stop)
        })
        .map_err(|e| BusError::Other(format!("start the consumer thread of group `{group}`: {e}")))?;
    Ok(Subscription { feeds, _membership: Box::new(Membership { stop }) })
}

/// Held by the [`Subscription`]: dropping it tells the consumer thread to close.
struct Membership {
    stop: Arc<AtomicBool>,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// The consumer thread: serves the consumer queue (rebalances, errors) until the
/// subscription is dropped, then ends the feeds and closes the consumer.
fn serve(consumer: Arc<GroupConsumer>, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        poll(&consumer);
    }
    consumer.context().end_all_feeds();
    close(consumer);
}

fn poll(consumer: &GroupConsumer) {
    match consumer.poll(POLL_INTERVAL) {
        None => {}
        // The context logged it when librdkafka raised it.
        Some(Err(error)) => tracing::debug!(%error, "Kafka consumer error"),
        Some(Ok(message)) => tracing::error!(
            topic = message.topic(),
            partition = message.partition(),
            offset = message.offset(),
            "a Kafka message arrived outside its partition's feed: not delivered, not committed"
        ),
    }
}

/// Closes the consumer (its final commit, leaving the group) on this thread, once the
/// aborted partition tasks have let go of it: were the last reference dropped by one
/// of them, the close would block a runtime worker. The queue is served meanwhile.
fn close(mut consumer: Arc<GroupConsumer>) {
    loop {
        match Arc::try_unwrap(consumer) {
            Ok(consumer) => return drop(consumer),
            Err(shared) => {
                poll(&shared);
                consumer = shared;
            }
        }
    }
}

/// The consumer's context: librdkafka's logs, and the rebalance callbacks that open
/// and end partition feeds.
struct GroupMember {
    group: String,
    log: ClientLog,
    runtime: Handle,
    new_feeds: mpsc::Sender<PartitionFeed>,
    /// The consumer this is the context of, to split partition queues off it.
    consumer: OnceLock<Weak<GroupConsumer>>,
    feeds: Mutex<HashMap<(String, i32), FeedHandle>>,
    /// Feeds opened before an assignment, handed out once it is applied.
    opened: Mutex<Vec<PartitionFeed>>,
}

/// What ends a feed: its task, and the state its `Commit` shares.
struct FeedHandle {
    task: AbortHandle,
    state: Arc<FeedState>,
}

/// A partition's feed as its handler and a rebalance both see it.
#[derive(Default)]
struct FeedState {
    /// A rebalance is taking the partition away: no more messages are to be taken.
    draining: AtomicBool,
    /// A message was taken and its commit has not come yet.
    in_progress: AtomicBool,
    /// The partition is gone: commits fail.
    revoked: AtomicBool,
}

/// Ends feeds the way a revocation must: no new messages taken from any of them, the
/// ones in progress given [`REVOKE_WAIT`] to finish and commit, then each closed.
fn end_feeds(feeds: Vec<FeedHandle>) {
    for feed in &feeds {
        feed.state.draining.store(true, Ordering::SeqCst);
    }
    let deadline = std::time::Instant::now() + REVOKE_WAIT;
    while feeds.iter().any(|feed| feed.state.in_progress.load(Ordering::SeqCst)) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    for feed in feeds {
        feed.state.revoked.store(true, Ordering::Release);
        feed.task.abort();
    }
}

impl ClientContext for GroupMember {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.log.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        let metrics = estore_engine::metrics::global();
        for (topic, stats) in statistics.topics {
            // Partition -1 is librdkafka's own bookkeeping, not a partition.
            for (partition, stats) in stats.partitions.into_iter().filter_map(|(p, s)| Some((u32::try_from(p).ok()?, s))) {
                let labels = PartitionLabels { group: self.group.clone(), topic: topic.clone(), partition };
                metrics.record_kafka_lag(labels, stats.consumer_lag);
            }
        }
    }
}

impl ConsumerContext for GroupMember {
    /// Runs before librdkafka applies the (un)assignment: a partition's queue must be
    /// split off before its fetching starts, or its first messages would land on the
    /// consumer queue.
    fn pre_rebalance(&self, _consumer: &GroupConsumer, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => self.open_feeds(partitions),
            Rebalance::Revoke(partitions) => self.end_feeds(partitions),
            Rebalance::Error(error) => tracing::warn!(%error, "Kafka consumer group rebalance failed"),
        }
    }

    /// Hands the new feeds out once their partitions are assigned: before, librdkafka
    /// refuses to store their offsets.
    fn post_rebalance(&self, _consumer: &GroupConsumer, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(_) = rebalance {
            self.hand_out_feeds();
        }
    }
}

impl GroupMember {
    fn open_feeds(&self, partitions: &TopicPartitionList) {
        // Gone only while the consumer closes, when nothing is assigned any more.
        let Some(consumer) = self.consumer.get().and_then(Weak::upgrade) else { return };
        for element in partitions.elements() {
            match self.open_feed(&consumer, element.topic(), element.partition()) {
                Some(feed) => self.opened.lock().unwrap_or_else(PoisonError::into_inner).push(feed),
                None => tracing::error!(
                    topic = element.topic(),
                    partition = element.partition(),
                    "could not split off the queue of an assigned Kafka partition: it is not consumed"
                ),
            }
        }
    }

    fn hand_out_feeds(&self) {
        let opened = std::mem::take(&mut *self.opened.lock().unwrap_or_else(PoisonError::into_inner));
        for feed in opened {
            // Fails only when the subscription was dropped: the thread is about to close.
            if self.new_feeds.blocking_send(feed).is_err() {
                return;
            }
        }
    }

    fn open_feed(&self, consumer: &Arc<GroupConsumer>, topic: &str, partition: i32) -> Option<PartitionFeed> {
        let feed_partition = u32::try_from(partition).ok()?;
        let mut queue = consumer.split_partition_queue(topic, partition)?;
        let wake = Arc::new(Notify::new());
        queue.set_nonempty_callback({
            let wake = wake.clone();
            move || wake.notify_one()
        });
        let (sender, messages) = mpsc::channel(FEED_BUFFER);
        let task = self.runtime.spawn(forward(queue, topic.to_owned(), wake, sender));
        let state = Arc::new(FeedState::default());
        let handle = FeedHandle { task: task.abort_handle(), state: state.clone() };
        if let Some(previous) = self.lock_feeds().insert((topic.to_owned(), partition), handle) {
            end_feeds(vec![previous]);
        }
        let commit = PartitionCommit { consumer: Arc::downgrade(consumer), topic: topic.to_owned(), partition, state };
        Some(PartitionFeed { topic: topic.to_owned(), partition: feed_partition, messages, commit: Arc::new(commit) })
    }

    fn end_feeds(&self, partitions: &TopicPartitionList) {
        let revoked: Vec<FeedHandle> = {
            let mut feeds = self.lock_feeds();
            partitions.elements().iter().filter_map(|e| feeds.remove(&(e.topic().to_owned(), e.partition()))).collect()
        };
        end_feeds(revoked);
    }

    fn end_all_feeds(&self) {
        let all: Vec<FeedHandle> = self.lock_feeds().drain().map(|(_, feed)| feed).collect();
        end_feeds(all);
    }

    fn lock_feeds(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i32), FeedHandle>> {
        self.feeds.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Moves one partition's messages into its feed, in offset order, waiting while the
/// feed is full. Ends when the trigger drops the feed, or is aborted on revocation.
async fn forward(queue: PartitionQueue<GroupMember>, topic: String, wake: Arc<Notify>, feed: mpsc::Sender<Delivery>) {
    loop {
        // The borrowed message must not live across an await: convert it first.
        let next = match queue.poll(Duration::ZERO) {
            None => None,
            Some(Ok(message)) => Some(delivery(&topic, &message)),
            // The context logged it when librdkafka raised it.
            Some(Err(error)) => {
                tracing::debug!(%error, topic, "Kafka partition error");
                continue;
            }
        };
        match next {
            // librdkafka calls the nonempty callback when the queue stops being empty;
            // a call that came before this wait left a permit, so none is missed.
            None => wake.notified().await,
            Some(Ok(delivery)) => {
                if feed.send(delivery).await.is_err() {
                    return;
                }
            }
            Some(Err(reason)) => {
                tracing::error!(topic, "an impossible Kafka message ({reason}): the partition's feed ends");
                return;
            }
        }
    }
}

pub(super) fn delivery(topic: &str, message: &BorrowedMessage<'_>) -> Result<Delivery, String> {
    let partition = message.partition();
    let offset = message.offset();
    Ok(Delivery {
        topic: topic.to_owned(),
        partition: u32::try_from(partition).map_err(|_| format!("partition {partition}"))?,
        offset: u64::try_from(offset).map_err(|_| format!("offset {offset}"))?,
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        headers: headers(message),
        timestamp_ms: message.timestamp().to_millis().and_then(|ms| u64::try_from(ms).ok()).unwrap_or_default(),
    })
}

/// A message's headers, names decoded lossily. rdkafka's own accessor panics on a
/// name that is not UTF-8, and names are whatever the producer sent.
fn headers(message: &BorrowedMessage<'_>) -> Vec<(String, Vec<u8>)> {
    let mut headers = std::ptr::null_mut();
    let mut out = Vec::new();
    // SAFETY: the message is valid while borrowed, and its headers with it; names and
    // values are copied out before the borrow ends. librdkafka reports every failure
    // as an error code, checked before any pointer it returned is read.
    unsafe {
        if librdkafka::rd_kafka_message_headers(message.ptr(), &mut headers) != librdkafka::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
        {
            return out;
        }
        for index in 0..librdkafka::rd_kafka_header_cnt(headers) {
            let (mut name, mut value, mut size) = (std::ptr::null(), std::ptr::null(), 0);
            if librdkafka::rd_kafka_header_get_all(headers, index, &mut name, &mut value, &mut size)
                != librdkafka::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
            {
                break;
            }
            let value = if value.is_null() { Vec::new() } else { std::slice::from_raw_parts(value.cast::<u8>(), size).to_vec() };
            out.push((CStr::from_ptr(name).to_string_lossy().into_owned(), value));
        }
    }
    out
}

/// A feed's commit: stores the offset for librdkafka's next commit of the group.
struct PartitionCommit {
    /// Weak, so a feed the trigger keeps does not keep the consumer from closing.
    consumer: Weak<GroupConsumer>,
    topic: String,
    partition: i32,
    state: Arc<FeedState>,
}

impl PartitionCommit {
    fn store(&self, next_offset: u64) -> Result<(), BusError> {
        let partition = format!("{}/{}", self.topic, self.partition);
        if self.state.revoked.load(Ordering::Acquire) {
            return Err(BusError::Other(format!(
                "partition {partition} is no longer assigned here; its next owner resumes after the last commit"
            )));
        }
        let consumer = self.consumer.upgrade().ok_or_else(|| BusError::Other(format!("the subscription to {partition} has ended")))?;
        let offset = i64::try_from(next_offset).map_err(|_| BusError::Invalid(format!("offset {next_offset} is out of range")))?;
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(&self.topic, self.partition, Offset::Offset(offset))
            .map_err(|e| bus_error(&format!("commit {partition}"), &e))?;
        // Not `store_offset`, which stores the offset after the one it is given.
        consumer.store_offsets(&offsets).map_err(|e| bus_error(&format!("commit {partition} at {next_offset}"), &e))
    }
}

impl Commit for PartitionCommit {
    fn commit(&self, next_offset: u64) -> BoxFuture<'_, Result<(), BusError>> {
        let stored = self.store(next_offset);
        self.state.in_progress.store(false, Ordering::Release);
        Box::pin(std::future::ready(stored))
    }

    fn still_assigned(&self) -> bool {
        // In progress first, then the check (both sequentially consistent, as the
        // rebalance's mirror image in `end_feeds`): a rebalance that starts draining
        // right after the check sees this message in progress and waits for it.
        self.state.in_progress.store(true, Ordering::SeqCst);
        if self.state.draining.load(Ordering::SeqCst) {
            self.state.in_progress.store(false, Ordering::Release);
            return false;
        }
        true
    }
}
