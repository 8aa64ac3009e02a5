//! Benchmarks of the platform (ignored tests; `scripts/bench` runs them and prints
//! their numbers). Each measures against an anchor in the same run and prints the
//! ratio, because these machines are shared and noisy; none asserts a speed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message as _, Offset, TopicPartitionList};

use crate::harness::{App, Host};

/// Messages per run: enough to last seconds, few enough for a 2-core machine.
const MESSAGES: usize = 20_000;
/// The benchmark topic's partitions, created explicitly (not left to the broker's
/// auto-creation default) and checked.
const PARTITIONS: i32 = 4;

fn trivial_handler_app(topic: &str, runtime_config: &str) -> (App, std::path::PathBuf) {
    let app = App::new(&format!(
        r#"spin_manifest_version = 2
[application]
name = "bench"
[[trigger.kafka]]
component = "bench"
topics = ["{topic}"]
group = "bench-{topic}"
[component.bench]
source = "{{wasm}}/benchcheck.wasm"
"#
    ));
    let path = app.dir.path().join("runtime-config.toml");
    std::fs::write(&path, runtime_config).expect("runtime config");
    (app, path)
}

fn start(app: &App, runtime_config: &std::path::Path) -> Host {
    let mut command = app.command();
    command.arg("--runtime-config-file").arg(runtime_config);
    Host::start(command)
}

/// What the running host's admin API says component `bench` has handled.
async fn handled(app: &App) -> u64 {
    let address = std::fs::read_to_string(app.state_dir().join("admin/address")).unwrap_or_default();
    let token = std::fs::read_to_string(app.state_dir().join("admin/token")).unwrap_or_default();
    let Ok(answer) = reqwest::Client::new()
        .get(format!("http://{}/v1/components", address.trim()))
        .bearer_auth(token.trim())
        .send()
        .await
    else {
        return 0;
    };
    let components: serde_json::Value = answer.json().await.unwrap_or_default();
    components[0]["messages"].as_u64().unwrap_or(0)
}

/// Waits until the host has handled `count` messages; the time it took from `since`.
async fn until_handled(app: &App, count: u64, since: Instant) -> Duration {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if handled(app).await >= count {
            return since.elapsed();
        }
        assert!(Instant::now() < deadline, "only {} of {count} handled", handled(app).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn payload(seq: usize) -> String {
    format!(r#"{{"seq":{seq},"sku":"AUD-XM5","quantity":1,"note":"a payload of a realistic size for an order event"}}"#)
}

/// Creates `topic` with [`PARTITIONS`] partitions, checks that the broker says so, and
/// fills it with [`MESSAGES`] messages keyed over the partitions.
async fn fill_kafka_topic(brokers: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", brokers).create().expect("an admin client");
    let created = admin
        .create_topics(&[NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1))], &AdminOptions::new())
        .await
        .expect("create the topic");
    for result in created {
        result.unwrap_or_else(|(topic, e)| panic!("create topic {topic}: {e}"));
    }
    let metadata = tokio::task::block_in_place(|| admin.inner().fetch_metadata(Some(topic), Duration::from_secs(10)))
        .expect("the topic's metadata");
    let partitions = metadata.topics().first().map_or(0, |t| t.partitions().len());
    assert_eq!(partitions, PARTITIONS as usize, "topic {topic}'s partitions");

    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .expect("a producer");
    let sends = (0..MESSAGES).map(|seq| {
        let (producer, key, body) = (producer.clone(), seq.to_string(), payload(seq));
        async move {
            producer
                .send(FutureRecord::to(topic).key(&key).payload(&body), Duration::from_secs(30))
                .await
                .map_err(|(e, _)| e)
                .expect("produce");
        }
    });
    futures::future::join_all(sends).await;
}

/// The same work as the component, natively and as the trigger does it: each
/// partition handled by a task of its own, in order within it; each message parsed as
/// JSON and its offset stored after handling, committed in the background.
async fn native_consumer(brokers: &str, topic: &str) -> Duration {
    let consumer: Arc<StreamConsumer> = Arc::new(
        rdkafka::ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", format!("native-{topic}"))
            .set("enable.auto.offset.store", "false")
            .create()
            .expect("a consumer"),
    );
    // Each partition's queue is split off before the assignment, so no message lands
    // on the consumer's own queue; that queue is still polled, which serves the rest.
    let queues: Vec<_> =
        (0..PARTITIONS).map(|p| consumer.split_partition_queue(topic, p).expect("a partition's queue")).collect();
    let mut assignment = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        assignment.add_partition_offset(topic, partition, Offset::Beginning).expect("a partition");
    }
    consumer.assign(&assignment).expect("assign the partitions");
    let started = Instant::now();
    let events = {
        let consumer = consumer.clone();
        tokio::spawn(async move {
            loop {
                let _ = consumer.recv().await;
            }
        })
    };
    let seen = Arc::new(AtomicUsize::new(0));
    let partitions = queues.into_iter().map(|queue| {
        let (consumer, seen) = (consumer.clone(), seen.clone());
        tokio::spawn(async move {
            while seen.load(Ordering::Relaxed) < MESSAGES {
                let Ok(message) = tokio::time::timeout(Duration::from_millis(50), queue.recv()).await else { continue };
                let message = message.expect("a message");
                let parsed: serde_json::Value = serde_json::from_slice(message.payload().unwrap_or_default()).expect("JSON");
                std::hint::black_box(parsed);
                consumer.store_offset_from_message(&message).expect("store the offset");
                seen.fetch_add(1, Ordering::Relaxed);
            }
        })
    });
    for partition in partitions.collect::<Vec<_>>() {
        partition.await.expect("a partition's task");
    }
    let took = started.elapsed();
    events.abort();
    let _ = consumer.commit_consumer_state(CommitMode::Sync);
    took
}

fn rate(count: usize, took: Duration) -> f64 {
    count as f64 / took.as_secs_f64().max(1e-9)
}

/// Messages per second through a trivial component handler versus a native rdkafka
/// consumer doing the same work on the same broker, partitions handled at once by
/// both. Three rounds, each on a topic of its own filled first; the sides take turns
/// going first; each side's figure is its median round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: scripts/bench runs it"]
async fn bench_kafka_trigger_against_a_native_consumer() {
    const ROUNDS: usize = 3;
    let brokers = crate::kafka::shared().bootstrap();
    let (mut native_rates, mut platform_rates) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let topic = format!("bench-{}-{round}", std::process::id());
        fill_kafka_topic(&brokers, &topic).await;
        let native = async || rate(MESSAGES, native_consumer(&brokers, &topic).await);
        // From the first message handled: the host's start and its group join are
        // not handling, as the native consumer's creation is not.
        let platform = async || {
            let (app, config) =
                trivial_handler_app(&topic, &format!("[messaging]\nbackend = \"kafka\"\nbrokers = \"{brokers}\"\n"));
            let _host = start(&app, &config);
            until_handled(&app, 1, Instant::now()).await;
            let (started, already) = (Instant::now(), handled(&app).await);
            let took = until_handled(&app, MESSAGES as u64, started).await;
            rate(MESSAGES - already as usize, took)
        };
        if round % 2 == 0 {
            native_rates.push(native().await);
            platform_rates.push(platform().await);
        } else {
            platform_rates.push(platform().await);
            native_rates.push(native().await);
        }
    }
    let median = |rates: &[f64]| {
        let mut sorted = rates.to_vec();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    };
    let (native_rate, platform_rate) = (median(&native_rates), median(&platform_rates));
    let rounds = |rates: &[f64]| rates.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", ");
    println!(
        "Kafka trigger, {MESSAGES} messages already on a 1-broker topic of {PARTITIONS} partitions (created and checked), \
         handler parses JSON; {ROUNDS} rounds, a topic each, the sides alternating first; every message handled:"
    );
    println!("  native rdkafka consumer, a task per partition: {native_rate:>9.0} msg/s median ({})", rounds(&native_rates));
    println!(
        "  estore component handler                    : {platform_rate:>9.0} msg/s median ({}; from its first message)",
        rounds(&platform_rates)
    );
    println!("  ratio estore/native                         : {:>9.2}", platform_rate / native_rate);
}

/// The same trivial handler on the embedded bus, the topic filled before start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: scripts/bench runs it"]
async fn bench_embedded_bus_trigger() {
    let topic = "bench-embedded";
    let (app, config) = trivial_handler_app(topic, "[messaging]\nbackend = \"embedded\"\npartitions = 4\n");
    {
        let bus_config = estore_bus::BusConfig::Embedded(estore_bus::embedded::EmbeddedConfig {
            partitions: 4,
            retention: estore_bus::embedded::DEFAULT_RETENTION,
        });
        let bus = estore_bus::Bus::open(&bus_config, &app.state_dir()).await.expect("open the embedded bus");
        bus.ensure_topics(&[topic.to_owned()]).await.expect("topic");
        for chunk in (0..MESSAGES).collect::<Vec<_>>().chunks(500) {
            let sends = chunk.iter().map(|seq| {
                bus.publish(
                    estore_bus::Outgoing {
                        topic: topic.to_owned(),
                        key: Some(seq.to_string().into_bytes()),
                        payload: payload(*seq).into_bytes(),
                        headers: Vec::new(),
                    },
                    Duration::from_secs(30),
                )
            });
            for sent in futures::future::join_all(sends).await {
                sent.expect("publish");
            }
        }
    }
    let started = Instant::now();
    let _host = start(&app, &config);
    let took = until_handled(&app, MESSAGES as u64, started).await;
    println!("Embedded bus trigger, {MESSAGES} messages already in the bus (4 partitions), handler parses JSON:");
    println!("  estore component handler: {:>9.0} msg/s ({took:?}, host start included)", rate(MESSAGES, took));
}
