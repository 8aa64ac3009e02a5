//! shipping over HTTP and Kafka: a shipment per order.confirmed (order.shipped), the
//! carrier's webhook moving it forward (order.delivered), and the shipment for its
//! customer. orders is not on this branch: the tests publish order.confirmed straight
//! to Kafka, as orders does. The status rules are unit-tested in components/shipping.

use std::time::Duration;

use estore_shared::auth::Role;
use serde_json::{Value as Json, json};

use crate::support::{
    Answer, Backends, CARRIER_SECRETS, CarrierReport, Client, Store, carrier_report, carrier_signature, get_until,
    issued_token, produce_event, published, token_for, unique_id as order_id,
};

fn address(country: &str) -> Json {
    json!({"name": "Ada Lovelace", "line1": "1 Main St", "city": "Graz", "postal_code": "8010", "country": country})
}

/// Publishes order.confirmed as orders does; answers the envelope.
fn confirmed(order_id: &str, user_id: &str, country: &str) -> Json {
    let data = json!({
        "order_id": order_id, "user_id": user_id,
        "items": [{"product_id": 3, "name": "Headphones", "quantity": 2, "unit_price": {"amount": 4999, "currency": "EUR"}}],
        "total": {"amount": 9998, "currency": "EUR"},
        "shipping_address": address(country),
    });
    produce_event("order.confirmed", order_id, data)
}

/// DHL reports `body` on the order's shipment, signed now (parcels to AT go by DHL).
async fn report(client: &Client, order_id: &str, body: Json) -> Answer {
    carrier_report(client.base(), order_id, &body, &CarrierReport::by("DHL")).await
}

#[tokio::test]
async fn the_webhook_takes_only_fresh_signed_reports_and_shipments_need_a_token() {
    let store = Store::new(Backends::Embedded);
    let host = store.start();
    let client = Client::new(&host);

    let delivered = json!({"status": "DELIVERED"});
    let now = estore_shared::clock::now_unix();
    let signed_by = |secret: &str, at: i64| Some(carrier_signature(secret, at, "order-1", delivered.to_string().as_bytes()));
    let refused = [
        ("unsigned", CarrierReport { carrier: "DHL", timestamp: None, signature: Some(String::new()) }),
        ("no such carrier", CarrierReport::by("FedEx")),
        ("a guessed secret", CarrierReport { carrier: "DHL", timestamp: Some(now), signature: signed_by("carrier-dev-token", now) }),
        ("another carrier's secret", CarrierReport { carrier: "DHL", timestamp: Some(now), signature: signed_by(CARRIER_SECRETS[1].1, now) }),
        ("six minutes old", CarrierReport { carrier: "DHL", timestamp: Some(now - 360), signature: None }),
        ("six minutes ahead", CarrierReport { carrier: "DHL", timestamp: Some(now + 360), signature: None }),
    ];
    for (what, signed) in refused {
        let answer = carrier_report(client.base(), "order-1", &delivered, &signed).await;
        assert_eq!(answer.status, 401, "{what}: {answer:?}");
        assert_eq!(answer.headers["content-type"], "application/problem+json");
    }
    // The old static token opens nothing.
    let token = reqwest::Client::new()
        .post(format!("{}/api/shipments/order-1/events", client.base()))
        .header("x-carrier-token", "carrier-dev-token")
        .json(&delivered)
        .send()
        .await
        .expect("the store answers");
    assert_eq!(token.status(), 401);
    for bad in [json!({"status": "LOST"}), json!({"status": "SHIPPED"}), json!({"status": "delivered"}), json!({})] {
        let answer = report(&client, "order-1", bad.clone()).await;
        assert_eq!(answer.status, 400, "{bad}: {answer:?}");
        assert_eq!(answer.body["errors"][0]["field"], "status", "{bad}: {answer:?}");
    }
    let unknown = report(&client, "order-1", delivered).await;
    assert_eq!(unknown.status, 404, "{unknown:?}");

    assert_eq!(client.get("/api/shipments/order-1").await.status, 401);
    assert_eq!(client.with_token(&issued_token(Role::Customer)).get("/api/shipments/order-1").await.status, 404);

    // Only orders stops a parcel, by chaining: no public route leads there.
    let stop = client.post("/internal/shipments/order-1/stop", json!({"reason": "cancelled by the customer"})).await;
    assert_eq!(stop.status, 404, "{stop:?}");
}

/// Waits until the order has a shipment; answers it.
async fn shipment(client: &Client, order_id: &str) -> Json {
    get_until(client, &format!("/api/shipments/{order_id}"), |answer| answer.status == 200).await.body
}

#[tokio::test]
async fn confirmed_orders_ship_once_and_the_carrier_delivers_them_on_kafka_and_postgres() {
    let store = Store::new(Backends::KafkaPostgres);
    let host = store.start();
    let client = Client::new(&host);
    let ada = client.with_token(&token_for("u-ada", Role::Customer));

    let order = order_id("ship");
    let confirm = confirmed(&order, "u-ada", "AT");
    let abroad = order_id("ship-us");
    confirmed(&abroad, "u-ada", "US");

    let shipped = shipment(&ada, &order).await;
    assert_eq!(shipped["order_id"], order.as_str());
    assert_eq!(shipped["user_id"], "u-ada");
    assert_eq!(shipped["carrier"], "DHL");
    assert_eq!(shipped["status"], "SHIPPED");
    assert_eq!(shipped["shipping_address"], address("AT"));
    let tracking = shipped["tracking_number"].as_str().expect("a tracking number").to_owned();
    assert!(tracking.starts_with("DHL") && tracking.len() == 15, "{tracking}");
    assert_eq!(shipped["events"].as_array().map(Vec::len), Some(1), "{shipped}");
    assert_eq!(shipped["events"][0]["status"], "SHIPPED");
    let us = shipment(&ada, &abroad).await;
    assert_eq!(us["carrier"], "UPS");
    assert_ne!(us["tracking_number"], tracking.as_str());

    let events = published("order.shipped", &order, 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0]["data"],
        json!({"order_id": order, "user_id": "u-ada", "carrier": "DHL", "tracking_number": tracking,
               "items": confirm["data"]["items"]})
    );
    assert_eq!(events[0]["causation_id"], confirm["id"]);

    // A repeated order.confirmed ships nothing twice.
    confirmed(&order, "u-ada", "AT");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(published("order.shipped", &order, 1).await.len(), 1);
    assert_eq!(ada.get(&format!("/api/shipments/{order}")).await.body["tracking_number"], tracking.as_str());

    // Only the parcel's own carrier reports on it: UPS's signature is good, the
    // parcel is DHL's.
    let ups = carrier_report(client.base(), &order, &json!({"status": "DELIVERED"}), &CarrierReport::by("UPS")).await;
    assert_eq!(ups.status, 404, "{ups:?}");
    // Forward only; a repeat, signed anew, is a retrying carrier.
    let out_body = json!({"status": "OUT_FOR_DELIVERY"});
    let signed_at = estore_shared::clock::now_unix() - 10;
    let out_signature = carrier_signature(CARRIER_SECRETS[0].1, signed_at, &order, out_body.to_string().as_bytes());
    let captured = CarrierReport { carrier: "DHL", timestamp: Some(signed_at), signature: Some(out_signature) };
    let out = carrier_report(client.base(), &order, &out_body, &captured).await;
    assert_eq!((out.status, out.body["status"].clone()), (200, json!("OUT_FOR_DELIVERY")), "{out:?}");
    let again = report(&client, &order, json!({"status": "OUT_FOR_DELIVERY"})).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.body["events"].as_array().map(Vec::len), Some(2), "{again:?}");
    // The same signed request again is a replay; aimed at another order, it is not
    // that order's signature.
    for (target, refusal) in [(&order, "received before"), (&abroad, "does not match")] {
        let replayed = carrier_report(client.base(), target, &out_body, &captured).await;
        assert_eq!(replayed.status, 401, "{target}: {replayed:?}");
        assert!(replayed.body["detail"].as_str().is_some_and(|d| d.contains(refusal)), "{refusal}: {replayed:?}");
    }
    let delivered =
        report(&client, &order, json!({"status": "DELIVERED", "description": "left with a neighbour"})).await;
    assert_eq!(delivered.status, 200, "{delivered:?}");
    let statuses: Vec<&Json> =
        delivered.body["events"].as_array().expect("events").iter().map(|e| &e["status"]).collect();
    assert_eq!(statuses, [&json!("SHIPPED"), &json!("OUT_FOR_DELIVERY"), &json!("DELIVERED")]);
    assert_eq!(delivered.body["events"][2]["description"], "left with a neighbour");
    // (Signed at another second than the repeat above: the same body signed in the
    // same second is the same request, a replay.)
    let earlier = CarrierReport { carrier: "DHL", timestamp: Some(estore_shared::clock::now_unix() - 30), signature: None };
    let back = carrier_report(client.base(), &order, &json!({"status": "OUT_FOR_DELIVERY"}), &earlier).await;
    assert_eq!(back.status, 409, "{back:?}");

    let events = published("order.delivered", &order, 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["data"], json!({"order_id": order, "user_id": "u-ada"}));
    assert_eq!(events[0]["correlation_id"], order.as_str());

    // Someone else's shipment is missing; an administrator sees every one.
    let bob = client.with_token(&token_for("u-bob", Role::Customer));
    assert_eq!(bob.get(&format!("/api/shipments/{order}")).await.status, 404);
    let admin = client.with_token(&issued_token(Role::Admin));
    assert_eq!(admin.get(&format!("/api/shipments/{order}")).await.body["status"], "DELIVERED");
}
