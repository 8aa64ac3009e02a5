//! The cart, end to end: a registered customer's own cart, priced from the catalog,
//! quantities added up, current prices after catalog changes them.

use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::support::{Backends, Client, Store};

async fn customer(client: &Client, name: &str) -> Client {
    let email = format!("{name}@example.com");
    let registered = client
        .post(
            "/api/users",
            json!({"username": name, "email": email, "password": "correct horse", "first_name": "Ada", "last_name": "Lovelace"}),
        )
        .await;
    assert_eq!(registered.status, 201, "{registered:?}");
    client.login(&email, "correct horse").await
}

fn line<'a>(cart: &'a Json, product_id: i64) -> &'a Json {
    cart["items"].as_array().and_then(|items| items.iter().find(|l| l["product_id"] == product_id)).unwrap_or(&Json::Null)
}

#[tokio::test]
async fn a_customer_fills_and_empties_their_cart() {
    let store = Store::new(Backends::Embedded);
    let host = store.start();
    let anonymous = Client::new(&host);
    assert_eq!(anonymous.get("/api/cart").await.status, 401);
    let ada = customer(&anonymous, "ada").await;

    let empty = ada.get("/api/cart").await;
    assert_eq!(empty.status, 200, "{empty:?}");
    assert_eq!(empty.body["items"], json!([]));
    assert_eq!(empty.body["total"]["amount"], 0);

    let product = anonymous.get("/api/products/1").await.body;
    let price = product["price"]["amount"].as_i64().expect("a price in minor units");
    let added = ada.post("/api/cart/items", json!({"product_id": 1, "quantity": 2})).await;
    assert_eq!(added.status, 201, "{added:?}");
    let again = ada.post("/api/cart/items", json!({"product_id": 1, "quantity": 3})).await;
    assert_eq!(again.status, 201, "{again:?}");
    let first = line(&again.body, 1);
    assert_eq!(first["quantity"], 5, "adding adds to the quantity: {again:?}");
    assert_eq!(first["name"], product["name"]);
    assert_eq!(first["unit_price"], product["price"]);
    assert_eq!(first["line_total"]["amount"], 5 * price);

    ada.post("/api/cart/items", json!({"product_id": 2, "quantity": 1})).await;
    let second_price = anonymous.get("/api/products/2").await.body["price"]["amount"].as_i64().unwrap_or_default();
    let cart = ada.get("/api/cart").await.body;
    assert_eq!(cart["total"]["amount"], 5 * price + second_price, "{cart}");
    assert_eq!(cart["total"]["currency"], "EUR");

    let set = ada.put("/api/cart/items/1", json!({"quantity": 1})).await;
    assert_eq!((set.status, &line(&set.body, 1)["quantity"]), (200, &json!(1)), "{set:?}");
    let removed = ada.delete("/api/cart/items/2").await;
    assert_eq!(removed.status, 200);
    assert!(line(&removed.body, 2).is_null(), "{removed:?}");
    assert_eq!(ada.delete("/api/cart/items/2").await.status, 404);

    // Another customer's cart is their own.
    let grace = customer(&anonymous, "grace").await;
    assert_eq!(grace.get("/api/cart").await.body["items"], json!([]));

    let cleared = ada.delete("/api/cart").await;
    assert_eq!((cleared.status, &cleared.body["items"]), (200, &json!([])));
}

#[tokio::test]
async fn the_cart_refuses_what_cannot_be_bought() {
    let store = Store::new(Backends::Embedded);
    let host = store.start();
    let anonymous = Client::new(&host);
    let ada = customer(&anonymous, "ada").await;

    let missing = ada.post("/api/cart/items", json!({"product_id": 9999, "quantity": 1})).await;
    assert_eq!(missing.status, 404, "{missing:?}");
    let zero = ada.post("/api/cart/items", json!({"product_id": 1, "quantity": 0})).await;
    assert_eq!(zero.status, 400, "{zero:?}");
    assert_eq!(zero.body["errors"][0]["field"], "quantity");
    let too_many = ada.post("/api/cart/items", json!({"product_id": 1, "quantity": 100})).await;
    assert_eq!(too_many.status, 400, "{too_many:?}");
    let not_json = ada.send(reqwest::Method::POST, "/api/cart/items", Some(json!("three"))).await;
    assert_eq!(not_json.status, 400, "{not_json:?}");

    let admin = anonymous.admin().await;
    let mut inactive = anonymous.get("/api/products/3").await.body;
    inactive["active"] = json!(false);
    assert_eq!(admin.put("/api/products/3", inactive).await.status, 200);
    let refused = ada.post("/api/cart/items", json!({"product_id": 3, "quantity": 1})).await;
    assert_eq!(refused.status, 422, "{refused:?}");
}

#[tokio::test]
async fn the_cart_shows_current_prices() {
    let store = Store::new(Backends::Embedded);
    let host = store.start();
    let anonymous = Client::new(&host);
    let ada = customer(&anonymous, "ada").await;
    assert_eq!(ada.post("/api/cart/items", json!({"product_id": 4, "quantity": 2})).await.status, 201);

    let admin = anonymous.admin().await;
    let mut product = anonymous.get("/api/products/4").await.body;
    product["price"]["amount"] = json!(12345);
    assert_eq!(admin.put("/api/products/4", product).await.status, 200);
    // product.updated reaches the cart through the bus.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let cart = ada.get("/api/cart").await.body;
        if line(&cart, 4)["unit_price"]["amount"] == 12345 {
            assert_eq!(cart["total"]["amount"], 2 * 12345);
            break;
        }
        assert!(Instant::now() < deadline, "the cart still shows the old price: {cart}\n{}", host.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert_eq!(admin.delete("/api/products/4").await.status, 204);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !line(&ada.get("/api/cart").await.body, 4).is_null() {
        assert!(Instant::now() < deadline, "a deleted product stays in the cart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
