//! The host against a hostile component (chains without end, internal names spelt to
//! reach the network) and a hostile client (heads that never finish, bodies that are
//! huge, slow or never come, floods on one component), on the `hostile` fixture.
//! Each test names the guard it holds; each fails without it.
//!
//! The attacks a client library cannot express are written on raw TCP streams. The
//! timeouts of the runtime configs here are short so the file runs in seconds.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{App, Host, admin_get, get, metric};

/// A fixture mounted as a component of a test's application.
#[derive(Clone, Copy)]
struct Mount<'a> {
    id: &'a str,
    /// `None`: a private route, reached only by chaining.
    route: Option<&'a str>,
    /// The fixture's wasm file name, without `.wasm`.
    fixture: &'a str,
    /// Further keys of `[component.<id>]`.
    grants: &'a str,
}

const fn mount<'a>(id: &'a str, route: &'a str, fixture: &'a str) -> Mount<'a> {
    Mount { id, route: Some(route), fixture, grants: "" }
}

/// A component reached only by chaining.
const fn private<'a>(id: &'a str, fixture: &'a str) -> Mount<'a> {
    Mount { id, route: None, fixture, grants: "" }
}

/// Starts an application of `mounts` with `runtime_config` as its runtime config file.
fn start(mounts: &[Mount], runtime_config: &str) -> (App, Host) {
    let mut manifest = "spin_manifest_version = 2\n[application]\nname = \"hostile-clients\"\n".to_owned();
    for Mount { id, route, fixture, grants } in mounts {
        let route = route.map_or("{ private = true }".to_owned(), |route| format!("\"{route}\""));
        manifest.push_str(&format!(
            "[[trigger.http]]\nroute = {route}\ncomponent = \"{id}\"\n[component.{id}]\nsource = \"{{wasm}}/{fixture}.wasm\"\n{grants}\n"
        ));
    }
    let app = App::new(&manifest);
    let config = app.dir.path().join("runtime-config.toml");
    std::fs::write(&config, runtime_config).expect("write the runtime config");
    let mut command = app.command();
    command.arg("--runtime-config-file").arg(&config);
    let host = Host::start(command);
    (app, host)
}

/// `hostile` at `/hostile/...` and `hello` at `/hello/...`, the shop's other routes.
const HOSTILE_AND_HELLO: &[Mount] = &[mount("hostile", "/hostile/...", "hostile"), mount("hello", "/hello/...", "hello")];
const MISBEHAVE: Mount = mount("misbehave", "/misbehave/...", "misbehave");

async fn connect(host: &Host) -> TcpStream {
    let address = host.url.trim_start_matches("http://");
    TcpStream::connect(address).await.unwrap_or_else(|e| panic!("connect to {address}: {e}"))
}

/// A response read off a raw connection.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    /// Lower-cased names.
    headers: Vec<(String, String)>,
    body: String,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn problem(&self) -> Value {
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "{self:?}");
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// How long a test waits for the host to answer on a raw connection.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// Reads one response (head, then a `content-length` body) from `stream`, within
/// [`ANSWER_WITHIN`].
async fn read_response(stream: &mut TcpStream) -> RawResponse {
    match tokio::time::timeout(ANSWER_WITHIN, read_response_now(stream)).await {
        Ok(response) => response,
        Err(_) => panic!("no response within {ANSWER_WITHIN:?}"),
    }
}

async fn read_response_now(stream: &mut TcpStream) -> RawResponse {
    let mut data = Vec::new();
    let mut buf = [0; 4096];
    let head_end = loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        match stream.read(&mut buf).await {
            Ok(0) => panic!("connection closed before a response head: {:?}", String::from_utf8_lossy(&data)),
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) => panic!("reading a response head: {e} (so far {:?})", String::from_utf8_lossy(&data)),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = data[head_end + 4..].to_vec();
    let length: usize =
        headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    while body.len() < length {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&buf[..n]),
        }
    }
    RawResponse { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
}

/// Waits (up to [`ANSWER_WITHIN`]) for the host to close `stream`; how long after
/// `since` that was.
async fn closed(stream: &mut TcpStream, since: Instant) -> Duration {
    let mut buf = [0; 1024];
    loop {
        match tokio::time::timeout(ANSWER_WITHIN, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return since.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the connection was still open after {ANSWER_WITHIN:?}"),
        }
    }
}

/// The host's resident memory, from the kernel.
fn resident_bytes(host: &Host) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", host.pid())).expect("the host's /proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

async fn metrics(app: &App) -> String {
    let (status, text) = admin_get(&app.state_dir(), "/metrics").await;
    assert_eq!(status, 200, "{text}");
    text
}

/// Requests to `component` the host refused for `reason`, by its metrics.
async fn refusals(app: &App, component: &str, reason: &str) -> f64 {
    let text = metrics(app).await;
    let refused = metric(&text, "estore_http_requests_refused_total", &[("component", component), ("reason", reason)]);
    refused.unwrap_or_else(|| panic!("no {reason} refusals of {component} in:\n{text}"))
}

/// Guard: the host counts chain depth itself (`Work::chain_depth`); the guest sends
/// no depth header at all. Without it, A and B call each other until the pool is
/// empty.
#[tokio::test(flavor = "multi_thread")]
async fn a_chain_between_two_components_ends_at_the_hosts_depth_limit() {
    let (_app, host) = start(
        &[
            Mount { grants: r#"allowed_outbound_hosts = ["http://hostile-b.spin.internal"]"#, ..mount("hostile-a", "/a/...", "hostile") },
            Mount { grants: r#"allowed_outbound_hosts = ["http://hostile-a.spin.internal"]"#, ..private("hostile-b", "hostile") },
        ],
        "[limits]\nmax_instances = 64\n",
    );
    let (status, chain) = get(&host.url("/a/?action=chain&peer=hostile-b&me=hostile-a")).await;
    assert_eq!(status, 200, "{chain}");
    assert_eq!(chain["depth"], 10, "ten chained calls, then the host's refusal: {chain}");
    assert!(chain["error"].as_str().unwrap_or_default().to_lowercase().contains("loop"), "{chain}");
    host.wait_for_log(&["chained request to `hostile-", "refused: 11 calls deep"]);
}

/// Guard: the chaining decision reads the host as the grant does
/// (`canonical_host`). The answer can only have come from the `catalog` component
/// in process: the network has no `catalog.spin.internal` (without the guard the
/// request leaves and fails to resolve).
#[tokio::test(flavor = "multi_thread")]
async fn an_internal_name_in_any_spelling_never_leaves_the_process() {
    let (_app, host) = start(
        &[
            Mount { grants: r#"allowed_outbound_hosts = ["http://catalog.spin.internal"]"#, ..HOSTILE_AND_HELLO[0] },
            private("catalog", "hostile"),
        ],
        "",
    );
    let fetch = |url: &str| {
        let encoded: String = form_urlencoded::byte_serialize(url.as_bytes()).collect();
        host.url(&format!("/hostile/?action=fetch&url={encoded}"))
    };
    for url in [
        "http://CATALOG.SPIN.INTERNAL/hostile/?action=read-body",
        "http://Catalog.Spin.Internal./hostile/?action=read-body",
    ] {
        let (status, answer) = get(&fetch(url)).await;
        assert_eq!(status, 200, "{url}: {answer}");
        assert_eq!(answer["status"], 200, "{url}: {answer}");
        assert_eq!(answer["body"], r#"{"length":0}"#, "{url}: served by catalog in process: {answer}");
    }
    // An internal name it was not granted stays refused, however it is spelt.
    let (status, answer) = get(&fetch("http://PAYMENTS.SPIN.INTERNAL/")).await;
    assert_eq!(status, 502, "{answer}");
    assert!(answer["error"].as_str().unwrap_or_default().to_lowercase().contains("denied"), "{answer}");
}

/// The central attack. Guard: the body is read before an instance starts
/// (`admission::read_body`). Twenty-four clients send a POST's head (and ask for
/// `100 Continue`, so each knows the host is reading its body) and never the body,
/// three times the instance pool; not one instance is held, and a shopper's `GET`
/// on another route is answered at once. Without the guard the pool is gone and the
/// shopper gets 503.
#[tokio::test(flavor = "multi_thread")]
async fn clients_that_never_send_their_bodies_hold_no_instance() {
    let (app, host) = start(HOSTILE_AND_HELLO, "[limits]\nmax_instances = 8\n");
    let mut dawdlers = Vec::new();
    for _ in 0..24 {
        let mut stream = connect(&host).await;
        let head = "POST /hostile/?action=read-body HTTP/1.1\r\nhost: shop\r\ncontent-length: 1000\r\nexpect: 100-continue\r\n\r\n";
        stream.write_all(head.as_bytes()).await.unwrap();
        dawdlers.push(stream);
    }
    for stream in &mut dawdlers {
        assert_eq!(read_response(stream).await.status, 100, "the host reads every body");
    }
    let running = metric(&metrics(&app).await, "estore_instances_running", &[("component", "hostile")]);
    assert_eq!(running.unwrap_or(0.0), 0.0, "no instance waits for a body");
    for _ in 0..5 {
        let started = Instant::now();
        let (status, echo) = get(&host.url("/hello/")).await;
        assert_eq!(status, 200, "{echo}");
        assert!(started.elapsed() < Duration::from_secs(1), "the shopper waited {:?}", started.elapsed());
    }
    // A well-behaved client of the same component is served too.
    let posted = reqwest::Client::new().post(host.url("/hostile/?action=read-body")).body("0123456789").send().await.unwrap();
    assert_eq!(posted.status(), 200);
    assert_eq!(posted.json::<Value>().await.unwrap()["length"], 10);
}

/// Guard: each component has its instance slots (`admission::Slots`). Six requests
/// that hold their instance for three seconds on a component allowed two: two run,
/// four are turned away after a second's wait, and another component is served all
/// the while. Without the guard the six take the pool.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_on_one_component_leaves_instances_for_the_others() {
    let (app, host) = start(
        &[MISBEHAVE, HOSTILE_AND_HELLO[1]],
        "[limits]\nmax_instances = 6\nmax_instances_per_component = 2\n",
    );
    let client = reqwest::Client::new();
    let flood: Vec<_> = (0..6)
        .map(|_| {
            let request = client.get(host.url("/misbehave/?action=sleep&ms=3000")).send();
            tokio::spawn(async move {
                let response = request.await.expect("a sleeping request");
                let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap_or_default().to_owned());
                (response.status().as_u16(), retry_after, response.text().await.unwrap_or_default())
            })
        })
        .collect();
    host.wait_for_log(&["component=misbehave", "component at its 2 live instances"]);
    let started = Instant::now();
    assert_eq!(get(&host.url("/hello/")).await.0, 200);
    assert!(started.elapsed() < Duration::from_secs(1), "hello waited {:?}", started.elapsed());
    let mut answers = Vec::new();
    for request in flood {
        answers.push(request.await.unwrap());
    }
    let served = answers.iter().filter(|(status, ..)| *status == 200).count();
    let busy: Vec<_> = answers.iter().filter(|(status, ..)| *status == 503).collect();
    assert_eq!((served, busy.len()), (2, 4), "{answers:?}");
    for (_, retry_after, body) in busy {
        assert_eq!(retry_after.as_deref(), Some("1"), "{body}");
        assert!(body.contains("component `misbehave` is busy"), "{body}");
    }
    assert_eq!(refusals(&app, "misbehave", "at_capacity").await, 4.0);
}

/// Guard: the connection clock's header timeout (`connection::Clock`). A head that
/// never ends, and a connection that sends nothing, are closed after 500 ms; an idle
/// keep-alive connection has its own, longer, timeout. Without the guard they stay
/// open for good.
#[tokio::test(flavor = "multi_thread")]
async fn connections_that_never_finish_a_head_are_closed() {
    let (_app, host) = start(HOSTILE_AND_HELLO, "[http]\nheader_read_timeout_ms = 500\nkeep_alive_timeout_ms = 2000\n");
    let opened = Instant::now();
    let mut unfinished = connect(&host).await;
    unfinished.write_all(b"GET /hello/ HTTP/1.1\r\nhost: shop\r\nx-never: ending").await.unwrap();
    let mut silent = connect(&host).await;
    for stream in [&mut unfinished, &mut silent] {
        let took = closed(stream, opened).await;
        assert!(took >= Duration::from_millis(450), "closed after {took:?}, before the timeout");
    }

    let mut idle = connect(&host).await;
    idle.write_all(b"GET /hello/ HTTP/1.1\r\nhost: shop\r\n\r\n").await.unwrap();
    assert_eq!(read_response(&mut idle).await.status, 200);
    let took = closed(&mut idle, Instant::now()).await;
    assert!(took >= Duration::from_millis(1800), "an idle connection was closed after {took:?}, not the keep-alive timeout");
}

/// Guard: the body limit, checked before an instance starts (`admission::read_body`).
/// 100 MB announced by `content-length` is refused before a byte of it is sent; 100 MB
/// sent chunked is refused once it passes the limit; and the host's memory does not
/// grow by anything like it. Without the guard the component reads the lot.
#[tokio::test(flavor = "multi_thread")]
async fn a_100_mb_body_is_refused_without_the_host_growing() {
    const HUNDRED_MB: usize = 100 << 20;
    let (app, host) = start(HOSTILE_AND_HELLO, "");
    // Warm up, so what the first requests allocate is not counted as growth.
    assert_eq!(get(&host.url("/hostile/?action=read-body")).await.0, 200);
    let before = resident_bytes(&host);

    let mut announced = connect(&host).await;
    let head = format!("POST /hostile/?action=read-body HTTP/1.1\r\nhost: shop\r\ncontent-length: {HUNDRED_MB}\r\n\r\n");
    announced.write_all(head.as_bytes()).await.unwrap();
    let refused = read_response(&mut announced).await;
    assert_eq!(refused.status, 413, "{refused:?}");
    let detail = refused.problem()["detail"].as_str().unwrap_or_default().to_owned();
    assert!(detail.contains("larger than the 1048576 bytes component `hostile` accepts"), "{detail}");

    let mut chunked = connect(&host).await;
    let head = "POST /hostile/?action=read-body HTTP/1.1\r\nhost: shop\r\ntransfer-encoding: chunked\r\n\r\n";
    chunked.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = chunked.into_split();
    let sender = tokio::spawn(async move {
        let chunk = vec![b'x'; 64 << 10];
        let framed = [format!("{:x}\r\n", chunk.len()).into_bytes(), chunk, b"\r\n".to_vec()].concat();
        let mut sent = 0;
        while sent < HUNDRED_MB {
            // The host stops reading once it has refused the body.
            if writer.write_all(&framed).await.is_err() {
                break;
            }
            sent += 64 << 10;
        }
        sent
    });
    let mut head = Vec::new();
    let mut byte = [0; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout(ANSWER_WITHIN, reader.read(&mut byte)).await {
            Ok(Ok(1)) => head.push(byte[0]),
            other => panic!("no response to the chunked body ({other:?}): {:?}", String::from_utf8_lossy(&head)),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    let sent = sender.await.unwrap();
    assert!(sent < HUNDRED_MB, "the host took all {sent} bytes");

    let grown = resident_bytes(&host).saturating_sub(before);
    assert!(grown < 20 << 20, "the host grew by {} MiB", grown >> 20);
    assert_eq!(refusals(&app, "hostile", "body_too_large").await, 2.0);
}

/// Guard: the body read timeout (`admission::read_body`). A body that stops halfway
/// gets 408 after 700 ms. Without the guard the component waits for it until its
/// own deadline.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_body_gets_408() {
    let (_app, host) = start(HOSTILE_AND_HELLO, "[http]\nbody_read_timeout_ms = 700\n");
    let mut slow = connect(&host).await;
    let started = Instant::now();
    slow.write_all(b"POST /hostile/?action=read-body HTTP/1.1\r\nhost: shop\r\ncontent-length: 100\r\n\r\n0123456789").await.unwrap();
    let answer = read_response(&mut slow).await;
    assert_eq!(answer.status, 408, "{answer:?}");
    assert!(answer.problem()["detail"].as_str().unwrap_or_default().contains("did not arrive within 700 ms"), "{answer:?}");
    assert!(started.elapsed() >= Duration::from_millis(650), "answered after {:?}", started.elapsed());
}

/// Guard: URLs are redacted before they are logged (`redact::uri`). The status
/// stream's `?access_token=` and an outbound call's `?token=` are in the request; the
/// log names both requests, without either token.
#[tokio::test(flavor = "multi_thread")]
async fn tokens_never_reach_the_log() {
    let (_app, host) = start(&[MISBEHAVE, HOSTILE_AND_HELLO[0]], "");
    let failed = reqwest::Client::new()
        .get(host.url("/misbehave/?action=trap&access_token=eyJ.secret-one.sig"))
        .header("authorization", "Bearer secret-two")
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 500);
    host.wait_for_log(&["GET /misbehave/?action=trap&access_token=[redacted]", "component `misbehave` failed"]);
    let url = form_urlencoded::byte_serialize(b"https://api.example.com/v1?token=secret-three&page=2").collect::<String>();
    assert_eq!(get(&host.url(&format!("/hostile/?action=fetch&url={url}"))).await.0, 502);
    host.wait_for_log(&["denied outbound request to https://api.example.com/v1?token=[redacted]&page=2"]);
    let log = host.log();
    for secret in ["secret-one", "secret-two", "secret-three"] {
        assert!(!log.contains(secret), "`{secret}` in the log:\n{log}");
    }
}

/// Starts `hello` with `max_connections = 1000` under an open-files limit of `soft`
/// (`hard` the most it may be raised to), as many a machine starts services.
fn start_under_open_files_limit(soft: u64, hard: u64) -> (App, Host) {
    use std::os::unix::process::CommandExt;
    let app = App::new(&crate::harness::one_component("hello", "/hello/...", "{wasm}/hello.wasm"));
    let config = app.dir.path().join("runtime-config.toml");
    std::fs::write(&config, "[http]\nmax_connections = 1000\n").expect("write the runtime config");
    let mut command = app.command();
    command.arg("--runtime-config-file").arg(&config);
    let limit = rustix::process::Rlimit { current: Some(soft), maximum: Some(hard) };
    // SAFETY: setrlimit is a single system call, safe between fork and exec.
    unsafe {
        command.pre_exec(move || rustix::process::setrlimit(rustix::process::Resource::Nofile, limit.clone()).map_err(Into::into));
    }
    let host = Host::start(command);
    (app, host)
}

/// The soft "Max open files" of process `pid`.
fn open_files_limit(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("the host's limits");
    let line = limits.lines().find(|l| l.starts_with("Max open files")).expect("a Max open files line");
    line.split_whitespace().nth(3).and_then(|soft| soft.parse().ok()).unwrap_or_else(|| panic!("{line}"))
}

/// Guard: the host fits its connection cap to the open-files limit
/// (`server::fit_to_open_files`). Under the common soft limit of 1024 a cap of 4096
/// means nothing: a client holding a thousand idle connections would make `accept`
/// fail for every other client. The host raises the soft limit as far as the hard one
/// allows, and where even that is too low serves fewer connections and says so.
#[tokio::test(flavor = "multi_thread")]
async fn the_connection_cap_fits_the_open_files_limit() {
    let (_app, raised) = start_under_open_files_limit(512, 8192);
    assert_eq!(get(&raised.url("/hello/")).await.0, 200);
    assert_eq!(open_files_limit(raised.pid()), 1000 + 256, "raised to the connections and the host's own files");
    assert!(!raised.log().contains("serving at most"), "{}", raised.log());

    let (_app, capped) = start_under_open_files_limit(512, 512);
    assert_eq!(get(&capped.url("/hello/")).await.0, 200);
    capped.wait_for_log(&["http.max_connections = 1000 needs 1256 open files", "serving at most 256 connections"]);
}

/// Guard: a component's own limits and a route's own deadline
/// (`[component.<id>.limits]`, `request_timeout_ms` on a trigger). One component on
/// two routes: its limits allow 64 bytes of body and 600 ms; the `/patient/` route
/// allows 5 s. A body over 64 bytes is refused with 413 as problem+json before any
/// instance starts, announced or chunked; a 1.5 s request times out on the
/// component's deadline and is served on the route's. Without the guards the body
/// would reach the component under the 1 MiB default, and both routes would share
/// one deadline.
#[tokio::test(flavor = "multi_thread")]
async fn a_components_own_limits_and_a_routes_own_deadline_hold() {
    let manifest = r#"spin_manifest_version = 2
[application]
name = "own-limits"
[[trigger.http]]
route = "/hasty/..."
component = "misbehave"
[[trigger.http]]
route = "/patient/..."
component = "misbehave"
request_timeout_ms = 5000
[component.misbehave]
source = "{wasm}/misbehave.wasm"
[component.misbehave.limits]
request_timeout_ms = 600
max_request_body_bytes = 64
"#;
    let app = App::new(manifest);
    let host = app.start();

    let (status, body) = get(&host.url("/hasty/?action=sleep&ms=1500")).await;
    assert_eq!(status, 504, "{body}");
    assert!(body["detail"].as_str().unwrap_or_default().contains("did not answer within 600 ms"), "{body}");
    let (status, body) = get(&host.url("/patient/?action=sleep&ms=1500")).await;
    assert_eq!(status, 200, "the route's own deadline: {body}");

    let mut announced = connect(&host).await;
    announced.write_all(b"POST /hasty/?action=sleep&ms=1 HTTP/1.1\r\nhost: shop\r\ncontent-length: 65\r\n\r\n").await.unwrap();
    let refused = read_response(&mut announced).await;
    assert_eq!(refused.status, 413, "{refused:?}");
    let detail = refused.problem()["detail"].as_str().unwrap_or_default().to_owned();
    assert!(detail.contains("larger than the 64 bytes component `misbehave` accepts"), "{detail}");

    let mut chunked = connect(&host).await;
    let chunk = "x".repeat(40);
    let request = format!(
        "POST /hasty/?action=sleep&ms=1 HTTP/1.1\r\nhost: shop\r\ntransfer-encoding: chunked\r\n\r\n28\r\n{chunk}\r\n28\r\n{chunk}\r\n0\r\n\r\n"
    );
    chunked.write_all(request.as_bytes()).await.unwrap();
    let refused = read_response(&mut chunked).await;
    assert_eq!(refused.status, 413, "{refused:?}");
    let detail = refused.problem()["detail"].as_str().unwrap_or_default().to_owned();
    assert!(detail.contains("larger than the 64 bytes"), "{detail}");
    assert_eq!(refusals(&app, "misbehave", "body_too_large").await, 2.0);
    let running = metric(&metrics(&app).await, "estore_instances_running", &[("component", "misbehave")]);
    assert_eq!(running.unwrap_or(0.0), 0.0);
}

/// Guard: the connection cap (`http.max_connections`). With three connections open,
/// a fourth is not served: the server stops accepting and says so in the log. Once
/// one of the three closes, the fourth is served. Without the guard it would be
/// served at once, and a client could open connections until the host ran out of
/// files.
#[tokio::test(flavor = "multi_thread")]
async fn past_the_connection_cap_a_connection_waits_until_another_closes() {
    let (_app, host) = start(HOSTILE_AND_HELLO, "[http]\nmax_connections = 3\n");
    let request = b"GET /hello/ HTTP/1.1\r\nhost: shop\r\n\r\n";
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut stream = connect(&host).await;
        stream.write_all(request).await.unwrap();
        assert_eq!(read_response(&mut stream).await.status, 200);
        open.push(stream);
    }
    let mut fourth = connect(&host).await;
    fourth.write_all(request).await.unwrap();
    host.wait_for_log(&["3 connections open (http.max_connections)"]);
    let early = tokio::time::timeout(Duration::from_millis(500), read_response_now(&mut fourth)).await;
    assert!(early.is_err(), "served past the cap: {early:?}");
    drop(open.pop());
    assert_eq!(read_response(&mut fourth).await.status, 200, "served once a connection closed");
}
