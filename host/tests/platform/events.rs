//! The event bus, end to end: the eventcheck fixture publishes over HTTP and handles
//! what arrives, on the embedded bus and on a real Apache Kafka broker started by the
//! tests, the latter with the component's database on SQLite and on a real PostgreSQL.
//! The same suite runs on all three.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::harness::{App, Host, admin_get, metric, workspace};
use crate::kafka::Kafka;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Bus {
    Embedded,
    Kafka,
    /// Kafka, with the component's database (and so its outbox and handled-message
    /// record) on PostgreSQL: the production setup.
    KafkaPostgres,
}

/// How long a test waits for messages to be handled: generous, because a shared
/// machine can be slow, and a passing test returns as soon as they are.
const PATIENCE: Duration = Duration::from_secs(60);

/// One application on the eventcheck fixture: component `events` consumes `topic`
/// and `topic.dlq`, and may publish to `topic`.
struct EventApp {
    app: App,
    runtime_config: PathBuf,
    topic: String,
}

impl EventApp {
    fn new(bus: Bus) -> EventApp {
        Self::on(bus, None)
    }

    /// `broker`: a broker of the test's own; the shared one otherwise.
    fn on(bus: Bus, broker: Option<&Kafka>) -> EventApp {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let unique = format!("t{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let topic = format!("events-{unique}");
        let migrations = workspace().join("host/tests/fixtures/eventcheck/migrations");
        let manifest = format!(
            r#"
spin_manifest_version = 2
[application]
name = "events"
[[trigger.http]]
route = "/eventcheck/..."
component = "events"
[[trigger.kafka]]
component = "events"
topics = ["{topic}", "{topic}.dlq"]
group = "group-{unique}"
[component.events]
source = "{{wasm}}/eventcheck.wasm"
sql_databases = ["default"]
sql_migrations = "{migrations}"
allowed_publish_topics = ["{topic}"]
"#,
            migrations = migrations.display()
        );
        let app = App::new(&manifest);
        let backend = match bus {
            Bus::Embedded => "backend = \"embedded\"\n".to_owned(),
            Bus::Kafka | Bus::KafkaPostgres => {
                let broker = broker.unwrap_or_else(|| crate::kafka::shared());
                format!("backend = \"kafka\"\nbrokers = \"{}\"\n", broker.bootstrap())
            }
        };
        let sql = match bus {
            Bus::KafkaPostgres => {
                let url = crate::postgres::shared().create_database(&format!("events_{}", unique.replace('-', "_")));
                format!("[sql]\nbackend = \"postgres\"\nurl = \"{url}\"\n")
            }
            _ => String::new(),
        };
        let runtime_config = app.dir.path().join("runtime-config.toml");
        std::fs::write(
            &runtime_config,
            format!(
                "{sql}[messaging]\n{backend}partitions = 4\nmax_attempts = 3\ninitial_backoff_ms = 50\n\
                 max_backoff_ms = 200\npublish_timeout_ms = 3000\n"
            ),
        )
        .expect("write runtime config");
        EventApp { app, runtime_config, topic }
    }

    fn command(&self) -> Command {
        let mut command = self.app.command();
        command.arg("--runtime-config-file").arg(&self.runtime_config);
        command
    }

    fn start(&self) -> Host {
        Host::start(self.command())
    }
}

fn command(seq: usize, action: &str) -> String {
    json!({"seq": seq, "action": action}).to_string()
}

pub(crate) async fn publish_as(host: &Host, body: Json, headers: &[(&str, &str)]) -> (u16, Json) {
    let mut request = reqwest::Client::new().post(host.url("/eventcheck/publish")).json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("POST /eventcheck/publish");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON answer"))
}

/// Publishes `payloads` to the app's topic under `key`; asserts it worked.
async fn publish(host: &Host, app: &EventApp, key: Option<&str>, payloads: &[String], mode: &str) {
    let body = json!({"topic": app.topic, "key": key, "payloads": payloads, "mode": mode});
    let (status, answer) = publish_as(host, body, &[]).await;
    assert_eq!(status, 200, "publish failed: {answer}");
}

pub(crate) async fn rows(host: &Host, table: &str) -> Vec<Json> {
    let (status, body) = crate::harness::get(&host.url(&format!("/eventcheck/{table}"))).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().cloned().unwrap_or_else(|| panic!("not a list: {body}"))
}

/// Polls `table` until `done` holds for its rows; panics with them and the host's
/// log after [`PATIENCE`].
pub(crate) async fn wait_for(host: &Host, table: &str, what: &str, done: impl Fn(&[Json]) -> bool) -> Vec<Json> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let rows = rows(host, table).await;
        if done(&rows) {
            return rows;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}; {table}: {rows:#?}\nlog:\n{}", host.log());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn seqs(rows: &[Json]) -> Vec<i64> {
    rows.iter().filter_map(|r| r["seq"].as_i64()).collect()
}

fn field<'a>(row: &'a Json, name: &str) -> &'a str {
    row[name].as_str().unwrap_or_default()
}

async fn order_per_key(bus: Bus) {
    let app = EventApp::new(bus);
    let host = app.start();
    let keys = ["alpha", "bravo", "charlie", "delta"];
    for (k, key) in keys.iter().enumerate() {
        let payloads: Vec<String> = (0..10).map(|i| command(k * 100 + i, "ok")).collect();
        publish(&host, &app, Some(key), &payloads, "direct").await;
    }
    let handled = wait_for(&host, "handled", "40 messages", |rows| rows.len() >= 40).await;
    assert_eq!(handled.len(), 40, "each message once: {handled:#?}");
    for key in keys {
        let of_key: Vec<&Json> = handled.iter().filter(|r| field(r, "message_key") == key).collect();
        let seqs: Vec<i64> = of_key.iter().filter_map(|r| r["seq"].as_i64()).collect();
        let mut sorted = seqs.clone();
        sorted.sort();
        assert_eq!(seqs, sorted, "key {key} handled out of order");
        assert_eq!(seqs.len(), 10);
        let partitions: std::collections::BTreeSet<i64> = of_key.iter().filter_map(|r| r["partition_no"].as_i64()).collect();
        assert_eq!(partitions.len(), 1, "key {key} spread over partitions {partitions:?}");
    }
}

async fn partitions_in_parallel(bus: Bus) {
    let app = EventApp::new(bus);
    let host = app.start();
    publish(&host, &app, Some("slow"), &[command(0, "slow:3000")], "direct").await;
    for i in 1..=8 {
        publish(&host, &app, Some(&format!("fast-{i}")), &[command(i, "ok")], "direct").await;
    }
    let handled = wait_for(&host, "handled", "9 messages", |rows| rows.len() >= 9).await;
    let slow = handled.iter().find(|r| r["seq"] == 0).expect("the slow message was handled");
    let overtaken = handled.iter().any(|r| {
        r["partition_no"] != slow["partition_no"] && r["finished_ms"].as_i64() < slow["finished_ms"].as_i64()
    });
    assert!(overtaken, "no message of another partition finished while the slow one ran: {handled:#?}");
}

async fn retry_then_success(bus: Bus) {
    let app = EventApp::new(bus);
    let host = app.start();
    publish(&host, &app, Some("k"), &[command(1, "fail:2")], "direct").await;
    let handled = wait_for(&host, "handled", "the retried message", |rows| !rows.is_empty()).await;
    assert_eq!(handled.len(), 1, "{handled:#?}");
    assert_eq!(handled[0]["attempt"], 3, "failed twice, handled on the third attempt");
    host.wait_for_log(&["attempt 1 of 3", "failing on purpose"]);
    assert!(rows(&host, "dead").await.is_empty());
}

async fn retries_exhausted_go_to_the_dead_letter_topic(bus: Bus) {
    let app = EventApp::new(bus);
    let host = app.start();
    publish(&host, &app, Some("k"), &[command(1, "always-fail"), command(2, "ok")], "direct").await;
    let dead = wait_for(&host, "dead", "a dead letter", |rows| !rows.is_empty()).await;
    let letter = &dead[0];
    assert_eq!(field(letter, "topic"), format!("{}.dlq", app.topic));
    assert_eq!(field(letter, "payload"), command(1, "always-fail"));
    assert_eq!(field(letter, "attempts"), "3");
    assert_eq!(field(letter, "component"), "events");
    assert!(field(letter, "error").contains("gave up after 3 attempts: failing on purpose"), "{letter}");
    assert!(field(letter, "origin").starts_with(&format!("{}/", app.topic)), "{letter}");
    // The partition moved on.
    let handled = wait_for(&host, "handled", "the next message", |rows| !rows.is_empty()).await;
    assert_eq!(seqs(&handled), [2]);
}

async fn reject_goes_to_the_dead_letter_topic_at_once(bus: Bus) {
    let app = EventApp::new(bus);
    let host = app.start();
    publish(&host, &app, Some("k"), &[command(1, "reject"), command(2, "ok")], "direct").await;
    let dead = wait_for(&host, "dead", "a dead letter", |rows| !rows.is_empty()).await;
    assert_eq!(field(&dead[0], "attempts"), "1", "{dead:#?}");
    assert!(field(&dead[0], "error").contains("rejected: rejected on purpose"), "{dead:#?}");
    let handled = wait_for(&host, "handled", "the next message", |rows| !rows.is_empty()).await;
    assert_eq!(seqs(&handled), [2]);
}

async fn a_payload_that_is_not_json_is_dead_lettered(bus: Bus) {
    let app = EventApp::new(bus);
    let host = app.start();
    publish(&host, &app, Some("k"), &["\u{0}not json {".to_owned(), command(2, "ok")], "direct").await;
    let dead = wait_for(&host, "dead", "a dead letter", |rows| !rows.is_empty()).await;
    assert!(field(&dead[0], "error").contains("not a JSON command"), "{dead:#?}");
    let handled = wait_for(&host, "handled", "the next message", |rows| !rows.is_empty()).await;
    assert_eq!(seqs(&handled), [2]);
    assert!(!host.log().contains("panicked"), "{}", host.log());
}

async fn a_host_killed_mid_stream_skips_and_repeats_nothing(bus: Bus) {
    let app = EventApp::new(bus);
    let total = 150;
    let host = app.start();
    for chunk in 0..5 {
        let key = format!("key-{chunk}");
        let payloads: Vec<String> = (0..total / 5).map(|i| command(chunk * 1000 + i, "slow:20")).collect();
        publish(&host, &app, Some(&key), &payloads, "direct").await;
    }
    wait_for(&host, "handled", "a few messages", |rows| rows.len() >= 10).await;
    drop(host); // SIGKILL, mid-stream
    let host = app.start();
    let handled = wait_for(&host, "handled", "every message", |rows| rows.len() >= total).await;
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for seq in seqs(&handled) {
        *counts.entry(seq).or_default() += 1;
    }
    assert_eq!(counts.len(), total, "every message handled");
    assert!(counts.values().all(|n| *n == 1), "a message handled twice: {counts:?}");
}

async fn stopping_finishes_the_message_being_handled(bus: Bus) {
    let app = EventApp::new(bus);
    let mut host = app.start();
    publish(&host, &app, Some("k"), &[command(1, "slow:1500"), command(2, "ok")], "direct").await;
    host.wait_for_log(&["handling 1"]);
    let status = host.terminate();
    assert!(status.success(), "estore exited with {status}; log:\n{}", host.log());
    let stopped_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    drop(host);
    let host = app.start();
    let handled = rows(&host, "handled").await;
    let slow = handled.iter().find(|r| r["seq"] == 1).unwrap_or_else(|| panic!("not finished before the exit: {handled:#?}"));
    assert!(slow["finished_ms"].as_u64().unwrap_or(u64::MAX) as u128 <= stopped_at, "{slow}");
    let handled = wait_for(&host, "handled", "the next message", |rows| rows.len() >= 2).await;
    assert_eq!(seqs(&handled), [1, 2], "each once, in order");
}

async fn outbox_publishes_on_commit_only(bus: Bus) {
    let app = EventApp::new(bus);
    let host = app.start();
    publish(&host, &app, Some("k"), &[command(1, "ok")], "rollback").await;
    publish(&host, &app, Some("k"), &[command(2, "ok")], "commit").await;
    let handled = wait_for(&host, "handled", "the committed message", |rows| !rows.is_empty()).await;
    // Same key, same partition, published in this order: the rolled-back message
    // would have been handled first.
    assert_eq!(seqs(&handled), [2], "{handled:#?}");
    let notes = rows(&host, "notes").await;
    assert_eq!(notes.len(), 1, "only the committed note: {notes:#?}");
}

async fn a_redelivered_message_is_not_handled_twice(bus: Bus) {
    let app = EventApp::new(bus);
    let host = app.start();
    publish(&host, &app, Some("k"), &[command(1, "trap-after-commit"), command(2, "ok")], "direct").await;
    let handled = wait_for(&host, "handled", "both messages", |rows| rows.len() >= 2).await;
    assert_eq!(seqs(&handled), [1, 2], "the trapped message's effects once: {handled:#?}");
    host.wait_for_log(&["already handled"]);
    assert!(rows(&host, "dead").await.is_empty());
}

/// A handler that committed and then asks for a retry has not handled the message:
/// it runs again, although its first run's commit recorded the message.
async fn a_retry_after_a_commit_runs_the_handler_again(bus: Bus) {
    let app = EventApp::new(bus);
    let host = app.start();
    publish(&host, &app, Some("k"), &[command(1, "retry-after-commit:1")], "direct").await;
    let handled = wait_for(&host, "handled", "a second run", |rows| rows.len() >= 2).await;
    let attempts: Vec<_> = handled.iter().map(|row| row["attempt"].clone()).collect();
    assert_eq!(attempts, [1, 2], "{handled:#?}");
    assert!(rows(&host, "dead").await.is_empty());
}

async fn publishing_is_limited_to_the_allowed_topics(bus: Bus) {
    let app = EventApp::new(bus);
    let host = app.start();
    let body = json!({"topic": "somewhere-else", "payloads": ["x"]});
    let (status, answer) = publish_as(&host, body, &[]).await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer["error"].as_str().unwrap_or_default().contains("allowed_publish_topics"), "{answer}");
}

async fn messages_carry_the_trace_of_what_published_them(bus: Bus) {
    let app = EventApp::new(bus);
    let host = app.start();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let body = json!({"topic": app.topic, "key": "k", "payloads": [command(1, &format!("forward:{}", app.topic))]});
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let (status, answer) =
        publish_as(&host, body, &[("traceparent", &traceparent), ("x-correlation-id", "checkout-7")]).await;
    assert_eq!(status, 200, "{answer}");
    let handled = wait_for(&host, "handled", "the message and the one it caused", |rows| rows.len() >= 2).await;
    assert_eq!(answer["message_ids"][0].as_str(), Some(field(&handled[0], "message_id")));
    assert_ne!(field(&handled[0], "message_id"), field(&handled[1], "message_id"));
    for row in &handled {
        assert_eq!(field(row, "correlation_id"), "checkout-7", "{row}");
        assert!(field(row, "traceparent").starts_with(&format!("00-{trace_id}-")), "{row}");
    }
    let parent_span = |row: &Json| field(row, "traceparent").split('-').nth(2).map(str::to_owned);
    assert_ne!(parent_span(&handled[0]).as_deref(), Some("00f067aa0ba902b7"), "the host's own span");
    assert_ne!(parent_span(&handled[0]), parent_span(&handled[1]), "each hop its own parent span");
}

/// With `--log-format json` every log line is a JSON object, and each line of a
/// message's handling (the component's own output included) names its component,
/// trace, topic, partition and offset.
#[tokio::test(flavor = "multi_thread")]
async fn json_log_lines_say_which_message_they_are_about() {
    let app = EventApp::new(Bus::Embedded);
    let mut up = app.command();
    up.args(["--log-format", "json"]);
    let host = Host::start(up);
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let body = json!({"topic": app.topic, "key": "k", "payloads": [command(1, "ok")]});
    let (status, answer) = publish_as(&host, body, &[("traceparent", &traceparent)]).await;
    assert_eq!(status, 200, "{answer}");
    host.wait_for_log(&["handling 1"]);
    let lines: Vec<Json> = host
        .log()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}")))
        .collect();
    let handling = lines
        .iter()
        .find(|line| line["message"].as_str().is_some_and(|m| m.contains("handling 1")))
        .expect("the handler's own line");
    let span = &handling["span"];
    assert_eq!(span["component"], "events", "{handling}");
    assert_eq!(span["trace_id"], trace_id, "{handling}");
    assert_eq!(span["topic"].as_str(), Some(app.topic.as_str()), "{handling}");
    assert!(span["partition"].is_u64() && span["offset"] == 0, "{handling}");
}

/// The metrics count what the trigger did: three messages handled, five failed
/// attempts retried (two of `fail:2`, three of `always-fail`), one dead letter; and
/// once the partition is through, no lag and no outbox backlog.
#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_what_the_trigger_did() {
    let app = EventApp::new(Bus::Embedded);
    let host = app.start();
    let commands = [command(1, "ok"), command(2, "fail:2"), command(3, "always-fail"), command(4, "ok")];
    publish(&host, &app, Some("k"), &commands, "direct").await;
    wait_for(&host, "dead", "the dead letter", |rows| !rows.is_empty()).await;
    wait_for(&host, "handled", "three handled", |rows| rows.len() >= 3).await;

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let metrics = loop {
        let (status, metrics) = admin_get(&app.app.state_dir(), "/metrics").await;
        assert_eq!(status, 200, "{metrics}");
        let lag = metric(&metrics, "estore_consumer_lag", &[("topic", &app.topic)]);
        if lag == Some(0.0) || std::time::Instant::now() > deadline {
            break metrics;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let messages = |outcome| metric(&metrics, "estore_messages_total", &[("component", "events"), ("topic", &app.topic), ("outcome", outcome)]);
    assert_eq!(messages("handled"), Some(3.0), "{metrics}");
    assert_eq!(messages("retried"), Some(5.0), "{metrics}");
    assert_eq!(messages("dead_lettered"), Some(1.0), "{metrics}");
    assert_eq!(metric(&metrics, "estore_consumer_lag", &[("topic", &app.topic)]), Some(0.0), "{metrics}");
    assert_eq!(metric(&metrics, "estore_outbox_backlog", &[("component", "events")]), Some(0.0), "{metrics}");
    let published = metric(&metrics, "estore_http_requests_total", &[("component", "events"), ("status", "200")]);
    assert!(published >= Some(1.0), "the publish request: {metrics}");
    assert!(metric(&metrics, "estore_resident_memory_bytes", &[]) > Some(1e6), "{metrics}");
}

macro_rules! on_every_bus {
    ($($name:ident),* $(,)?) => {
        mod on_embedded {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $name() {
                    super::$name(super::Bus::Embedded).await
                }
            )*
        }
        mod on_kafka {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $name() {
                    super::$name(super::Bus::Kafka).await
                }
            )*
        }
        mod on_kafka_postgres {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $name() {
                    super::$name(super::Bus::KafkaPostgres).await
                }
            )*
        }
    };
}

on_every_bus!(
    order_per_key,
    partitions_in_parallel,
    retry_then_success,
    retries_exhausted_go_to_the_dead_letter_topic,
    reject_goes_to_the_dead_letter_topic_at_once,
    a_payload_that_is_not_json_is_dead_lettered,
    a_host_killed_mid_stream_skips_and_repeats_nothing,
    stopping_finishes_the_message_being_handled,
    outbox_publishes_on_commit_only,
    a_redelivered_message_is_not_handled_twice,
    a_retry_after_a_commit_runs_the_handler_again,
    publishing_is_limited_to_the_allowed_topics,
    messages_carry_the_trace_of_what_published_them,
);

/// The broker goes away mid-stream and comes back: the host keeps serving HTTP,
/// messages published meanwhile through the outbox wait in it, and everything is
/// handled once the broker is back.
#[tokio::test(flavor = "multi_thread")]
async fn kafka_broker_restarted_mid_stream_loses_nothing() {
    let broker = Kafka::start();
    let app = EventApp::on(Bus::Kafka, Some(&broker));
    let host = app.start();
    let before: Vec<String> = (0..20).map(|i| command(i, "ok")).collect();
    publish(&host, &app, Some("k"), &before, "direct").await;
    wait_for(&host, "handled", "the first messages", |rows| rows.len() >= 5).await;

    broker.stop();
    let during: Vec<String> = (100..110).map(|i| command(i, "ok")).collect();
    publish(&host, &app, Some("k"), &during, "commit").await;
    let (status, _) = crate::harness::get(&host.url("/eventcheck/notes")).await;
    assert_eq!(status, 200, "HTTP is served while the broker is down");
    let (status, answer) =
        publish_as(&host, json!({"topic": app.topic, "payloads": [command(999, "ok")]}), &[]).await;
    assert_eq!(status, 503, "a direct publish reports the bus unavailable: {answer}");

    broker.start_again();
    // The producer reconnects by itself; a client retries what was refused meanwhile.
    // Probes that timed out may still arrive (a timed-out send is ambiguous), so they
    // are not counted below.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, answer) = publish_as(&host, json!({"topic": app.topic, "payloads": [command(998, "ok")]}), &[]).await;
        match status {
            200 => break,
            503 if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
            _ => panic!("the producer did not come back: {status} {answer}\n{}", host.log()),
        }
    }
    let after: Vec<String> = (200..210).map(|i| command(i, "ok")).collect();
    publish(&host, &app, Some("k"), &after, "direct").await;
    let probe = |seq: &i64| *seq == 998 || *seq == 999;
    let handled = wait_for(&host, "handled", "every message", |rows| {
        seqs(rows).iter().filter(|s| !probe(s)).count() >= 40
    })
    .await;
    let mut seen = seqs(&handled);
    seen.retain(|s| !probe(s));
    seen.sort();
    let expected: Vec<i64> = (0..20).chain(100..110).chain(200..210).collect();
    assert_eq!(seen, expected, "each message once, none lost");
    assert!(!host.log().contains("panicked"));
}

/// A component named by a Kafka trigger that has no message handler does not start;
/// the host says why and serves the rest.
#[tokio::test(flavor = "multi_thread")]
async fn a_kafka_trigger_on_a_component_without_a_handler_stops_only_that_component() {
    let app = App::new(
        r#"
spin_manifest_version = 2
[application]
name = "no-handler"
[[trigger.http]]
route = "/hello/..."
component = "hello"
[[trigger.kafka]]
component = "plain"
topics = ["anything"]
[component.hello]
source = "{wasm}/hello.wasm"
[component.plain]
source = "{wasm}/hello.wasm"
"#,
    );
    let host = app.start();
    host.wait_for_log(&["plain", "does not export estore:platform/message-handler"]);
    host.wait_for_log(&["plain", "not consuming anything", "the component is not running"]);
    let response = reqwest::get(host.url("/hello/echo")).await.expect("GET /hello/echo");
    assert_eq!(response.status().as_u16(), 200);
}
