//! A misbehaving component fails only its own request; everything else keeps serving.

use std::time::{Duration, Instant};

use crate::harness::{App, get};

const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "limits"
[[trigger.http]]
route = "/misbehave/..."
component = "misbehave"
[[trigger.http]]
route = "/hello/..."
component = "hello"
[component.misbehave]
source = "{wasm}/misbehave.wasm"
[component.misbehave.limits]
request_timeout_ms = 1500
max_memory_mb = 32
[component.hello]
source = "{wasm}/hello.wasm"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn trap_is_a_500_naming_the_component() {
    let app = App::new(APP);
    let host = app.start();
    let (status, problem) = get(&host.url("/misbehave/?action=trap")).await;
    assert_eq!(status, 500, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("misbehave"), "{problem}");
    host.wait_for_log(&["misbehave", "failed"]);
    assert_eq!(get(&host.url("/hello/")).await.0, 200);
    assert_eq!(get(&host.url("/misbehave/?action=ok")).await.0, 200, "the next request starts clean");
}

#[tokio::test(flavor = "multi_thread")]
async fn endless_loop_is_a_504_while_others_answer() {
    let app = App::new(APP);
    let host = app.start();
    let loop_url = host.url("/misbehave/?action=loop");
    let looping = tokio::spawn(async move { get(&loop_url).await });
    // While the loop spins (on one of the host's worker threads), others are served.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..5 {
        let started = Instant::now();
        assert_eq!(get(&host.url("/hello/")).await.0, 200);
        assert!(started.elapsed() < Duration::from_secs(1), "hello was held up by the loop");
    }
    let (status, problem) = looping.await.unwrap();
    assert_eq!(status, 504, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("misbehave"), "{problem}");
    host.wait_for_log(&["misbehave", "did not answer within 1500 ms"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_hog_hits_its_limit() {
    let app = App::new(APP);
    let host = app.start();
    let (status, problem) = get(&host.url("/misbehave/?action=hog")).await;
    assert_eq!(status, 500, "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("misbehave") && detail.contains("memory limit of 32 MiB"), "{problem}");
    assert_eq!(get(&host.url("/hello/")).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_that_cannot_load_fails_only_its_own_routes() {
    let app = App::new(
        r#"
spin_manifest_version = 2
[application]
name = "broken"
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
"#,
    );
    std::fs::write(app.dir.path().join("broken.wasm"), b"\0asm this is not a component").unwrap();
    let host = app.start();
    let (status, problem) = get(&host.url("/broken/")).await;
    assert_eq!(status, 503, "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("broken") && detail.contains("broken.wasm"), "{detail}");
    host.wait_for_log(&["component=broken", "not started"]);
    assert_eq!(get(&host.url("/hello/")).await.0, 200);
}
