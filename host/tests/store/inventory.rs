//! Inventory over HTTP: stock per product, set by administrators, and shown by the
//! catalog through inventory.changed. The saga's side (order.placed, .cancelled,
//! .shipped) needs the orders service to drive it; its rule is unit-tested in
//! components/inventory (`reservation::plan`).

use std::time::{Duration, Instant};

use estore_shared::auth::Role;
use serde_json::json;

use crate::support::{Backends, Client, Store, everything_on, issued_token};

#[tokio::test]
async fn stock_is_public_and_the_demo_stock_is_there() {
    let store = Store::new(Backends::Embedded);
    let host = store.start();
    let client = Client::new(&host);

    let stock = client.get("/api/inventory/1").await;
    assert_eq!(stock.status, 200, "{stock:?}");
    assert_eq!(stock.body, json!({"product_id": 1, "available": 25, "reserved": 0}));
    assert_eq!(client.get("/api/inventory/4").await.body["available"], 0);
    for missing in ["/api/inventory/999", "/api/inventory/abc", "/api/inventory/-1"] {
        let answer = client.get(missing).await;
        assert_eq!(answer.status, 404, "{missing}: {answer:?}");
        assert_eq!(answer.headers["content-type"], "application/problem+json");
    }
}

#[tokio::test]
async fn only_admins_set_stock_and_the_catalog_follows() {
    let store = Store::new(Backends::Embedded);
    let host = store.start();
    let client = Client::new(&host);
    let customer = client.with_token(&issued_token(Role::Customer));
    let admin = client.with_token(&issued_token(Role::Admin));

    assert_eq!(client.put("/api/inventory/11", json!({"available": 5})).await.status, 401);
    assert_eq!(customer.put("/api/inventory/11", json!({"available": 5})).await.status, 403);
    for bad in [json!({"available": -1}), json!({"available": 2.5}), json!({})] {
        let answer = admin.put("/api/inventory/11", bad.clone()).await;
        assert_eq!(answer.status, 400, "{bad}: {answer:?}");
        assert_eq!(answer.body["errors"][0]["field"], "available", "{bad}: {answer:?}");
    }

    assert_eq!(client.get("/api/products/11").await.body["available"], 0, "sold out in the demo catalog");
    let set = admin.put("/api/inventory/11", json!({"available": 5})).await;
    assert_eq!(set.status, 200, "{set:?}");
    assert_eq!(set.body, json!({"product_id": 11, "available": 5, "reserved": 0}));
    assert_eq!(client.get("/api/inventory/11").await.body["available"], 5);

    // The catalog hears of it through inventory.changed, and its cache forgets.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let available = client.get("/api/products/11").await.body["available"].clone();
        if available == 5 {
            break;
        }
        assert!(Instant::now() < deadline, "the catalog still shows {available} for product 11");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let in_stock = client.get("/api/products?in_stock=true&category=4").await.body;
    assert_eq!(in_stock["total"], 3, "{in_stock}");

    // A product without stock yet gets its first.
    let first = admin.put("/api/inventory/13", json!({"available": 7})).await;
    assert_eq!((first.status, first.body["available"].clone()), (200, json!(7)));
}

/// An order event as orders or shipping would publish it, as one line of JSON.
fn order_event(event_type: &str, order_id: &str, items: &[(i64, u32)]) -> String {
    let items: Vec<_> = items
        .iter()
        .map(|(product_id, quantity)| {
            json!({"product_id": product_id, "name": "x", "quantity": quantity,
                   "unit_price": {"amount": 100, "currency": "EUR"}})
        })
        .collect();
    let data = json!({
        "order_id": order_id, "user_id": "u-1", "items": items,
        "total": {"amount": 100, "currency": "EUR"},
        "payment_method": {"token": "pm-1", "brand": "visa", "last4": "4242"},
        "shipping_address": {"name": "Ada", "line1": "1 Main St", "city": "Graz", "postal_code": "8010", "country": "AT"},
        "reason": "customer", "was_reserved": true, "was_paid": false,
        "carrier": "DHL", "tracking_number": "T1",
    });
    let envelope = estore_shared::event::Envelope::new(event_type, order_id, data);
    String::from_utf8(envelope.to_json().expect("serialises")).expect("UTF-8")
}

/// Waits until `path` answers `expected`.
async fn eventually(client: &Client, path: &str, expected: serde_json::Value) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = client.get(path).await.body;
        if answer == expected {
            return;
        }
        assert!(Instant::now() < deadline, "{path} is still {answer}, expected {expected}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn stock(product_id: i64, available: i64, reserved: i64) -> serde_json::Value {
    json!({"product_id": product_id, "available": available, "reserved": reserved})
}

/// The saga's side, driven by publishing the order events straight to Kafka (the
/// orders and shipping services do not exist yet), on PostgreSQL.
#[tokio::test]
async fn orders_reserve_all_or_nothing_and_release_or_sell_on_kafka_and_postgres() {
    let store = Store::new(Backends::KafkaPostgres);
    let host = store.start();
    let client = Client::new(&host);
    let kafka = crate::kafka::shared();
    let publish = |topic: &str, order_id: &str, items: &[(i64, u32)]| {
        kafka.produce_keyed(topic, &[(order_id, &order_event(topic, order_id, items))]);
    };

    // Every item in stock: all reserved (two lines of product 1 add up).
    publish("order.placed", "order-a", &[(1, 1), (7, 1), (1, 1)]);
    eventually(&client, "/api/inventory/1", stock(1, 23, 2)).await;
    eventually(&client, "/api/inventory/7", stock(7, 39, 1)).await;
    // The catalog follows.
    eventually(&client, "/api/products/1", {
        let mut product = client.get("/api/products/1").await.body;
        product["available"] = json!(23);
        product
    })
    .await;

    // One item short: nothing reserved at all.
    publish("order.placed", "order-b", &[(3, 1), (4, 1)]);
    // Shipped after being reserved: a sale. A repeated order.placed changes nothing.
    publish("order.placed", "order-c", &[(8, 3)]);
    eventually(&client, "/api/inventory/8", stock(8, 57, 3)).await;
    publish("order.placed", "order-c", &[(8, 3)]);
    publish("order.shipped", "order-c", &[]);
    eventually(&client, "/api/inventory/8", stock(8, 57, 0)).await;
    // Cancelled after being reserved: the units are back.
    publish("order.cancelled", "order-a", &[]);
    eventually(&client, "/api/inventory/1", stock(1, 25, 0)).await;
    eventually(&client, "/api/inventory/7", stock(7, 40, 0)).await;
    // Cancelled, and its order.placed comes after (or, on another topic, is handled
    // before): either way nothing stays held.
    publish("order.cancelled", "order-d", &[]);
    publish("order.placed", "order-d", &[(9, 1)]);
    assert_eq!(client.get("/api/inventory/3").await.body, stock(3, 7, 0), "order-b held nothing");

    // Partitions are read in no particular order: sort by key. Other tests' orders
    // are on the topics too.
    let ours = |(key, _): &(String, String)| key.starts_with("order-") && key.len() == "order-a".len();
    let mut reserved: Vec<(String, String)> = everything_on("inventory.reserved").await.into_iter().filter(ours).collect();
    reserved.sort();
    let reserved_orders: Vec<&str> = reserved.iter().map(|(key, _)| key.as_str()).collect();
    assert_eq!(reserved_orders, ["order-a", "order-c"]);
    let first: serde_json::Value = serde_json::from_str(&reserved[0].1).expect("JSON");
    assert_eq!(first["data"]["payment_method"]["last4"], "4242", "carried over: {first}");
    assert_eq!(first["data"]["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(first["correlation_id"], "order-a");

    let rejected: Vec<(String, String)> = everything_on("inventory.rejected").await.into_iter().filter(ours).collect();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    let rejected: serde_json::Value = serde_json::from_str(&rejected[0].1).expect("JSON");
    assert_eq!(rejected["data"]["order_id"], "order-b");
    assert_eq!(rejected["data"]["shortages"], json!([{"product_id": 4, "requested": 1, "available": 0}]));
    // By now order-d's events have had their time too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(client.get("/api/inventory/9").await.body, stock(9, 35, 0));
}
