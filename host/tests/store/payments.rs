//! payments over HTTP and Kafka: charges on inventory.reserved, refunds on
//! order.cancelled, each once per order, and an order's payment for its customer.
//!
//! Most tests publish inventory and order events straight to Kafka, and put the cards
//! in payments' vault with SQL, as orders' chained call would; the one with a provider
//! that loses its answer checks out as a shopper does. A stand-in plays the payment
//! provider ([`StandInProvider`]). The vault's rules (Luhn, brand) are unit-tested in
//! components/payments.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use estore_shared::auth::Role;
use serde_json::{Value as Json, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{
    Backends, Client, Store, get_until, issued_token, produce_event, published, token_for, unique_id as order_id,
};

const APPROVED: &str = "4242424242424242";
const DECLINED: &str = "4000000000000002";

/// Puts cards in the vault, saved `age_secs` ago, in clear text as versions before
/// the sealed vault did (payments seals them when it first uses the vault).
fn save_cards_aged(store: &Store, cards: &[(&str, &str)], age_secs: i64) {
    let saved_at = estore_shared::clock::now_unix() - age_secs;
    for (token, number) in cards {
        let last4 = &number[number.len() - 4..];
        store.psql_in_component(
            "payments",
            &format!(
                "INSERT INTO payment_methods (token, card_number, brand, last4, created_at) \
                 VALUES ('{token}', '{number}', 'visa', '{last4}', {saved_at})"
            ),
        );
    }
}

/// Puts cards in the vault, as orders' checkout would.
fn save_cards(store: &Store, cards: &[(&str, &str)]) {
    save_cards_aged(store, cards, 0);
}

/// Publishes inventory.reserved as inventory does (the order's payment method
/// carried over from order.placed); answers the envelope.
fn reserved(order_id: &str, user_id: &str, token: &str, amount: i64) -> Json {
    let data = json!({
        "order_id": order_id, "user_id": user_id,
        "items": [{"product_id": 1, "name": "x", "quantity": 1, "unit_price": {"amount": amount, "currency": "EUR"}}],
        "total": {"amount": amount, "currency": "EUR"},
        "payment_method": {"token": token, "brand": "visa", "last4": "4242"},
    });
    produce_event("inventory.reserved", order_id, data)
}

/// Publishes order.cancelled as orders does.
fn cancelled(order_id: &str, user_id: &str) -> Json {
    let data = json!({"order_id": order_id, "user_id": user_id, "reason": "customer", "items": [],
                      "was_reserved": true, "was_paid": true});
    produce_event("order.cancelled", order_id, data)
}

/// Waits until the order's payment answers with `status`; answers it.
async fn payment_with_status(client: &Client, order_id: &str, status: &str) -> Json {
    let path = format!("/api/payments/{order_id}");
    get_until(client, &path, |answer| answer.status == 200 && answer.body["status"] == status).await.body
}

#[tokio::test]
async fn the_vault_is_not_public_and_payments_need_a_token() {
    let store = Store::new(Backends::Embedded);
    let host = store.start();
    let client = Client::new(&host);

    // Only chaining reaches the vault: no public route leads to it.
    let vault = client.post("/internal/payment-methods", json!({"card_number": APPROVED})).await;
    assert_eq!(vault.status, 404, "{vault:?}");
    assert_eq!(client.get("/api/payments/order-1").await.status, 401);
    let customer = client.with_token(&issued_token(Role::Customer));
    let missing = customer.get("/api/payments/order-1").await;
    assert_eq!(
        (missing.status, missing.headers["content-type"].to_str().ok()),
        (404, Some("application/problem+json"))
    );
}

#[tokio::test]
async fn reserved_orders_are_charged_once_and_refunded_once_on_kafka_and_postgres() {
    let store = Store::new(Backends::KafkaPostgres);
    let host = store.start();
    let client = Client::new(&host);
    let ada = client.with_token(&token_for("u-ada", Role::Customer));
    save_cards(&store, &[("pm_ok", APPROVED), ("pm_declined", DECLINED)]);

    // Cancelled before inventory.reserved arrives: given time to be handled first
    // (it is on another topic), then never charged.
    let early = order_id("early");
    cancelled(&early, "u-ada");
    let paid = order_id("paid");
    let reserve = reserved(&paid, "u-ada", "pm_ok", 1999);
    let declined = order_id("declined");
    reserved(&declined, "u-ada", "pm_declined", 1999);
    let too_much = order_id("too-much");
    reserved(&too_much, "u-ada", "pm_ok", 10_000_001);
    let unknown = order_id("unknown");
    reserved(&unknown, "u-ada", "pm_nobody_saved", 1999);

    // Approved: COMPLETED, and payment.completed in the order's saga.
    let payment = payment_with_status(&ada, &paid, "COMPLETED").await;
    assert_eq!(payment["user_id"], "u-ada");
    assert_eq!(payment["amount"], json!({"amount": 1999, "currency": "EUR"}));
    assert_eq!(payment["payment_method"], json!({"brand": "visa", "last4": "4242"}));
    assert!(payment.get("reason").is_none() && payment.get("refunded_at").is_none(), "{payment}");
    let completed = published("payment.completed", &paid, 1).await;
    assert_eq!(completed.len(), 1, "{completed:?}");
    assert_eq!(
        completed[0]["data"],
        json!({"order_id": paid, "user_id": "u-ada", "payment_id": payment["id"], "amount": payment["amount"]})
    );
    assert_eq!(completed[0]["correlation_id"], paid.as_str());
    assert_eq!(completed[0]["causation_id"], reserve["id"]);

    // Declined, over the limit, or an unknown card: FAILED with the reason.
    for (order, reason) in
        [(&declined, "card declined"), (&too_much, "amount exceeds the limit"), (&unknown, "unknown payment method")]
    {
        let payment = payment_with_status(&ada, order, "FAILED").await;
        assert_eq!(payment["reason"], reason, "{payment}");
        let failed = published("payment.failed", order, 1).await;
        assert_eq!(failed.len(), 1, "{order}: {failed:?}");
        assert_eq!(failed[0]["data"], json!({"order_id": order, "user_id": "u-ada", "reason": reason}));
    }

    reserved(&early, "u-ada", "pm_ok", 1999);
    // A repeated inventory.reserved (a new message id) charges nothing twice; a
    // cancellation refunds, once however often it comes.
    reserved(&paid, "u-ada", "pm_ok", 1999);
    cancelled(&paid, "u-ada");
    let refunded = payment_with_status(&ada, &paid, "REFUNDED").await;
    assert_eq!(refunded["id"], payment["id"]);
    assert!(refunded["refunded_at"].is_string(), "{refunded}");
    cancelled(&paid, "u-ada");
    reserved(&paid, "u-ada", "pm_ok", 1999);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let refunds = published("payment.refunded", &paid, 1).await;
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["data"], completed[0]["data"]);
    assert_eq!(published("payment.completed", &paid, 1).await.len(), 1);
    assert_eq!(ada.get(&format!("/api/payments/{paid}")).await.body["status"], "REFUNDED");

    // The order cancelled first was never charged.
    assert_eq!(ada.get(&format!("/api/payments/{early}")).await.status, 404);
    assert!(published("payment.completed", &early, 0).await.is_empty());
    assert!(published("payment.failed", &early, 0).await.is_empty());

    // Someone else's payment is missing; an administrator sees every one.
    let bob = client.with_token(&token_for("u-bob", Role::Customer));
    assert_eq!(bob.get(&format!("/api/payments/{paid}")).await.status, 404);
    let admin = client.with_token(&issued_token(Role::Admin));
    assert_eq!(admin.get(&format!("/api/payments/{paid}")).await.body["id"], payment["id"]);

    // No event carries a card number.
    for topic in ["payment.completed", "payment.failed", "payment.refunded"] {
        for order in [&paid, &declined, &too_much, &unknown] {
            for event in published(topic, order, 0).await {
                assert!(!event.to_string().contains(APPROVED) && !event.to_string().contains(DECLINED), "{event}");
            }
        }
    }
}

/// One request the stand-in provider was sent.
#[derive(Clone, Debug)]
pub(crate) struct Asked {
    pub path: String,
    pub idempotency_key: Option<String>,
    pub body: Json,
}

/// How the stand-in treats the first charge it is sent.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum FirstCharge {
    /// 503 without charging (an outage): payments must ask again.
    Outage,
    /// Charged, but the connection closes before the answer: payments must ask again,
    /// and only the idempotency key keeps the provider from charging twice.
    AnswerLost,
}

/// What the stand-in was sent, and what it did.
#[derive(Default)]
struct Ledger {
    asked: Vec<Asked>,
    /// The charges made: (idempotency key, answer). A charge sent without a key is
    /// made anew each time, as a real provider does.
    charges: Vec<(Option<String>, Json)>,
    refunds: Vec<(Option<String>, Json)>,
}

/// Stands in for a third-party payment provider, which cannot be reached from here:
/// speaks the contract of components/README.md ("Payment provider") on loopback,
/// honouring `Idempotency-Key` as real providers do (a key it has answered gets the
/// same answer and moves no money). Its first charge fails as `first` says.
pub(crate) struct StandInProvider {
    pub url: String,
    ledger: Arc<Mutex<Ledger>>,
}

impl StandInProvider {
    pub async fn start(first: FirstCharge) -> StandInProvider {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://127.0.0.1:{}", listener.local_addr().expect("address").port());
        let ledger: Arc<Mutex<Ledger>> = Arc::default();
        let shared = ledger.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let ledger = shared.clone();
                tokio::spawn(async move {
                    let Some(asked) = read_request(&mut socket).await else { return };
                    let Some((status, answer)) = ledger.lock().expect("not poisoned").answer(asked, first) else {
                        // The answer is lost: the connection closes without one.
                        return;
                    };
                    let answer = answer.to_string();
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                        answer.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        StandInProvider { url, ledger }
    }

    /// Every request it was sent, in order.
    pub fn asked(&self) -> Vec<Asked> {
        self.ledger.lock().expect("not poisoned").asked.clone()
    }

    /// How many charges and refunds it made (money moved), however often asked.
    pub fn moved(&self) -> (usize, usize) {
        let ledger = self.ledger.lock().expect("not poisoned");
        (ledger.charges.len(), ledger.refunds.len())
    }
}

impl Ledger {
    /// The status line and body to answer `asked` with; `None` to drop the connection.
    fn answer(&mut self, asked: Asked, first: FirstCharge) -> Option<(&'static str, Json)> {
        self.asked.push(asked.clone());
        let first_charge = asked.path == "/charges" && self.asked.iter().filter(|a| a.path == "/charges").count() == 1;
        if first_charge && first == FirstCharge::Outage {
            return Some(("503 Service Unavailable", json!({"error": "try again"})));
        }
        let key = asked.idempotency_key.clone();
        let made = match asked.path.as_str() {
            "/charges" => &mut self.charges,
            "/refunds" => &mut self.refunds,
            _ => return Some(("404 Not Found", json!({}))),
        };
        if let Some((_, answer)) = made.iter().find(|(k, _)| key.is_some() && *k == key) {
            return Some(("200 OK", answer.clone()));
        }
        let answer = match asked.path.as_str() {
            "/refunds" => json!({"id": format!("re_{}", made.len() + 1), "status": "refunded"}),
            _ if asked.body["card_number"] == DECLINED => {
                json!({"id": format!("ch_{}", made.len() + 1), "status": "declined", "reason": "insufficient funds"})
            }
            _ => json!({"id": format!("ch_{}", made.len() + 1), "status": "approved"}),
        };
        made.push((key, answer.clone()));
        (!(first_charge && first == FirstCharge::AnswerLost)).then_some(("200 OK", answer))
    }
}

/// The path, idempotency key and JSON body of one HTTP/1.1 request, sized by
/// content-length or sent in chunks (as the host sends a component's request body).
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Asked> {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    let mut more = async |request: &mut Vec<u8>| -> Option<()> {
        let n = socket.read(&mut buf).await.ok().filter(|n| *n > 0)?;
        request.extend_from_slice(&buf[..n]);
        Some(())
    };
    let head_end = loop {
        if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        more(&mut request).await?;
    };
    let head = String::from_utf8_lossy(&request[..head_end]).into_owned();
    let path = head.split_whitespace().nth(1)?.to_owned();
    let header = |name: &str| {
        head.lines().find_map(|line| {
            line.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_owned())
        })
    };
    let body = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        while !request[head_end..].ends_with(b"0\r\n\r\n") {
            more(&mut request).await?;
        }
        // Each chunk: its size in hex, CRLF, the bytes, CRLF; a size of 0 ends it.
        let (mut body, mut rest) = (Vec::new(), &request[head_end..]);
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).ok()?.trim(), 16).ok()?;
            if size == 0 {
                break body;
            }
            body.extend_from_slice(rest.get(line_end + 2..line_end + 2 + size)?);
            rest = rest.get(line_end + 4 + size..)?;
        }
    } else {
        let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        while request.len() < head_end + length {
            more(&mut request).await?;
        }
        request[head_end..head_end + length].to_vec()
    };
    let idempotency_key = header("idempotency-key");
    Some(Asked { path, idempotency_key, body: serde_json::from_slice(&body).unwrap_or(Json::Null) })
}

#[tokio::test]
async fn a_real_provider_is_reached_over_http_and_retried_when_it_is_down() {
    let provider = StandInProvider::start(FirstCharge::Outage).await;
    let store = Store::new(Backends::KafkaPostgres)
        .variable("payment_provider_url", &provider.url)
        .variable("payment_provider_host", &provider.url);
    let host = store.start();
    let ada = Client::new(&host).with_token(&token_for("u-ada", Role::Customer));
    save_cards(&store, &[("pm_ok", APPROVED), ("pm_declined", DECLINED)]);

    let paid = order_id("http-paid");
    reserved(&paid, "u-ada", "pm_ok", 2500);
    let payment = payment_with_status(&ada, &paid, "COMPLETED").await;
    let charges: Vec<Asked> = provider.asked().into_iter().filter(|asked| asked.path == "/charges").collect();
    assert_eq!(charges.len(), 2, "one outage, then the charge: {charges:?}");
    let key = format!("charge-{paid}");
    assert!(charges.iter().all(|charge| charge.idempotency_key.as_deref() == Some(key.as_str())), "{charges:?}");
    assert_eq!(
        charges[1].body,
        json!({"order_id": paid, "amount": {"amount": 2500, "currency": "EUR"},
               "payment_method_token": "pm_ok", "card_number": APPROVED})
    );

    // The provider's decline and its reason.
    let declined = order_id("http-declined");
    reserved(&declined, "u-ada", "pm_declined", 2500);
    assert_eq!(payment_with_status(&ada, &declined, "FAILED").await["reason"], "insufficient funds");

    // A refund names the provider's charge.
    cancelled(&paid, "u-ada");
    payment_with_status(&ada, &paid, "REFUNDED").await;
    let refunds: Vec<Asked> = provider.asked().into_iter().filter(|asked| asked.path == "/refunds").collect();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(
        refunds[0].body,
        json!({"payment_id": payment["id"], "order_id": paid, "charge_id": "ch_1",
                "amount": {"amount": 2500, "currency": "EUR"}})
    );
    let refund_key = format!("refund-{}", payment["id"].as_str().unwrap_or_default());
    assert_eq!(refunds[0].idempotency_key.as_deref(), Some(refund_key.as_str()));
}

/// A provider that charged but whose answer was lost is asked again with the same
/// idempotency key, and charges once; the refund carries a key of its own.
#[tokio::test]
async fn a_charge_whose_answer_was_lost_is_made_once_on_the_embedded_defaults() {
    let provider = StandInProvider::start(FirstCharge::AnswerLost).await;
    let store = Store::new(Backends::Embedded)
        .variable("payment_provider_url", &provider.url)
        .variable("payment_provider_host", &provider.url)
        .variable("shipping_dispatch", "on_pickup");
    let host = store.start();
    let client = Client::new(&host);
    let (ada, _) = crate::support::register(&client, "ada", json!({})).await;
    crate::orders::fill_cart(&ada, &[(3, 1)]).await;
    let placed = crate::orders::checkout(&ada, APPROVED).await;
    assert_eq!(placed.status, 202, "{placed:?}");
    let order_id = placed.body["id"].as_str().expect("an order id").to_owned();

    let payment = payment_with_status(&ada, &order_id, "COMPLETED").await;
    let charges: Vec<Asked> = provider.asked().into_iter().filter(|asked| asked.path == "/charges").collect();
    assert!(charges.len() >= 2, "the first answer was lost, so payments asked again: {charges:?}");
    assert_eq!(provider.moved(), (1, 0), "charged once: {charges:?}");
    let key = format!("charge-{order_id}");
    assert!(charges.iter().all(|charge| charge.idempotency_key.as_deref() == Some(key.as_str())), "{charges:?}");

    crate::orders::order_reaches(&ada, &order_id, "CONFIRMED").await;
    let cancelled = ada.post(&format!("/api/orders/{order_id}/cancel"), json!({})).await;
    assert_eq!(cancelled.status, 200, "{cancelled:?}");
    payment_with_status(&ada, &order_id, "REFUNDED").await;
    let refunds: Vec<Asked> = provider.asked().into_iter().filter(|asked| asked.path == "/refunds").collect();
    let refund_key = format!("refund-{}", payment["id"].as_str().unwrap_or_default());
    assert!(refunds.iter().all(|refund| refund.idempotency_key.as_deref() == Some(refund_key.as_str())), "{refunds:?}");
    assert_eq!(provider.moved(), (1, 1), "charged once, refunded once");
}

/// The payments database's vault, as (token, stored card number) rows, read from the
/// SQLite file of an embedded store.
async fn vault_rows(store: &Store) -> Vec<(String, String)> {
    let file = store.state_dir().join("sql/payments/default.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&file).read_only(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.expect("open payments' database");
    let rows = sqlx::query_as("SELECT token, card_number FROM payment_methods ORDER BY created_at")
        .fetch_all(&pool)
        .await
        .expect("read the vault");
    pool.close().await;
    rows
}

/// Whether `needle` is anywhere in payments' database files, the write-ahead log
/// included: what someone with a copy of the disk would find.
fn on_disk(store: &Store, needle: &str) -> bool {
    let folder = store.state_dir().join("sql/payments");
    std::fs::read_dir(&folder).expect("payments' database folder").flatten().any(|file| {
        let bytes = std::fs::read(file.path()).unwrap_or_default();
        bytes.windows(needle.len()).any(|window| window == needle.as_bytes())
    })
}

/// A card number checked out with is sealed before it reaches the disk, serves its
/// charge, and is gone once its refund window has passed. Without a provider the
/// log says that the test-card rules approve every valid card.
#[tokio::test]
async fn cards_are_sealed_at_rest_and_deleted_after_their_refund_window() {
    let store = Store::new(Backends::Embedded).variable("refund_window_secs", "4");
    let host = store.start();
    let client = Client::new(&host);
    let (ada, _) = crate::support::register(&client, "ada", json!({})).await;
    crate::orders::fill_cart(&ada, &[(3, 1)]).await;
    let first = crate::orders::checkout(&ada, "4242 4242 4242 4242").await;
    assert_eq!(first.status, 202, "{first:?}");
    let first_id = first.body["id"].as_str().unwrap_or_default().to_owned();
    get_until(&ada, &format!("/api/orders/{first_id}"), |a| a.body["status"] == "SHIPPED").await;
    host.wait_for_log(&["the test-card rules approve every valid card number", "payment_provider_url"]);

    let rows = vault_rows(&store).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].1.starts_with("sealed:v1:") && !rows[0].1.contains("4242"), "{rows:?}");
    assert!(!on_disk(&store, APPROVED), "the card number is in payments' database files");

    // Past the window, the next use of the vault deletes the first card.
    tokio::time::sleep(Duration::from_secs(5)).await;
    crate::orders::fill_cart(&ada, &[(3, 1)]).await;
    let second = crate::orders::checkout(&ada, "5555 5555 5555 4444").await;
    assert_eq!(second.status, 202, "{second:?}");
    let rows = vault_rows(&store).await;
    assert_eq!(rows.len(), 1, "only the second card is kept: {rows:?}");
    assert_ne!(rows[0].0, first.body["payment_method"]["token"].as_str().unwrap_or_default());
    // The first order's payment still shows what it may: brand and last four digits.
    let payment = ada.get(&format!("/api/payments/{first_id}")).await;
    assert_eq!(payment.body["payment_method"], json!({"brand": "visa", "last4": "4242"}), "{payment:?}");
}

/// Card numbers an earlier version saved in clear text are sealed by the first use
/// of the upgraded vault, still charge, and go with their refund window.
#[tokio::test]
async fn clear_cards_from_before_the_upgrade_are_sealed_and_still_charge_on_kafka_and_postgres() {
    let store = Store::new(Backends::KafkaPostgres);
    let host = store.start();
    let client = Client::new(&host);
    let ada = client.with_token(&token_for("u-ada", Role::Customer));
    save_cards(&store, &[("pm_legacy", APPROVED)]);
    save_cards_aged(&store, &[("pm_long_ago", DECLINED)], 40 * 24 * 60 * 60);

    let order = order_id("legacy");
    reserved(&order, "u-ada", "pm_legacy", 1999);
    payment_with_status(&ada, &order, "COMPLETED").await;

    let vault = store.psql_in_component("payments", "SELECT token || ' ' || card_number FROM payment_methods");
    assert!(vault.contains("pm_legacy sealed:v1:"), "{vault}");
    assert!(!vault.contains(APPROVED) && !vault.contains(DECLINED), "a clear number is left: {vault}");
    assert!(!vault.contains("pm_long_ago"), "a card past its refund window is kept: {vault}");
}
