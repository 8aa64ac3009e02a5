//! SIGTERM: stop accepting, let in-flight requests finish, exit 0.

use std::time::Duration;

use crate::harness::{App, one_component};

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
