//! A real Apache Kafka broker for the Kafka trigger tests, started by the test suite
//! itself: one KRaft node (broker and controller in one JVM) on free 127.0.0.1 ports,
//! its data in a temp dir. No Docker, no ZooKeeper, nothing configured beforehand.
//!
//! - `scripts/kafka-broker fetch` resolves the broker's jars from Maven Central into a
//!   cache folder (`ESTORE_KAFKA_CACHE`, default `/var/cache/estore/kafka`) once per
//!   machine; `Kafka::start()` runs it once per test run (a no-op when cached), then
//!   `scripts/kafka-broker start DIR PORT CONTROLLER_PORT`.
//! - Ready means: the port accepts TCP and a metadata request (`TopicCommand --list`)
//!   answers. Not ready within 90 s: a panic with the broker's log.
//! - `stop()` / `start_again()`: the same ports and data, for "the broker goes away and
//!   comes back" tests.
//! - The CLI helpers (`create_topic`, `produce`, `consume`, …) run Kafka's own tools
//!   from the same jars, one JVM each (~2 s), so no Rust Kafka client is needed here.
//! - The broker runs under the [`watched`](crate::watched) watchdog (stopped with
//!   SIGTERM): it never outlives the test run, and `stop()` keeps its data for
//!   `start_again()`.
#![allow(dead_code)] // the Kafka trigger tests use some of it, this module's own test the rest

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use crate::watched::{self, Watched};
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(90);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// A Kafka broker of our own; stopped and deleted on drop.
pub struct Kafka {
    dir: PathBuf,
    port: u16,
    controller_port: u16,
    server: Mutex<Option<Watched>>,
}

impl Kafka {
    /// Fetches the jars (once per test run), then serves a fresh broker on free
    /// 127.0.0.1 ports; returns when it answers metadata requests.
    pub fn start() -> Kafka {
        fetch();
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("estore-kafka-")
            .tempdir()
            .expect("create a temp dir for Kafka")
            .keep();
        let mut kafka = Kafka { dir, port: 0, controller_port: 0, server: Mutex::new(None) };
        // A free port can be taken between our probe and the broker's bind: retry.
        let mut attempts = 0;
        loop {
            attempts += 1;
            kafka.port = watched::free_port();
            kafka.controller_port = loop {
                let port = watched::free_port();
                if port != kafka.port {
                    break port;
                }
            };
            let log_start = kafka.log().len();
            match kafka.launch() {
                Ok(()) => break,
                Err(failure) => {
                    let new_log = kafka.log().get(log_start..).unwrap_or_default().to_owned();
                    let port_taken = new_log.contains("Address already in use");
                    if !port_taken || attempts == 5 {
                        panic!("Kafka did not start on 127.0.0.1:{}: {failure}\n{}", kafka.port, kafka.log_tail());
                    }
                    // A half-formatted or half-started node: start over with new ports.
                    let _ = std::fs::remove_dir_all(kafka.dir.join("data"));
                }
            }
        }
        eprintln!("kafka: {} serving {} after {:?}", kafka.dir.display(), kafka.bootstrap(), started.elapsed());
        kafka
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker's own folder (`server.properties`, `data/`, `broker.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates a topic (replication factor 1). Panics if it exists.
    pub fn create_topic(&self, name: &str, partitions: u32) {
        let partitions = partitions.to_string();
        self.tool(
            "org.apache.kafka.tools.TopicCommand",
            &["--create", "--topic", name, "--partitions", &partitions, "--replication-factor", "1"],
            None,
        );
    }

    /// The topic names (internal ones such as `__consumer_offsets` left out).
    pub fn topics(&self) -> Vec<String> {
        self.try_tool("org.apache.kafka.tools.TopicCommand", &["--list", "--exclude-internal"], None, TOOL_TIMEOUT)
            .unwrap_or_else(|e| panic!("list topics on {}: {e}", self.bootstrap()))
            .lines()
            .map(str::to_owned)
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// Produces one message per value (no key; values must not contain newlines),
    /// waiting for the broker's acknowledgement of all of them.
    pub fn produce(&self, topic: &str, values: &[&str]) {
        let input: String = values.iter().map(|v| format!("{v}\n")).collect();
        self.tool(
            "org.apache.kafka.tools.ConsoleProducer",
            &["--topic", topic, "--producer-property", "acks=all"],
            Some(&input),
        );
    }

    /// Produces keyed messages (keys and values without tabs or newlines): the same key
    /// always goes to the same partition.
    pub fn produce_keyed(&self, topic: &str, messages: &[(&str, &str)]) {
        let input: String = messages.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
        self.tool(
            "org.apache.kafka.tools.ConsoleProducer",
            &[
                "--topic",
                topic,
                "--producer-property",
                "acks=all",
                "--property",
                "parse.key=true",
                "--property",
                "key.separator=\t",
            ],
            Some(&input),
        );
    }

    /// Reads `count` message values from the beginning of the topic (all partitions,
    /// so in no particular order across partitions), as a new consumer group. Panics
    /// if fewer arrive within 30 s.
    pub fn consume(&self, topic: &str, count: usize) -> Vec<String> {
        let count_arg = count.to_string();
        let out = self.tool(
            "org.apache.kafka.tools.consumer.ConsoleConsumer",
            &["--topic", topic, "--from-beginning", "--max-messages", &count_arg, "--timeout-ms", "30000"],
            None,
        );
        let values: Vec<String> = out.lines().map(str::to_owned).collect();
        assert_eq!(values.len(), count, "consumed {values:?} from {topic}, expected {count} messages");
        values
    }

    /// `consume`, with keys: `(key, value)` pairs (`"null"` for no key).
    pub fn consume_keyed(&self, topic: &str, count: usize) -> Vec<(String, String)> {
        let count_arg = count.to_string();
        let out = self.tool(
            "org.apache.kafka.tools.consumer.ConsoleConsumer",
            &[
                "--topic",
                topic,
                "--from-beginning",
                "--max-messages",
                &count_arg,
                "--timeout-ms",
                "30000",
                "--property",
                "print.key=true",
                "--property",
                "key.separator=\t",
            ],
            None,
        );
        let pairs: Vec<(String, String)> = out
            .lines()
            .map(|l| {
                let (k, v) = l.split_once('\t').unwrap_or(("null", l));
                (k.to_owned(), v.to_owned())
            })
            .collect();
        assert_eq!(pairs.len(), count, "consumed {pairs:?} from {topic}, expected {count} messages");
        pairs
    }

    /// Runs a Kafka CLI class against this broker (`--bootstrap-server` is added);
    /// returns stdout. Panics with the output on failure or after 60 s.
    pub fn tool(&self, class: &str, args: &[&str], stdin: Option<&str>) -> String {
        self.try_tool(class, args, stdin, TOOL_TIMEOUT)
            .unwrap_or_else(|e| panic!("{class} {args:?} on {} failed:\n{e}\n{}", self.bootstrap(), self.log_tail()))
    }

    /// `tool` that returns the failure instead of panicking.
    pub fn try_tool(&self, class: &str, args: &[&str], stdin: Option<&str>, timeout: Duration) -> Result<String, String> {
        let mut command = Command::new(script());
        command.arg("run").arg(class).arg("--bootstrap-server").arg(self.bootstrap()).args(args);
        run_with_timeout(command, stdin, timeout)
    }

    /// Stops the broker (SIGTERM: a controlled shutdown); the data and the ports stay ours.
    pub fn stop(&self) {
        let server = self.server.lock().unwrap().take().expect("Kafka is not running");
        server.halt(true, STOP_TIMEOUT);
    }

    /// Serves the same data on the same ports again, after `stop()`.
    pub fn start_again(&self) {
        assert!(self.server.lock().unwrap().is_none(), "Kafka is already running");
        let started = Instant::now();
        if let Err(failure) = self.launch() {
            panic!("Kafka did not start again on {}: {failure}\n{}", self.bootstrap(), self.log_tail());
        }
        eprintln!("kafka: {} again after {:?}", self.bootstrap(), started.elapsed());
    }

    /// Whether the broker process is running (it may not be ready yet).
    pub fn is_running(&self) -> bool {
        let mut server = self.server.lock().unwrap();
        matches!(server.as_mut().map(|s| s.exited()), Some(None))
    }

    /// The broker log so far (all starts).
    pub fn log(&self) -> String {
        std::fs::read(self.dir.join("broker.log")).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(80)..].join("\n");
        format!("--- {} ---\n{tail}", self.dir.join("broker.log").display())
    }

    /// Starts the broker under its watchdog and waits until it answers metadata requests.
    fn launch(&self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("broker.log"))
            .map_err(|e| format!("open the broker log: {e}"))?;
        let mut command = watched::command("estore-kafka-watchdog", &self.dir, "TERM");
        command
            .arg(script())
            .arg("start")
            .arg(&self.dir)
            .arg(self.port.to_string())
            .arg(self.controller_port.to_string())
            .stderr(log);
        let mut server = Watched::spawn(command)?;

        let deadline = Instant::now() + START_TIMEOUT;
        let failure = loop {
            if let Some(status) = server.exited() {
                break format!("the broker exited ({status})");
            }
            if Instant::now() > deadline {
                break format!("not ready after {START_TIMEOUT:?}");
            }
            let addr = ([127, 0, 0, 1], self.port).into();
            if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err() {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            // The port is open; a metadata request proves the broker serves.
            let left = deadline.saturating_duration_since(Instant::now()).min(Duration::from_secs(30));
            match self.try_tool("org.apache.kafka.tools.TopicCommand", &["--list"], None, left) {
                Ok(_) => {
                    *self.server.lock().unwrap() = Some(server);
                    return Ok(());
                }
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        };
        server.halt(true, STOP_TIMEOUT);
        Err(failure)
    }
}

/// One broker for every test that does not stop it, started by the first that asks.
pub fn shared() -> &'static Kafka {
    SHARED.get_or_init(|| {
        let kafka = Kafka::start();
        // Statics are never dropped: stop it when the process exits normally. (Any
        // other way out, the watchdog stops it.)
        unsafe extern "C" {
            fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
        }
        // SAFETY: registers a plain function that catches its own panics.
        unsafe { atexit(stop_shared) };
        kafka
    })
}

static SHARED: OnceLock<Kafka> = OnceLock::new();

extern "C" fn stop_shared() {
    let _ = std::panic::catch_unwind(|| {
        let Some(kafka) = SHARED.get() else { return };
        let server = kafka.server.try_lock().ok().and_then(|mut s| s.take());
        if let Some(server) = server {
            server.halt(false, STOP_TIMEOUT);
        }
        let _ = std::fs::remove_dir_all(&kafka.dir);
    });
}

impl Drop for Kafka {
    fn drop(&mut self) {
        let server = self.server.get_mut().map(Option::take).unwrap_or_else(|e| e.into_inner().take());
        if let Some(server) = server {
            server.halt(false, STOP_TIMEOUT);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `scripts/kafka-broker` of this workspace.
fn script() -> PathBuf {
    crate::harness::workspace().join("scripts/kafka-broker")
}

/// `scripts/kafka-broker fetch`, once per test run (it returns at once when cached).
fn fetch() {
    static FETCHED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = FETCHED.get_or_init(|| {
        let started = Instant::now();
        let output = Command::new(script())
            .arg("fetch")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("run {}: {e}", script().display()))?;
        if !output.status.success() {
            return Err(format!(
                "{} fetch failed ({}):\n{}{}",
                script().display(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        if started.elapsed() > Duration::from_secs(2) {
            eprintln!("kafka: jars fetched in {:?}", started.elapsed());
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("no Kafka broker jars: {e}");
    }
}

/// Runs a command with optional stdin; its stdout if it succeeds within `timeout`,
/// else stderr and stdout as the error (it is killed at the timeout).
fn run_with_timeout(mut command: Command, stdin: Option<&str>, timeout: Duration) -> Result<String, String> {
    let mut child = command
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run {command:?}: {e}"))?;
    let writer = child.stdin.take().map(|mut pipe| {
        let input = stdin.unwrap_or_default().to_owned();
        std::thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        })
    });
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = reader(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = reader(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("wait for {command:?}: {e}")),
        }
    };
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    match status {
        Some(status) if status.success() => Ok(out),
        Some(status) => Err(format!("exited {status}\n{err}{out}")),
        None => Err(format!("timed out after {timeout:?}\n{err}{out}")),
    }
}

#[test]
fn kafka_broker_starts_and_restarts() {
    let kafka = Kafka::start();
    assert_eq!(kafka.bootstrap(), format!("127.0.0.1:{}", kafka.port()));

    kafka.create_topic("orders", 3);
    assert!(kafka.topics().contains(&"orders".to_owned()), "{:?}", kafka.topics());
    let describe = kafka.tool("org.apache.kafka.tools.TopicCommand", &["--describe", "--topic", "orders"], None);
    assert!(describe.contains("PartitionCount: 3"), "{describe}");

    kafka.produce("orders", &["one", "two", "three"]);
    let mut got = kafka.consume("orders", 3);
    got.sort();
    assert_eq!(got, ["one", "three", "two"]);

    kafka.stop();
    assert!(!kafka.is_running());
    let refused = kafka.try_tool("org.apache.kafka.tools.TopicCommand", &["--list"], None, Duration::from_secs(8));
    assert!(refused.is_err(), "a stopped broker answered: {refused:?}");

    kafka.start_again();
    let mut again = kafka.consume("orders", 3);
    again.sort();
    assert_eq!(again, ["one", "three", "two"], "the messages did not survive the restart");

    let dir = kafka.dir().to_owned();
    drop(kafka);
    assert!(!dir.exists(), "{} left behind", dir.display());
}
