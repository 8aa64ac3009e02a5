//! The Kafka trigger: each `[[trigger.kafka]]` is one consumer group on the bus, and
//! every message it receives runs the component's `message-handler` export on a
//! fresh instance.
//!
//! - **Order:** a partition's messages are handled one at a time, in offset order;
//!   partitions run side by side, at most `concurrency` handlers at once across the
//!   host. Each partition buffers a bounded number of messages, so a slow partition
//!   holds back only itself.
//! - **Commit after success:** a partition's offset moves past a message only once it
//!   was handled or dead-lettered, so a crash redelivers rather than skips.
//! - **Once:** before running the handler, the host looks for the message id in the
//!   component's handled-message record (written in the handler's own transaction);
//!   a redelivered message whose effects were committed is acknowledged unhandled.
//! - **Failure:** `retry` (and a trap or timeout) runs the message again after an
//!   exponential backoff; once the attempts are spent, or at once for `reject`, it goes
//!   to `<topic>.dlq` with headers saying why, and the partition moves on.
//! - **Stopping:** on shutdown each partition finishes the message it is handling
//!   (a retry waiting for its backoff gives up, uncommitted, to be redelivered), commits,
//!   and the group is left; what is not finished within the grace period is
//!   redelivered to whoever consumes next.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use estore_bus::dead_letters::{DLQ_ATTEMPTS, DLQ_COMPONENT, DLQ_ERROR, DLQ_ORIGIN, dead_letter_topic};
use estore_bus::{Bus, BusError, Delivery, Outgoing, PartitionFeed, retry_until_ready};
use estore_engine::limits::{Stopped, root_cause};
use estore_engine::trace::{self, TraceContext};
use estore_instance::exports::message_trigger::{self, Header, Message};
use estore_instance::registry::{LoadedComponent, Registry};
use estore_instance::{HostState, Work};
use estore_manifest::KafkaTrigger;
use estore_outbound_http::Chaining;
use estore_runtime_config::DeliveryPolicy;
use estore_sql::MessageInProgress;

/// How long handled-message ids are remembered: a week, Kafka's default retention (and
/// the embedded bus's), after which a message cannot come back.
const HANDLED_MEMORY: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// How often the old ids are forgotten.
const FORGET_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// How long to wait before offering a dead letter to an unreachable bus again.
const DEAD_LETTER_RETRY: Duration = Duration::from_secs(1);

/// Runs every Kafka trigger of the application.
pub struct MessageDispatcher {
    registry: Arc<Registry>,
    /// Serves the handlers' requests to other components.
    chaining: Arc<dyn Chaining>,
    bus: Bus,
    policy: DeliveryPolicy,
    handlers: Semaphore,
    /// Set once the host is stopping.
    stopping: watch::Sender<bool>,
    /// The consumers, waited for on shutdown.
    consumers: std::sync::Mutex<JoinSet<()>>,
}

/// What became of one delivery attempt.
enum Outcome {
    Handled,
    Retry(String),
    Reject(String),
}

/// Whether a message is done with (handled or dead-lettered), so its offset may be
/// committed, or was given up because the host is stopping.
#[derive(PartialEq)]
enum Delivered {
    Done,
    Abandoned,
}

impl MessageDispatcher {
    pub fn new(registry: Arc<Registry>, chaining: Arc<dyn Chaining>, bus: Bus, policy: DeliveryPolicy) -> Arc<Self> {
        let handlers = Semaphore::new(policy.concurrency);
        let (stopping, _) = watch::channel(false);
        let consumers = std::sync::Mutex::new(JoinSet::new());
        Arc::new(MessageDispatcher { registry, chaining, bus, policy, handlers, stopping, consumers })
    }

    /// Stops taking messages, lets the ones being handled finish and be committed, and
    /// leaves the groups; waits at most `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        self.stopping.send_replace(true);
        let mut consumers = std::mem::take(&mut *self.consumers.lock().unwrap_or_else(|e| e.into_inner()));
        let finished = tokio::time::timeout(grace, async { while consumers.join_next().await.is_some() {} }).await;
        if finished.is_err() {
            tracing::warn!("message handlers still running after {} s; their messages will be redelivered", grace.as_secs());
        }
    }

    async fn stopped(&self) {
        let mut stopping = self.stopping.subscribe();
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }

    /// Starts consuming for each trigger whose component is running; returns at once.
    pub fn start(self: &Arc<Self>, triggers: &[KafkaTrigger]) {
        for trigger in triggers {
            let Some(component) = self.registry.get(&trigger.component) else {
                tracing::error!(
                    component = %trigger.component,
                    "not consuming {} for group `{}`: the component is not running",
                    trigger.topics.join(", "),
                    trigger.group
                );
                continue;
            };
            let consume = self.clone().consume(component.clone(), trigger.clone());
            self.consumers.lock().unwrap_or_else(|e| e.into_inner()).spawn(consume);
        }
        let consumers: BTreeSet<&str> = triggers.iter().map(|t| t.component.as_str()).collect();
        for component in consumers.into_iter().filter_map(|id| self.registry.get(id)) {
            tokio::spawn(forget_old_handled(component));
        }
    }

    /// Joins the trigger's consumer group (waiting for the bus if need be) and handles
    /// each partition it is assigned.
    async fn consume(self: Arc<Self>, component: Arc<LoadedComponent>, trigger: KafkaTrigger) {
        let group: Arc<str> = trigger.group.as_str().into();
        let mut topics = trigger.topics.clone();
        topics.extend(trigger.topics.iter().map(|topic| dead_letter_topic(topic)));
        let what = format!("component `{}`: joining group `{group}`", trigger.component);
        let joining = retry_until_ready(&what, || async {
            self.bus.ensure_topics(&topics).await?;
            self.bus.subscribe(&group, &trigger.topics).await
        });
        let mut subscription = tokio::select! {
            subscription = joining => subscription,
            () = self.stopped() => return,
        };
        tracing::info!(component = %trigger.component, group = %group, "consuming {}", trigger.topics.join(", "));
        // A rebalance closes a partition's feed and may hand out a new one while the
        // old one's last message is still being handled: the new feed waits its turn,
        // so a partition never has two handlers at once.
        let mut turns: HashMap<(String, u32), Arc<Mutex<()>>> = HashMap::new();
        let mut partitions = JoinSet::new();
        loop {
            let feed = tokio::select! {
                feed = subscription.feeds.recv() => feed,
                () = self.stopped() => break,
            };
            let Some(feed) = feed else { break };
            let turn = turns.entry((feed.topic.clone(), feed.partition)).or_default().clone();
            partitions.spawn(self.clone().drain(component.clone(), group.clone(), feed, turn));
        }
        // The subscription (and with it the group membership) outlives the partitions'
        // last commits.
        while partitions.join_next().await.is_some() {}
        drop(subscription);
    }

    /// Handles one partition's messages in order, committing after each.
    async fn drain(
        self: Arc<Self>,
        component: Arc<LoadedComponent>,
        group: Arc<str>,
        mut feed: PartitionFeed,
        turn: Arc<Mutex<()>>,
    ) {
        let _turn = turn.lock().await;
        loop {
            let message = tokio::select! {
                biased;
                () = self.stopped() => break,
                message = feed.messages.recv() => message,
            };
            let Some(message) = message else { break };
            if !feed.commit.still_assigned() {
                break;
            }
            let next = message.offset + 1;
            let mut trace =
                TraceContext::continue_from(message.header(trace::TRACEPARENT), message.header(trace::CORRELATION_ID));
            // Every log line of this message's handling carries where it came from.
            let span = tracing::info_span!(
                "message",
                component = %component.context.id,
                trace_id = tracing::field::Empty,
                topic = %message.topic,
                partition = message.partition,
                offset = message.offset,
                otel.name = format!("{} {}", component.context.id, message.topic),
                otel.kind = "consumer",
                messaging.system = "kafka",
                messaging.consumer.group.name = %group,
            );
            trace.attach(&span);
            if self.deliver(&component, &group, message, trace).instrument(span).await == Delivered::Abandoned {
                break;
            }
            if let Err(e) = feed.commit.commit(next).await {
                // The partition was revoked or the bus is away: the message comes
                // again, and its record keeps it from being handled twice.
                tracing::warn!(
                    component = %component.context.id,
                    "cannot commit {}/{} at offset {next}: {e}",
                    feed.topic,
                    feed.partition
                );
            }
        }
    }

    /// Runs the handler until it succeeds, or dead-letters the message.
    async fn deliver(&self, component: &LoadedComponent, group: &Arc<str>, message: Delivery, trace: TraceContext) -> Delivered {
        let id = &component.context.id;
        let message_id = message_id(&message);
        let max_attempts = self.policy.max_attempts;
        for attempt in 1..=max_attempts {
            match component.context.sql.was_handled(group, &message_id).await {
                Ok(true) => {
                    tracing::info!(component = %id, "message {message_id} already handled by group `{group}`; acknowledged");
                    return Delivered::Done;
                }
                Ok(false) => {}
                // The handler will meet the same database, and retry on its own terms.
                Err(e) => tracing::warn!(component = %id, "cannot check whether {message_id} was handled: {e:?}"),
            }
            let outcome = {
                let _permit = self.handlers.acquire().await;
                // The version serving now: a deploy takes effect at the next attempt.
                let serving = self.registry.get(id);
                self.attempt(serving.as_deref().unwrap_or(component), group, &message, &message_id, attempt, trace.clone()).await
            };
            let metrics = estore_engine::metrics::global();
            match &outcome {
                Outcome::Handled => metrics.count_message(id, &message.topic, "handled"),
                Outcome::Retry(_) => metrics.count_message(id, &message.topic, "retried"),
                Outcome::Reject(_) => {}
            }
            match outcome {
                Outcome::Handled => return Delivered::Done,
                Outcome::Reject(reason) => {
                    return self.dead_letter(component, &message, &format!("rejected: {reason}"), attempt).await;
                }
                Outcome::Retry(reason) if attempt == max_attempts => {
                    let reason = format!("gave up after {attempt} attempts: {reason}");
                    return self.dead_letter(component, &message, &reason, attempt).await;
                }
                Outcome::Retry(reason) => {
                    let wait = backoff(&self.policy, attempt);
                    tracing::warn!(
                        component = %id,
                        "{} (attempt {attempt} of {max_attempts}) failed, retrying in {} ms: {reason}",
                        describe(&message),
                        wait.as_millis()
                    );
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = self.stopped() => return Delivered::Abandoned,
                    }
                }
            }
        }
        // The last attempt always ends in Handled or a dead letter.
        Delivered::Done
    }

    /// One run of the handler on a fresh instance.
    async fn attempt(
        &self,
        component: &LoadedComponent,
        group: &Arc<str>,
        message: &Delivery,
        message_id: &str,
        attempt: u32,
        trace: TraceContext,
    ) -> Outcome {
        let Some(pre) = &component.messages else {
            return Outcome::Reject(format!("component `{}` has no message handler", component.context.id));
        };
        let engine = self.registry.engine().wasmtime();
        let mut store = match HostState::new_store(
            engine,
            &component.context,
            self.chaining.clone(),
            Work { trace, chain_depth: 0, timeout: component.context.limits.timeout },
        ) {
            Ok(store) => store,
            Err(e) => return Outcome::Retry(format!("cannot create an instance: {e:#}")),
        };
        component.served.count_message();
        store.data_mut().sql.message_in_progress =
            Some(MessageInProgress { group: group.clone(), message_id: message_id.to_owned(), recorded: false });
        let timeout = component.context.limits.timeout;
        let call = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.estore_platform_message_handler().call_handle(&mut store, &to_wit(message, attempt)).await
        };
        let result = match tokio::time::timeout(timeout, call).await {
            Ok(result) => result,
            Err(_) => {
                estore_engine::metrics::global().count_failure(&component.context.id, "timeout");
                return Outcome::Retry(format!("did not finish within {} ms", timeout.as_millis()));
            }
        };
        match result {
            Ok(Ok(())) => {
                let recorded = store.data().sql.message_in_progress.as_ref().is_some_and(|m| m.recorded);
                if !recorded {
                    // The handler used no transaction: record it now, so at least a
                    // redelivery after this point is recognised.
                    if let Err(e) = component.context.sql.record_handled(group, message_id).await {
                        tracing::warn!(component = %component.context.id, "cannot record {message_id} as handled: {e:?}");
                    }
                }
                Outcome::Handled
            }
            Ok(Err(refusal)) => {
                // A transaction it committed recorded the message as handled; the
                // handler says it is not, so the next delivery must run it.
                if store.data().sql.message_in_progress.as_ref().is_some_and(|m| m.recorded)
                    && let Err(e) = component.context.sql.forget_handled_message(group, message_id).await
                {
                    return Outcome::Retry(format!("cannot forget {message_id} as handled: {e:?}"));
                }
                match refusal {
                    message_trigger::Error::Retry(reason) => Outcome::Retry(reason),
                    message_trigger::Error::Reject(reason) => Outcome::Reject(reason),
                }
            }
            Err(error) => {
                let (kind, reason) = match Stopped::of(error, &store.data().memory) {
                    Stopped::Timeout => ("timeout", format!("did not finish within {} ms", timeout.as_millis())),
                    Stopped::MemoryExceeded { max_bytes } => {
                        ("memory", format!("exceeded its memory limit of {} MiB", max_bytes >> 20))
                    }
                    Stopped::Trap(error) => ("trap", format!("failed: {}", root_cause(&error))),
                };
                estore_engine::metrics::global().count_failure(&component.context.id, kind);
                Outcome::Retry(reason)
            }
        }
    }

    /// Sends the message to `<topic>.dlq` with the reason; waits for the bus as long as
    /// it takes, because moving on without it would lose the message.
    async fn dead_letter(&self, component: &LoadedComponent, message: &Delivery, reason: &str, attempts: u32) -> Delivered {
        let id = &component.context.id;
        let mut headers = message.headers.clone();
        headers.extend([
            (DLQ_ERROR.to_owned(), reason.as_bytes().to_vec()),
            (DLQ_COMPONENT.to_owned(), id.as_bytes().to_vec()),
            (DLQ_ATTEMPTS.to_owned(), attempts.to_string().into_bytes()),
            (DLQ_ORIGIN.to_owned(), format!("{}/{}/{}", message.topic, message.partition, message.offset).into_bytes()),
        ]);
        let letter = Outgoing {
            topic: dead_letter_topic(&message.topic),
            key: message.key.clone(),
            payload: message.payload.clone(),
            headers,
        };
        let mut warned = false;
        loop {
            match self.bus.publish(letter.clone(), self.policy.publish_timeout).await {
                Ok(_) => {
                    estore_engine::metrics::global().count_message(id, &message.topic, "dead_lettered");
                    tracing::error!(component = %id, "{} dead-lettered to {}: {reason}", describe(message), letter.topic);
                    return Delivered::Done;
                }
                Err(BusError::Invalid(why)) => {
                    tracing::error!(component = %id, "{} dropped, the dead-letter topic refused it ({why}): {reason}", describe(message));
                    return Delivered::Done;
                }
                Err(e) => {
                    if !warned {
                        tracing::warn!(component = %id, "cannot dead-letter {} yet: {e}", describe(message));
                        warned = true;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(DEAD_LETTER_RETRY) => {}
                        () = self.stopped() => return Delivered::Abandoned,
                    }
                }
            }
        }
    }
}

/// Keeps a component's handled-message record to [`HANDLED_MEMORY`].
async fn forget_old_handled(component: Arc<LoadedComponent>) {
    let mut every = tokio::time::interval(FORGET_INTERVAL);
    loop {
        every.tick().await;
        match component.context.sql.forget_handled(HANDLED_MEMORY).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(component = %component.context.id, "forgot {n} handled-message ids older than a week"),
            Err(e) => tracing::warn!(component = %component.context.id, "cannot forget old handled-message ids: {e:?}"),
        }
    }
}

/// `initial × 2^(attempt-1)`, at most `max_backoff`.
fn backoff(policy: &DeliveryPolicy, attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX);
    policy.initial_backoff.saturating_mul(factor).min(policy.max_backoff)
}

/// The id the publisher gave the message, or its position for messages from outside
/// (which carry none): stable across redeliveries either way.
fn message_id(message: &Delivery) -> String {
    match message.header(trace::MESSAGE_ID).and_then(|v| std::str::from_utf8(v).ok()) {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => format!("{}/{}/{}", message.topic, message.partition, message.offset),
    }
}

fn describe(message: &Delivery) -> String {
    format!("message {}/{}@{}", message.topic, message.partition, message.offset)
}

fn to_wit(message: &Delivery, attempt: u32) -> Message {
    Message {
        topic: message.topic.clone(),
        partition: message.partition,
        offset: message.offset,
        key: message.key.clone(),
        payload: message.payload.clone(),
        headers: message.headers.iter().map(|(name, value)| Header { name: name.clone(), value: value.clone() }).collect(),
        timestamp_ms: message.timestamp_ms,
        attempt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(headers: Vec<(String, Vec<u8>)>) -> Delivery {
        Delivery {
            topic: "orders".into(),
            partition: 2,
            offset: 7,
            key: None,
            payload: Vec::new(),
            headers,
            timestamp_ms: 0,
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let policy = DeliveryPolicy {
            max_attempts: 40,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            concurrency: 1,
            publish_timeout: Duration::from_secs(1),
        };
        let waits: Vec<u128> = [1, 2, 3, 6, 7, 40].iter().map(|a| backoff(&policy, *a).as_millis()).collect();
        assert_eq!(waits, [200, 400, 800, 6400, 10_000, 10_000]);
    }

    #[test]
    fn message_id_comes_from_the_header_or_the_position() {
        assert_eq!(message_id(&delivery(vec![("Message-Id".into(), b"abc".to_vec())])), "abc");
        assert_eq!(message_id(&delivery(Vec::new())), "orders/2/7");
        assert_eq!(message_id(&delivery(vec![("message-id".into(), Vec::new())])), "orders/2/7");
    }
}
