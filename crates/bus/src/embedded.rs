//! The embedded bus: Kafka's model in one SQLite file, `<state dir>/bus/bus.db`, so
//! an application runs with nothing installed and moves to Kafka unchanged. Topics
//! have a fixed number of partitions, a key picks its partition with Kafka's murmur2,
//! offsets are dense per partition from 0, and consumer groups commit how far they
//! have handled each partition; a new group starts at the earliest message.
//!
//! One writer task owns the only writing connection. Every publish, commit and topic
//! creation goes through it, so offsets are numbered without races, and the writes
//! that queue up while one transaction syncs to disk are committed together in the
//! next one (group commit: many publishes share an fsync). Feeds read through a pool
//! of reader connections, which WAL lets run beside the writer, and wake on a
//! per-partition `watch` the writer advances after each commit.
//!
//! The schema:
//! - `bus_topics(name, partitions)`: a topic's partition count, fixed at creation.
//! - `bus_partitions(topic, partition, next_offset)`: the offset the next message of
//!   a partition gets; kept apart from the messages so retention cannot reuse offsets.
//! - `bus_messages(topic, partition, offset, key, payload, headers, timestamp_ms)`:
//!   the log; `headers` is JSON, `[[name, [bytes]], ...]`.
//! - `bus_offsets(topic, partition, consumer_group, next_offset)`: each group's
//!   committed position, which only moves forward.
//!
//! Two subscriptions of one group in one process each get every partition (there is
//! no rebalancing between members of a single host): both read from the committed
//! offsets, so messages may be handled twice, which at-least-once delivery allows.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use futures::future::{BoxFuture, try_join_all};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Connection;
use tokio::sync::{mpsc, oneshot, watch};

pub use estore_runtime_config::bus::{DEFAULT_RETENTION, EmbeddedConfig};

use super::{BusError, Commit, Delivery, FEED_BUFFER, Outgoing, PartitionFeed, Position, Read, Subscription, validate_topic};



/// Writes committed in one transaction at most: enough to share one fsync among many
/// publishers, few enough that none waits long behind the others.
const MAX_BATCH: usize = 256;

/// Writes waiting for the writer; beyond this, publishers wait to enqueue.
const WRITE_QUEUE: usize = 1024;

/// Reader connections: a feed holds one only while it reads a batch.
const READERS: u32 = 4;

/// How often an idle feed reads anyway. Publishes through this bus wake feeds at once;
/// this catches messages written to the file by anything else.
const FALLBACK_POLL: Duration = Duration::from_secs(2);

/// How long a feed waits after a failed read before reading again.
const READ_RETRY: Duration = Duration::from_secs(1);

/// How often retention runs, besides once at open.
const PURGE_INTERVAL: Duration = Duration::from_secs(60 * 60);

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS bus_topics (
        name TEXT PRIMARY KEY,
        partitions INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS bus_partitions (
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        next_offset INTEGER NOT NULL,
        PRIMARY KEY (topic, partition)
    );
    CREATE TABLE IF NOT EXISTS bus_messages (
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        offset INTEGER NOT NULL,
        key BLOB,
        payload BLOB NOT NULL,
        headers TEXT NOT NULL,
        timestamp_ms INTEGER NOT NULL,
        PRIMARY KEY (topic, partition, offset)
    );
    CREATE TABLE IF NOT EXISTS bus_offsets (
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        consumer_group TEXT NOT NULL,
        next_offset INTEGER NOT NULL,
        PRIMARY KEY (topic, partition, consumer_group)
    );";

/// The bus in one SQLite file; see the module documentation.
pub struct EmbeddedBus {
    path: Arc<Path>,
    partitions: u32,
    readers: SqlitePool,
    writer: Writer,
    /// Topics this bus has used, loaded once: the hot path of a publish reads no schema.
    topics: Mutex<HashMap<String, Arc<Topic>>>,
}

impl EmbeddedBus {
    pub async fn open(config: &EmbeddedConfig, state_dir: &Path) -> anyhow::Result<EmbeddedBus> {
        anyhow::ensure!(config.partitions > 0, "the embedded bus needs at least one partition per topic");
        let folder = state_dir.join("bus");
        std::fs::create_dir_all(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
        let path: Arc<Path> = folder.join("bus.db").into();
        let options = connect_options(&path);
        let cannot_open = || format!("cannot open the embedded bus at {}", path.display());
        let mut connection = SqliteConnection::connect_with(&options).await.with_context(cannot_open)?;
        sqlx::raw_sql(SCHEMA).execute(&mut connection).await.with_context(cannot_open)?;
        let readers = SqlitePoolOptions::new().max_connections(READERS).connect_with(options).await.with_context(cannot_open)?;
        let (requests, queue) = mpsc::channel(WRITE_QUEUE);
        let task = WriterTask { connection, path: path.clone(), retention: config.retention, syncing: true };
        tokio::spawn(task.run(queue));
        Ok(EmbeddedBus {
            writer: Writer { requests, path: path.clone() },
            path,
            partitions: config.partitions,
            readers,
            topics: Mutex::default(),
        })
    }

    /// Returns once the message is committed to the file. A publish dropped before it
    /// returns may still be stored, as a Kafka produce that timed out may.
    pub async fn publish(&self, message: Outgoing) -> Result<Position, BusError> {
        let Outgoing { topic, key, payload, headers } = message;
        let topic = self.topic(&topic).await?;
        let partition = topic.partition_for(key.as_deref());
        let headers = serde_json::to_string(&headers).map_err(|e| BusError::Invalid(format!("unstorable headers: {e}")))?;
        let change = Change::Publish { topic, partition, key, payload, headers, timestamp_ms: now_ms() };
        self.writer.write(change).await?.ok_or_else(|| self.writer.failed("the writer stored the message at no position"))
    }

    pub async fn ensure_topics(&self, topics: &[String]) -> Result<(), BusError> {
        for name in topics {
            self.topic(name).await?;
        }
        Ok(())
    }

    /// Hands out a feed for every partition of `topics` at once, from the group's
    /// committed offsets; `feeds` then stays open, empty, until the subscription drops.
    pub async fn subscribe(&self, group: &str, topics: &[String]) -> Result<Subscription, BusError> {
        if group.is_empty() {
            return Err(BusError::Invalid("the consumer group name is empty".into()));
        }
        let group: Arc<str> = group.into();
        let mut assigned = Vec::new();
        for name in topics.iter().collect::<BTreeSet<_>>() {
            let topic = self.topic(name).await?;
            let starts = self.join(&group, &topic).await?;
            assigned.push((topic, starts));
        }
        let (stop, stopped) = watch::channel(());
        let (feeds_sender, feeds) = mpsc::channel(assigned.iter().map(|(_, starts)| starts.len()).sum::<usize>().max(1));
        for (topic, starts) in assigned {
            for ((partition, end), start) in (0u32..).zip(&topic.ends).zip(starts) {
                let feed = self.start_feed(&group, &topic, partition, end.subscribe(), start, stopped.clone());
                feeds_sender.try_send(feed).map_err(|e| BusError::Other(format!("cannot hand out a partition feed: {e}")))?;
            }
        }
        Ok(Subscription { feeds, _membership: Box::new(Membership { _stop: stop, _feeds: feeds_sender }) })
    }

    pub fn describe(&self) -> String {
        format!("embedded bus in {}", self.path.display())
    }

    /// The topic `name`, created with the configured partition count on first use;
    /// an existing topic keeps the count it was created with.
    async fn topic(&self, name: &str) -> Result<Arc<Topic>, BusError> {
        if let Some(topic) = self.lock_topics().get(name) {
            return Ok(topic.clone());
        }
        validate_topic(name)?;
        self.writer.write(Change::CreateTopic { name: name.to_owned(), partitions: self.partitions }).await?;
        let topic = Arc::new(self.load_topic(name).await?);
        Ok(self.lock_topics().entry(name.to_owned()).or_insert(topic).clone())
    }

    async fn load_topic(&self, name: &str) -> Result<Topic, BusError> {
        let ends: Vec<i64> = sqlx::query_scalar("SELECT next_offset FROM bus_partitions WHERE topic = ? ORDER BY partition")
            .bind(name)
            .fetch_all(&self.readers)
            .await
            .map_err(|e| storage_error(&self.path, e))?;
        let ends = ends.into_iter().map(offset_from_db).collect::<sqlx::Result<Vec<_>>>().map_err(|e| storage_error(&self.path, e))?;
        Topic::new(name, ends).ok_or_else(|| self.writer.failed(&format!("topic `{name}` has no partitions")))
    }

    /// Registers the group on every partition of `topic`, with a commit of offset 0
    /// (which never moves a known group back), so retention spares what the group has
    /// not handled yet; returns the offset it resumes at on each partition.
    async fn join(&self, group: &Arc<str>, topic: &Arc<Topic>) -> Result<Vec<u64>, BusError> {
        try_join_all((0..topic.partitions).map(|partition| {
            let change = Change::Commit { group: group.clone(), topic: topic.clone(), partition, next_offset: 0 };
            self.writer.write(change)
        }))
        .await?;
        let starts: Vec<i64> =
            sqlx::query_scalar("SELECT next_offset FROM bus_offsets WHERE topic = ? AND consumer_group = ? ORDER BY partition")
                .bind(&topic.name)
                .bind(&**group)
                .fetch_all(&self.readers)
                .await
                .map_err(|e| storage_error(&self.path, e))?;
        if starts.len() != topic.partitions as usize {
            return Err(self.writer.failed(&format!("group `{group}` is not on every partition of `{}`", topic.name)));
        }
        starts.into_iter().map(offset_from_db).collect::<sqlx::Result<_>>().map_err(|e| storage_error(&self.path, e))
    }

    fn start_feed(
        &self,
        group: &Arc<str>,
        topic: &Arc<Topic>,
        partition: u32,
        end: watch::Receiver<u64>,
        start: u64,
        stop: watch::Receiver<()>,
    ) -> PartitionFeed {
        let (out, messages) = mpsc::channel(FEED_BUFFER);
        let reader = FeedTask {
            readers: self.readers.clone(),
            path: self.path.clone(),
            topic: topic.clone(),
            partition,
            next: start,
            end,
            out,
            stop,
        };
        tokio::spawn(reader.run());
        let commit = PartitionCommit { writer: self.writer.clone(), group: group.clone(), topic: topic.clone(), partition };
        PartitionFeed { topic: topic.name.clone(), partition, messages, commit: Arc::new(commit) }
    }

    /// Sets each group's lag on each partition: messages published and not committed.
    pub async fn report_lag(&self) {
        let lags: Vec<(String, String, u32, i64)> = match sqlx::query_as(
            "SELECT o.consumer_group, p.topic, p.partition, p.next_offset - o.next_offset
             FROM bus_partitions p JOIN bus_offsets o ON o.topic = p.topic AND o.partition = p.partition",
        )
        .fetch_all(&self.readers)
        .await
        {
            Ok(lags) => lags,
            Err(e) => return tracing::debug!("embedded bus {}: no lag for the metrics: {e}", self.path.display()),
        };
        let metrics = estore_engine::metrics::global();
        for (group, topic, partition, lag) in lags {
            metrics.consumer_lag.get_or_create(&estore_engine::metrics::PartitionLabels { group, topic, partition }).set(lag);
        }
    }

    /// [`super::Bus::read`]: straight from the log.
    pub async fn read(&self, topic: &str, which: Read) -> Result<Vec<Delivery>, BusError> {
        let columns = "SELECT partition, offset, key, payload, headers, timestamp_ms FROM bus_messages WHERE topic = ?";
        let rows: Vec<PlacedMessage> = match which {
            Read::Newest(count) => {
                // Rows are appended in publication order, so the rowid is that order
                // across partitions (timestamps repeat within a millisecond).
                sqlx::query_as(&format!("{columns} ORDER BY rowid DESC LIMIT ?"))
                    .bind(topic)
                    .bind(i64::from(count))
                    .fetch_all(&self.readers)
                    .await
            }
            Read::At(position) => {
                let offset = offset_to_db(position.offset).map_err(|e| storage_error(&self.path, e))?;
                sqlx::query_as(&format!("{columns} AND partition = ? AND offset = ?"))
                    .bind(topic)
                    .bind(position.partition)
                    .bind(offset)
                    .fetch_all(&self.readers)
                    .await
            }
        }
        .map_err(|e| storage_error(&self.path, e))?;
        let mut messages = rows
            .into_iter()
            .map(|row| {
                let partition = u32::try_from(row.partition).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                row.message.into_delivery(topic, partition)
            })
            .collect::<sqlx::Result<Vec<Delivery>>>()
            .map_err(|e| storage_error(&self.path, e))?;
        messages.reverse();
        Ok(messages)
    }

    /// Reads the file once through the readers' pool.
    pub async fn check(&self) -> Result<(), BusError> {
        sqlx::query("SELECT 1").execute(&self.readers).await.map(drop).map_err(|e| storage_error(&self.path, e))
    }

    fn lock_topics(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Topic>>> {
        self.topics.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Both the writer and the readers open the file this way.
///
/// `synchronous = FULL`: in WAL mode every commit syncs the WAL, so a publish that
/// returned survives a power cut or OS crash, not only a killed process (NORMAL would
/// do for that). The outbox relay deletes its outbox row (in a database synced at
/// FULL) once publish returns, and the bus is the message's only copy, so anything
/// weaker could lose a message for good; group commit keeps the cost to one sync per
/// batch of writes.
fn connect_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5))
}

/// A topic as this process knows it.
struct Topic {
    name: String,
    partitions: u32,
    /// Per partition, the offset the next message gets, advanced by the writer once a
    /// message is committed; idle feeds wait on it.
    ends: Vec<watch::Sender<u64>>,
    /// Spreads messages without a key. Kafka's clients pick a random or "sticky"
    /// partition instead; none of them promises an order, so round robin is as good.
    unkeyed: AtomicU32,
}

impl Topic {
    /// `None` for a topic without partitions, which the file never holds.
    fn new(name: &str, ends: Vec<u64>) -> Option<Topic> {
        let partitions = u32::try_from(ends.len()).ok().filter(|&n| n > 0)?;
        Some(Topic {
            name: name.to_owned(),
            partitions,
            ends: ends.into_iter().map(|end| watch::channel(end).0).collect(),
            unkeyed: AtomicU32::new(0),
        })
    }

    fn partition_for(&self, key: Option<&[u8]>) -> u32 {
        match key {
            Some(key) => kafka_partition(key, self.partitions),
            None => self.unkeyed.fetch_add(1, Ordering::Relaxed) % self.partitions,
        }
    }

    /// Wakes the partition's feeds for a committed message. Concurrent batches may
    /// report out of order, so the end only moves forward.
    fn advance(&self, position: Position) {
        let Some(end) = self.ends.get(position.partition as usize) else { return };
        let next = position.offset + 1;
        end.send_if_modified(|end| {
            let moved = next > *end;
            if moved {
                *end = next;
            }
            moved
        });
    }
}

/// The partition Kafka's Java client (and librdkafka's `murmur2_random` partitioner)
/// gives a keyed message: `toPositive(murmur2(key)) % partitions`.
fn kafka_partition(key: &[u8], partitions: u32) -> u32 {
    (murmur2(key) & 0x7fff_ffff) as u32 % partitions
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), bit for bit.
fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // Java hashes `int` lengths; keys past 2 GiB do not exist.
    let mut h = SEED ^ data.len() as u32;
    let (words, tail) = data.as_chunks::<4>();
    for word in words {
        let mut k = u32::from_le_bytes(*word);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    if !tail.is_empty() {
        for (i, &byte) in tail.iter().enumerate() {
            h ^= u32::from(byte) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// A change for the writer. Publishes learn their position; the others only succeed.
enum Change {
    CreateTopic {
        name: String,
        partitions: u32,
    },
    Publish {
        topic: Arc<Topic>,
        partition: u32,
        key: Option<Vec<u8>>,
        payload: Vec<u8>,
        headers: String,
        timestamp_ms: i64,
    },
    Commit {
        group: Arc<str>,
        topic: Arc<Topic>,
        partition: u32,
        next_offset: i64,
    },
}

/// A change and who waits for it to be committed.
struct Write {
    change: Change,
    done: oneshot::Sender<Result<Option<Position>, BusError>>,
}

/// The way to the writer task, cloned into every commit handle: the task ends once
/// the bus and every feed's commit handle are gone.
#[derive(Clone)]
struct Writer {
    requests: mpsc::Sender<Write>,
    path: Arc<Path>,
}

impl Writer {
    /// Returns once `change` is committed to the file.
    async fn write(&self, change: Change) -> Result<Option<Position>, BusError> {
        let (done, outcome) = oneshot::channel();
        self.requests.send(Write { change, done }).await.map_err(|_| self.failed("the writer has stopped"))?;
        outcome.await.map_err(|_| self.failed("the writer has stopped"))?
    }

    /// Returns once `change` is queued, ahead of every later write; the writer logs
    /// a failure to commit it.
    async fn queue(&self, change: Change) -> Result<(), BusError> {
        let (done, _) = oneshot::channel();
        self.requests.send(Write { change, done }).await.map_err(|_| self.failed("the writer has stopped"))
    }

    fn failed(&self, what: &str) -> BusError {
        BusError::Other(format!("embedded bus {}: {what}", self.path.display()))
    }
}

/// Owns the only connection that writes.
struct WriterTask {
    connection: SqliteConnection,
    path: Arc<Path>,
    retention: Duration,
    /// Whether the connection syncs each commit now (see [`WriterTask::apply`]).
    syncing: bool,
}

impl WriterTask {
    async fn run(mut self, mut requests: mpsc::Receiver<Write>) {
        self.purge().await;
        let mut purge = tokio::time::interval_at(tokio::time::Instant::now() + PURGE_INTERVAL, PURGE_INTERVAL);
        purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            tokio::select! {
                received = requests.recv_many(&mut batch, MAX_BATCH) => {
                    if received == 0 {
                        break;
                    }
                    self.write_batch(std::mem::take(&mut batch)).await;
                }
                _ = purge.tick() => self.purge().await,
            }
        }
        if let Err(e) = self.connection.close().await {
            tracing::warn!("embedded bus {}: closing the writer connection: {e}", self.path.display());
        }
    }

    /// Commits the batch in one transaction, then answers every writer: all succeed or
    /// all fail.
    async fn write_batch(&mut self, batch: Vec<Write>) {
        match self.apply(&batch).await {
            Ok(positions) => {
                for (write, position) in batch.into_iter().zip(positions) {
                    if let (Change::Publish { topic, .. }, Some(position)) = (&write.change, position) {
                        topic.advance(position);
                    }
                    let _ = write.done.send(Ok(position));
                }
            }
            Err(e) => {
                let error = storage_error(&self.path, e);
                tracing::error!("{error}");
                for write in batch {
                    let _ = write.done.send(Err(error.clone()));
                }
            }
        }
    }

    /// A batch of consumer-offset commits alone is not synced: losing it to a power cut
    /// only redelivers messages already handled, which the handled-message record
    /// recognises (Kafka's consumers commit every few seconds for the same reason).
    /// Every batch with anything else is synced, and syncs the unsynced ones before it,
    /// since the WAL is written in order. An offset commit per handled message would
    /// otherwise cost a sync each and bound a trigger to the disk's sync rate.
    async fn apply(&mut self, batch: &[Write]) -> sqlx::Result<Vec<Option<Position>>> {
        let sync = batch.iter().any(|write| !matches!(write.change, Change::Commit { .. }));
        if sync != self.syncing {
            let level = if sync { "FULL" } else { "NORMAL" };
            sqlx::query(&format!("PRAGMA synchronous = {level}")).execute(&mut self.connection).await?;
            self.syncing = sync;
        }
        let mut tx = self.connection.begin_with("BEGIN IMMEDIATE").await?;
        let mut positions = Vec::with_capacity(batch.len());
        for write in batch {
            positions.push(apply_change(&mut tx, &write.change).await?);
        }
        tx.commit().await?;
        Ok(positions)
    }

    /// Retention: deletes messages older than the retention period that every group
    /// known on their partition has committed past. A group that never comes back
    /// holds its partitions' messages until its `bus_offsets` rows are deleted.
    async fn purge(&mut self) {
        let retention = i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX);
        match self.delete_handled(now_ms().saturating_sub(retention)).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!("embedded bus {}: retention deleted {deleted} messages", self.path.display()),
            Err(e) => tracing::warn!("embedded bus {}: retention failed, retrying in an hour: {e}", self.path.display()),
        }
    }

    async fn delete_handled(&mut self, older_than_ms: i64) -> sqlx::Result<u64> {
        let mut tx = self.connection.begin_with("BEGIN IMMEDIATE").await?;
        let handled: Vec<(String, u32, i64)> = sqlx::query_as(
            "SELECT p.topic, p.partition, coalesce(min(o.next_offset), p.next_offset)
             FROM bus_partitions p LEFT JOIN bus_offsets o ON o.topic = p.topic AND o.partition = p.partition
             GROUP BY p.topic, p.partition",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut deleted = 0;
        for (topic, partition, before) in handled {
            deleted += sqlx::query("DELETE FROM bus_messages WHERE topic = ? AND partition = ? AND offset < ? AND timestamp_ms < ?")
                .bind(topic)
                .bind(partition)
                .bind(before)
                .bind(older_than_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(deleted)
    }
}

async fn apply_change(tx: &mut SqliteConnection, change: &Change) -> sqlx::Result<Option<Position>> {
    match change {
        Change::CreateTopic { name, partitions } => create_topic(tx, name, *partitions).await.map(|()| None),
        Change::Publish { topic, partition, key, payload, headers, timestamp_ms } => {
            let offset: i64 = sqlx::query_scalar(
                "UPDATE bus_partitions SET next_offset = next_offset + 1 WHERE topic = ? AND partition = ?
                 RETURNING next_offset - 1",
            )
            .bind(&topic.name)
            .bind(partition)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO bus_messages (topic, partition, offset, key, payload, headers, timestamp_ms)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&topic.name)
            .bind(partition)
            .bind(offset)
            .bind(key)
            .bind(payload)
            .bind(headers)
            .bind(timestamp_ms)
            .execute(&mut *tx)
            .await?;
            Ok(Some(Position { partition: *partition, offset: offset_from_db(offset)? }))
        }
        Change::Commit { group, topic, partition, next_offset } => {
            sqlx::query(
                "INSERT INTO bus_offsets (topic, partition, consumer_group, next_offset) VALUES (?, ?, ?, ?)
                 ON CONFLICT (topic, partition, consumer_group) DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)",
            )
            .bind(&topic.name)
            .bind(partition)
            .bind(&**group)
            .bind(next_offset)
            .execute(&mut *tx)
            .await?;
            Ok(None)
        }
    }
}

/// Records the topic and its partitions, unless it exists: then it keeps its own count.
async fn create_topic(tx: &mut SqliteConnection, name: &str, partitions: u32) -> sqlx::Result<()> {
    let created = sqlx::query("INSERT INTO bus_topics (name, partitions) VALUES (?, ?) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(partitions)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if created == 0 {
        return Ok(());
    }
    for partition in 0..partitions {
        sqlx::query("INSERT INTO bus_partitions (topic, partition, next_offset) VALUES (?, ?, 0)")
            .bind(name)
            .bind(partition)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Fills one partition feed: reads from the group's position in batches, waits while
/// the handler's buffer is full (holding back only this partition) or while the
/// partition has nothing new, and ends when the subscription or the feed is dropped.
struct FeedTask {
    readers: SqlitePool,
    path: Arc<Path>,
    topic: Arc<Topic>,
    partition: u32,
    /// The offset of the next message to hand out.
    next: u64,
    end: watch::Receiver<u64>,
    out: mpsc::Sender<Delivery>,
    stop: watch::Receiver<()>,
}

impl FeedTask {
    async fn run(mut self) {
        loop {
            let batch = match self.read_batch().await {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::error!("{}", storage_error(&self.path, e));
                    if !self.pause(READ_RETRY).await {
                        return;
                    }
                    continue;
                }
            };
            if batch.is_empty() && !self.wait_for_messages().await {
                return;
            }
            for delivery in batch {
                self.next = delivery.offset + 1;
                if !self.deliver(delivery).await {
                    return;
                }
            }
        }
    }

    async fn read_batch(&self) -> sqlx::Result<Vec<Delivery>> {
        let rows: Vec<StoredMessage> = sqlx::query_as(
            "SELECT offset, key, payload, headers, timestamp_ms FROM bus_messages
             WHERE topic = ? AND partition = ? AND offset >= ? ORDER BY offset LIMIT ?",
        )
        .bind(&self.topic.name)
        .bind(self.partition)
        .bind(offset_to_db(self.next)?)
        .bind(FEED_BUFFER as i64)
        .fetch_all(&self.readers)
        .await?;
        rows.into_iter().map(|row| row.into_delivery(&self.topic.name, self.partition)).collect()
    }

    /// Hands one message to the handler; false once nobody listens.
    async fn deliver(&mut self, delivery: Delivery) -> bool {
        tokio::select! {
            sent = self.out.send(delivery) => sent.is_ok(),
            () = abandoned(&mut self.stop, &self.out) => false,
        }
    }

    /// Waits until this bus commits a message past `next`, or the fallback poll is
    /// due; false once nobody listens.
    async fn wait_for_messages(&mut self) -> bool {
        let next = self.next;
        tokio::select! {
            _ = self.end.wait_for(|&end| end > next) => true,
            () = tokio::time::sleep(FALLBACK_POLL) => true,
            () = abandoned(&mut self.stop, &self.out) => false,
        }
    }

    /// Sleeps for `period`; false once nobody listens.
    async fn pause(&mut self, period: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(period) => true,
            () = abandoned(&mut self.stop, &self.out) => false,
        }
    }
}

/// Completes once the subscription (closing `stop`) or the feed itself is dropped.
async fn abandoned(stop: &mut watch::Receiver<()>, out: &mpsc::Sender<Delivery>) {
    tokio::select! {
        _ = stop.changed() => {}
        () = out.closed() => {}
    }
}

/// A `bus_messages` row as a feed reads it.
#[derive(sqlx::FromRow)]
struct StoredMessage {
    offset: i64,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    headers: String,
    timestamp_ms: i64,
}

/// A `bus_messages` row with its partition, as [`EmbeddedBus::read`] reads it.
#[derive(sqlx::FromRow)]
struct PlacedMessage {
    partition: i64,
    #[sqlx(flatten)]
    message: StoredMessage,
}

impl StoredMessage {
    fn into_delivery(self, topic: &str, partition: u32) -> sqlx::Result<Delivery> {
        Ok(Delivery {
            topic: topic.to_owned(),
            partition,
            offset: offset_from_db(self.offset)?,
            key: self.key,
            payload: self.payload,
            headers: serde_json::from_str(&self.headers).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            timestamp_ms: u64::try_from(self.timestamp_ms).unwrap_or(0),
        })
    }
}

/// What a subscription keeps alive. Dropping it closes `stop`, which ends every feed
/// task, and the feeds channel, which stays open until then so that, as with Kafka,
/// `feeds` does not end while the subscription lives.
struct Membership {
    _stop: watch::Sender<()>,
    _feeds: mpsc::Sender<PartitionFeed>,
}

struct PartitionCommit {
    writer: Writer,
    group: Arc<str>,
    topic: Arc<Topic>,
    partition: u32,
}

impl Commit for PartitionCommit {
    /// Queued, not awaited: as Kafka's consumers store offsets and commit them later,
    /// the trigger goes on to the next message while the writer commits this one with
    /// whatever else is queued. A crash can lose queued commits; that only redelivers
    /// handled messages, which the handled-message record recognises. A later
    /// subscription of the group goes through the same queue, so it resumes after
    /// every commit queued before it.
    ///
    /// The offset is checked before it reaches the writer, so a bad one cannot fail
    /// the other writes of its batch.
    fn commit(&self, next_offset: u64) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            let next_offset = i64::try_from(next_offset).map_err(|_| BusError::Invalid(format!("offset {next_offset} is out of range")))?;
            let change = Change::Commit { group: self.group.clone(), topic: self.topic.clone(), partition: self.partition, next_offset };
            self.writer.queue(change).await
        })
    }
}

/// SQLite failures name the file. A lock held past the busy timeout (another process)
/// or no free reader connection is worth a retry; the rest is not.
fn storage_error(path: &Path, error: sqlx::Error) -> BusError {
    let message = format!("embedded bus {}: {error}", path.display());
    if is_busy(&error) { BusError::Unavailable(message) } else { BusError::Other(message) }
}

fn is_busy(error: &sqlx::Error) -> bool {
    const SQLITE_BUSY: i32 = 5;
    const SQLITE_LOCKED: i32 = 6;
    match error {
        sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(e) => {
            let primary = e.code().and_then(|code| code.parse::<i32>().ok()).map(|code| code & 0xff);
            matches!(primary, Some(SQLITE_BUSY | SQLITE_LOCKED))
        }
        _ => false,
    }
}

/// SQLite integers are signed; offsets past `i64::MAX` are never reached, but are
/// refused rather than wrapped.
fn offset_to_db(offset: u64) -> sqlx::Result<i64> {
    i64::try_from(offset).map_err(|_| sqlx::Error::Encode(format!("offset {offset} is beyond what SQLite stores").into()))
}

fn offset_from_db(value: i64) -> sqlx::Result<u64> {
    u64::try_from(value).map_err(|_| sqlx::Error::Decode(format!("negative offset {value} in the file").into()))
}

fn now_ms() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const WAIT: Duration = Duration::from_secs(10);

    async fn open(dir: &Path, partitions: u32) -> EmbeddedBus {
        let config = EmbeddedConfig { partitions, retention: DEFAULT_RETENTION };
        EmbeddedBus::open(&config, dir).await.expect("open the bus")
    }

    fn message(topic: &str, key: Option<&str>, payload: &str) -> Outgoing {
        Outgoing {
            topic: topic.into(),
            key: key.map(|k| k.as_bytes().to_vec()),
            payload: payload.as_bytes().to_vec(),
            headers: vec![("message-id".into(), payload.as_bytes().to_vec())],
        }
    }

    async fn publish(bus: &EmbeddedBus, topic: &str, key: Option<&str>, payload: &str) -> Position {
        bus.publish(message(topic, key, payload)).await.expect("publish")
    }

    /// Every feed of a subscription, by partition.
    async fn feeds(subscription: &mut Subscription, count: usize) -> Vec<PartitionFeed> {
        let mut feeds = Vec::new();
        for _ in 0..count {
            feeds.push(tokio::time::timeout(WAIT, subscription.feeds.recv()).await.expect("a feed in time").expect("a feed"));
        }
        feeds.sort_by_key(|feed| (feed.topic.clone(), feed.partition));
        feeds
    }

    async fn next(feed: &mut PartitionFeed) -> Delivery {
        tokio::time::timeout(WAIT, feed.messages.recv()).await.expect("a message in time").expect("an open feed")
    }

    fn text(delivery: &Delivery) -> String {
        String::from_utf8_lossy(&delivery.payload).into_owned()
    }

    #[test]
    fn murmur2_matches_kafka() {
        // Kafka's own vectors (UtilsTest.testMurmur2).
        let vectors: [(&str, i32); 6] = [
            ("21", -973932308),
            ("foobar", -790332482),
            ("a-little-bit-long-string", -985981536),
            ("a-little-bit-longer-string", -1486304829),
            ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
            ("abc", 479470107),
        ];
        for (key, hash) in vectors {
            assert_eq!(murmur2(key.as_bytes()), hash, "murmur2({key:?})");
        }
    }

    #[test]
    fn keys_land_on_the_partitions_kafka_picks() {
        // toPositive(murmur2(key)) % 4, as the Java client computes it.
        let expected = [
            ("21", 0),
            ("foobar", 2),
            ("a-little-bit-long-string", 0),
            ("a-little-bit-longer-string", 3),
            ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", 1),
            ("abc", 3),
            ("", 1),
        ];
        for (key, partition) in expected {
            assert_eq!(kafka_partition(key.as_bytes(), 4), partition, "partition of {key:?}");
        }
        assert_eq!(kafka_partition(b"foobar", 12), 6);
        assert_eq!(kafka_partition(b"a-little-bit-longer-string", 12), 11);
    }

    #[tokio::test]
    async fn same_key_same_partition_and_no_key_spreads() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(dir.path(), 4).await;
        for i in 0..5u64 {
            assert_eq!(publish(&bus, "orders", Some("abc"), "m").await, Position { partition: 3, offset: i });
        }
        assert_eq!(publish(&bus, "orders", Some("foobar"), "m").await, Position { partition: 2, offset: 0 });
        let mut unkeyed = BTreeSet::new();
        for _ in 0..4 {
            unkeyed.insert(publish(&bus, "orders", None, "m").await.partition);
        }
        assert_eq!(unkeyed, BTreeSet::from([0, 1, 2, 3]));
    }

    #[tokio::test]
    async fn delivers_every_partition_in_publish_order() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(dir.path(), 3).await;
        let mut published: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for i in 0..60 {
            let payload = format!("message {i}");
            let position = publish(&bus, "events", Some(&format!("key {}", i % 7)), &payload).await;
            let sent = published.entry(position.partition).or_default();
            assert_eq!(position.offset, sent.len() as u64, "dense offsets");
            sent.push(payload);
        }
        let mut subscription = bus.subscribe("readers", &["events".into()]).await.unwrap();
        for (mut feed, partition) in feeds(&mut subscription, 3).await.into_iter().zip(0..) {
            assert_eq!((feed.topic.as_str(), feed.partition), ("events", partition));
            for (offset, payload) in published[&partition].iter().enumerate() {
                let delivery = next(&mut feed).await;
                assert_eq!((delivery.offset, text(&delivery)), (offset as u64, payload.clone()));
                assert_eq!(delivery.header("Message-Id"), Some(payload.as_bytes()));
                assert!(delivery.key.is_some() && delivery.timestamp_ms > 0);
            }
        }
    }

    #[tokio::test]
    async fn a_feed_wakes_for_a_message_published_while_it_waits() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(dir.path(), 1).await;
        let mut subscription = bus.subscribe("g", &["t".into()]).await.unwrap();
        let mut feed = feeds(&mut subscription, 1).await.remove(0);
        tokio::time::sleep(Duration::from_millis(50)).await;
        publish(&bus, "t", None, "hello").await;
        let delivery = tokio::time::timeout(FALLBACK_POLL / 4, feed.messages.recv()).await.expect("woken before the fallback poll");
        assert_eq!(delivery.map(|d| text(&d)), Some("hello".into()));
    }

    #[tokio::test]
    async fn concurrent_publishes_get_dense_unique_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let bus = Arc::new(open(dir.path(), 4).await);
        let publishers = (0..8).map(|task| {
            let bus = bus.clone();
            tokio::spawn(async move {
                let mut positions = Vec::new();
                for i in 0..50 {
                    let key = format!("{task}-{i}");
                    positions.push(bus.publish(message("busy", Some(&key), &key)).await.unwrap());
                }
                positions
            })
        });
        let mut offsets: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        for positions in try_join_all(publishers).await.unwrap() {
            for position in positions {
                offsets.entry(position.partition).or_default().push(position.offset);
            }
        }
        assert_eq!(offsets.values().map(Vec::len).sum::<usize>(), 400);
        for (partition, mut offsets) in offsets {
            offsets.sort_unstable();
            assert_eq!(offsets, (0..offsets.len() as u64).collect::<Vec<_>>(), "partition {partition}");
        }
    }

    #[tokio::test]
    async fn resubscribing_resumes_after_the_commit_and_redelivers_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(dir.path(), 1).await;
        for i in 0..5 {
            publish(&bus, "jobs", None, &format!("job {i}")).await;
        }
        let mut subscription = bus.subscribe("workers", &["jobs".into()]).await.unwrap();
        let mut feed = feeds(&mut subscription, 1).await.remove(0);
        for expected in 0..3 {
            let delivery = next(&mut feed).await;
            assert_eq!(delivery.offset, expected);
            if expected < 2 {
                feed.commit.commit(delivery.offset + 1).await.unwrap();
            }
        }
        // A late commit of an older offset never moves the group back.
        feed.commit.commit(1).await.unwrap();
        drop((feed, subscription));

        let mut subscription = bus.subscribe("workers", &["jobs".into()]).await.unwrap();
        let mut feed = feeds(&mut subscription, 1).await.remove(0);
        let delivery = next(&mut feed).await;
        assert_eq!((delivery.offset, text(&delivery)), (2, "job 2".into()), "the uncommitted message comes again");
        assert_eq!(next(&mut feed).await.offset, 3);

        let mut other = bus.subscribe("auditors", &["jobs".into()]).await.unwrap();
        assert_eq!(next(&mut feeds(&mut other, 1).await[0]).await.offset, 0, "a new group starts at the earliest message");
    }

    #[tokio::test]
    async fn a_full_partition_does_not_hold_back_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(dir.path(), 2).await;
        for _ in 0..FEED_BUFFER * 4 {
            assert_eq!(publish(&bus, "mixed", Some("21"), "stuck").await.partition, 0);
        }
        let mut subscription = bus.subscribe("g", &["mixed".into()]).await.unwrap();
        let mut feeds = feeds(&mut subscription, 2).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let position = tokio::time::timeout(WAIT, bus.publish(message("mixed", Some("abc"), "free"))).await.unwrap().unwrap();
        assert_eq!(position.partition, 1);
        assert_eq!(text(&next(&mut feeds[1]).await), "free");
        assert_eq!(next(&mut feeds[0]).await.offset, 0, "the full partition still delivers once read");
    }

    #[tokio::test]
    async fn reopening_keeps_messages_offsets_and_partition_counts() {
        let dir = tempfile::tempdir().unwrap();
        {
            let bus = open(dir.path(), 3).await;
            bus.ensure_topics(&["kept".into()]).await.unwrap();
            for i in 0..4 {
                publish(&bus, "kept", Some("abc"), &format!("m{i}")).await;
            }
            let mut subscription = bus.subscribe("g", &["kept".into()]).await.unwrap();
            let feed = feeds(&mut subscription, 3).await.into_iter().find(|f| f.partition == kafka_partition(b"abc", 3)).unwrap();
            feed.commit.commit(2).await.unwrap();
        }
        let bus = open(dir.path(), 8).await;
        let mut subscription = bus.subscribe("g", &["kept".into()]).await.unwrap();
        let mut feeds = feeds(&mut subscription, 3).await;
        assert!(subscription.feeds.try_recv().is_err(), "the topic keeps its 3 partitions");
        let partition = kafka_partition(b"abc", 3);
        let feed = &mut feeds[partition as usize];
        assert_eq!(text(&next(feed).await), "m2");
        assert_eq!(publish(&bus, "kept", Some("abc"), "m4").await, Position { partition, offset: 4 });
    }

    #[tokio::test]
    async fn dropping_the_subscription_closes_its_feeds() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(dir.path(), 2).await;
        publish(&bus, "t", Some("21"), "buffered").await;
        let mut subscription = bus.subscribe("g", &["t".into()]).await.unwrap();
        let mut feeds = feeds(&mut subscription, 2).await;
        assert!(
            tokio::time::timeout(Duration::from_millis(100), subscription.feeds.recv()).await.is_err(),
            "feeds stays open while the subscription lives"
        );
        drop(subscription);
        for feed in &mut feeds {
            let closed = tokio::time::timeout(WAIT, async { while feed.messages.recv().await.is_some() {} }).await;
            assert!(closed.is_ok(), "partition {} closed", feed.partition);
        }
    }

    #[tokio::test]
    async fn retention_deletes_only_what_every_group_has_handled() {
        let dir = tempfile::tempdir().unwrap();
        let config = EmbeddedConfig { partitions: 1, retention: Duration::ZERO };
        let commit = async |bus: &EmbeddedBus, group: &str, next_offset: u64| {
            let mut subscription = bus.subscribe(group, &["logs".into()]).await.unwrap();
            feeds(&mut subscription, 1).await[0].commit.commit(next_offset).await.unwrap();
        };
        {
            let bus = EmbeddedBus::open(&config, dir.path()).await.unwrap();
            for i in 0..5 {
                publish(&bus, "logs", None, &format!("m{i}")).await;
            }
            commit(&bus, "fast", 5).await;
            commit(&bus, "slow", 3).await;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        // Retention runs at open; a group that joins then starts at what is left.
        let bus = EmbeddedBus::open(&config, dir.path()).await.unwrap();
        let mut subscription = bus.subscribe("new", &["logs".into()]).await.unwrap();
        let mut feed = feeds(&mut subscription, 1).await.remove(0);
        assert_eq!(text(&next(&mut feed).await), "m3");
        assert_eq!(publish(&bus, "logs", None, "m5").await.offset, 5, "offsets are never reused");
        drop((feed, subscription, bus));

        // `new` joined without committing: it holds everything it has not handled.
        let bus = EmbeddedBus::open(&config, dir.path()).await.unwrap();
        let mut subscription = bus.subscribe("newer", &["logs".into()]).await.unwrap();
        assert_eq!(next(&mut feeds(&mut subscription, 1).await[0]).await.offset, 3);
    }

    #[tokio::test]
    async fn a_failed_write_names_the_file_and_leaves_the_bus_usable() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(dir.path(), 1).await;
        publish(&bus, "broken", None, "m").await;
        sqlx::query("DELETE FROM bus_partitions WHERE topic = 'broken'").execute(&bus.readers).await.unwrap();
        match bus.publish(message("broken", None, "m")).await {
            Err(BusError::Other(error)) => assert!(error.contains("bus.db"), "{error}"),
            other => panic!("expected a storage error, got {other:?}"),
        }
        assert_eq!(publish(&bus, "fine", None, "m").await.offset, 0);
        let mut subscription = bus.subscribe("g", &["fine".into()]).await.unwrap();
        let feed = feeds(&mut subscription, 1).await.remove(0);
        assert!(matches!(feed.commit.commit(u64::MAX).await, Err(BusError::Invalid(_))));
    }

    #[tokio::test]
    async fn invalid_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let bus = open(dir.path(), 1).await;
        assert!(matches!(bus.publish(message("no spaces", None, "m")).await, Err(BusError::Invalid(_))));
        assert!(matches!(bus.subscribe("", &["t".into()]).await, Err(BusError::Invalid(_))));
        assert!(bus.describe().ends_with("bus.db"), "{}", bus.describe());
    }

    #[tokio::test]
    async fn an_operator_reads_the_newest_messages_and_one_by_its_place() {
        let dir = tempfile::tempdir().expect("temp dir");
        let bus = open(dir.path(), 2).await;
        for n in 0..5 {
            publish(&bus, "orders.dlq", Some(&format!("order-{n}")), &format!("m{n}")).await;
        }
        let newest = bus.read("orders.dlq", Read::Newest(3)).await.expect("read");
        assert_eq!(newest.iter().map(text).collect::<Vec<_>>(), ["m2", "m3", "m4"], "the newest, oldest first");
        let third = &newest[0];
        let place = Position { partition: third.partition, offset: third.offset };
        let found = bus.read("orders.dlq", Read::At(place)).await.expect("read");
        assert_eq!(found.iter().map(text).collect::<Vec<_>>(), ["m2"]);
        assert_eq!(found[0].header("message-id"), Some(&b"m2"[..]));
        let past = Position { partition: third.partition, offset: 99 };
        assert!(bus.read("orders.dlq", Read::At(past)).await.expect("read").is_empty());
        assert!(bus.read("never.published", Read::Newest(10)).await.expect("read").is_empty());
    }
}
