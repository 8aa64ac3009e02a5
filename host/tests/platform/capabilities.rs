//! Variables, key-value, environment, files and logs: each granted by the manifest.

use crate::harness::{App, get};

const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "capabilities"

[variables]
greeting = { default = "hi" }
target = { default = "world" }

[[trigger.http]]
route = "/hello/..."
component = "hello"
[[trigger.http]]
route = "/bare/..."
component = "bare"

[component.hello]
source = "{wasm}/hello.wasm"
key_value_stores = ["default"]
environment = { FIXTURE_ENV = "from-manifest" }
files = [{ source = "files", destination = "/data" }]
[component.hello.variables]
greeting = "{{ greeting }}"
message = "{{ greeting }}, {{ target }}"

[component.bare]
source = "{wasm}/hello.wasm"
"#;

fn app() -> App {
    app_with(APP)
}

fn app_with(manifest: &str) -> App {
    let app = App::new(manifest);
    std::fs::create_dir_all(app.dir.path().join("files")).unwrap();
    std::fs::write(app.dir.path().join("files/hello.txt"), "file content").unwrap();
    app
}

#[tokio::test(flavor = "multi_thread")]
async fn variables_from_manifest_and_environment() {
    let app = app();
    let host = app.start();
    let (status, body) = get(&host.url("/hello/?action=var&name=message")).await;
    assert_eq!((status, body["value"].as_str()), (200, Some("hi, world")), "{body}");
    drop(host);

    let host = crate::harness::Host::start({
        let mut command = app.command();
        command.env("SPIN_VARIABLE_TARGET", "estore");
        command
    });
    let (_, body) = get(&host.url("/hello/?action=var&name=message")).await;
    assert_eq!(body["value"], "hi, estore");
    let (status, _) = get(&host.url("/hello/?action=var&name=target")).await;
    assert_eq!(status, 404, "a component sees only the variables it declares");
    let (status, _) = get(&host.url("/bare/?action=var&name=greeting")).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_required_variable_stops_start() {
    let app = app_with(&APP.replace("target = { default = \"world\" }", "target = { required = true }"));
    let stderr = app.start_failure();
    assert!(stderr.contains("target") && stderr.contains("SPIN_VARIABLE_TARGET"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn key_value_survives_a_restart() {
    let app = app();
    let host = app.start();
    let client = reqwest::Client::new();
    let set = client.post(host.url("/hello/?action=kv-set&key=colour")).body("green").send().await.unwrap();
    assert_eq!(set.status(), 200);
    let (_, body) = get(&host.url("/hello/?action=kv-get&key=colour")).await;
    assert_eq!(body["value"], "green");
    drop(host);

    let host = app.start();
    let (_, body) = get(&host.url("/hello/?action=kv-get&key=colour")).await;
    assert_eq!(body["value"], "green", "the value is still there after a restart");
    let (status, body) = get(&host.url("/bare/?action=kv-get&key=colour")).await;
    assert_eq!(status, 500, "a component without the grant is refused: {body}");
    assert!(body["error"].as_str().unwrap().to_lowercase().contains("access"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn environment_and_files_only_as_granted() {
    let app = app();
    let host = app.start();
    let (_, body) = get(&host.url("/hello/?action=env&name=FIXTURE_ENV")).await;
    assert_eq!(body["value"], "from-manifest");
    let (_, body) = get(&host.url("/hello/?action=env&name=PATH")).await;
    assert_eq!(body["value"], serde_json::Value::Null, "the host's environment is not inherited");
    let (_, body) = get(&host.url("/bare/?action=env&name=FIXTURE_ENV")).await;
    assert_eq!(body["value"], serde_json::Value::Null);

    let (status, body) = get(&host.url("/hello/?action=file&path=/data/hello.txt")).await;
    assert_eq!((status, body["content"].as_str()), (200, Some("file content")), "{body}");
    let (status, _) = get(&host.url("/hello/?action=file&path=/etc/passwd")).await;
    assert_eq!(status, 404, "nothing outside the granted files is visible");
    let (status, _) = get(&host.url("/bare/?action=file&path=/data/hello.txt")).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn component_output_reaches_the_log_tagged() {
    let app = app();
    let host = app.start();
    assert_eq!(get(&host.url("/hello/x")).await.0, 200);
    host.wait_for_log(&["component=hello", "hello handled GET /hello/x"]);
    host.wait_for_log(&["component=hello", "hello stderr line"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn runtime_config_places_extra_key_value_stores() {
    let app = app_with(&APP.replace(r#"key_value_stores = ["default"]"#, r#"key_value_stores = ["default", "other"]"#));
    let config = app.dir.path().join("runtime-config.toml");
    std::fs::write(&config, "[key_value_store.other]\ntype = \"spin\"\npath = \"data/other.db\"\n").unwrap();
    let mut command = app.command();
    command.arg("--runtime-config-file").arg(&config);
    let host = crate::harness::Host::start(command);
    let set = reqwest::Client::new()
        .post(host.url("/hello/?action=kv-set&key=k&store=other"))
        .body("v")
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let (_, body) = get(&host.url("/hello/?action=kv-get&key=k&store=other")).await;
    assert_eq!(body["value"], "v");
    let (_, body) = get(&host.url("/hello/?action=kv-get&key=k")).await;
    assert_eq!(body["value"], serde_json::Value::Null, "stores are separate");
    assert!(app.dir.path().join("data/other.db").exists(), "the store lives where the runtime config says");
}

/// A component writing distinct keys fills its store's quota, not the disk: the
/// write past it fails with a message naming the store and the quota, and what is
/// stored still reads, shrinks and is replaced.
#[tokio::test(flavor = "multi_thread")]
async fn key_value_stores_refuse_writes_past_their_quota() {
    let app = app();
    let config = app.dir.path().join("runtime-config.toml");
    std::fs::write(&config, "[key_value]\nmax_entries = 3\n[key_value_store.default]\ntype = \"spin\"\nmax_bytes = 64\n")
        .unwrap();
    let mut command = app.command();
    command.arg("--runtime-config-file").arg(&config);
    let host = crate::harness::Host::start(command);
    let client = reqwest::Client::new();
    let set = |key: &str, value: &str| {
        let request = client.post(host.url(&format!("/hello/?action=kv-set&key={key}"))).body(value.to_owned());
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<serde_json::Value>().await.unwrap())
        }
    };
    for key in ["k1", "k2", "k3"] {
        assert_eq!(set(key, "v").await.0, 200, "{key}");
    }
    let (status, body) = set("k4", "v").await;
    assert_eq!(status, 500, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains("key-value store `default` is full") && error.contains("quota is 3 (max_entries)"), "{body}");
    host.wait_for_log(&["key-value store `default` is full"]);
    assert_eq!(get(&host.url("/hello/?action=kv-get&key=k4")).await.1["value"], serde_json::Value::Null);

    // Replacing a value is no new entry; 2 + 60 bytes is past max_bytes.
    assert_eq!(set("k1", "replaced").await.0, 200);
    assert_eq!(get(&host.url("/hello/?action=kv-get&key=k1")).await.1["value"], "replaced");
    let (status, body) = set("k2", &"x".repeat(60)).await;
    assert_eq!(status, 500, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("quota is 64 (max_bytes)")), "{body}");

    // Deleting makes room again, and the count survives a restart.
    assert_eq!(get(&host.url("/hello/?action=kv-delete&key=k3")).await.0, 200);
    assert_eq!(set("k4", "v").await.0, 200);
    drop(host);
    let mut command = app.command();
    command.arg("--runtime-config-file").arg(&config);
    let host = crate::harness::Host::start(command);
    let response = client.post(host.url("/hello/?action=kv-set&key=k5")).body("v").send().await.unwrap();
    assert_eq!(response.status(), 500, "still full after a restart");
}

#[test]
fn bad_runtime_config_names_file_and_key() {
    let app = app();
    let config = app.dir.path().join("runtime-config.toml");
    std::fs::write(&config, "[limits]\nrequest_timeout_ms = 0\n").unwrap();
    let mut command = app.command();
    command.arg("--runtime-config-file").arg(&config);
    let output = command.output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("runtime-config.toml") && stderr.contains("limits.request_timeout_ms"), "{stderr}");

    std::fs::write(&config, "[limits]\nrequest_timeout = 5\n").unwrap();
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("runtime-config.toml:2") && stderr.contains("request_timeout"), "{stderr}");

    let manifest = APP.replace(r#"key_value_stores = ["default"]"#, r#"key_value_stores = ["nowhere"]"#);
    let stderr = app_with(&manifest).start_failure();
    assert!(stderr.contains("key_value_stores") && stderr.contains("nowhere"), "{stderr}");
}
