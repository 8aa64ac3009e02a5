//! WASI 0.3: a Spin 4 application (spin-sdk 7, `host/tests/fixtures/spin4`) served
//! unmodified from its own manifest, its instances reused and serving several
//! requests at once; and a spin-sdk 6 one (a release candidate of WASI 0.3) refused
//! with the reason.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::harness::{App, ESTORE, Host, admin_get, metric};

/// The spin4 application, its `hello` alone, with `limits` for it: the built
/// component from a manifest of the test's.
fn hello_with(limits: &str) -> App {
    let spin4 = App::spin("spin4");
    let source = spin4.manifest().with_file_name("target/wasm32-wasip2/release/hello.wasm");
    App::new(&format!(
        "spin_manifest_version = 2\n[application]\nname = \"reuse\"\n\
         [[trigger.http]]\nroute = \"/hello/...\"\ncomponent = \"hello\"\n\
         [component.hello]\nsource = \"{}\"\n[component.hello.limits]\n{limits}\n",
        source.display()
    ))
}

/// What `hello` answered: its status, body and the instance that served it.
struct Hello {
    status: u16,
    body: String,
    instance: Option<String>,
    nth: Option<u64>,
}

async fn hello(client: &reqwest::Client, host: &Host, query: &str) -> Hello {
    let response = client.get(host.url(&format!("/hello/x{query}"))).send().await.expect("GET /hello");
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let instance = header("x-instance-id");
    let nth = header("x-instance-requests").and_then(|n| n.parse().ok());
    let status = response.status().as_u16();
    Hello { status, body: response.text().await.unwrap_or_default(), instance, nth }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spin4_application_runs_unmodified() {
    let app = App::spin("spin4");
    let host = app.start();
    let client = reqwest::Client::new();

    let hi = hello(&client, &host, "").await;
    assert_eq!((hi.status, hi.body.as_str()), (200, "Hello, Spin 4!"));

    // spin:key-value@3.0.0, on the store the manifest grants; another is refused
    // with Spin's variant.
    let kv = |path: &str| host.url(&format!("/kv{path}"));
    let put = client.put(kv("/greeting")).body("bonjour").send().await.expect("PUT");
    assert_eq!(put.status(), 200);
    let got = client.get(kv("/greeting")).send().await.expect("GET");
    assert_eq!((got.status().as_u16(), got.text().await.unwrap_or_default()), (200, "bonjour".into()));
    let keys: Json = client.get(kv("")).send().await.expect("GET keys").json().await.expect("keys");
    assert_eq!(keys, serde_json::json!(["greeting"]));
    let denied = client.get(kv("/greeting?store=other")).send().await.expect("GET other store");
    assert_eq!(denied.status(), 403);
    assert!(denied.text().await.unwrap_or_default().ends_with("AccessDenied"));

    // spin:variables@3.0.0.
    let greeting = client.get(host.url("/variables/greeting")).send().await.expect("GET variable");
    assert_eq!((greeting.status().as_u16(), greeting.text().await.unwrap_or_default()), (200, "Hello from a Spin 4 variable".into()));
    let missing = client.get(host.url("/variables/missing")).send().await.expect("GET missing variable");
    assert_eq!(missing.status(), 404);
    assert!(missing.text().await.unwrap_or_default().contains("Undefined("));

    // spin:sqlite@3.1.0 on the component's own SQLite file, its rows streamed.
    let created: Json = client.post(host.url("/sqlite")).body("first note").send().await.expect("POST").json().await.expect("row");
    assert_eq!(created, serde_json::json!({"id": 1, "body": "first note"}));
    client.post(host.url("/sqlite")).body("second note").send().await.expect("POST");
    let rows: Json = client.get(host.url("/sqlite")).send().await.expect("GET rows").json().await.expect("rows");
    assert_eq!(rows, serde_json::json!([{"id": 1, "body": "first note"}, {"id": 2, "body": "second note"}]));
    let denied = client.get(host.url("/sqlite?db=other")).send().await.expect("GET other database");
    assert_eq!(denied.status(), 403);
    assert!(denied.text().await.unwrap_or_default().ends_with("AccessDenied"));
    assert!(app.state_dir().join("sql/sqlite/default.db").exists(), "the component's own SQLite file");

    // An axum router.
    let user: Json = client.get(host.url("/router/users/7")).send().await.expect("GET user").json().await.expect("user");
    assert_eq!(user, serde_json::json!({"id": 7, "name": "user-7"}));
    let unknown = client.get(host.url("/router/nowhere")).send().await.expect("GET unknown");
    assert_eq!(unknown.status(), 404);

    // Server-sent events written by a spawned task after the handler returned: the
    // first event arrives while the rest are still to come.
    let started = Instant::now();
    let mut events = client.get(host.url("/sse?count=4&interval_ms=400")).send().await.expect("GET /sse");
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let first = events.chunk().await.expect("first event").expect("a chunk");
    let first_at = started.elapsed();
    let mut text = String::from_utf8_lossy(&first).into_owned();
    while let Some(chunk) = events.chunk().await.expect("event") {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let all_at = started.elapsed();
    assert_eq!(text, "data: tick 1\n\ndata: tick 2\n\ndata: tick 3\n\ndata: tick 4\n\n");
    assert!(all_at >= Duration::from_millis(1200), "the events are spaced: {all_at:?}");
    assert!(first_at + Duration::from_millis(800) <= all_at, "the first event came as it was written: {first_at:?} of {all_at:?}");

    // Concurrent outbound calls, through the host's outbound HTTP: two calls of a
    // second each take about one second together, not two.
    let slow = host.url("/hello/slow?sleep_ms=1000");
    let urls = format!("{slow},{slow}");
    let answer: Json = client
        .get(host.url("/outbound"))
        .query(&[("urls", urls.as_str())])
        .send()
        .await
        .expect("GET /outbound")
        .json()
        .await
        .expect("outbound JSON");
    let results = answer["results"].as_array().expect("results");
    assert!(results.iter().all(|r| r["status"] == 200), "{answer}");
    let elapsed = answer["elapsed_ms"].as_u64().expect("elapsed_ms");
    assert!((1000..1900).contains(&elapsed), "the calls ran at once: {answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_serves_many_requests_and_several_at_once() {
    let app = hello_with("max_instance_reuse_count = 3");
    let host = app.start();
    let client = reqwest::Client::new();

    // One after the other: the same instance, three times, then a new one.
    let mut served = Vec::new();
    for _ in 0..4 {
        let answer = hello(&client, &host, "").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        served.push((answer.instance.expect("instance id"), answer.nth.expect("nth")));
    }
    assert_eq!(served[0].0, served[1].0);
    assert_eq!(served[1].0, served[2].0);
    assert_ne!(served[2].0, served[3].0, "dropped after max_instance_reuse_count");
    assert_eq!(served.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [1, 2, 3, 1]);

    // At once: requests waiting on a timer share instances.
    let app = hello_with("max_instance_reuse_count = 1000");
    let host = app.start();
    let requests = (0..8).map(|_| {
        let client = client.clone();
        let url = host.url("/hello/x?sleep_ms=1500");
        tokio::spawn(async move { client.get(url).send().await.expect("GET").headers()["x-instance-id"].to_str().map(str::to_owned) })
    });
    // All sent before any is awaited.
    let requests: Vec<_> = requests.collect();
    let mut instances = BTreeSet::new();
    for request in requests {
        instances.insert(request.await.expect("request task").expect("instance id"));
    }
    assert!(instances.len() < 8, "eight requests at once took {} instances", instances.len());
}

/// `spin up`'s flags work on `estore up`: the host's default, under a component's own.
#[tokio::test(flavor = "multi_thread")]
async fn spins_reuse_flags_set_the_hosts_default() {
    let app = hello_with("");
    let mut command = app.command();
    command.args(["--max-instance-reuse-count", "2", "--idle-instance-timeout", "10s"]);
    let host = Host::start(command);
    let client = reqwest::Client::new();
    let mut served = Vec::new();
    for _ in 0..3 {
        served.push(hello(&client, &host, "").await.nth.expect("nth"));
    }
    assert_eq!(served, [1, 2, 1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_at_a_time_when_the_manifest_says_so() {
    let app = hello_with("max_instance_concurrent_reuse_count = 1");
    let host = app.start();
    let client = reqwest::Client::new();
    let requests = (0..4).map(|_| {
        let client = client.clone();
        let url = host.url("/hello/x?sleep_ms=1000");
        tokio::spawn(async move { client.get(url).send().await.expect("GET").headers()["x-instance-id"].to_str().map(str::to_owned) })
    });
    // All sent before any is awaited.
    let requests: Vec<_> = requests.collect();
    let mut instances = BTreeSet::new();
    for request in requests {
        instances.insert(request.await.expect("request task").expect("instance id"));
    }
    assert_eq!(instances.len(), 4, "each of four requests at once on an instance of its own");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trap_or_a_deadline_drops_only_its_instance() {
    let app = hello_with("request_timeout_ms = 1000");
    let host = app.start();
    let client = reqwest::Client::new();
    let before = hello(&client, &host, "").await;
    assert_eq!(before.status, 200);

    let trap = client.get(host.url("/hello/x?trap=1")).send().await.expect("GET trap");
    assert_eq!(trap.status(), 500);
    assert_eq!(trap.headers()["content-type"], "application/problem+json");
    let problem: Json = trap.json().await.expect("problem");
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("component `hello` failed")), "{problem}");

    let late = client.get(host.url("/hello/x?sleep_ms=5000")).send().await.expect("GET slow");
    assert_eq!(late.status(), 504);
    let problem: Json = late.json().await.expect("problem");
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("did not answer within 1000 ms")), "{problem}");

    // The next request is served, by an instance that has seen neither.
    let after = hello(&client, &host, "").await;
    assert_eq!(after.status, 200, "{}", after.body);
    assert_ne!(after.instance, before.instance, "the instance that trapped is gone");
    host.wait_for_log(&["hello", "hello: trap requested"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_lets_in_flight_requests_finish_on_the_old_version() {
    // Idle instances would live a minute: the old version's must go sooner.
    let app = hello_with("max_instance_reuse_count = 1000\nidle_instance_timeout_ms = 60000");
    let host = app.start();
    let client = reqwest::Client::new();
    let in_flight = {
        let client = client.clone();
        let url = host.url("/hello/x?sleep_ms=2000");
        tokio::spawn(async move {
            let response = client.get(url).send().await.expect("GET in flight");
            (response.status().as_u16(), response.text().await.unwrap_or_default())
        })
    };
    // The request is in flight once an instance lives to serve it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, metrics) = admin_get(&app.state_dir(), "/metrics").await;
        if metric(&metrics, "estore_instances_running", &[("component", "hello")]).is_some_and(|n| n >= 1.0) {
            break;
        }
        assert!(Instant::now() < deadline, "no instance started for the request in flight:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let router = App::spin("spin4").manifest().with_file_name("target/wasm32-wasip2/release/router.wasm");
    let output = std::process::Command::new(&*ESTORE)
        .args(["deploy", "hello"])
        .arg(&router)
        .arg("-f")
        .arg(app.manifest())
        .arg("--state-dir")
        .arg(app.state_dir())
        .env_remove(estore::admin::TOKEN_ENV)
        .output()
        .expect("estore deploy");
    assert!(output.status.success(), "deploy: {}", String::from_utf8_lossy(&output.stderr));
    // New requests reach the new version (the router answers JSON 404 here)...
    let now = client.get(host.url("/hello/x")).send().await.expect("GET after deploy");
    assert_eq!(now.status(), 404);
    assert!(now.text().await.unwrap_or_default().contains("no such route"));
    // ...and the one in flight finished on the old one.
    let (status, body) = in_flight.await.expect("in-flight task");
    assert_eq!((status, body.as_str()), (200, "Hello, Spin 4!"));
    // Its instance is dropped once done; the new version's stays for the next request.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, metrics) = admin_get(&app.state_dir(), "/metrics").await;
        if metric(&metrics, "estore_instances_running", &[("component", "hello")]) == Some(1.0) {
            break;
        }
        assert!(Instant::now() < deadline, "the old version's instance outlived its requests:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn a_spin6_component_is_refused_with_the_reason() {
    let app = App::spin("spin6");
    let host = app.start();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (status, problem) = runtime.block_on(crate::harness::get(&host.url("/hello/x")));
    assert_eq!(status, 503, "{problem}");
    let detail = problem["detail"].as_str().unwrap_or_default();
    for part in ["@0.3.0-rc-2026-03-15", "a release candidate of WASI 0.3", "rebuild it with spin-sdk 7"] {
        assert!(detail.contains(part), "{part:?} in {detail}");
    }
}

/// A WASI 0.3 component on the platform's own interfaces: it publishes, handles what
/// the Kafka trigger delivers (an async-lifted export) into its SQL database, and
/// its SQL runs in the same sandbox as a WASI 0.2 component's.
#[tokio::test(flavor = "multi_thread")]
async fn a_wasi_p3_component_publishes_handles_messages_and_uses_sql() {
    let app = App::spin("p3platform");
    let host = app.start();
    let client = reqwest::Client::new();

    let published = client
        .post(host.url("/events3/publish?topic=events3.in&key=k1"))
        .body("first event")
        .send()
        .await
        .expect("POST publish");
    assert_eq!(published.status(), 202);
    let published: Json = published.json().await.expect("publish answer");
    let message_id = published["message_id"].as_str().expect("message_id").to_owned();

    let deadline = Instant::now() + Duration::from_secs(30);
    let received = loop {
        let rows: Json = client.get(host.url("/events3/received")).send().await.expect("GET received").json().await.expect("rows");
        if rows.as_array().is_some_and(|rows| !rows.is_empty()) {
            break rows;
        }
        assert!(Instant::now() < deadline, "the message was not handled; log:\n{}", host.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        received,
        serde_json::json!([{"topic": "events3.in", "key": "k1", "payload": "first event", "message_id": message_id}])
    );

    let denied = client.post(host.url("/events3/publish?topic=payment.completed")).body("forged").send().await.expect("POST");
    assert_eq!(denied.status(), 403);

    let escape = client
        .post(host.url("/events3/sql"))
        .body("ATTACH DATABASE 'elsewhere.db' AS elsewhere")
        .send()
        .await
        .expect("POST sql");
    assert_eq!(escape.status(), 400);
    assert!(escape.text().await.unwrap_or_default().contains("NotAllowed"));
}

/// spin:postgres@4.2.0: a Spin 4 component's own connection to a PostgreSQL server
/// its manifest allows, every 4.x type there and back; any other address refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_spin4_component_reaches_postgres_with_every_type() {
    let server = crate::postgres::shared();
    let database = format!("spin4_pg_{}", std::process::id());
    let url = server.create_database(&database);
    let app = App::spin("spin4");
    let host = app.start();
    let client = reqwest::Client::new();

    let types: Json = client
        .get(host.url("/pg/types"))
        .query(&[("address", url.as_str())])
        .send()
        .await
        .expect("GET /pg/types")
        .json()
        .await
        .expect("types JSON");
    let expected_types = [
        "Boolean", "Int16", "Int32", "Int64", "Floating32", "Floating64", "Str", "Binary", "Date", "Time", "Datetime",
        "Uuid", "Jsonb", "Decimal", "RangeInt32", "RangeInt64", "RangeDecimal", "ArrayInt32", "ArrayInt64",
        "ArrayDecimal", "ArrayStr", "Interval",
    ]
    .map(|t| format!("DbDataType::{t}"));
    let types_read: Vec<&str> = types["columns"].as_array().expect("columns").iter().filter_map(Json::as_str).collect();
    assert_eq!(types_read, expected_types, "{types}");
    let expected_row = [
        "DbValue::Boolean(true)",
        "DbValue::Int16(-16)",
        "DbValue::Int32(32)",
        "DbValue::Int64(-64000000000)",
        "DbValue::Floating32(1.5)",
        "DbValue::Floating64(-2.25)",
        "DbValue::Str(\"héllo, pg\")",
        "DbValue::Binary([0, 1, 2, 254, 255])",
        "DbValue::Date((2026, 12, 7))",
        "DbValue::Time((13, 14, 15, 123000))",
        "DbValue::Datetime((2026, 12, 7, 13, 14, 15, 0))",
        "DbValue::Uuid(\"1b4e28ba-2fa1-11d2-883f-0016d3cca427\")",
        "DbValue::Jsonb([123, 34, 97, 34, 58, 49, 125])",
        "DbValue::Decimal(\"12345.678\")",
        "DbValue::RangeInt32((Some((1, RangeBoundKind::Inclusive)), Some((10, RangeBoundKind::Exclusive))))",
        "DbValue::RangeInt64((Some((-5000000000, RangeBoundKind::Inclusive)), Some((5000000000, RangeBoundKind::Exclusive))))",
        "DbValue::RangeDecimal((Some((\"1.5\", RangeBoundKind::Inclusive)), Some((\"2.25\", RangeBoundKind::Inclusive))))",
        "DbValue::ArrayInt32([Some(1), None, Some(3)])",
        "DbValue::ArrayInt64([Some(-5000000000), None])",
        "DbValue::ArrayDecimal([Some(\"1.5\"), None, Some(\"-0.25\")])",
        "DbValue::ArrayStr([Some(\"a\"), None, Some(\"c\")])",
        "DbValue::Interval(Interval { micros: 1000000, days: 2, months: 3 })",
    ];
    let row: Vec<&str> = types["row"].as_array().expect("row").iter().filter_map(Json::as_str).collect();
    assert_eq!(row, expected_row, "{types}");

    let counted: Json = client
        .post(host.url("/pg/query"))
        .query(&[("address", url.as_str())])
        .body("SELECT count(*)::int4 AS n FROM typed")
        .send()
        .await
        .expect("POST /pg/query")
        .json()
        .await
        .expect("query JSON");
    assert_eq!(counted["rows"], serde_json::json!([["DbValue::Int32(1)"]]), "{counted}");

    // The same server under a name the manifest does not allow.
    let elsewhere = url.replace("127.0.0.1", "localhost");
    let denied = client
        .post(host.url("/pg/execute"))
        .query(&[("address", elsewhere.as_str())])
        .body("DELETE FROM typed")
        .send()
        .await
        .expect("POST /pg/execute");
    assert_eq!(denied.status(), 500);
    let why = denied.text().await.unwrap_or_default();
    assert!(why.contains("ConnectionFailed") && why.contains("not permitted"), "{why}");
    assert!(!why.contains(server.password()), "the refusal shows no password: {why}");
    host.wait_for_log(&["component=pg", "denied PostgreSQL connection to localhost"]);
}

/// The bounds a fresh instance has hold for a reused one: its memory cap (that
/// instance dropped, the next request served), and its component's slots (503 with
/// `Retry-After` when every instance the component may have is busy).
#[tokio::test(flavor = "multi_thread")]
async fn a_reused_instance_keeps_the_memory_cap_and_the_slots() {
    // Idle instances go at once, so a live one is serving.
    let app = hello_with("max_memory_mb = 16\nmax_instance_concurrent_reuse_count = 1\nidle_instance_timeout_ms = 1");
    let config = app.dir.path().join("runtime-config.toml");
    std::fs::write(&config, "[limits]\nmax_instances_per_component = 1\n").expect("runtime config");
    let host = app.start_with_runtime_config(&config);
    let client = reqwest::Client::new();
    let running = async || {
        let (_, metrics) = admin_get(&app.state_dir(), "/metrics").await;
        metric(&metrics, "estore_instances_running", &[("component", "hello")]).unwrap_or(0.0)
    };
    let wait_for = async |instances: f64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while running().await != instances {
            assert!(Instant::now() < deadline, "never {instances} instances running");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };

    let hog = client.get(host.url("/hello/x?alloc_mib=64")).send().await.expect("GET hog");
    assert_eq!(hog.status(), 500);
    let problem: Json = hog.json().await.expect("problem");
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("exceeded its memory limit of 16 MiB")), "{problem}");
    assert_eq!(hello(&client, &host, "").await.status, 200, "the next request gets a new instance");

    // One instance, serving one request at a time: another request waits its turn
    // for a while, then is turned away.
    wait_for(0.0).await;
    let busy = {
        let client = client.clone();
        let url = host.url("/hello/x?sleep_ms=3000");
        tokio::spawn(async move { client.get(url).send().await.expect("GET busy").status().as_u16() })
    };
    wait_for(1.0).await;
    let turned_away = client.get(host.url("/hello/x")).send().await.expect("GET while busy");
    assert_eq!(turned_away.status(), 503);
    assert_eq!(turned_away.headers()["retry-after"], "1");
    assert_eq!(busy.await.expect("busy task"), 200);
}

/// spin:sqlite runs under the same SQL sandbox as the platform's SQL.
#[tokio::test(flavor = "multi_thread")]
async fn spin_sqlite_statements_stay_in_the_components_own_database() {
    let app = App::spin("spin4");
    let host = app.start();
    let client = reqwest::Client::new();
    for statement in ["ATTACH DATABASE 'elsewhere.db' AS elsewhere", "VACUUM INTO '/tmp/copy.db'", "PRAGMA journal_mode = OFF"] {
        let refused = client.put(host.url("/sqlite")).body(statement).send().await.expect("PUT /sqlite");
        let status = refused.status();
        let why = refused.text().await.unwrap_or_default();
        assert_eq!(status, 500, "{statement}: {why}");
        assert!(why.contains("not allowed"), "{statement}: {why}");
    }
    let fine = client.put(host.url("/sqlite")).body("CREATE TABLE IF NOT EXISTS mine (x INTEGER)").send().await.expect("PUT");
    assert_eq!(fine.status(), 200);
}

/// A trap on an instance serving several requests ends them all, with a 500 saying
/// the component failed; the component's next request gets a new instance.
#[tokio::test(flavor = "multi_thread")]
async fn a_trap_ends_the_other_requests_of_its_instance_with_500() {
    // One instance at most, so both requests share it.
    let app = hello_with("");
    let config = app.dir.path().join("runtime-config.toml");
    std::fs::write(&config, "[limits]\nmax_instances_per_component = 1\n").expect("runtime config");
    let host = app.start_with_runtime_config(&config);
    let client = reqwest::Client::new();
    let first = hello(&client, &host, "").await;
    assert_eq!(first.status, 200);

    let waiting = {
        let client = client.clone();
        let url = host.url("/hello/x?sleep_ms=5000");
        tokio::spawn(async move {
            let response = client.get(url).send().await.expect("GET waiting");
            (response.status().as_u16(), response.text().await.unwrap_or_default())
        })
    };
    // The waiting request is on the instance once the instance's count of requests
    // begun is one more than the first request and the probes make.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut probes = 0;
    loop {
        let probe = hello(&client, &host, "").await;
        // Just as the instance takes a request, it takes no other until that one
        // waits: a probe then finds no instance free and is turned away (503).
        if probe.status == 503 {
            assert!(Instant::now() < deadline, "the instance never took a probe");
            continue;
        }
        probes += 1;
        assert_eq!(probe.instance, first.instance, "one instance at most");
        if probe.nth == Some(1 + probes + 1) {
            break;
        }
        assert!(Instant::now() < deadline, "the waiting request never reached the instance");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let trap = client.get(host.url("/hello/x?trap=1")).send().await.expect("GET trap");
    assert_eq!(trap.status(), 500);
    let (status, body) = waiting.await.expect("waiting task");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("component `hello` failed"), "{body}");
    let after = hello(&client, &host, "").await;
    assert_eq!(after.status, 200, "{}", after.body);
    assert_ne!(after.instance, first.instance);
}
