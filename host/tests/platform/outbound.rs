//! Outbound HTTP against a real local server, and local service chaining.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::harness::{App, get};

/// A tiny upstream on loopback answering every request with a fixed body.
async fn upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let body = "upstream says hi";
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    port
}

fn app(allowed: &str) -> App {
    App::new(&format!(
        r#"
spin_manifest_version = 2
[application]
name = "outbound"
[[trigger.http]]
route = "/hello/..."
component = "hello"
[[trigger.http]]
route = {{ private = true }}
component = "misbehave"
[component.hello]
source = "{{wasm}}/hello.wasm"
allowed_outbound_hosts = [{allowed}]
[component.misbehave]
source = "{{wasm}}/misbehave.wasm"
"#
    ))
}

fn fetch_url(host: &crate::harness::Host, target: &str) -> String {
    let encoded: String = target
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    host.url(&format!("/hello/?action=fetch&url={encoded}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn allowed_host_is_reached() {
    let port = upstream().await;
    let app = app(&format!("\"http://127.0.0.1:{port}\""));
    let host = app.start();
    let (status, body) = get(&fetch_url(&host, &format!("http://127.0.0.1:{port}/x"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], 200);
    assert_eq!(body["body"], "upstream says hi");
}

#[tokio::test(flavor = "multi_thread")]
async fn other_hosts_and_ports_are_denied() {
    let port = upstream().await;
    let other = upstream().await;
    let app = app(&format!("\"http://127.0.0.1:{port}\""));
    let host = app.start();
    let (status, body) = get(&fetch_url(&host, &format!("http://127.0.0.1:{other}/x"))).await;
    assert_eq!(status, 502, "the component sees an error: {body}");
    assert!(body["error"].as_str().unwrap().to_lowercase().contains("denied"), "{body}");
    host.wait_for_log(&["hello", "denied outbound request", &format!("127.0.0.1:{other}")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn service_chaining_runs_in_process() {
    let app = app("\"http://misbehave.spin.internal\"");
    let host = app.start();
    let (status, body) = get(&fetch_url(&host, "http://misbehave.spin.internal/?action=ok")).await;
    assert_eq!(status, 200, "{body}");
    let inner: serde_json::Value = serde_json::from_str(body["body"].as_str().unwrap()).unwrap();
    assert_eq!(inner["component"], "misbehave");
}

#[tokio::test(flavor = "multi_thread")]
async fn chaining_needs_a_grant() {
    let port = upstream().await;
    let app = app(&format!("\"http://127.0.0.1:{port}\""));
    let host = app.start();
    let (status, body) = get(&fetch_url(&host, "http://misbehave.spin.internal/?action=ok")).await;
    assert_eq!(status, 502, "{body}");
    assert!(body["error"].as_str().unwrap().to_lowercase().contains("denied"), "{body}");
}
