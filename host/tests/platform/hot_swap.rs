//! Hot swap: one component of a running host replaced by another version through
//! the CLI (`estore deploy`, `rollback`, `components`) and the admin API, while
//! HTTP requests and messages keep flowing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::harness::{App, ESTORE, Host, compiled_cache, wasm_dir, workspace};

/// The two versions of the fixture, answering "a" and "b".
fn version_file(version: &str) -> PathBuf {
    wasm_dir().join(format!("swapcheck_{version}.wasm"))
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Bus {
    Embedded,
    Kafka,
    /// The embedded bus, with SQL on a PostgreSQL database of the test's own: what
    /// makes hosts of the application share deploys.
    EmbeddedWithPostgres,
}

/// An application with the fixture's version "a" serving `/swap/...` and handling
/// `swap.events`, its migrations in a folder of its own (a test adds to it).
struct SwapApp {
    app: App,
    runtime_config: PathBuf,
    topic: String,
}

impl SwapApp {
    fn new(bus: Bus) -> SwapApp {
        let unique = format!("{}-{}", std::process::id(), uuid_like());
        let app = App::new(&format!(
            r#"spin_manifest_version = 2
[application]
name = "swap"
[[trigger.http]]
route = "/swap/..."
component = "swap"
[[trigger.kafka]]
component = "swap"
topics = ["swap.events.{unique}"]
group = "swap-{unique}"
[component.swap]
source = "{{wasm}}/swapcheck_a.wasm"
sql_databases = ["default"]
sql_migrations = "migrations"
allowed_publish_topics = ["swap.events.{unique}"]
"#
        ));
        // A topic per test keeps the shared broker's traffic apart.
        let migrations = app.dir.path().join("migrations");
        std::fs::create_dir_all(&migrations).expect("migrations folder");
        let fixture = workspace().join("host/tests/fixtures/swapcheck/migrations/0001_handled.sql");
        std::fs::copy(fixture, migrations.join("0001_handled.sql")).expect("copy the migration");
        let (backend, sql) = match bus {
            Bus::Embedded => ("backend = \"embedded\"\n".to_owned(), String::new()),
            Bus::Kafka => (format!("backend = \"kafka\"\nbrokers = \"{}\"\n", crate::kafka::shared().bootstrap()), String::new()),
            Bus::EmbeddedWithPostgres => {
                let database = format!("swap_{}", unique.replace('-', "_"));
                let url = crate::postgres::shared().create_database(&database);
                ("backend = \"embedded\"\n".to_owned(), format!("[sql]\nbackend = \"postgres\"\nurl = \"{url}\"\n"))
            }
        };
        let runtime_config = app.dir.path().join("runtime-config.toml");
        std::fs::write(&runtime_config, format!("{sql}[messaging]\n{backend}partitions = 4\n")).expect("runtime config");
        SwapApp { app, runtime_config, topic: format!("swap.events.{unique}") }
    }

    fn start(&self) -> Host {
        self.start_on(&self.app.state_dir())
    }

    /// Another host of the application, on a state dir of its own.
    fn start_on(&self, state_dir: &Path) -> Host {
        let mut command = self.app.command_on(state_dir, &compiled_cache());
        command.arg("--runtime-config-file").arg(&self.runtime_config);
        Host::start(command)
    }

    /// Runs `estore <args> -f <manifest> --state-dir <state>`; its success and output.
    fn cli(&self, args: &[&str]) -> (bool, String) {
        self.cli_on(&self.app.state_dir(), args)
    }

    /// [`SwapApp::cli`] for the host on `state_dir`.
    fn cli_on(&self, state_dir: &Path, args: &[&str]) -> (bool, String) {
        let output = Command::new(&*ESTORE)
            .args(args)
            .arg("-f")
            .arg(self.app.manifest())
            .arg("--state-dir")
            .arg(state_dir)
            .env_remove(estore::admin::TOKEN_ENV)
            .output()
            .expect("run the estore CLI");
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.success(), text)
    }

    fn deploy(&self, file: &Path) -> String {
        let (ok, text) = self.cli(&["deploy", "swap", &file.display().to_string()]);
        assert!(ok, "deploy {}: {text}", file.display());
        text
    }
}

fn uuid_like() -> String {
    format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()))
}

async fn version(client: &reqwest::Client, host: &Host) -> String {
    let answer: Json = client
        .get(host.url("/swap/version"))
        .send()
        .await
        .expect("GET /swap/version")
        .json()
        .await
        .expect("JSON");
    answer["version"].as_str().unwrap_or_default().to_owned()
}

/// One request of the load: when it ran, and which version answered (or the failure).
struct Served {
    started: Instant,
    version: Result<String, String>,
}

async fn load(host_url: String, running: Arc<AtomicBool>) -> Vec<Served> {
    let client = reqwest::Client::new();
    let mut served = Vec::new();
    while running.load(Ordering::Relaxed) {
        let started = Instant::now();
        let version = match client.get(format!("{host_url}/swap/version")).send().await {
            Ok(response) if response.status() == 200 => {
                let header = response.headers().get("x-version").and_then(|v| v.to_str().ok()).map(str::to_owned);
                let body: Json = response.json().await.unwrap_or(Json::Null);
                match (header, body["version"].as_str()) {
                    (Some(header), Some(body)) if header == body => Ok(header),
                    (header, body) => Err(format!("mixed answer: header {header:?}, body {body:?}")),
                }
            }
            Ok(response) => Err(format!("status {}", response.status())),
            Err(e) => Err(e.to_string()),
        };
        served.push(Served { started, version });
    }
    served
}

/// Twenty swaps between "a" and "b" under HTTP load with messages flowing: no request
/// fails, each answer comes from one version, none from the old version once a swap
/// has returned, and every message is handled exactly once.
async fn swaps_under_load(bus: Bus) {
    let app = SwapApp::new(bus);
    let host = app.start();
    let client = reqwest::Client::new();
    assert_eq!(version(&client, &host).await, "a");
    // The swaps start once the trigger handles messages: on Kafka, joining the group
    // takes a few seconds, which could otherwise outlast all twenty swaps.
    let first = client.post(host.url("/swap/publish")).json(&json!({"topic": app.topic, "from": 0, "count": 1})).send().await;
    assert_eq!(first.map(|a| a.status().as_u16()).ok(), Some(200), "publishing through the component");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let handled: Json = client.get(host.url("/swap/handled")).send().await.expect("handled").json().await.expect("JSON");
        if handled["rows"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the first message was not handled: {handled}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let running = Arc::new(AtomicBool::new(true));
    let workers: Vec<_> = (0..6).map(|_| tokio::spawn(load(host.url.clone(), running.clone()))).collect();
    let publisher = tokio::spawn({
        let (running, url, client, topic) = (running.clone(), host.url("/swap/publish"), client.clone(), app.topic.clone());
        async move {
            let mut published = 1;
            while running.load(Ordering::Relaxed) {
                let answer = client.post(&url).json(&json!({"topic": topic, "from": published, "count": 10})).send().await;
                assert_eq!(answer.map(|a| a.status().as_u16()).ok(), Some(200), "publishing through the component");
                published += 10;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            published
        }
    });

    // Each swap: when it started, when it returned, and what serves after it.
    let mut swaps = Vec::new();
    for round in 0..20 {
        let next = if round % 2 == 0 { "b" } else { "a" };
        let started = Instant::now();
        let file = version_file(next);
        let output = {
            let app_cli = |file: PathBuf| app.deploy(&file);
            tokio::task::block_in_place(|| app_cli(file))
        };
        swaps.push((started, Instant::now(), next));
        assert!(output.contains("deployed swap"), "{output}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    running.store(false, Ordering::Relaxed);
    let mut served = Vec::new();
    for worker in workers {
        served.extend(worker.await.expect("load worker"));
    }
    let published = publisher.await.expect("publisher");

    let failed: Vec<_> = served.iter().filter_map(|s| s.version.as_ref().err()).collect();
    assert!(failed.is_empty(), "{} of {} requests failed: {:?}", failed.len(), served.len(), &failed[..failed.len().min(5)]);
    for (i, (_, returned, version)) in swaps.iter().enumerate() {
        let next_start = swaps.get(i + 1).map(|(start, _, _)| *start);
        let stale: Vec<_> = served
            .iter()
            .filter(|s| s.started > *returned && next_start.is_none_or(|next| s.started < next))
            .filter(|s| s.version.as_deref() != Ok(*version))
            .collect();
        assert!(stale.is_empty(), "swap {i} to {version} had returned, yet {} requests got another version", stale.len());
    }
    let elapsed = swaps.last().map(|(_, end, _)| end.duration_since(swaps[0].0)).unwrap_or_default();
    println!(
        "{} requests ({:.0}/s) and {published} messages across 20 swaps",
        served.len(),
        served.len() as f64 / elapsed.as_secs_f64().max(0.001)
    );

    // Every message once, whichever version handled it.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let handled: Json = client.get(host.url("/swap/handled")).send().await.expect("handled").json().await.expect("JSON");
        if handled["rows"] == published {
            assert_eq!(handled["distinct"], published, "{handled}");
            assert!(handled["by_a"].as_i64() > Some(0) && handled["by_b"].as_i64() > Some(0), "both versions handled some: {handled}");
            break;
        }
        assert!(Instant::now() < deadline, "handled {handled} of {published} messages");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(!host.log().contains("already handled"), "no message was delivered twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_swaps_under_load_fail_nothing_on_the_embedded_bus() {
    swaps_under_load(Bus::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_swaps_under_load_fail_nothing_on_kafka() {
    swaps_under_load(Bus::Kafka).await;
}

/// A version that does not fit, or whose migration fails, is refused with the reason
/// and the running one keeps serving.
#[tokio::test]
async fn a_deploy_that_fails_its_check_or_its_migration_changes_nothing() {
    let app = SwapApp::new(Bus::Embedded);
    let host = app.start();
    let client = reqwest::Client::new();

    let (ok, text) = app.cli(&["deploy", "swap", &wasm_dir().join("hello.wasm").display().to_string()]);
    assert!(!ok, "{text}");
    assert!(text.contains("does not export estore:platform/message-handler"), "{text}");
    assert!(text.contains("key_value_stores"), "hello imports key-value, which swap is not granted: {text}");
    assert_eq!(version(&client, &host).await, "a");

    let broken = app.app.dir.path().join("migrations/0002_broken.sql");
    std::fs::write(&broken, "CREATE TABLE half (;").expect("write a broken migration");
    let (ok, text) = app.cli(&["deploy", "swap", &version_file("b").display().to_string()]);
    assert!(!ok && text.contains("migration") && text.contains("0002_broken.sql"), "{text}");
    assert_eq!(version(&client, &host).await, "a");
    std::fs::remove_file(&broken).expect("remove it");

    let (ok, text) = app.cli(&["deploy", "nothing-here", &version_file("b").display().to_string()]);
    assert!(!ok && text.contains("no running component `nothing-here`"), "{text}");
}

/// Rollback returns to the version before; a restart serves the deployed one.
#[tokio::test]
async fn rollback_and_restart_keep_track_of_the_deployed_version() {
    let app = SwapApp::new(Bus::Embedded);
    let mut host = app.start();
    let client = reqwest::Client::new();
    let (ok, text) = app.cli(&["rollback", "swap"]);
    assert!(!ok && text.contains("no earlier version"), "{text}");

    app.deploy(&version_file("b"));
    assert_eq!(version(&client, &host).await, "b");
    let (ok, listing) = app.cli(&["components"]);
    assert!(ok, "{listing}");
    assert!(listing.contains("swap") && listing.contains("swapcheck_b.wasm"), "{listing}");
    assert!(listing.contains("kafka swap.events"), "{listing}");

    let (ok, text) = app.cli(&["rollback", "swap"]);
    assert!(ok, "{text}");
    assert_eq!(version(&client, &host).await, "a");

    app.deploy(&version_file("b"));
    assert!(host.terminate().success());
    let host = app.start();
    assert_eq!(version(&client, &host).await, "b", "the deployed version survives the restart");
    let (ok, text) = app.cli(&["rollback", "swap"]);
    assert!(ok, "{text}");
    assert_eq!(version(&client, &host).await, "a");

    // The admin API wants its token.
    let address = std::fs::read_to_string(app.app.state_dir().join("admin/address")).expect("admin address");
    let refused = client.get(format!("http://{}/v1/components", address.trim())).send().await.expect("admin API");
    assert_eq!(refused.status(), 401);
}

/// Polls `host` until it answers `expected`; how long that took.
async fn wait_for_version(client: &reqwest::Client, host: &Host, expected: &str, within: Duration) -> Duration {
    let started = Instant::now();
    while version(client, host).await != expected {
        assert!(started.elapsed() < within, "{} did not switch to {expected} within {within:?}", host.url);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

/// Hosts sharing a PostgreSQL database share deploys: one sent to either host reaches
/// the other within seconds, with requests to both running throughout and none
/// failing; `estore components` shows each host's version; a host started later
/// starts on the deployed version.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deploy_to_one_host_reaches_the_others() {
    let app = SwapApp::new(Bus::EmbeddedWithPostgres);
    let (state_a, state_b, state_c) = (app.app.state_dir(), app.app.dir.path().join("state-b"), app.app.dir.path().join("state-c"));
    let host_a = app.start();
    let host_b = app.start_on(&state_b);
    let client = reqwest::Client::new();
    assert_eq!(version(&client, &host_a).await, "a");
    assert_eq!(version(&client, &host_b).await, "a");

    let running = Arc::new(AtomicBool::new(true));
    let workers: Vec<_> = [&host_a, &host_b]
        .iter()
        .flat_map(|host| (0..3).map(|_| tokio::spawn(load(host.url.clone(), running.clone()))))
        .collect();

    let deployed = tokio::task::block_in_place(|| app.deploy(&version_file("b")));
    assert!(deployed.contains("deployed swap"), "{deployed}");
    assert_eq!(version(&client, &host_a).await, "b", "the host deployed to serves it when the deploy returns");
    let took = wait_for_version(&client, &host_b, "b", Duration::from_secs(10)).await;
    println!("the deploy through host a reached host b {took:?} after it returned");

    // Each host's report shows both on b's version.
    let digest_b = hex_sha256(&std::fs::read(version_file("b")).expect("wasm"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (ok, listing) = tokio::task::block_in_place(|| app.cli_on(&state_b, &["components"]));
        assert!(ok, "{listing}");
        let on_b: Vec<&str> = listing.lines().filter(|l| l.trim_start().starts_with("on ")).collect();
        if on_b.len() == 2 && on_b.iter().all(|l| l.contains(&digest_b[..12])) {
            assert!(on_b[0].contains("(this host)") && on_b[0].contains("state-b"), "this host first: {listing}");
            break;
        }
        assert!(Instant::now() < deadline, "both hosts should report b's version {}:\n{listing}", &digest_b[..12]);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A rollback through the other host comes back to the first.
    let (ok, text) = tokio::task::block_in_place(|| app.cli_on(&state_b, &["rollback", "swap"]));
    assert!(ok, "{text}");
    assert_eq!(version(&client, &host_b).await, "a");
    wait_for_version(&client, &host_a, "a", Duration::from_secs(10)).await;

    running.store(false, Ordering::Relaxed);
    let mut served = Vec::new();
    for worker in workers {
        served.extend(worker.await.expect("load worker"));
    }
    let failed: Vec<_> = served.iter().filter_map(|s| s.version.as_ref().err()).collect();
    assert!(failed.is_empty(), "{} of {} requests failed: {:?}", failed.len(), served.len(), &failed[..failed.len().min(5)]);
    assert!(served.iter().any(|s| s.version.as_deref() == Ok("b")), "the load saw the deploy");

    // A host started later starts on the version the others serve, fetched from the
    // database: its own state dir has never seen it.
    let (ok, text) = tokio::task::block_in_place(|| app.cli_on(&state_a, &["deploy", "swap", &version_file("b").display().to_string()]));
    assert!(ok, "{text}");
    let host_c = app.start_on(&state_c);
    assert_eq!(version(&client, &host_c).await, "b");
    assert!(host_c.log().contains("serving the version deployed at"), "{}", host_c.log());
    wait_for_version(&client, &host_b, "b", Duration::from_secs(10)).await;
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// `estore watch` rebuilds a component whose watched files change and deploys it into
/// the running host. The "build" here copies one of the fixture's two versions, chosen
/// by a watched file, so the test needs no compiler.
#[tokio::test]
async fn watch_rebuilds_and_deploys_what_changed() {
    let app = SwapApp::new(Bus::Embedded);
    let dir = app.app.dir.path();
    std::fs::create_dir_all(dir.join("src")).expect("src folder");
    std::fs::write(dir.join("src/version.txt"), "a").expect("version file");
    let manifest = std::fs::read_to_string(app.app.manifest()).expect("manifest");
    let build = format!(
        "[component.swap.build]\ncommand = \"cp {}/swapcheck_$(cat src/version.txt).wasm built.wasm\"\nwatch = [\"src/*.txt\"]\n",
        wasm_dir().display()
    );
    std::fs::copy(version_file("a"), dir.join("built.wasm")).expect("first build");
    let manifest = manifest.replace(&format!("source = \"{}/swapcheck_a.wasm\"", wasm_dir().display()), "source = \"built.wasm\"");
    std::fs::write(app.app.manifest(), format!("{manifest}{build}")).expect("manifest with a build");
    let host = app.start();
    let client = reqwest::Client::new();
    assert_eq!(version(&client, &host).await, "a");

    let mut watch = Command::new(&*ESTORE)
        .args(["watch", "-f"])
        .arg(app.app.manifest())
        .arg("--state-dir")
        .arg(app.app.state_dir())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start estore watch");
    // Let watch take its first look before anything changes.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    std::fs::write(dir.join("src/version.txt"), "b").expect("change the source");
    let deadline = Instant::now() + Duration::from_secs(60);
    while version(&client, &host).await != "b" {
        assert!(Instant::now() < deadline, "watch did not deploy the change");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = watch.kill();
    let _ = watch.wait();

    // The build overwrote the file the host started from; a rollback still returns to
    // the version that was running, kept at start.
    let (ok, text) = app.cli(&["rollback", "swap"]);
    assert!(ok, "{text}");
    assert_eq!(version(&client, &host).await, "a");
}

/// The swap latency (request to switch, compilation included, from the compiled
/// cache after the first of each version) as the benchmark suite prints it:
/// `scripts/bench` runs this. Not a timed test: it asserts nothing about speed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a benchmark: scripts/bench runs it"]
async fn bench_swap_latency() {
    let app = SwapApp::new(Bus::Embedded);
    let host = app.start();
    let running = Arc::new(AtomicBool::new(true));
    let workers: Vec<_> = (0..4).map(|_| tokio::spawn(load(host.url.clone(), running.clone()))).collect();
    let address = std::fs::read_to_string(app.app.state_dir().join("admin/address")).expect("admin address");
    let token = std::fs::read_to_string(app.app.state_dir().join("admin/token")).expect("admin token");
    let client = reqwest::Client::new();
    let wasm: Vec<Vec<u8>> = ["a", "b"].iter().map(|v| std::fs::read(version_file(v)).expect("wasm")).collect();
    let mut took = Vec::new();
    for round in 0..60 {
        let started = Instant::now();
        let answer = client
            .post(format!("http://{}/v1/components/swap/deploy", address.trim()))
            .bearer_auth(token.trim())
            .body(wasm[(round + 1) % 2].clone())
            .send()
            .await
            .expect("deploy");
        assert_eq!(answer.status(), 200);
        took.push(started.elapsed());
    }
    running.store(false, Ordering::Relaxed);
    let mut served = Vec::new();
    for worker in workers {
        served.extend(worker.await.expect("load worker"));
    }
    let failed = served.iter().filter(|s| s.version.is_err()).count();
    took.sort();
    let at = |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)];
    println!("hot swap: {} deploys of a {} KiB component under HTTP load", took.len(), wasm[0].len() / 1024);
    println!("  deploy latency (HTTP round trip, compile from cache, check, switch): p50 {:?}  p99 {:?}  max {:?}", at(0.5), at(0.99), at(1.0));
    println!("  requests during the swaps: {}  failed: {failed}", served.len());
}
