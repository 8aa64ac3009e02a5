//! What the store guarantees its owner when shoppers, the carrier and the store's own
//! services race each other, and when requests come twice; each shown the way the
//! owner would notice it broken, on the embedded defaults and on Kafka + PostgreSQL:
//!
//! - no order is both refunded and shipped: a cancel raced against every step of the
//!   saga, and against the carrier picking the parcel up, either stops the parcel
//!   (200: cancelled, refunded, stock back) or finds it gone (409 saying so: shipped,
//!   charged, stock sold), in both dispatch modes;
//! - one checkout is one order and one charge: the same `Idempotency-Key` twice at
//!   once, against a payment provider that loses its first answer;
//! - no oversell: more shoppers than units, all at once.

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::{Value as Json, json};

use crate::orders::{
    APPROVED_CARD, SAGA_STEP, address, checkout, fill_cart, order_reaches, shopper, statuses_until, stock_is,
};
use crate::payments::{FirstCharge, StandInProvider};
use crate::support::{Answer, Backends, CarrierReport, Client, Store, carrier_report, get_until};

// ---- No order both refunded and shipped ------------------------------------------

/// The product every trial buys (demo product 10), restocked to [`STOCK`] first.
const PRODUCT: i64 = 10;
const STOCK: i64 = 500;
const SHOPPERS: usize = 4;
/// Each shopper's trials run one after the other; the shoppers' side by side.
const TRIALS_PER_SHOPPER: usize = 6;

/// When a trial's cancel goes out.
#[derive(Clone, Copy, Debug)]
enum Moment {
    /// This long after the checkout's answer (drawn at random per trial).
    AfterCheckout(Duration),
    /// As soon as the status stream shows this status.
    OnStatus(&'static str),
    /// Two cancels at once, as soon as the stream shows CONFIRMED.
    TwiceOnConfirmed,
    /// Dispatch on_pickup: at the same moment as the carrier's PICKED_UP, as soon as
    /// the parcel waits for it.
    WithPickup,
}

impl Moment {
    /// The moments of a run: every step of the saga, in `dispatch` mode.
    fn all(dispatch: &str) -> [Moment; 6] {
        let random_delay = || Duration::from_millis((uuid::Uuid::new_v4().as_u128() % 400) as u64);
        let sixth = if dispatch == "on_pickup" { Moment::WithPickup } else { Moment::OnStatus("PENDING") };
        [
            Moment::AfterCheckout(random_delay()),
            Moment::OnStatus("RESERVED"),
            Moment::OnStatus("CONFIRMED"),
            Moment::TwiceOnConfirmed,
            Moment::OnStatus("SHIPPED"),
            sixth,
        ]
    }
}

/// One order and the cancels raced against it.
#[derive(Debug)]
struct Trial {
    moment: Moment,
    order_id: String,
    quantity: i64,
    cancels: Vec<Answer>,
    /// What the carrier's PICKED_UP got (dispatch on_pickup), if it was sent.
    pickup: Option<u16>,
}

impl Trial {
    /// Whether a cancel was accepted.
    fn cancelled(&self) -> bool {
        self.cancels.iter().any(|answer| answer.status == 200)
    }
}

async fn cancel(shopper: &Client, order_id: &str) -> Answer {
    shopper.post(&format!("/api/orders/{order_id}/cancel"), json!({})).await
}

/// The carrier (DPD: the orders ship to GB) reports that it picked up the order's
/// parcel. Many orders get the same report in one second: the signature covers the
/// order id, so none of them is taken for a replay of another's.
async fn picked_up(base: &str, order_id: &str) -> u16 {
    let body = json!({"status": "PICKED_UP"});
    carrier_report(base, order_id, &body, &CarrierReport::by("DPD")).await.status
}

/// The carrier (dispatch on_pickup): picks the parcel up as soon as it waits for it,
/// unless the order is cancelled first. What its PICKED_UP got, if it sent one.
async fn carrier(admin: Client, order_id: String) -> Option<u16> {
    let deadline = Instant::now() + SAGA_STEP;
    loop {
        if admin.get(&format!("/api/shipments/{order_id}")).await.body["status"] == "AWAITING_PICKUP" {
            return Some(picked_up(admin.base(), &order_id).await);
        }
        if admin.get(&format!("/api/orders/{order_id}")).await.body["status"] == "CANCELLED" {
            return None;
        }
        assert!(Instant::now() < deadline, "order {order_id} neither waits for pickup nor is cancelled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks out `quantity` units and cancels at `moment`; answers what happened.
async fn trial(shopper: &Client, admin: &Client, moment: Moment, quantity: i64, on_pickup: bool) -> Trial {
    fill_cart(shopper, &[(PRODUCT, quantity)]).await;
    let placed = checkout(shopper, APPROVED_CARD).await;
    assert_eq!(placed.status, 202, "{placed:?}");
    let order_id = placed.body["id"].as_str().expect("an order id").to_owned();
    let (opened, stream) = shopper.events(&format!("/api/orders/{order_id}/events"), Some("0")).await;
    let mut stream = stream.unwrap_or_else(|| panic!("no status stream: {opened:?}"));
    let carrier = (on_pickup && !matches!(moment, Moment::WithPickup))
        .then(|| tokio::spawn(carrier(admin.clone(), order_id.clone())));
    let (cancels, mut pickup) = match moment {
        Moment::AfterCheckout(delay) => {
            tokio::time::sleep(delay).await;
            (vec![cancel(shopper, &order_id).await], None)
        }
        Moment::OnStatus(status) => {
            statuses_until(&mut stream, status).await;
            (vec![cancel(shopper, &order_id).await], None)
        }
        Moment::TwiceOnConfirmed => {
            statuses_until(&mut stream, "CONFIRMED").await;
            let (one, other) = tokio::join!(cancel(shopper, &order_id), cancel(shopper, &order_id));
            (vec![one, other], None)
        }
        Moment::WithPickup => {
            let path = format!("/api/shipments/{order_id}");
            get_until(admin, &path, |answer| answer.body["status"] == "AWAITING_PICKUP").await;
            let (cancelled, pickup) = tokio::join!(cancel(shopper, &order_id), picked_up(admin.base(), &order_id));
            (vec![cancelled], Some(pickup))
        }
    };
    if let Some(carrier) = carrier {
        pickup = carrier.await.expect("the carrier runs");
    }
    Trial { moment, order_id, quantity, cancels, pickup }
}

/// What a trial must have come to, as the customer, the carrier, payments and
/// shipping see it: cancelled, not shipped, not charged (or refunded); or shipped,
/// charged, and the cancel told why not.
async fn check(shopper: &Client, trial: &Trial) {
    let order_path = format!("/api/orders/{}", trial.order_id);
    let payment_path = format!("/api/payments/{}", trial.order_id);
    let shipment = shopper.get(&format!("/api/shipments/{}", trial.order_id)).await;
    for answer in &trial.cancels {
        assert!(matches!(answer.status, 200 | 409), "{trial:#?}");
    }
    if let Moment::OnStatus("SHIPPED") = trial.moment {
        assert!(!trial.cancelled(), "a shipped order is never cancelled: {trial:#?}");
    }
    if trial.cancelled() {
        // Shipping had decided by the time the cancel was answered: for good.
        assert!(shipment.status == 404 || shipment.body["status"] == "CANCELLED", "shipped: {shipment:?}\n{trial:#?}");
        assert_ne!(trial.pickup, Some(200), "the carrier picked up a cancelled order's parcel: {trial:#?}");
        for answer in &trial.cancels {
            // A twin of the accepted cancel may find the order cancelled already.
            let expected = if answer.status == 200 { "CANCELLED" } else { "is CANCELLED" };
            let text = if answer.status == 200 { &answer.body["status"] } else { &answer.body["detail"] };
            assert!(text.as_str().unwrap_or_default().contains(expected), "{trial:#?}");
        }
        assert_eq!(shopper.get(&order_path).await.body["status"], "CANCELLED", "{trial:#?}");
        // Never charged, or refunded (a charge in flight is refunded once recorded).
        get_until(shopper, &payment_path, |a| a.status == 404 || a.body["status"] == "REFUNDED").await;
    } else {
        let shipped = order_reaches(shopper, &trial.order_id, "SHIPPED").await;
        assert!(shipped["shipment"]["tracking_number"].is_string(), "{shipped}");
        get_until(shopper, &payment_path, |answer| answer.body["status"] == "COMPLETED").await;
    }
}

/// A cancel refused because the parcel left says so.
fn says_why(trial: &Trial) {
    for answer in trial.cancels.iter().filter(|_| !trial.cancelled()) {
        let detail = answer.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("has left"), "a refused cancel says why: {trial:#?}");
    }
}

/// Many orders, each with a cancel raced against one step of the saga; four shoppers
/// at a time. Then the books must balance: every unit is in stock or shipped.
async fn cancel_races(backends: Backends, dispatch: &str) {
    let store = Store::new(backends).variable("shipping_dispatch", dispatch);
    let host = store.start();
    let client = Client::new(&host);
    let admin = client.admin().await;
    let stocked = admin.put(&format!("/api/inventory/{PRODUCT}"), json!({"available": STOCK})).await;
    assert_eq!(stocked.status, 200, "{stocked:?}");
    let names: Vec<String> = (0..SHOPPERS).map(|n| format!("racer{n}_{dispatch}")).collect();
    let shoppers = join_all(names.iter().map(|name| shopper(&client, name))).await;

    let on_pickup = dispatch == "on_pickup";
    let runs = shoppers.iter().enumerate().map(|(n, shopper)| {
        let admin = &admin;
        async move {
            let mut trials = Vec::new();
            for t in 0..TRIALS_PER_SHOPPER {
                let moment = Moment::all(dispatch)[(n + t) % 6];
                let trial = trial(shopper, admin, moment, 1 + (t % 2) as i64, on_pickup).await;
                check(shopper, &trial).await;
                trials.push(trial);
            }
            trials
        }
    });
    let trials: Vec<(usize, Trial)> = join_all(runs)
        .await
        .into_iter()
        .enumerate()
        .flat_map(|(n, trials)| trials.into_iter().map(move |trial| (n, trial)))
        .collect();

    // Once everything has settled, the same again (a parcel shipped late, a refund of
    // a shipped order would show now), and stock is exact.
    for (n, trial) in &trials {
        check(&shoppers[*n], trial).await;
    }
    for (_, trial) in &trials {
        says_why(trial);
    }
    let shipped: i64 = trials.iter().filter(|(_, trial)| !trial.cancelled()).map(|(_, trial)| trial.quantity).sum();
    stock_is(&client, PRODUCT, (STOCK - shipped, 0)).await;
    let cancelled = trials.iter().filter(|(_, trial)| trial.cancelled()).count();
    assert!(cancelled > 0 && cancelled < trials.len(), "both outcomes happen: {trials:#?}");

    if backends == Backends::KafkaPostgres {
        let stopped: Vec<&Trial> = trials.iter().map(|(_, trial)| trial).filter(|trial| trial.cancelled()).collect();
        redelivered_confirmations_ship_nothing(&admin, &stopped).await;
    }
}

/// Kafka may deliver an event again, under a new id: an order.confirmed repeated for
/// an order cancelled once confirmed (its parcel stopped) ships nothing. A sentinel
/// order.confirmed behind each repeat, on the same partition, shows when shipping has
/// handled it.
async fn redelivered_confirmations_ship_nothing(admin: &Client, cancelled: &[&Trial]) {
    let mut stopped = Vec::new();
    for trial in cancelled {
        let order = admin.get(&format!("/api/orders/{}", trial.order_id)).await.body;
        if order["history"].as_array().into_iter().flatten().any(|change| change["status"] == "CONFIRMED") {
            stopped.push((trial, order));
        }
    }
    let mut messages = Vec::new();
    for (trial, order) in &stopped {
        for order_id in [trial.order_id.clone(), format!("sentinel-{}", trial.order_id)] {
            let data = json!({"order_id": order_id, "user_id": order["user_id"], "items": order["items"],
                              "total": order["total"], "shipping_address": order["shipping_address"]});
            let envelope = estore_shared::event::Envelope::new("order.confirmed", trial.order_id.as_str(), data);
            messages.push((trial.order_id.as_str(), serde_json::to_string(&envelope).expect("serialises")));
        }
    }
    let messages: Vec<(&str, &str)> = messages.iter().map(|(key, value)| (*key, value.as_str())).collect();
    crate::kafka::shared().produce_keyed("order.confirmed", &messages);
    for (trial, _) in &stopped {
        get_until(admin, &format!("/api/shipments/sentinel-{}", trial.order_id), |answer| answer.status == 200).await;
        let shipment = admin.get(&format!("/api/shipments/{}", trial.order_id)).await;
        assert!(shipment.status == 404 || shipment.body["status"] == "CANCELLED", "{shipment:?}\n{trial:#?}");
    }
}

#[tokio::test]
async fn a_cancel_racing_the_saga_never_refunds_a_shipped_order_on_the_embedded_defaults() {
    cancel_races(Backends::Embedded, "on_confirmation").await;
}

#[tokio::test]
async fn a_cancel_racing_the_saga_and_the_pickup_never_refunds_a_shipped_order_on_the_embedded_defaults() {
    cancel_races(Backends::Embedded, "on_pickup").await;
}

#[tokio::test]
async fn a_cancel_racing_the_saga_never_refunds_a_shipped_order_on_kafka_and_postgres() {
    cancel_races(Backends::KafkaPostgres, "on_confirmation").await;
}

#[tokio::test]
async fn a_cancel_racing_the_saga_and_the_pickup_never_refunds_a_shipped_order_on_kafka_and_postgres() {
    cancel_races(Backends::KafkaPostgres, "on_pickup").await;
}

// ---- One checkout, one order, one charge -----------------------------------------

async fn checkout_with_key(shopper: &Client, key: &str, address: &Json) -> Answer {
    let body = json!({"shipping_address": address, "payment": {"card_number": APPROVED_CARD}});
    shopper.send_with_headers(reqwest::Method::POST, "/api/orders", Some(body), &[("idempotency-key", key)]).await
}

/// A double submit (one `Idempotency-Key`, twice at once) and a late retry make one
/// order, charged once by a provider that lost its first answer.
async fn one_checkout_one_charge(backends: Backends) {
    let provider = StandInProvider::start(FirstCharge::AnswerLost).await;
    let store = Store::new(backends)
        .variable("payment_provider_url", &provider.url)
        .variable("payment_provider_host", &provider.url);
    let host = store.start();
    let client = Client::new(&host);
    let ada = shopper(&client, "ada").await;
    fill_cart(&ada, &[(2, 1)]).await;

    let key = uuid::Uuid::new_v4().to_string();
    let here = address();
    let (first, second) = tokio::join!(checkout_with_key(&ada, &key, &here), checkout_with_key(&ada, &key, &here));
    assert_eq!((first.status, second.status), (202, 202), "{first:?}\n{second:?}");
    assert_eq!(first.headers["location"], second.headers["location"]);
    assert_eq!(first.body, second.body, "the same answer");
    let order_id = first.body["id"].as_str().expect("an order id").to_owned();
    assert_eq!(first.body["status"], "PENDING");
    // Later, with the cart emptied by the checkout: still the same answer.
    let retried = checkout_with_key(&ada, &key, &address()).await;
    assert_eq!((retried.status, &retried.body), (202, &first.body));
    assert_eq!(retried.headers["location"], first.headers["location"]);
    // The key stands for that checkout: another one with it is refused.
    let mut elsewhere = address();
    elsewhere["city"] = json!("Manchester");
    let other = checkout_with_key(&ada, &key, &elsewhere).await;
    assert_eq!((other.status, other.headers["content-type"].to_str().ok()), (422, Some("application/problem+json")));
    assert!(other.body["detail"].as_str().unwrap_or_default().contains("another checkout"), "{other:?}");
    let bad_key = checkout_with_key(&ada, "two words", &address()).await;
    assert_eq!(bad_key.status, 400, "{bad_key:?}");

    order_reaches(&ada, &order_id, "SHIPPED").await;
    let orders = ada.get("/api/orders").await.body;
    assert_eq!(orders["total"], 1, "one order: {orders}");
    let payment = ada.get(&format!("/api/payments/{order_id}")).await;
    assert_eq!(payment.body["status"], "COMPLETED", "{payment:?}");
    // payments asked again after the lost answer, with the same key: one charge.
    let charges: Vec<_> = provider.asked().into_iter().filter(|asked| asked.path == "/charges").collect();
    assert!(charges.len() >= 2, "the first answer was lost, so payments asked again: {charges:?}");
    assert_eq!(provider.moved(), (1, 0), "one charge, no refund: {charges:?}");
    let charge_key = format!("charge-{order_id}");
    assert!(charges.iter().all(|charge| charge.idempotency_key.as_deref() == Some(charge_key.as_str())), "{charges:?}");
}

#[tokio::test]
async fn one_checkout_is_one_order_and_one_charge_on_the_embedded_defaults() {
    one_checkout_one_charge(Backends::Embedded).await;
}

#[tokio::test]
async fn one_checkout_is_one_order_and_one_charge_on_kafka_and_postgres() {
    one_checkout_one_charge(Backends::KafkaPostgres).await;
}

// ---- No oversell ---------------------------------------------------------------

/// The last units of demo product 11 (sold out in the demo stock).
const LAST_UNITS: i64 = 3;
const BUYERS: usize = 8;

/// Eight shoppers check out the last three units at once: three orders are
/// confirmed, five cancelled naming the shortage, and stock is never below zero.
async fn no_oversell(backends: Backends) {
    let store = Store::new(backends);
    let host = store.start();
    let client = Client::new(&host);
    let admin = client.admin().await;
    assert_eq!(admin.put("/api/inventory/11", json!({"available": LAST_UNITS})).await.status, 200);
    let name = client.get("/api/products/11").await.body["name"].as_str().expect("a name").to_owned();
    let names: Vec<String> = (0..BUYERS).map(|n| format!("buyer{n}")).collect();
    let buyers = join_all(names.iter().map(|name| shopper(&client, name))).await;
    join_all(buyers.iter().map(|buyer| fill_cart(buyer, &[(11, 1)]))).await;

    // Someone watches the stock all along.
    let watching = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = tokio::spawn({
        let (client, watching) = (client.clone(), watching.clone());
        async move {
            let mut seen = Vec::new();
            while watching.load(std::sync::atomic::Ordering::Relaxed) {
                let stock = client.get("/api/inventory/11").await.body;
                seen.push((stock["available"].as_i64().unwrap_or(-1), stock["reserved"].as_i64().unwrap_or(-1)));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            seen
        }
    });
    let placed = join_all(buyers.iter().map(|buyer| checkout(buyer, APPROVED_CARD))).await;
    let mut orders = Vec::new();
    for (buyer, placed) in buyers.iter().zip(&placed) {
        assert_eq!(placed.status, 202, "{placed:?}");
        let path = format!("/api/orders/{}", placed.body["id"].as_str().unwrap_or_default());
        let settled = get_until(buyer, &path, |a| matches!(a.body["status"].as_str(), Some("SHIPPED" | "CANCELLED"))).await;
        orders.push(settled.body);
    }
    stock_is(&client, 11, (0, 0)).await;
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    let seen = watcher.await.expect("the watcher runs");
    assert!(seen.iter().all(|(available, reserved)| *available >= 0 && *reserved >= 0), "{seen:?}");
    assert!(seen.iter().all(|(available, reserved)| available + reserved <= LAST_UNITS), "{seen:?}");

    let shipped = orders.iter().filter(|order| order["status"] == "SHIPPED").count();
    assert_eq!(shipped as i64, LAST_UNITS, "{orders:#?}");
    for (buyer, order) in buyers.iter().zip(&orders).filter(|(_, order)| order["status"] == "CANCELLED") {
        let reason = order["reason"].as_str().unwrap_or_default();
        assert_eq!(reason, format!("not enough stock: {name} (1 wanted, 0 available)"), "{order}");
        // Never reserved, so never charged.
        let id = order["id"].as_str().unwrap_or_default();
        assert_eq!(buyer.get(&format!("/api/payments/{id}")).await.status, 404, "{order}");
    }
}

#[tokio::test]
async fn the_last_units_go_to_as_many_shoppers_as_there_are_units_on_the_embedded_defaults() {
    no_oversell(Backends::Embedded).await;
}

#[tokio::test]
async fn the_last_units_go_to_as_many_shoppers_as_there_are_units_on_kafka_and_postgres() {
    no_oversell(Backends::KafkaPostgres).await;
}
