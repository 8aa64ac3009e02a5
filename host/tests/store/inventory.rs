//! Inventory over HTTP: stock per product, set by administrators, and shown by the
//! catalog through inventory.changed. The saga's side (order.placed, .cancelled,
//! .shipped) needs the orders service to drive it; its rule is unit-tested in
//! components/inventory (`reservation::plan`).

use std::time::{Duration, Instant};

use estore_shared::auth::Role;
use serde_json::json;

use crate::support::{Backends, Client, Store, issued_token};

#[tokio::test]
async fn stock_is_public_and_the_demo_stock_is_there() {
    let host = Store::new(Backends::Embedded).start();
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
    let host = Store::new(Backends::Embedded).start();
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

    let set = admin.put("/api/inventory/11", json!({"available": 5})).await;
    assert_eq!(set.status, 200, "{set:?}");
    assert_eq!(set.body, json!({"product_id": 11, "available": 5, "reserved": 0}));
    assert_eq!(client.get("/api/inventory/11").await.body["available"], 5);

    // The catalog hears of it through inventory.changed, and its cache forgets.
    assert_eq!(client.get("/api/products/11").await.body["available"], 0);
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
