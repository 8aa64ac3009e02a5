use crate::harness::{App, get, one_component};

const ROUTES: &str = r#"
spin_manifest_version = 2
[application]
name = "routing"

[[trigger.http]]
route = "/hello/..."
component = "wild"
[[trigger.http]]
route = "/hello/exact"
component = "exact"
[[trigger.http]]
route = "/hello/deeper/..."
component = "deeper"
[[trigger.http]]
route = "/..."
component = "fallback"

[component.wild]
source = "{wasm}/hello.wasm"
[component.exact]
source = "{wasm}/hello.wasm"
[component.deeper]
source = "{wasm}/hello.wasm"
[component.fallback]
source = "{wasm}/hello.wasm"
"#;

fn header<'a>(echo: &'a serde_json::Value, name: &str) -> &'a str {
    echo["headers"][name].as_str().unwrap_or_else(|| panic!("no header {name} in {echo}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn wildcard_route_sets_spin_headers() {
    let app = App::new(ROUTES);
    let host = app.start();
    let (status, echo) = get(&host.url("/hello/a/b?x=1")).await;
    assert_eq!(status, 200);
    assert_eq!(echo["path"], "/hello/a/b");
    assert_eq!(header(&echo, "spin-raw-component-route"), "/hello/...");
    assert_eq!(header(&echo, "spin-component-route"), "/hello");
    assert_eq!(header(&echo, "spin-matched-route"), "/hello/...");
    assert_eq!(header(&echo, "spin-path-info"), "/a/b");
    assert_eq!(header(&echo, "spin-base-path"), "/");
    assert_eq!(header(&echo, "spin-full-url"), host.url("/hello/a/b?x=1"));
    assert!(header(&echo, "spin-client-addr").starts_with("127.0.0.1:"));
}

#[tokio::test(flavor = "multi_thread")]
async fn most_specific_route_wins() {
    let app = App::new(ROUTES);
    let host = app.start();
    let cases = [
        ("/hello/exact", "/hello/exact"),
        ("/hello/exact/more", "/hello/..."),
        ("/hello/deeper/x", "/hello/deeper/..."),
        ("/hello", "/hello/..."),
        ("/helloworld", "/..."),
        ("/", "/..."),
    ];
    for (path, route) in cases {
        let (status, echo) = get(&host.url(path)).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(header(&echo, "spin-raw-component-route"), route, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn client_cannot_spoof_spin_headers() {
    let app = App::new(ROUTES);
    let host = app.start();
    let echo: serde_json::Value = reqwest::Client::new()
        .get(host.url("/hello/a"))
        .header("spin-path-info", "/forged")
        .header("spin-component-route", "/admin")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(header(&echo, "spin-path-info"), "/a");
    assert_eq!(header(&echo, "spin-component-route"), "/hello");
}

#[tokio::test(flavor = "multi_thread")]
async fn unmatched_path_is_a_json_404() {
    let app = App::new(&one_component("hello", "/hello/...", "{wasm}/hello.wasm"));
    let host = app.start();
    let (status, problem) = get(&host.url("/nowhere")).await;
    assert_eq!(status, 404);
    assert_eq!(problem["status"], 404);
    assert!(problem["detail"].as_str().unwrap().contains("/nowhere"), "{problem}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wasip1_module_is_served_through_the_adapter() {
    let app = App::new(&one_component("hello-p1", "/p1/...", "{wasm_p1}/hello.wasm"));
    let host = app.start();
    let (status, echo) = get(&host.url("/p1/x?action=echo")).await;
    assert_eq!(status, 200, "{echo}");
    assert_eq!(echo["component"], "hello");
    assert_eq!(echo["path"], "/p1/x");
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_uses_the_compiled_cache() {
    let app = App::new(&one_component("hello", "/...", "{wasm}/hello.wasm"));
    let own_cache = app.dir.path().join("compiled");
    let start = || crate::harness::Host::start(app.command_with_cache(&own_cache));
    let host = start();
    host.wait_for_log(&["component=hello", "(compiled)"]);
    drop(host);
    let host = start();
    host.wait_for_log(&["component=hello", "(from the compiled cache)"]);
    assert_eq!(get(&host.url("/")).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_without_the_pooling_allocator_when_address_space_is_short() {
    let app = App::new(&one_component("hello", "/...", "{wasm}/hello.wasm"));
    // 16 GiB of address space: plenty for the host, far too little for the pool's
    // reservation (a slot per instance), so the engine must fall back.
    let up = app.command();
    let args: Vec<String> = std::iter::once(up.get_program())
        .chain(up.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect();
    let mut command = std::process::Command::new("bash");
    command.arg("-c").arg(format!("ulimit -v 16777216 && exec {}", args.join(" ")));
    let host = crate::harness::Host::start(command);
    host.wait_for_log(&["pooling allocator unavailable"]);
    assert_eq!(get(&host.url("/")).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn up_with_build_builds_then_serves() {
    crate::harness::build_fixtures();
    let state = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(&*crate::harness::ESTORE);
    command
        .args(["up", "--build", "--listen", "127.0.0.1:0", "-f"])
        .arg(crate::harness::workspace().join("host/tests/fixtures"))
        .arg("--state-dir")
        .arg(state.path())
        .arg("--cache-dir")
        .arg(crate::harness::compiled_cache());
    let host = crate::harness::Host::start(command);
    host.wait_for_log(&["Building component hello"]);
    host.wait_for_log(&["Finished building all components"]);
    let (status, echo) = get(&host.url("/hello/?action=var&name=message")).await;
    assert_eq!((status, echo["value"].as_str()), (200, Some("hi, world")), "{echo}");
}
