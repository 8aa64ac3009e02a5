//! Notifications end to end: the email and sms services on the real host, sending to
//! a real SMTP server (aiosmtpd, [`crate::smtp`]) and to a stand-in SMS provider run
//! by the test, or to the embedded defaults (the `.eml` outbox, no SMS provider).
//! Users register over HTTP (users publishes user.registered for real); order events
//! are produced straight to Kafka, as orders and shipping would publish them.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::smtp::SmtpServer;
use crate::support::{Backends, Client, Store, register};

const ACCOUNT_SID: &str = "AC0123456789";
const AUTH_TOKEN: &str = "s3cret-token";
const SMS_FROM: &str = "+15005550006";
/// `Basic base64("AC0123456789:s3cret-token")`, worked out independently.
const BASIC_AUTH: &str = "Basic QUMwMTIzNDU2Nzg5OnMzY3JldC10b2tlbg==";

// ---- A stand-in SMS provider -----------------------------------------------------------

/// One request the stand-in provider received.
#[derive(Debug, Clone)]
struct ProviderRequest {
    method: String,
    path: String,
    authorization: String,
    content_type: String,
    form: BTreeMap<String, String>,
}

/// Stands in for a third-party SMS provider (Twilio's Messages API), which cannot be
/// reached from here: a plain HTTP/1.1 server on loopback that records every request
/// and answers `201 {sid, status}` like the real one, or `500` for the first
/// `failures` requests.
pub(crate) struct SmsProvider {
    port: u16,
    requests: Arc<Mutex<Vec<ProviderRequest>>>,
    failures: Arc<AtomicUsize>,
}

impl SmsProvider {
    pub(crate) fn start() -> SmsProvider {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stand-in SMS provider");
        let port = listener.local_addr().expect("its address").port();
        let provider = SmsProvider { port, requests: Arc::default(), failures: Arc::default() };
        let (requests, failures) = (provider.requests.clone(), provider.failures.clone());
        // Lives as long as the test process; each test has its own port.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (requests, failures) = (requests.clone(), failures.clone());
                std::thread::spawn(move || serve(stream, &requests, &failures));
            }
        });
        provider
    }

    /// The `base_url` the sms service is configured with.
    pub(crate) fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Answers 500 to the next `count` requests.
    fn fail_next(&self, count: usize) {
        self.failures.store(count, Ordering::SeqCst);
    }

    fn requests(&self) -> Vec<ProviderRequest> {
        self.requests.lock().expect("not poisoned").clone()
    }

    /// The texts sent to `phone`, in the order received (failed attempts included).
    pub(crate) fn bodies_to(&self, phone: &str) -> Vec<String> {
        self.requests().into_iter().filter(|r| r.form.get("To").map(String::as_str) == Some(phone)).map(|r| r.form["Body"].clone()).collect()
    }
}

fn serve(stream: TcpStream, requests: &Mutex<Vec<ProviderRequest>>, failures: &AtomicUsize) {
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or_default().to_owned(), parts.next().unwrap_or_default().to_owned());
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_lowercase(), value.trim().to_owned());
        }
    }
    let body = if headers.get("transfer-encoding").is_some_and(|coding| coding.eq_ignore_ascii_case("chunked")) {
        read_chunked(&mut reader)
    } else {
        let length = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).map(|()| body).ok()
    };
    let Some(body) = body else { return };
    let form = String::from_utf8_lossy(&body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (form_decode(name), form_decode(value)))
        .collect();
    let number = {
        let mut requests = requests.lock().expect("not poisoned");
        requests.push(ProviderRequest {
            method,
            path,
            authorization: headers.get("authorization").cloned().unwrap_or_default(),
            content_type: headers.get("content-type").cloned().unwrap_or_default(),
            form,
        });
        requests.len()
    };
    // `try_update`, its new name, needs Rust 1.99; the workspace still builds on 1.95.
    #[allow(deprecated)]
    let fail = failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    let (status, body) = if fail {
        ("500 Internal Server Error", json!({"code": 20500, "message": "internal error"}))
    } else {
        ("201 Created", json!({"sid": format!("SM{number:032}"), "status": "queued"}))
    };
    let body = body.to_string();
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = (&stream).write_all(response.as_bytes());
}

/// A `Transfer-Encoding: chunked` body (how the host streams a guest's request body).
fn read_chunked(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).ok()?;
        let size = usize::from_str_radix(size.trim().split(';').next()?.trim(), 16).ok()?;
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).ok()?;
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---- The store under test --------------------------------------------------------------

/// `[email]` for the SMTP server on `port`, in plain text.
fn smtp_config(port: u16) -> String {
    format!(
        "[email]\nfrom = \"Electronic Store <shop@localhost>\"\nbackend = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\n\
         tls = \"none\"\ntimeout_ms = 5000\n"
    )
}

/// A store sending e-mail to `smtp` and texts to `provider`.
pub(crate) fn notifying_store(backends: Backends, smtp: &SmtpServer, provider: &SmsProvider) -> Store {
    Store::new(backends)
        .runtime_config(&smtp_config(smtp.port()))
        .variable("sms_base_url", &provider.base_url())
        .variable("sms_outbound_host", &provider.base_url())
        .variable("sms_account_sid", ACCOUNT_SID)
        .variable("sms_auth_token", AUTH_TOKEN)
        .variable("sms_from", SMS_FROM)
}

/// Waits until the caller's records at `/api/notifications/<channel>` include one with
/// `template` and `reference` that satisfies `done`; returns it.
pub(crate) async fn record(client: &Client, channel: &str, template: &str, reference: &str, done: impl Fn(&Json) -> bool) -> Json {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = client.get(&format!("/api/notifications/{channel}?size=100")).await;
        assert_eq!(list.status, 200, "{list:?}");
        let found = list.body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|item| item["template"] == template && item["reference"] == reference)
            .cloned();
        if let Some(item) = found.filter(|item| done(item)) {
            return item;
        }
        assert!(Instant::now() < deadline, "no {channel} {template} for {reference} as expected: {}", list.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(crate) fn status_is(status: &'static str) -> impl Fn(&Json) -> bool {
    move |item| item["status"] == status
}

/// The raw messages the SMTP server took for `address`.
pub(crate) fn mails_to(smtp: &SmtpServer, address: &str) -> Vec<String> {
    smtp.messages()
        .into_iter()
        .map(|raw| String::from_utf8_lossy(&raw).into_owned())
        .filter(|message| message.lines().any(|line| line.starts_with("To:") && line.contains(address)))
        .collect()
}

// ---- Tests -----------------------------------------------------------------------------

#[tokio::test]
async fn registering_sends_the_welcome_by_smtp_and_sms_and_each_user_sees_their_own() {
    let smtp = SmtpServer::start();
    let provider = SmsProvider::start();
    let store = notifying_store(Backends::Embedded, &smtp, &provider);
    let host = store.start();
    let client = Client::new(&host);

    let (ada, ada_id) = register(&client, "ada", json!({"phone": "+43 660 1234567"})).await;
    let (bob, bob_id) = register(&client, "bob", json!({})).await;

    let mail = record(&ada, "email", "welcome", &ada_id, status_is("SENT")).await;
    assert_eq!(mail["attempts"], 1, "{mail}");
    assert_eq!(mail["recipient"], "ada@example.com");
    assert_eq!(mail["channel"], "email");
    assert!(mail["provider_id"].as_str().is_some_and(|id| id.starts_with('<')), "the Message-ID: {mail}");
    assert!(mail["sent_at"].is_string(), "{mail}");
    let delivered = mails_to(&smtp, "ada@example.com");
    assert_eq!(delivered.len(), 1, "one welcome for ada: {delivered:?}");
    assert!(delivered[0].contains("Subject: Welcome to the Electronic Store"), "{}", delivered[0]);
    assert!(delivered[0].contains("Hello Ada,"), "the greeting names her: {}", delivered[0]);

    let text = record(&ada, "sms", "welcome", &ada_id, status_is("SENT")).await;
    assert_eq!(text["attempts"], 1, "{text}");
    assert_eq!(text["recipient"], "+43 660 1234567");
    let requests = provider.requests();
    assert_eq!(requests.len(), 1, "one text, for ada: {requests:?}");
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"));
    assert_eq!(request.authorization, BASIC_AUTH);
    assert_eq!(request.content_type, "application/x-www-form-urlencoded");
    assert_eq!(request.form["To"], "+43 660 1234567");
    assert_eq!(request.form["From"], SMS_FROM);
    assert!(request.form["Body"].contains("welcome, Ada!"), "{request:?}");
    assert_eq!(text["provider_id"], "SM00000000000000000000000000000001", "the provider's sid: {text}");

    // Bob gave no number: his welcome text is recorded as skipped, and why.
    record(&bob, "email", "welcome", &bob_id, status_is("SENT")).await;
    let skipped = record(&bob, "sms", "welcome", &bob_id, status_is("SKIPPED")).await;
    assert_eq!(skipped["reason"], "no phone number");
    assert_eq!(skipped["attempts"], 0);

    // Each sees their own; the admin sees everyone's (their own welcome too).
    for (user, id) in [(&ada, &ada_id), (&bob, &bob_id)] {
        for channel in ["email", "sms"] {
            let list = user.get(&format!("/api/notifications/{channel}")).await.body;
            assert_eq!(list["total"], 1, "{channel} for {id}: {list}");
            assert_eq!(list["items"][0]["user_id"], id.as_str());
        }
    }
    let admin = client.admin().await;
    let all = admin.get("/api/notifications/email?size=2").await;
    assert_eq!(all.status, 200, "{all:?}");
    assert_eq!((all.body["total"].clone(), all.body["size"].clone(), all.body["page"].clone()), (json!(3), json!(2), json!(1)));
    assert_eq!(all.body["items"][0]["user_id"], bob_id.as_str(), "newest first: {}", all.body);
    assert_eq!(admin.get("/api/notifications/email?page=2&size=2").await.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(admin.get("/api/notifications/email?size=0").await.status, 400);

    for path in ["/api/notifications/email", "/api/notifications/sms"] {
        let anonymous = client.get(path).await;
        assert_eq!(anonymous.status, 401, "{path}: {anonymous:?}");
        assert_eq!(anonymous.headers["content-type"], "application/problem+json");
    }
}

#[tokio::test]
async fn on_the_embedded_defaults_mail_is_an_eml_file_and_texts_are_not_sent() {
    let store = Store::new(Backends::Embedded);
    let host = store.start();
    let client = Client::new(&host);

    let (ada, ada_id) = register(&client, "ada", json!({"phone": "+43 660 1234567"})).await;
    record(&ada, "email", "welcome", &ada_id, status_is("SENT")).await;
    let outbox = store.state_dir().join("outbox/email");
    let welcome = std::fs::read_dir(&outbox)
        .expect("the outbox")
        .flatten()
        .map(|entry| std::fs::read_to_string(entry.path()).expect("an .eml file"))
        .find(|message| message.contains("To: ada@example.com"))
        .expect("ada's welcome in the outbox");
    assert!(welcome.contains("Subject: Welcome to the Electronic Store") && welcome.contains("Hello Ada,"), "{welcome}");

    let text = record(&ada, "sms", "welcome", &ada_id, status_is("SKIPPED")).await;
    assert_eq!(text["reason"], "no SMS provider configured", "{text}");
    assert!(text["sent_at"].is_null());
}

#[tokio::test]
async fn the_smtp_server_refusing_fails_the_mail_and_asking_to_wait_retries_it() {
    let smtp = SmtpServer::start();
    let provider = SmsProvider::start();
    let store = notifying_store(Backends::Embedded, &smtp, &provider);
    let host = store.start();
    let client = Client::new(&host);
    // The provider fails twice, then takes the text: the platform's retries get it there.
    provider.fail_next(2);

    let (refused, refused_id) =
        register(&client, "carl", json!({"email": "refused-carl@example.com", "phone": "+43 660 7654321"})).await;
    let (later, later_id) = register(&client, "dan", json!({"email": "later-dan@example.com"})).await;

    let failed = record(&refused, "email", "welcome", &refused_id, status_is("FAILED")).await;
    assert_eq!(failed["attempts"], 1, "a refusal is not retried: {failed}");
    assert!(failed["reason"].as_str().is_some_and(|reason| reason.contains("550")), "{failed}");

    // 451 is retried by the platform (5 deliveries by default), and stays unsent.
    let postponed = record(&later, "email", "welcome", &later_id, |item| item["attempts"].as_i64() >= Some(3)).await;
    assert_eq!(postponed["status"], "PENDING", "{postponed}");
    assert!(postponed["reason"].as_str().is_some_and(|reason| reason.contains("451")), "{postponed}");
    assert!(mails_to(&smtp, "later-dan@example.com").is_empty());

    let text = record(&refused, "sms", "welcome", &refused_id, status_is("SENT")).await;
    assert_eq!(text["attempts"], 3, "two 500s, then sent: {text}");
    assert_eq!(provider.bodies_to("+43 660 7654321").len(), 3);
}

/// An order event as orders or shipping would publish it.
fn order_event(event_type: &str, order_id: &str, user_id: &str) -> String {
    let data = json!({
        "order_id": order_id, "user_id": user_id,
        "items": [{"product_id": 1, "name": "Laptop Pro 15", "quantity": 1,
                   "unit_price": {"amount": 129900, "currency": "EUR"}}],
        "total": {"amount": 129900, "currency": "EUR"},
        "shipping_address": {"name": "Ada", "line1": "1 Main St", "city": "Graz", "postal_code": "8010", "country": "AT"},
        "carrier": "DHL", "tracking_number": "JD014600003828",
        "reason": "payment declined", "was_reserved": true, "was_paid": true,
        "payment_id": "pay-1", "amount": {"amount": 5000, "currency": "EUR"},
    });
    let envelope = estore_shared::event::Envelope::new(event_type, order_id, data);
    String::from_utf8(envelope.to_json().expect("serialises")).expect("UTF-8")
}

/// The same event twice (two messages, so two message ids), then another order's
/// under the same key: once the marker's notifications exist, the duplicate before it
/// on the partition has been handled too.
#[tokio::test]
async fn an_order_event_published_twice_sends_one_mail_and_one_text_on_kafka_and_postgres() {
    let smtp = SmtpServer::start();
    let provider = SmsProvider::start();
    let store = notifying_store(Backends::KafkaPostgres, &smtp, &provider);
    let host = store.start();
    let client = Client::new(&host);
    let kafka = crate::kafka::shared();

    let phone = "+43 660 1111111";
    let (ada, ada_id) = register(&client, "ada", json!({"phone": phone})).await;
    let (eve, eve_id) = register(&client, "eve", json!({"phone": "+43 660 2222222"})).await;
    // The directories know both once their welcomes are out.
    for (user, id) in [(&ada, &ada_id), (&eve, &eve_id)] {
        record(user, "email", "welcome", id, status_is("SENT")).await;
        record(user, "sms", "welcome", id, status_is("SENT")).await;
    }
    // Eve turns texts off.
    let patched = eve.patch("/api/users/me", json!({"sms_opt_in": false})).await;
    assert_eq!((patched.status, patched.body["sms_opt_in"].clone()), (200, json!(false)), "{patched:?}");

    let (order, marker) = ("0a0a0a0a-0000-4000-8000-000000000001", "0b0b0b0b-0000-4000-8000-000000000002");
    for topic in ["order.confirmed", "order.shipped"] {
        let event = order_event(topic, order, &ada_id);
        kafka.produce_keyed(topic, &[(order, &event), (order, &event), (order, &order_event(topic, marker, &ada_id))]);
    }
    for template in ["order_confirmed", "order_shipped"] {
        record(&ada, "email", template, marker, status_is("SENT")).await;
        record(&ada, "sms", template, marker, status_is("SENT")).await;
    }
    let confirmed = record(&ada, "email", "order_confirmed", order, status_is("SENT")).await;
    assert_eq!(confirmed["attempts"], 1, "{confirmed}");
    assert_eq!(confirmed["subject"], "Order 0a0a0a0a confirmed");
    let body = confirmed["body"].as_str().unwrap_or_default();
    assert!(body.contains("1 × Laptop Pro 15 at €1,299.00") && body.contains("Total: €1,299.00"), "{body}");
    let shipped = record(&ada, "email", "order_shipped", order, status_is("SENT")).await;
    // The store's own shipping ships the injected order.confirmed too, with a tracking
    // number of its own: whichever order.shipped comes first is the one e-mailed.
    assert!(shipped["body"].as_str().unwrap_or_default().contains("Carrier: DHL, tracking number: "), "{shipped}");

    let subjects: Vec<String> = mails_to(&smtp, "ada@example.com")
        .iter()
        .filter_map(|message| message.lines().find(|line| line.starts_with("Subject:")).map(str::to_owned))
        .collect();
    for subject in ["Subject: Order 0a0a0a0a confirmed", "Subject: Order 0a0a0a0a shipped"] {
        assert_eq!(subjects.iter().filter(|s| *s == subject).count(), 1, "{subject} once: {subjects:?} {:?}", smtp.messages().iter().map(|m| String::from_utf8_lossy(m).into_owned()).collect::<Vec<_>>());
    }
    let texts = provider.bodies_to(phone);
    assert_eq!(texts.iter().filter(|t| t.contains("0a0a0a0a is confirmed, total €1,299.00")).count(), 1, "{texts:?}");
    assert_eq!(texts.iter().filter(|t| t.contains("0a0a0a0a has shipped with DHL")).count(), 1, "{texts:?}");
    let list = ada.get("/api/notifications/sms?size=100").await.body;
    assert_eq!(list["total"], 5, "welcome, and two of each order's texts: {list}");

    // Eve opted out: her order's text is recorded as skipped, not sent. user.updated
    // travels on its own topic, so give the directory a moment to hear of it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let eves_order = "0c0c0c0c-0000-4000-8000-000000000003";
    kafka.produce_keyed("order.confirmed", &[(eves_order, &order_event("order.confirmed", eves_order, &eve_id))]);
    let skipped = record(&eve, "sms", "order_confirmed", eves_order, status_is("SKIPPED")).await;
    assert_eq!(skipped["reason"], "opted out", "{skipped}");
    record(&eve, "email", "order_confirmed", eves_order, status_is("SENT")).await;
    assert_eq!(provider.bodies_to("+43 660 2222222").len(), 1, "only eve's welcome");

    // The rest of an order's life, by e-mail.
    for topic in ["order.delivered", "order.cancelled", "payment.refunded"] {
        kafka.produce_keyed(topic, &[(eves_order, &order_event(topic, eves_order, &eve_id))]);
    }
    let delivered = record(&eve, "email", "order_delivered", eves_order, status_is("SENT")).await;
    assert_eq!(delivered["subject"], "Order 0c0c0c0c delivered");
    let cancelled = record(&eve, "email", "order_cancelled", eves_order, status_is("SENT")).await;
    assert!(cancelled["body"].as_str().unwrap_or_default().contains("Reason: payment declined"), "{cancelled}");
    let refunded = record(&eve, "email", "payment_refunded", eves_order, status_is("SENT")).await;
    assert!(refunded["body"].as_str().unwrap_or_default().contains("refunded €50.00"), "{refunded}");
    let delivered_text = record(&eve, "sms", "order_delivered", eves_order, status_is("SKIPPED")).await;
    assert_eq!(delivered_text["reason"], "opted out");

    // A promotion goes through the outbox on Kafka and PostgreSQL too; eve asked for them.
    let patched = eve.patch("/api/users/me", json!({"marketing_opt_in": true})).await;
    assert_eq!(patched.status, 200, "{patched:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let admin = client.admin().await;
    let published = admin.post("/api/promotions", json!({"subject": "Winter sale", "body": "Warm deals."})).await;
    assert_eq!(published.status, 202, "{published:?}");
    let promotion_id = published.body["promotion_id"].as_str().expect("an id");
    record(&eve, "email", "promotion", promotion_id, status_is("SENT")).await;
    assert!(!ada.get("/api/notifications/email?size=100").await.body.to_string().contains("Winter sale"));
}

#[tokio::test]
async fn admins_publish_promotions_to_the_users_who_asked_for_them() {
    let smtp = SmtpServer::start();
    let provider = SmsProvider::start();
    let store = notifying_store(Backends::Embedded, &smtp, &provider);
    let host = store.start();
    let client = Client::new(&host);
    let (ann, ann_id) = register(&client, "ann", json!({"marketing_opt_in": true})).await;
    let (ben, ben_id) = register(&client, "ben", json!({})).await;
    for (user, id) in [(&ann, &ann_id), (&ben, &ben_id)] {
        record(user, "email", "welcome", id, status_is("SENT")).await;
    }
    let admin = client.admin().await;
    let promotion = json!({"subject": "Spring sale", "body": "Everything half price.\n\nThis week only."});

    assert_eq!(client.post("/api/promotions", promotion.clone()).await.status, 401);
    let forbidden = ann.post("/api/promotions", promotion.clone()).await;
    assert_eq!(forbidden.status, 403, "{forbidden:?}");
    let invalid = admin.post("/api/promotions", json!({"subject": "  ", "body": ""})).await;
    assert_eq!(invalid.status, 400, "{invalid:?}");
    let fields: Vec<&str> = invalid.body["errors"].as_array().into_iter().flatten().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, ["subject", "body"], "{invalid:?}");
    assert_eq!(admin.post("/api/promotions", json!({"subject": 7})).await.status, 400);
    assert_eq!(admin.get("/api/promotions").await.status, 405);

    let published = admin.post("/api/promotions", promotion).await;
    assert_eq!(published.status, 202, "{published:?}");
    assert_eq!(published.body["subject"], "Spring sale");
    let promotion_id = published.body["promotion_id"].as_str().expect("an id").to_owned();

    let mail = record(&ann, "email", "promotion", &promotion_id, status_is("SENT")).await;
    assert_eq!(mail["subject"], "Spring sale");
    let to_ann = mails_to(&smtp, "ann@example.com");
    assert!(to_ann.iter().any(|m| m.contains("Subject: Spring sale")), "{to_ann:?}");
    // Ben did not ask: no e-mail, and no record.
    let bens = ben.get("/api/notifications/email").await.body;
    assert_eq!(bens["total"], 1, "only his welcome: {bens}");
    assert!(!mails_to(&smtp, "ben@example.com").iter().any(|m| m.contains("Spring sale")));
    let all = admin.get("/api/notifications/email?size=100").await.body;
    let promotions = all["items"].as_array().into_iter().flatten().filter(|item| item["template"] == "promotion").count();
    assert_eq!(promotions, 1, "{all}");
}
