//! A host's life: one host per state dir, and on SIGTERM stop accepting, let
//! in-flight requests finish, exit 0.

use std::time::Duration;

use crate::harness::{App, get, one_component};

/// A second host on a running host's state dir would handle every embedded-bus
/// message twice: it fails at start and says what to do instead. Once the first host
/// is gone, even killed, the state dir is free again.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_host_on_the_same_state_dir_is_refused() {
    let app = App::new(&one_component("misbehave", "/misbehave/...", "{wasm}/misbehave.wasm"));
    let first = app.start();
    let refused = app.start_failure();
    assert!(refused.contains("is in use by another estore host"), "{refused}");
    assert!(refused.contains("--state-dir") && refused.contains("Kafka and PostgreSQL"), "{refused}");
    assert_eq!(get(&first.url("/misbehave/?action=ok")).await.0, 200, "the first host keeps serving");

    drop(first);
    let second = app.start();
    assert_eq!(get(&second.url("/misbehave/?action=ok")).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn in_flight_request_finishes_before_exit() {
    let app = App::new(&one_component("misbehave", "/misbehave/...", "{wasm}/misbehave.wasm"));
    let mut host = app.start();
    let slow = tokio::spawn(reqwest::get(host.url("/misbehave/?action=sleep&ms=1500")));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let url = host.url("/misbehave/?action=ok");
    let status = tokio::task::spawn_blocking(move || host.terminate()).await.unwrap();
    assert!(status.success(), "estore exits 0 after SIGTERM: {status:?}");
    let response = slow.await.unwrap().expect("the in-flight request completes");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["slept_ms"], 1500);
    assert!(reqwest::get(url).await.is_err(), "no new connections after shutdown");
}
