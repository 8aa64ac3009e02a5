//! The store under test: `Store::start` serves the root `spin.toml` from a fresh state
//! dir, on the embedded defaults or on Kafka + PostgreSQL; [`Client`] speaks its JSON
//! API with or without a bearer token.
#![allow(dead_code)] // each service's tests use their part

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Condvar, Mutex, Once};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value as Json;

use crate::harness::{ESTORE, Host, compiled_cache, workspace};

/// The administrator the store creates at start: the manifest's e-mail, and the
/// password the tests set (the manifest's default is public, and refused).
pub const ADMIN_EMAIL: &str = "admin@estore.local";
pub const ADMIN_PASSWORD: &str = "admin-password-of-the-tests";
/// The secrets every store under test is started with, as an operator sets them
/// (`SPIN_VARIABLE_<NAME>`): `estore up` refuses the manifest's defaults.
pub const TOKEN_SECRET: &str = "token-secret-of-the-store-tests-3f9c1a7e";
pub const CARD_VAULT_KEY: &str = "card-vault-key-of-the-store-tests-8d2e6b0c";
/// Each carrier's webhook secret (`<carrier>_webhook_secret`): see [`carrier_report`].
pub const CARRIER_SECRETS: [(&str, &str); 3] = [
    ("DHL", "dhl-webhook-secret-of-the-store-tests-51c0"),
    ("UPS", "ups-webhook-secret-of-the-store-tests-7a93"),
    ("DPD", "dpd-webhook-secret-of-the-store-tests-e246"),
];

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Backends {
    /// SQLite and the embedded bus: `estore up` with nothing installed.
    Embedded,
    /// A real Kafka broker and a real PostgreSQL, shared by the run's tests.
    KafkaPostgres,
}

/// Builds the store's components once per test run.
pub fn build_store() {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let output = Command::new(&*ESTORE)
            .args(["build", "-f"])
            .arg(workspace().join("spin.toml"))
            .output()
            .expect("run estore build");
        assert!(
            output.status.success(),
            "estore build of the store failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    });
}

/// One store instance's folder: its state dir and runtime config.
pub struct Store {
    dir: tempfile::TempDir,
    runtime_config: PathBuf,
    /// The host's environment beyond the test's own: manifest variables and others.
    environment: Vec<(String, String)>,
    backends: Backends,
    /// The PostgreSQL database (on `KafkaPostgres`).
    database: Option<String>,
    /// Which store this is: the hosts of one store (see [`Store::another_host`]) share
    /// its data and its turn on the shared Kafka.
    store_id: usize,
}

/// Taken by every host serving on the shared Kafka. Every such host joins the same
/// consumer groups (the manifest's), so the hosts of two stores at once would split a
/// topic's partitions between them and each store would miss some of its own test's
/// events. The hosts of one store share the turn, as a cluster shares its groups.
struct KafkaTurn {
    /// The store whose hosts hold the turn, and how many of them.
    holder: Mutex<Option<(usize, usize)>>,
    free: Condvar,
}

static KAFKA_TURN: KafkaTurn = KafkaTurn { holder: Mutex::new(None), free: Condvar::new() };

/// One host's share of its store's turn; the last one to go hands the turn on.
struct KafkaTurnHeld(usize);

impl KafkaTurn {
    fn take(&'static self, store: usize) -> KafkaTurnHeld {
        // A test that failed while holding the turn poisons it; the turn is still sound.
        let mut holder = self.holder.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match &mut *holder {
                None => *holder = Some((store, 1)),
                Some((owner, hosts)) if *owner == store => *hosts += 1,
                Some(_) => {
                    holder = self.free.wait(holder).unwrap_or_else(|e| e.into_inner());
                    continue;
                }
            }
            return KafkaTurnHeld(store);
        }
    }
}

impl Drop for KafkaTurnHeld {
    fn drop(&mut self) {
        let mut holder = KAFKA_TURN.holder.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((owner, hosts)) = &mut *holder
            && *owner == self.0
        {
            *hosts -= 1;
            if *hosts == 0 {
                *holder = None;
                KAFKA_TURN.free.notify_all();
            }
        }
    }
}

static NEXT_STORE: AtomicUsize = AtomicUsize::new(0);

impl Store {
    pub fn new(backends: Backends) -> Store {
        build_store();
        let store_id = NEXT_STORE.fetch_add(1, Ordering::Relaxed);
        let dir = tempfile::tempdir().expect("temp dir");
        let (config, database) = match backends {
            Backends::Embedded => (String::new(), None),
            Backends::KafkaPostgres => {
                let name = format!("store_{}_{store_id}", std::process::id());
                let url = crate::postgres::shared().create_database(&name);
                let brokers = crate::kafka::shared().bootstrap();
                let config = format!(
                    "[sql]\nbackend = \"postgres\"\nurl = \"{url}\"\n[messaging]\nbackend = \"kafka\"\nbrokers = \"{brokers}\"\n\
                     [messaging.kafka_properties]\n\"statistics.interval.ms\" = \"{}\"\n",
                    STATISTICS_INTERVAL.as_millis()
                );
                (config, Some(name))
            }
        };
        let runtime_config = dir.path().join("runtime-config.toml");
        std::fs::write(&runtime_config, config).expect("write runtime config");
        let secrets = [("TOKEN_SECRET", TOKEN_SECRET), ("ADMIN_PASSWORD", ADMIN_PASSWORD), ("CARD_VAULT_KEY", CARD_VAULT_KEY)];
        let carriers = CARRIER_SECRETS.map(|(carrier, secret)| (format!("{carrier}_WEBHOOK_SECRET"), secret));
        let environment = secrets
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .chain(carriers)
            .map(|(name, value)| (format!("SPIN_VARIABLE_{name}"), value.to_owned()))
            .collect();
        Store { dir, runtime_config, environment, backends, database, store_id }
    }

    /// A second host of this store: its own state dir, the same runtime config,
    /// variables, database and Kafka (on `KafkaPostgres`, where hosts share data).
    pub fn another_host(&self) -> Store {
        let dir = tempfile::tempdir().expect("temp dir");
        let runtime_config = dir.path().join("runtime-config.toml");
        std::fs::copy(&self.runtime_config, &runtime_config).expect("copy the runtime config");
        Store {
            dir,
            runtime_config,
            environment: self.environment.clone(),
            backends: self.backends,
            database: self.database.clone(),
            store_id: self.store_id,
        }
    }

    /// Sets a manifest variable for the next start (`SPIN_VARIABLE_<NAME>`).
    pub fn variable(self, name: &str, value: &str) -> Store {
        self.env(&format!("SPIN_VARIABLE_{}", name.to_uppercase()), value)
    }

    /// Sets an environment variable of the host for the next start.
    pub fn env(mut self, name: &str, value: &str) -> Store {
        self.environment.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Runs SQL as PostgreSQL's admin in component `component`'s database `default`
    /// (a schema of the store's database), on `KafkaPostgres`.
    pub fn psql_in_component(&self, component: &str, sql: &str) -> String {
        let database = self.database.as_deref().expect("psql needs Backends::KafkaPostgres");
        crate::postgres::shared().psql_in(database, &format!("SET search_path TO {component}__default;\n{sql}"))
    }

    /// Appends `toml` to the runtime config for the next start, e.g. an `[email]`
    /// section that points at a test's SMTP server.
    pub fn runtime_config(self, toml: &str) -> Store {
        let mut config = std::fs::read_to_string(&self.runtime_config).expect("read runtime config");
        config.push_str(toml);
        std::fs::write(&self.runtime_config, config).expect("write runtime config");
        self
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `estore deploy <component> <file>` into this store's running host.
    pub fn deploy(&self, component: &str, file: &std::path::Path) {
        let output = Command::new(&*ESTORE)
            .args(["deploy", component])
            .arg(file)
            .arg("-f")
            .arg(workspace().join("spin.toml"))
            .arg("--state-dir")
            .arg(self.state_dir())
            .env_remove(estore::admin::TOKEN_ENV)
            .output()
            .expect("run estore deploy");
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "estore deploy {component} {}: {text}", file.display());
    }

    /// Serves the store; the answer borrows the store, so its state dir cannot be
    /// dropped under the running host (`Store::new(..).start()` does not compile).
    pub fn start(&self) -> Running<'_> {
        self.start_with_cache(&compiled_cache())
    }

    /// [`Store::start`] with the compiled components cached in `cache` (an empty
    /// folder: a cold start that compiles every component).
    pub fn start_with_cache(&self, cache: &std::path::Path) -> Running<'_> {
        let kafka_turn = (self.backends == Backends::KafkaPostgres).then(|| KAFKA_TURN.take(self.store_id));
        let mut command = Command::new(&*ESTORE);
        command
            .arg("up")
            .arg("-f")
            .arg(workspace().join("spin.toml"))
            .args(["--listen", "127.0.0.1:0", "--state-dir"])
            .arg(self.state_dir())
            .arg("--cache-dir")
            .arg(cache)
            .arg("--runtime-config-file")
            .arg(&self.runtime_config)
            .env("RUST_LOG", "info")
            .envs(self.environment.iter().map(|(k, v)| (k, v)));
        Running { host: Host::start(command), _store: self, _kafka_turn: kafka_turn }
    }
}

/// How often the hosts on the shared Kafka report their consumer lag (librdkafka's
/// statistics; 5 s unless told), which [`Running`] reads before it stops a host.
const STATISTICS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(1000);
/// The longest a host on the shared Kafka is given to drain its consumer groups.
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// A host serving a [`Store`]'s state dir.
pub struct Running<'a> {
    // Fields drop in order: the host stops before the Kafka turn is handed on.
    host: Host,
    _store: &'a Store,
    _kafka_turn: Option<KafkaTurnHeld>,
}

impl Drop for Running<'_> {
    /// A host on the shared Kafka stops only once its consumer groups have handled
    /// every message: the groups are named in the manifest, so they are the next
    /// store's too, and what this store left would be the next store's to handle:
    /// events about users and orders it never had, each retried for half a minute
    /// before it is dead-lettered, holding up that store's own events behind it.
    fn drop(&mut self) {
        if self._kafka_turn.is_some() && !std::thread::panicking() {
            wait_until_drained(&self._store.state_dir());
        }
    }
}

/// Waits until the host on `state_dir` reports no consumer lag on any partition, in
/// two of its statistics at least one interval apart (a message published meanwhile
/// shows in the second), or [`DRAIN_LIMIT`] has passed. A host that no longer answers
/// (a test killed it) has nothing left to drain here.
fn wait_until_drained(state_dir: &std::path::Path) {
    let started = std::time::Instant::now();
    let mut drained_since = None;
    while started.elapsed() < DRAIN_LIMIT {
        let Some(metrics) = admin_metrics(state_dir) else { return };
        let lags: Vec<f64> = metrics
            .lines()
            .filter(|line| line.starts_with("estore_consumer_lag{"))
            .filter_map(|line| line.rsplit(' ').next()?.parse().ok())
            .collect();
        if lags.is_empty() || lags.iter().any(|lag| *lag > 0.0) {
            drained_since = None;
        } else if drained_since.get_or_insert_with(std::time::Instant::now).elapsed() > STATISTICS_INTERVAL * 2 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    eprintln!("the store on {} still had consumer lag after {DRAIN_LIMIT:?}; stopping it anyway", state_dir.display());
}

/// `GET /metrics` on the admin listener of the host on `state_dir`, over a plain
/// socket (a `Drop` cannot wait on an async client): `None` when it does not answer.
fn admin_metrics(state_dir: &std::path::Path) -> Option<String> {
    use std::io::{Read, Write};
    let address = std::fs::read_to_string(state_dir.join("admin/address")).ok()?;
    let mut stream = std::net::TcpStream::connect(address.trim()).ok()?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5))).ok()?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

impl std::ops::Deref for Running<'_> {
    type Target = Host;

    fn deref(&self) -> &Host {
        &self.host
    }
}

impl std::ops::DerefMut for Running<'_> {
    fn deref_mut(&mut self) -> &mut Host {
        &mut self.host
    }
}

/// A client of the store's API, logged in or not.
#[derive(Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

/// A response: status, headers and the JSON body (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Json,
}

impl Client {
    pub fn new(host: &Host) -> Client {
        Client { base: host.url.clone(), token: None, http: reqwest::Client::new() }
    }

    /// The store's base URL (`http://127.0.0.1:<port>`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// This client connecting from another loopback address (`127.0.0.2`, ...), as a
    /// client elsewhere on the network would: the store sees its own address.
    pub fn from_address(&self, ip: &str) -> Client {
        let ip: std::net::IpAddr = ip.parse().expect("an IP address");
        let http = reqwest::Client::builder().local_address(ip).build().expect("a client bound to the address");
        Client { http, ..self.clone() }
    }

    pub fn with_token(&self, token: &str) -> Client {
        Client { token: Some(token.to_owned()), ..self.clone() }
    }

    /// The bearer token this client sends, if logged in.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Json) -> Answer {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Json) -> Answer {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Json) -> Answer {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Json>) -> Answer {
        self.send_with_headers(method, path, body, &[]).await
    }

    /// [`Client::send`] with request headers of its own (e.g. `Idempotency-Key`).
    pub async fn send_with_headers(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Json>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Json::Null);
        Answer { status, headers, body }
    }

    /// Logs in (by e-mail) and returns a client carrying the token.
    pub async fn login(&self, email: &str, password: &str) -> Client {
        let answer = self.post("/api/auth/login", serde_json::json!({"email": email, "password": password})).await;
        assert_eq!(answer.status, 200, "login as {email}: {answer:?}");
        let token = answer.body["token"].as_str().expect("a token").to_owned();
        self.with_token(&token)
    }

    pub async fn admin(&self) -> Client {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }
}


/// A token for `role`, issued as the users service issues them at login, so that a
/// service's tests need no account.
pub fn issued_token(role: estore_shared::auth::Role) -> String {
    token_for(&format!("test-{role:?}").to_lowercase(), role)
}

/// The events published to `topic` with key `key` so far (their envelopes), once there
/// are at least `count` (waits up to 60 s for them). The topic is read from the
/// beginning, as a new consumer group: other tests' events on it are skipped by key.
pub async fn published(topic: &str, key: &str, count: usize) -> Vec<Json> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (topic, prefix) = (topic.to_owned(), format!("{key}\t"));
        // The console consumer stops after 3 s without a message; its exit status
        // then varies by Kafka version, so what it printed is read either way.
        let out = tokio::task::spawn_blocking(move || {
            let args = [
                "--topic", &topic, "--from-beginning", "--timeout-ms", "3000",
                "--property", "print.key=true", "--property", "key.separator=\t",
            ];
            crate::kafka::shared()
                .try_tool("org.apache.kafka.tools.consumer.ConsoleConsumer", &args, None, std::time::Duration::from_secs(60))
                .unwrap_or_else(|failure| failure)
        })
        .await
        .expect("the consumer runs");
        let events: Vec<Json> = out
            .lines()
            .filter_map(|line| line.strip_prefix(&prefix))
            .map(|value| serde_json::from_str(value).expect("an event is JSON"))
            .collect();
        if events.len() >= count || std::time::Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// A token for user `sub` with `role`, as the users service issues them at login.
pub fn token_for(sub: &str, role: estore_shared::auth::Role) -> String {
    let claims = estore_shared::auth::Claims {
        sub: sub.to_owned(),
        role,
        exp: estore_shared::clock::now_unix() + 3600,
        iat_ms: estore_shared::clock::now_unix_ms(),
    };
    estore_shared::auth::issue(TOKEN_SECRET.as_bytes(), &claims)
}

/// A carrier's report `body` on the order's shipment, signed as `carrier` signs its
/// webhook requests (components/shipping/src/webhook.rs) at `timestamp` (Unix
/// seconds; `None`: now), or as given in `signature` (to try a forged or replayed one).
pub struct CarrierReport<'a> {
    pub carrier: &'a str,
    pub timestamp: Option<i64>,
    pub signature: Option<String>,
}

impl CarrierReport<'_> {
    /// Signed now by `carrier` with its secret.
    pub fn by(carrier: &str) -> CarrierReport<'_> {
        CarrierReport { carrier, timestamp: None, signature: None }
    }
}

/// `sha256=<hex HMAC-SHA256 of "<timestamp>.<order id>.<body>">` under `secret`.
pub fn carrier_signature(secret: &str, timestamp: i64, order_id: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{timestamp}.{order_id}.").as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// `POST /api/shipments/{order_id}/events` with `body`, signed per `report`.
pub async fn carrier_report(base: &str, order_id: &str, body: &Json, report: &CarrierReport<'_>) -> Answer {
    let body = body.to_string();
    let timestamp = report.timestamp.unwrap_or_else(estore_shared::clock::now_unix);
    let secret = CARRIER_SECRETS.iter().find(|(carrier, _)| *carrier == report.carrier).map_or("", |(_, s)| s);
    let signature = report.signature.clone().unwrap_or_else(|| carrier_signature(secret, timestamp, order_id, body.as_bytes()));
    let response = reqwest::Client::new()
        .post(format!("{base}/api/shipments/{order_id}/events"))
        .header("content-type", "application/json")
        .header("x-carrier", report.carrier)
        .header("x-carrier-timestamp", timestamp.to_string())
        .header("x-carrier-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("carrier webhook: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = serde_json::from_str(&response.text().await.unwrap_or_default()).unwrap_or(Json::Null);
    Answer { status, headers, body }
}

/// A server-sent event: its `id`, `event` name and JSON `data`.
#[derive(Debug, Clone)]
pub struct ServerEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: Json,
}

/// An open `text/event-stream` response, read event by event as a browser's
/// `EventSource` would (comments and `retry:` lines skipped).
pub struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    /// The next event, or `None` once the server ended the stream. Panics if none
    /// comes within `within`.
    pub async fn next(&mut self, within: std::time::Duration) -> Option<ServerEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse_event(&block) {
                    return Some(event);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("no event within {within:?}; unread: {:?}", self.buffer))
                .unwrap_or_else(|e| panic!("the event stream failed: {e}"));
            match chunk {
                Some(bytes) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                None => return None,
            }
        }
    }
}

fn parse_event(block: &str) -> Option<ServerEvent> {
    let (mut id, mut event, mut data) = (None, None, None::<String>);
    for line in block.lines() {
        let (field, value) = line.split_once(':').map_or((line, ""), |(f, v)| (f, v.strip_prefix(' ').unwrap_or(v)));
        match field {
            "id" => id = Some(value.to_owned()),
            "event" => event = Some(value.to_owned()),
            "data" => data = Some(data.map_or_else(|| value.to_owned(), |d| format!("{d}\n{value}"))),
            _ => {}
        }
    }
    let data = data?;
    Some(ServerEvent { id, event, data: serde_json::from_str(&data).unwrap_or(Json::String(data)) })
}

impl Client {
    /// Opens `path` as an event stream, resuming after `last_event_id` if given.
    /// Answers the status and headers, and the stream when the status is 200.
    pub async fn events(&self, path: &str, last_event_id: Option<&str>) -> (Answer, Option<EventStream>) {
        let mut request = self.http.get(format!("{}{path}", self.base)).header("accept", "text/event-stream");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        if status != 200 {
            let body = serde_json::from_str(&response.text().await.unwrap_or_default()).unwrap_or(Json::Null);
            return (Answer { status, headers, body }, None);
        }
        (Answer { status, headers, body: Json::Null }, Some(EventStream { response, buffer: String::new() }))
    }
}

/// An id no other test (or earlier run on the same broker) uses: `{name}-{pid}-{n}`.
pub fn unique_id(name: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{name}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Produces an event to the shared Kafka as a service would publish it (topic = type,
/// keyed and correlated by `key`); answers its envelope.
pub fn produce_event(event_type: &str, key: &str, data: Json) -> Json {
    let envelope = estore_shared::event::Envelope::new(event_type, key, data);
    let json = serde_json::to_value(&envelope).expect("serialises");
    crate::kafka::shared().produce_keyed(event_type, &[(key, &json.to_string())]);
    json
}

/// Asks `GET path` until the answer is `wanted` (for up to 60 s); answers it.
pub async fn get_until(client: &Client, path: &str, wanted: impl Fn(&Answer) -> bool) -> Answer {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let answer = client.get(path).await;
        if wanted(&answer) {
            return answer;
        }
        assert!(std::time::Instant::now() < deadline, "{path} is still {answer:?}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Registers `name` (`<name>@example.com` unless `email` says otherwise) with the
/// extra fields of `extra`; returns a client logged in as them and their user id.
pub async fn register(client: &Client, name: &str, extra: Json) -> (Client, String) {
    let email = extra["email"].as_str().map_or_else(|| format!("{name}@example.com"), str::to_owned);
    let mut body = serde_json::json!({
        "username": name, "email": email, "password": "correct horse battery",
        "first_name": capitalised(name), "last_name": "Tester",
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let answer = client.post("/api/users", body).await;
    assert_eq!(answer.status, 201, "register {name}: {answer:?}");
    let id = answer.body["id"].as_str().expect("an id").to_owned();
    (client.login(&email, "correct horse battery").await, id)
}

fn capitalised(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// Every message on the shared broker's `topic` since it began, as (key, payload),
/// read with a consumer group of its own. Other tests of the run publish to the
/// store's topics too: pick yours by key.
pub async fn everything_on(topic: &str) -> Vec<(String, String)> {
    use rdkafka::Message;
    use rdkafka::consumer::{Consumer, StreamConsumer};
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", crate::kafka::shared().bootstrap())
        .set("group.id", format!("read-all-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut messages = Vec::new();
    // Read until quiet for 5 s after the first message: the topic's end.
    let mut wait = std::time::Duration::from_secs(30);
    while let Ok(Ok(message)) = tokio::time::timeout(wait, consumer.recv()).await {
        let text = |bytes: Option<&[u8]>| String::from_utf8_lossy(bytes.unwrap_or_default()).into_owned();
        messages.push((text(message.key()), text(message.payload())));
        wait = std::time::Duration::from_secs(5);
    }
    messages
}
