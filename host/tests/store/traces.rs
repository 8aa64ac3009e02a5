//! Traces: the spans the host exports over OTLP for one checkout form one tree, from
//! the shopper's request through every service the order passes, over chained HTTP
//! calls and events alike.
//!
//! The spans are received by [`Receiver`], an OTLP/HTTP endpoint of the test's own on
//! loopback (no OpenTelemetry collector is installed here): it accepts what the
//! exporter posts to `/v1/traces` over a real socket and keeps the spans.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::orders::{APPROVED_CARD, fill_cart};
use crate::support::{Backends, Client, Store, get_until, register};

/// An OTLP/HTTP (JSON) trace endpoint.
struct Receiver {
    address: String,
    spans: Arc<Mutex<Vec<Json>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the OTLP receiver");
        let address = listener.local_addr().expect("address").to_string();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let kept = spans.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let kept = kept.clone();
                std::thread::spawn(move || serve(stream, &kept));
            }
        });
        Receiver { address, spans }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The spans of one trace received so far.
    fn trace(&self, trace_id: &str) -> Vec<Json> {
        self.spans.lock().unwrap().iter().filter(|span| span["traceId"] == trace_id).cloned().collect()
    }
}

/// Answers the exporter's posts on one connection, keeping their spans.
fn serve(stream: TcpStream, spans: &Mutex<Vec<Json>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
    let mut writer = stream;
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" => break,
                Ok(_) => head.push(line.to_ascii_lowercase()),
            }
        }
        let length = head
            .iter()
            .find_map(|line| line.strip_prefix("content-length:").and_then(|n| n.trim().parse::<usize>().ok()))
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (status, answer) = match serde_json::from_slice::<Json>(&body) {
            Ok(request) if head.first().is_some_and(|line| line.starts_with("post /v1/traces ")) => {
                spans.lock().unwrap().extend(spans_of(&request));
                ("200 OK", "{}")
            }
            _ => ("400 Bad Request", r#"{"error":"expected an OTLP/JSON trace export at /v1/traces"}"#),
        };
        let response = format!("HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}", answer.len());
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// The spans of an `ExportTraceServiceRequest`, each with its attributes as an object
/// and its resource's `service.name`.
fn spans_of(request: &Json) -> Vec<Json> {
    let mut spans = Vec::new();
    for resource in request["resourceSpans"].as_array().into_iter().flatten() {
        let service = attributes(&resource["resource"]["attributes"])["service.name"].clone();
        for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
            for span in scope["spans"].as_array().into_iter().flatten() {
                let mut span = span.clone();
                span["attributes"] = attributes(&span["attributes"]);
                span["service"] = service.clone();
                spans.push(span);
            }
        }
    }
    spans
}

/// OTLP's `[{"key": k, "value": {"stringValue": v}}]` as `{k: v}`.
fn attributes(list: &Json) -> Json {
    let pairs = list.as_array().into_iter().flatten().filter_map(|attribute| {
        let value = attribute["value"].as_object()?.values().next()?.clone();
        Some((attribute["key"].as_str()?.to_owned(), value))
    });
    Json::Object(pairs.collect())
}

/// OTLP span kinds.
const SERVER: i64 = 2;
const CLIENT: i64 = 3;
const PRODUCER: i64 = 4;
const CONSUMER: i64 = 5;

/// What a trace's spans show: the component of each request and message span, and
/// the spans not connected to the root.
struct Tree {
    components: BTreeSet<String>,
    detached: Vec<String>,
}

fn tree(spans: &[Json], root_parent: &str) -> Tree {
    let ids: BTreeSet<&str> = spans.iter().filter_map(|s| s["spanId"].as_str()).collect();
    let components = spans
        .iter()
        .filter(|s| s["kind"] == SERVER || s["kind"] == CONSUMER)
        .filter_map(|s| s["attributes"]["component"].as_str().map(str::to_owned))
        .collect();
    let detached = spans
        .iter()
        .filter(|s| {
            let parent = s["parentSpanId"].as_str().unwrap_or_default();
            parent != root_parent && !ids.contains(parent)
        })
        .map(|s| format!("{} (parent {})", s["name"], s["parentSpanId"]))
        .collect();
    Tree { components, detached }
}

/// A checkout sent with a `traceparent` of the test's: every span the host exports for
/// it, through the chained calls to cart, catalog and payments and the events to
/// inventory, payments, orders, shipping and e-mail, descends from the shopper's span,
/// and SQL calls and publishes are among them.
async fn one_checkout_traced(backends: Backends) {
    let database = match backends {
        Backends::Embedded => "sqlite",
        Backends::KafkaPostgres => "postgresql",
    };
    let receiver = Receiver::start();
    let store = Store::new(backends)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint())
        .env("OTEL_BSP_SCHEDULE_DELAY", "100");
    let host = store.start();
    let client = Client::new(&host);
    let (shopper, _) = register(&client, "tracy", json!({})).await;
    fill_cart(&shopper, &[(7, 1)]).await;

    let trace_id = format!("5e1ec7ed0000400080000000c0ffee{:02x}", backends as u8);
    let trace_id = trace_id.as_str();
    let shoppers_span = "00f067aa0ba902b7";
    let placed = reqwest::Client::new()
        .post(format!("{}/api/orders", shopper.base()))
        .bearer_auth(shopper.token().expect("logged in"))
        .header("traceparent", format!("00-{trace_id}-{shoppers_span}-01"))
        .json(&json!({"shipping_address": {"name": "Tracy", "line1": "1 Main St", "city": "Leeds",
                      "postal_code": "LS1 1AA", "country": "GB"}, "payment": {"card_number": APPROVED_CARD}}))
        .send()
        .await
        .expect("checkout");
    assert_eq!(placed.status(), 202);
    let order: Json = placed.json().await.expect("the order");
    let order_id = order["id"].as_str().unwrap_or_default();
    get_until(&shopper, &format!("/api/orders/{order_id}"), |answer| answer.body["status"] == "SHIPPED").await;

    let expected: BTreeSet<String> =
        ["orders", "cart", "catalog", "payments", "inventory", "shipping", "email"].map(str::to_owned).into();
    let deadline = Instant::now() + Duration::from_secs(30);
    let spans = loop {
        let spans = receiver.trace(trace_id);
        let tree = tree(&spans, shoppers_span);
        if tree.components.is_superset(&expected) && tree.detached.is_empty() {
            break spans;
        }
        assert!(
            Instant::now() < deadline,
            "the trace reached {:?} of {expected:?}; not connected to the shopper's span: {:?}",
            tree.components,
            tree.detached
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let named = |kind: i64, name: &str| spans.iter().any(|s| s["kind"] == kind && s["name"].as_str().is_some_and(|n| n.contains(name)));
    let root: Vec<&Json> = spans.iter().filter(|s| s["parentSpanId"] == shoppers_span).collect();
    assert_eq!(root.len(), 1, "one span continues the shopper's: {root:?}");
    assert_eq!(root[0]["name"], "orders POST /api/orders");
    // OTLP's JSON carries 64-bit integers as strings.
    assert_eq!(root[0]["attributes"]["http.response.status_code"].to_string().trim_matches('"'), "202");
    assert!(named(CLIENT, "cart.spin.internal/api/cart"), "the chained call to cart");
    assert!(named(PRODUCER, "publish order.placed"), "the publish of order.placed");
    assert!(named(CONSUMER, "inventory order.placed"), "inventory handling order.placed");
    assert!(
        spans.iter().any(|s| s["kind"] == CLIENT && s["attributes"]["db.system.name"] == database),
        "SQL calls are spans of their own"
    );
    assert!(spans.iter().all(|s| s["service"] == "estore"), "the host names itself");
    // Components only reach a database from inside a request or a message.
    let orphans: Vec<Json> = receiver
        .spans
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s["attributes"]["db.system.name"].is_string() && s["parentSpanId"] == "")
        .cloned()
        .collect();
    assert!(orphans.is_empty(), "SQL spans without the request or message they ran in: {orphans:?}");
    let by_component: BTreeMap<String, usize> = spans.iter().fold(BTreeMap::new(), |mut counts, s| {
        *counts.entry(s["name"].as_str().unwrap_or_default().split(' ').next().unwrap_or_default().to_owned()).or_default() += 1;
        counts
    });
    println!("{} spans in the checkout's trace: {by_component:?}", spans.len());

    // The browser's status stream carries the token in its URL; no span does.
    let token = shopper.token().expect("logged in");
    let stream = reqwest::get(format!("{}/api/orders/{order_id}/events?access_token={token}", shopper.base())).await;
    let mut stream = stream.expect("the status stream");
    assert_eq!(stream.status(), 200);
    stream.chunk().await.expect("the stream's first event");
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let spans = receiver.spans.lock().unwrap().clone();
        if spans.iter().any(|s| s["name"].as_str().is_some_and(|n| n.ends_with("/events"))) {
            let text = serde_json::to_string(&spans).expect("spans as text");
            assert!(!text.contains(token), "a span carries the shopper's token");
            break;
        }
        assert!(Instant::now() < deadline, "no span of the status stream's request");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spans_of_one_checkout_connect_every_service_on_the_embedded_defaults() {
    one_checkout_traced(Backends::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spans_of_one_checkout_connect_every_service_on_kafka_and_postgres() {
    one_checkout_traced(Backends::KafkaPostgres).await;
}
