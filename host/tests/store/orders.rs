//! The order saga end to end, as shoppers and the carrier drive it over HTTP:
//! checkout, reservation, payment, shipping and delivery, the live status stream,
//! and every way an order is called off, each with what it gives back. On the
//! embedded defaults and on a real Kafka broker with a real PostgreSQL.

use std::time::Duration;

use serde_json::{Value as Json, json};

use crate::notifications::{SmsProvider, mails_to, notifying_store, record, status_is};
use crate::smtp::SmtpServer;
use crate::support::{
    Answer, Backends, CarrierReport, Client, EventStream, Store, carrier_report, get_until, register,
};

/// The default payment provider's test cards (domain.md).
pub(crate) const APPROVED_CARD: &str = "4242 4242 4242 4242";
const DECLINED_CARD: &str = "4000000000000002";
/// How long a saga step may take on a loaded test machine (as `get_until`).
pub(crate) const SAGA_STEP: Duration = Duration::from_secs(60);

pub(crate) fn address() -> Json {
    json!({"name": "Ada Lovelace", "line1": "12 St James's Square", "city": "London",
           "postal_code": "SW1Y 4JH", "country": "GB"})
}

/// Registers `name` and logs them in.
pub(crate) async fn shopper(client: &Client, name: &str) -> Client {
    register(client, name, json!({})).await.0
}

pub(crate) async fn fill_cart(shopper: &Client, items: &[(i64, i64)]) {
    for (product_id, quantity) in items {
        let added = shopper.post("/api/cart/items", json!({"product_id": product_id, "quantity": quantity})).await;
        assert_eq!(added.status, 201, "add {quantity} of product {product_id}: {added:?}");
    }
}

pub(crate) async fn checkout(shopper: &Client, card: &str) -> Answer {
    shopper.post("/api/orders", json!({"shipping_address": address(), "payment": {"card_number": card}})).await
}

/// `(available, reserved)` of a product.
async fn stock(client: &Client, product_id: i64) -> (i64, i64) {
    let answer = client.get(&format!("/api/inventory/{product_id}")).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    (answer.body["available"].as_i64().unwrap_or(-1), answer.body["reserved"].as_i64().unwrap_or(-1))
}

pub(crate) async fn order_reaches(shopper: &Client, order_id: &str, status: &str) -> Json {
    let path = format!("/api/orders/{order_id}");
    get_until(shopper, &path, |answer| answer.body["status"] == status).await.body
}

pub(crate) async fn stock_is(client: &Client, product_id: i64, expected: (i64, i64)) {
    let path = format!("/api/inventory/{product_id}");
    get_until(client, &path, |answer| {
        (answer.body["available"].as_i64(), answer.body["reserved"].as_i64()) == (Some(expected.0), Some(expected.1))
    })
    .await;
}

/// The statuses the stream sends until (and including) `last`, checking that each
/// event's id is its place in the history.
pub(crate) async fn statuses_until(stream: &mut EventStream, last: &str) -> Vec<String> {
    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some(last) {
        let event = stream.next(SAGA_STEP).await.unwrap_or_else(|| panic!("the stream ended before {last}: {seen:?}"));
        assert_eq!(event.event.as_deref(), Some("status"), "{event:?}");
        seen.push(event.data["status"].as_str().unwrap_or_default().to_owned());
        let position = event.id.as_deref().and_then(|id| id.parse::<usize>().ok());
        assert!(position.is_some(), "every event has its history position as id: {event:?}");
    }
    seen
}

/// The carrier's webhook, `POST /api/shipments/{order_id}/events`, signed by
/// `carrier` (the orders here ship to GB: DPD).
async fn carrier_reports(base: &str, carrier: &str, order_id: &str, status: &str) -> u16 {
    carrier_report(base, order_id, &json!({"status": status}), &CarrierReport::by(carrier)).await.status
}

/// The flow section 7 of the store's issue walks through, with its e-mails going to
/// a real SMTP server and its texts to a stand-in of the SMS provider's API.
async fn whole_flow(backends: Backends) {
    let smtp = SmtpServer::start();
    let sms_provider = SmsProvider::start();
    let store = notifying_store(backends, &smtp, &sms_provider);
    let host = store.start();
    let client = Client::new(&host);
    let admin = client.admin().await;
    // The SMTP server serves the whole run: a name of this test's own.
    let name = format!("ada_{backends:?}").to_lowercase();
    let email = format!("{name}@example.com");
    let phone = "+43 664 1234567";
    let (ada, ada_id) = register(&client, &name, json!({"phone": phone})).await;
    record(&ada, "email", "welcome", &ada_id, status_is("SENT")).await;
    record(&ada, "sms", "welcome", &ada_id, status_is("SENT")).await;
    assert!(mails_to(&smtp, &email).iter().any(|mail| mail.contains("Subject: Welcome")), "{:?}", mails_to(&smtp, &email));
    assert_eq!(sms_provider.bodies_to(phone).len(), 1, "the welcome text");

    // The admin stocks a new product; the shopper finds it.
    let category = admin.post("/api/categories", json!({"name": "E-readers"})).await;
    assert_eq!(category.status, 201, "{category:?}");
    let product = admin
        .post(
            "/api/products",
            json!({"sku": "KPW-12", "name": "Kindle Paperwhite", "description": "7-inch glare-free display",
                   "brand": "Amazon", "category_id": category.body["id"], "price": {"amount": 14999, "currency": "EUR"}}),
        )
        .await;
    assert_eq!(product.status, 201, "{product:?}");
    let kindle = product.body["id"].as_i64().unwrap_or_default();
    assert_eq!(admin.put(&format!("/api/inventory/{kindle}"), json!({"available": 10})).await.status, 200);
    let found = get_until(&client, "/api/products?q=paperwhite&in_stock=true", |answer| answer.body["total"] == 1).await;
    assert_eq!(found.body["items"][0]["id"], kindle);

    // Two of it and a demo product (7: 40 in stock), then checkout.
    let headphones_before = stock(&client, 7).await;
    fill_cart(&ada, &[(kindle, 1), (7, 1), (kindle, 1)]).await;
    let placed = checkout(&ada, APPROVED_CARD).await;
    assert_eq!(placed.status, 202, "{placed:?}");
    let order = &placed.body;
    let order_id = order["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(placed.headers["location"], format!("/api/orders/{order_id}"));
    assert_eq!(order["status"], "PENDING");
    assert_eq!(order["history"][0]["status"], "PENDING");
    assert_eq!(order["payment"], json!({"brand": "visa", "last4": "4242", "status": "PENDING"}));
    let headphones_price = client.get("/api/products/7").await.body["price"]["amount"].as_i64().unwrap_or_default();
    assert_eq!(order["total"], json!({"amount": 2 * 14999 + headphones_price, "currency": "EUR"}));
    let kindle_line = order["items"].as_array().into_iter().flatten().find(|item| item["product_id"] == kindle);
    assert_eq!(kindle_line, Some(&json!({"product_id": kindle, "name": "Kindle Paperwhite", "quantity": 2,
        "unit_price": {"amount": 14999, "currency": "EUR"}, "line_total": {"amount": 29998, "currency": "EUR"}})), "{order}");
    assert!(!order.to_string().contains("4242424242424242"), "the card number stays with payments: {order}");
    assert_eq!(ada.get("/api/cart").await.body["items"], json!([]), "checkout empties the cart");

    // The stream from the first status on (`Last-Event-ID: 0`) shows every step.
    let path = format!("/api/orders/{order_id}/events");
    let (opened, stream) = ada.events(&path, Some("0")).await;
    assert_eq!(opened.headers["content-type"], "text/event-stream", "{opened:?}");
    let mut stream = stream.unwrap_or_else(|| panic!("no stream: {opened:?}"));
    assert_eq!(statuses_until(&mut stream, "SHIPPED").await, ["PENDING", "RESERVED", "CONFIRMED", "SHIPPED"]);

    // The money and the parcel.
    let shipped = order_reaches(&ada, &order_id, "SHIPPED").await;
    let payment = ada.get(&format!("/api/payments/{order_id}")).await;
    assert_eq!((payment.status, &payment.body["status"]), (200, &json!("COMPLETED")), "{payment:?}");
    assert_eq!(payment.body["amount"], order["total"]);
    assert_eq!(shipped["payment"]["status"], "PAID");
    let shipment = ada.get(&format!("/api/shipments/{order_id}")).await;
    assert_eq!(shipment.status, 200, "{shipment:?}");
    assert_eq!(shipped["shipment"]["tracking_number"], shipment.body["tracking_number"]);
    assert_eq!(shipped["shipment"]["carrier"], shipment.body["carrier"]);

    // Stock went down by exactly what was ordered, and nothing stays held.
    stock_is(&client, kindle, (8, 0)).await;
    stock_is(&client, 7, (headphones_before.0 - 1, 0)).await;

    // A stream opened now starts with the current status; the carrier delivers.
    let (_, current) = ada.events(&path, None).await;
    let mut current = current.unwrap_or_else(|| panic!("no stream for {order_id}"));
    assert_eq!(statuses_until(&mut current, "SHIPPED").await, ["SHIPPED"]);
    assert_eq!(carrier_reports(&host.url, "FedEx", &order_id, "DELIVERED").await, 401);
    assert_eq!(carrier_reports(&host.url, "DPD", &order_id, "OUT_FOR_DELIVERY").await, 200);
    assert_eq!(carrier_reports(&host.url, "DPD", &order_id, "DELIVERED").await, 200);
    assert_eq!(statuses_until(&mut current, "DELIVERED").await, ["DELIVERED"]);
    assert!(current.next(SAGA_STEP).await.is_none(), "the stream ends with the order");

    let delivered = order_reaches(&ada, &order_id, "DELIVERED").await;
    let history: Vec<_> = delivered["history"].as_array().into_iter().flatten().map(|h| h["status"].clone()).collect();
    assert_eq!(history, ["PENDING", "RESERVED", "CONFIRMED", "SHIPPED", "DELIVERED"]);
    assert_eq!(
        ada.post(&format!("/api/orders/{order_id}/cancel"), json!({})).await.status,
        409,
        "a delivered order cannot be cancelled"
    );
    // Confirmation, shipping (with the tracking number) and delivery, by e-mail and text.
    for template in ["order_confirmed", "order_shipped", "order_delivered"] {
        record(&ada, "email", template, &order_id, status_is("SENT")).await;
        record(&ada, "sms", template, &order_id, status_is("SENT")).await;
    }
    let mails = mails_to(&smtp, &email);
    assert_eq!(mails.len(), 4, "welcome, confirmed, shipped, delivered: {mails:#?}");
    let tracking_number = shipment.body["tracking_number"].as_str().unwrap_or("none");
    assert!(mails.iter().any(|mail| mail.contains(tracking_number)), "{mails:#?}");
    assert_eq!(sms_provider.bodies_to(phone).len(), 4);

    let mine = ada.get("/api/orders").await.body;
    assert_eq!((mine["total"].clone(), mine["items"][0]["id"].clone()), (json!(1), json!(order_id)));
}

#[tokio::test]
async fn an_order_goes_from_checkout_to_delivery_on_the_embedded_defaults() {
    whole_flow(Backends::Embedded).await;
}

#[tokio::test]
async fn an_order_goes_from_checkout_to_delivery_on_kafka_and_postgres() {
    whole_flow(Backends::KafkaPostgres).await;
}

/// One item short: the order is cancelled and no stock is touched. A declined
/// card: cancelled, and the reservation given back.
async fn orders_that_fail(backends: Backends) {
    let store = Store::new(backends);
    let host = store.start();
    let client = Client::new(&host);
    let ada = shopper(&client, "ada").await;

    // Demo stock: product 1 has 25, product 3 has 7.
    fill_cart(&ada, &[(1, 1), (3, 8)]).await;
    let short = checkout(&ada, APPROVED_CARD).await;
    assert_eq!(short.status, 202, "{short:?}");
    let short_id = short.body["id"].as_str().unwrap_or_default();
    let cancelled = order_reaches(&ada, short_id, "CANCELLED").await;
    let reason = cancelled["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("not enough stock") && reason.contains("8 wanted, 7 available"), "{cancelled}");
    assert_eq!(stock(&client, 1).await, (25, 0));
    assert_eq!(stock(&client, 3).await, (7, 0));
    assert_eq!(ada.get(&format!("/api/payments/{short_id}")).await.status, 404, "nothing was charged");

    // Product 5 has 18.
    fill_cart(&ada, &[(5, 2)]).await;
    let declined = checkout(&ada, DECLINED_CARD).await;
    assert_eq!(declined.status, 202, "{declined:?}");
    let declined_id = declined.body["id"].as_str().unwrap_or_default();
    let cancelled = order_reaches(&ada, declined_id, "CANCELLED").await;
    assert!(cancelled["reason"].as_str().unwrap_or_default().contains("declined"), "{cancelled}");
    let history: Vec<_> = cancelled["history"].as_array().into_iter().flatten().map(|h| h["status"].clone()).collect();
    // RESERVED is usually there, unless payments' answer overtook inventory's.
    assert_eq!((history.first(), history.last()), (Some(&json!("PENDING")), Some(&json!("CANCELLED"))));
    assert_eq!(cancelled["payment"]["status"], "DECLINED");
    stock_is(&client, 5, (18, 0)).await;
    let payment = ada.get(&format!("/api/payments/{declined_id}")).await;
    assert_eq!(payment.body["status"], "FAILED", "{payment:?}");
}

#[tokio::test]
async fn short_stock_and_declined_cards_cancel_orders_on_the_embedded_defaults() {
    orders_that_fail(Backends::Embedded).await;
}

#[tokio::test]
async fn short_stock_and_declined_cards_cancel_orders_on_kafka_and_postgres() {
    orders_that_fail(Backends::KafkaPostgres).await;
}

/// With parcels held until the carrier picks them up, a paid order can still be
/// cancelled: refunded, its stock back, its parcel stays home. The next order ships
/// when the carrier reports the pickup.
async fn cancelled_after_payment(backends: Backends) {
    let store = Store::new(backends).variable("shipping_dispatch", "on_pickup");
    let host = store.start();
    let client = Client::new(&host);
    let ada = shopper(&client, "ada").await;

    // Demo product 6 has 30.
    fill_cart(&ada, &[(6, 3)]).await;
    let placed = checkout(&ada, APPROVED_CARD).await;
    assert_eq!(placed.status, 202, "{placed:?}");
    let id = placed.body["id"].as_str().unwrap_or_default();
    order_reaches(&ada, id, "CONFIRMED").await;
    stock_is(&client, 6, (27, 3)).await;
    let waiting = get_until(&ada, &format!("/api/shipments/{id}"), |a| a.status == 200).await;
    assert_eq!(waiting.body["status"], "AWAITING_PICKUP", "{waiting:?}");

    let cancelled = ada.post(&format!("/api/orders/{id}/cancel"), json!({})).await;
    assert_eq!(cancelled.status, 200, "{cancelled:?}");
    assert_eq!((&cancelled.body["status"], &cancelled.body["reason"]), (&json!("CANCELLED"), &json!("cancelled by the customer")));
    assert_eq!(ada.post(&format!("/api/orders/{id}/cancel"), json!({})).await.status, 409, "cancelled already");
    let refund = get_until(&ada, &format!("/api/payments/{id}"), |a| a.body["status"] == "REFUNDED").await;
    assert_eq!(refund.body["amount"], placed.body["total"]);
    let order = get_until(&ada, &format!("/api/orders/{id}"), |a| a.body["payment"]["status"] == "REFUNDED").await;
    let history: Vec<_> = order.body["history"].as_array().into_iter().flatten().map(|h| h["status"].clone()).collect();
    assert_eq!(history, ["PENDING", "RESERVED", "CONFIRMED", "CANCELLED"]);
    stock_is(&client, 6, (30, 0)).await;
    get_until(&ada, &format!("/api/shipments/{id}"), |a| a.body["status"] == "CANCELLED").await;
    assert_eq!(carrier_reports(&host.url, "DPD", id, "PICKED_UP").await, 409, "nothing to pick up");

    // The next order leaves when the carrier picks it up.
    fill_cart(&ada, &[(6, 1)]).await;
    let placed = checkout(&ada, APPROVED_CARD).await;
    let id = placed.body["id"].as_str().unwrap_or_default();
    order_reaches(&ada, id, "CONFIRMED").await;
    get_until(&ada, &format!("/api/shipments/{id}"), |a| a.body["status"] == "AWAITING_PICKUP").await;
    assert_eq!(carrier_reports(&host.url, "DPD", id, "PICKED_UP").await, 200);
    let shipped = order_reaches(&ada, id, "SHIPPED").await;
    assert!(shipped["shipment"]["tracking_number"].is_string(), "{shipped}");
    stock_is(&client, 6, (29, 0)).await;
}

#[tokio::test]
async fn a_paid_order_cancelled_before_pickup_is_refunded_on_the_embedded_defaults() {
    cancelled_after_payment(Backends::Embedded).await;
}

#[tokio::test]
async fn a_paid_order_cancelled_before_pickup_is_refunded_on_kafka_and_postgres() {
    cancelled_after_payment(Backends::KafkaPostgres).await;
}

/// What checkout and the order paths answer to a bad request, a stranger, and a
/// customer looking at someone else's order.
#[tokio::test]
async fn checkout_refuses_bad_requests_and_orders_stay_private() {
    let store = Store::new(Backends::Embedded);
    let host = store.start();
    let client = Client::new(&host);
    let ada = shopper(&client, "ada").await;
    let bob = shopper(&client, "bob").await;

    assert_eq!(client.post("/api/orders", json!({})).await.status, 401);
    assert_eq!(client.get("/api/orders").await.status, 401);

    let empty = checkout(&ada, APPROVED_CARD).await;
    assert_eq!(empty.status, 422, "checkout of an empty cart: {empty:?}");

    let invalid = ada
        .post("/api/orders", json!({"shipping_address": {"name": "", "line1": "1 Main St", "city": "Graz",
                                    "postal_code": "8010"}, "payment": {"card_number": "4242"}}))
        .await;
    assert_eq!(invalid.status, 400, "{invalid:?}");
    assert_eq!(invalid.body["errors"][0]["field"], "shipping_address.country", "{invalid:?}");
    let blank = ada
        .post("/api/orders", json!({"shipping_address": {"name": " ", "line1": "1 Main St", "city": "Graz",
                                    "postal_code": "8010", "country": "AT"}, "payment": {"card_number": ""}}))
        .await;
    let fields: Vec<_> = blank.body["errors"].as_array().into_iter().flatten().map(|e| e["field"].clone()).collect();
    assert_eq!((blank.status, fields), (400, vec![json!("shipping_address.name"), json!("payment.card_number")]));

    fill_cart(&ada, &[(2, 1)]).await;
    let not_a_card = checkout(&ada, "4242 4242 4242 4241").await;
    assert_eq!(not_a_card.status, 400, "fails Luhn: {not_a_card:?}");
    assert_eq!(not_a_card.body["errors"][0]["field"], "payment.card_number");
    assert_eq!(ada.get("/api/cart").await.body["items"].as_array().map(Vec::len), Some(1), "the cart stays");

    let placed = checkout(&ada, APPROVED_CARD).await;
    assert_eq!(placed.status, 202, "{placed:?}");
    let id = placed.body["id"].as_str().unwrap_or_default();
    for path in [format!("/api/orders/{id}"), format!("/api/payments/{id}"), format!("/api/orders/does-not-exist")] {
        let answer = bob.get(&path).await;
        assert_eq!(answer.status, 404, "{path}: {answer:?}");
    }
    assert_eq!(bob.post(&format!("/api/orders/{id}/cancel"), json!({})).await.status, 404);
    assert_eq!(bob.events(&format!("/api/orders/{id}/events"), None).await.0.status, 404);
    assert_eq!(client.events(&format!("/api/orders/{id}/events"), None).await.0.status, 401);
    assert_eq!(bob.get("/api/orders").await.body["total"], 0);
    assert_eq!(client.admin().await.get("/api/orders").await.body["total"], 1, "an admin sees every order");

    // Browsers' EventSource sends no headers: the token may come in the query.
    let token = ada.token().unwrap_or_default();
    let (opened, stream) = client.events(&format!("/api/orders/{id}/events?access_token={token}"), None).await;
    assert_eq!(opened.status, 200, "{opened:?}");
    let first = stream.expect("a stream").next(SAGA_STEP).await.expect("the current status");
    assert_eq!(first.data["order_id"], id);
    assert_eq!(ada.get("/api/orders?status=bogus").await.status, 400);
}

/// Guard: an instance whose client went away is stopped (`UntilClientLeaves` in the
/// HTTP trigger). A shopper follows an order that waits for its carrier, then closes
/// the page: the stream's instance is gone within seconds. Without the guard it held
/// its instance, and its share of the orders component's slots, until its next
/// keep-alive 15 s later; at a few dozen checkouts a second the departed streams
/// filled the slots and checkouts got 503.
#[tokio::test]
async fn a_status_stream_whose_shopper_left_holds_no_instance() {
    let store = Store::new(Backends::Embedded);
    let host = store.start();
    let client = Client::new(&host);
    let ada = shopper(&client, "ada").await;
    fill_cart(&ada, &[(10, 1)]).await;
    let placed = checkout(&ada, APPROVED_CARD).await;
    assert_eq!(placed.status, 202, "{placed:?}");
    let path = format!("/api/orders/{}/events", placed.body["id"].as_str().unwrap_or_default());
    let (_, stream) = ada.events(&path, Some("0")).await;
    let mut stream = stream.expect("a stream");
    // Shipped, it waits for the carrier: the stream has nothing to write for a while.
    statuses_until(&mut stream, "SHIPPED").await;
    let running = async || {
        let (status, metrics) = crate::harness::admin_get(&store.state_dir(), "/metrics").await;
        assert_eq!(status, 200, "{metrics}");
        crate::harness::metric(&metrics, "estore_instances_running", &[("component", "orders")]).unwrap_or(0.0)
    };
    assert_eq!(running().await, 1.0, "the stream's instance");
    drop(stream);
    let left = std::time::Instant::now();
    while running().await > 0.0 {
        assert!(left.elapsed() < Duration::from_secs(5), "the stream's instance outlived its shopper by {:?}", left.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
