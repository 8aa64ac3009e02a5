//! What operators watch a host with: liveness and readiness on the admin listener
//! (answered without the token; ready only when every component is loaded and its
//! databases and the bus answer), and log lines that say what they are about.

use serde_json::Value;

use crate::harness::{App, Host, admin_get, get};

/// `GET <admin>/health/<what>`, without any token.
async fn health(app: &App, what: &str) -> (u16, Value) {
    let (status, body) = admin_get(&app.state_dir(), &format!("/health/{what}")).await;
    (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}")))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_with_everything_loaded_is_ready() {
    let app = App::new(
        r#"spin_manifest_version = 2
[application]
name = "healthy"
[[trigger.http]]
route = "/hello/..."
component = "hello"
[component.hello]
source = "{wasm}/hello.wasm"
key_value_stores = ["default"]
sql_databases = ["default"]
"#,
    );
    let _host = app.start();
    assert_eq!(health(&app, "live").await, (200, serde_json::json!({"status": "live"})));
    let (status, ready) = health(&app, "ready").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "ready");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_component_or_an_unreachable_broker_makes_the_host_not_ready() {
    let port = crate::watched::free_port();
    let app = App::new(
        r#"spin_manifest_version = 2
[application]
name = "unwell"
[[trigger.http]]
route = "/broken/..."
component = "broken"
[[trigger.http]]
route = "/hello/..."
component = "hello"
[component.broken]
source = "broken.wasm"
[component.hello]
source = "{wasm}/hello.wasm"
allowed_publish_topics = ["greetings"]
"#,
    );
    std::fs::write(app.dir.path().join("broken.wasm"), b"\0asm this is not a component").unwrap();
    let config = app.dir.path().join("runtime-config.toml");
    std::fs::write(&config, format!("[messaging]\nbackend = \"kafka\"\nbrokers = \"127.0.0.1:{port}\"\n")).unwrap();
    let mut command = app.command();
    command.arg("--runtime-config-file").arg(&config);
    let host = Host::start(command);

    assert_eq!(health(&app, "live").await.0, 200, "alive all the same");
    let (status, ready) = health(&app, "ready").await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["status"], "not ready");
    let broken = ready["failing"]["component broken"].as_str().unwrap_or_default();
    assert!(broken.contains("broken.wasm"), "{ready}");
    let bus = ready["failing"]["bus"].as_str().unwrap_or_default();
    assert!(bus.contains(&format!("127.0.0.1:{port}")), "{ready}");
    assert!(ready["failing"].get("component hello").is_none(), "hello is fine: {ready}");
    assert_eq!(get(&host.url("/hello/")).await.0, 200, "and it serves what it can");
}

/// A request's log lines, the component's own output included, name the component
/// and the trace (continued from the caller's `traceparent`).
#[tokio::test(flavor = "multi_thread")]
async fn json_log_lines_say_which_request_they_are_about() {
    let app = App::new(&crate::harness::one_component("hello", "/hello/...", "{wasm}/hello.wasm"));
    let mut up = app.command();
    up.args(["--log-format", "json"]);
    let host = Host::start(up);
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let answer = reqwest::Client::new()
        .get(host.url("/hello/logged"))
        .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
        .send()
        .await
        .expect("GET /hello/logged");
    assert_eq!(answer.status(), 200);
    host.wait_for_log(&["hello handled GET /hello/logged"]);
    let line = host
        .log()
        .lines()
        .find(|line| line.contains("hello handled GET /hello/logged"))
        .map(|line| serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .expect("the component's line");
    assert_eq!(line["span"]["component"], "hello", "{line}");
    assert_eq!(line["span"]["trace_id"], trace_id, "{line}");
    assert_eq!(line["stream"], "stdout", "{line}");

    // The component wrote blank lines to stderr before this one: none is logged.
    host.wait_for_log(&["hello stderr line"]);
    let blank: Vec<String> = host
        .log()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["fields"]["stream"] == "stderr" || line["stream"] == "stderr")
        .filter(|line| line["fields"]["message"].as_str().or(line["message"].as_str()).is_none_or(|m| m.trim().is_empty()))
        .map(|line| line.to_string())
        .collect();
    assert!(blank.is_empty(), "blank guest lines were logged: {blank:?}");
}
