//! The catalog over HTTP: the demo catalog, search, admin writes and the cache.

use std::collections::BTreeSet;

use estore_shared::auth::Role;
use serde_json::{Value as Json, json};

use crate::support::{Backends, Client, Store, issued_token};

/// The ids of a list's items, in order.
fn ids(body: &Json) -> Vec<i64> {
    body["items"].as_array().expect("items").iter().map(|p| p["id"].as_i64().expect("an id")).collect()
}

fn id_set(body: &Json) -> BTreeSet<i64> {
    ids(body).into_iter().collect()
}

/// The field names of a 400's errors.
fn fields(body: &Json) -> Vec<&str> {
    body["errors"].as_array().expect("errors").iter().map(|e| e["field"].as_str().expect("a field")).collect()
}

fn new_product(sku: &str, category_id: i64, amount: i64) -> Json {
    json!({
        "sku": sku,
        "name": "Kindle Paperwhite",
        "description": "E-reader with a 7-inch glare-free display",
        "brand": "Amazon",
        "category_id": category_id,
        "price": {"amount": amount, "currency": "EUR"},
    })
}

#[tokio::test]
async fn the_demo_catalog_is_there_with_money_in_minor_units() {
    let store = Store::new(Backends::Embedded);
    let host = store.start();
    let client = Client::new(&host);

    let categories = client.get("/api/categories").await;
    assert_eq!(categories.status, 200, "{categories:?}");
    let names: Vec<&str> =
        categories.body.as_array().expect("a list").iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Accessories", "Audio", "Laptops", "Smartphones"]);
    assert_eq!(client.get("/api/categories/3").await.body["name"], "Audio");

    let product = client.get("/api/products/1").await;
    assert_eq!(product.status, 200, "{product:?}");
    assert_eq!(product.body["price"], json!({"amount": 129900, "currency": "EUR"}));
    assert!(product.body["price"]["amount"].is_i64());
    assert_eq!(product.body["brand"], "Asus");
    assert_eq!(product.body["category_id"], 1);
    assert_eq!(product.body["active"], true);
    assert_eq!(product.body["available"], 25);

    let all = client.get("/api/products?size=100").await;
    assert_eq!(all.body["total"], 12);
    assert_eq!(ids(&all.body), (1..=12).rev().collect::<Vec<_>>(), "newest first by default");

    for missing in ["/api/products/999", "/api/products/abc", "/api/products/0", "/api/categories/99"] {
        let answer = client.get(missing).await;
        assert_eq!(answer.status, 404, "{missing}: {answer:?}");
        assert_eq!(answer.headers["content-type"], "application/problem+json");
    }
    assert_eq!(client.send(reqwest::Method::PATCH, "/api/products/1", Some(json!({}))).await.status, 405);
}

#[tokio::test]
async fn search_filters_sorts_and_pages() {
    search_checks(Backends::Embedded).await;
}

/// The same SQL on PostgreSQL (LIKE with ESCAPE, LOWER, booleans).
#[tokio::test]
async fn search_filters_sorts_and_pages_on_postgres() {
    search_checks(Backends::KafkaPostgres).await;
}

async fn search_checks(backends: Backends) {
    let store = Store::new(backends);
    let host = store.start();
    let client = Client::new(&host);
    let search = async |query: &str| {
        let answer = client.get(&format!("/api/products?{query}")).await;
        assert_eq!(answer.status, 200, "{query}: {answer:?}");
        answer.body
    };

    // Keywords: case-insensitive, over name, description and brand.
    assert_eq!(id_set(&search("q=APPLE").await), BTreeSet::from([2, 4, 8]), "brand");
    assert_eq!(id_set(&search("q=samsung").await), BTreeSet::from([5, 12]));
    assert_eq!(id_set(&search("q=oled").await), BTreeSet::from([1, 3, 5]), "name and description (AMOLED)");
    assert_eq!(id_set(&search("q=noise+cancel").await), BTreeSet::from([7, 8]));
    assert_eq!(search("q=100%25").await["total"], 0, "% is literal");

    // Filters, alone and together.
    assert_eq!(id_set(&search("category=3").await), BTreeSet::from([7, 8, 9]));
    assert_eq!(id_set(&search("min_price=10000&max_price=30000").await), BTreeSet::from([8, 9, 10, 12]));
    assert_eq!(search("min_price=129900&max_price=129900").await["items"][0]["id"], 1, "bounds are inclusive");
    let in_stock = search("in_stock=true&size=100").await;
    assert_eq!(in_stock["total"], 10);
    assert!(!id_set(&in_stock).contains(&4) && !id_set(&in_stock).contains(&11));
    assert_eq!(id_set(&search("in_stock=false").await), BTreeSet::from([4, 11]));
    assert_eq!(id_set(&search("q=apple&category=2&in_stock=false").await), BTreeSet::from([4]));

    // Sorting, both ways.
    assert_eq!(ids(&search("category=4&sort=price").await), [11, 10, 12]);
    assert_eq!(ids(&search("category=4&sort=-price").await), [12, 10, 11]);
    assert_eq!(ids(&search("category=1&sort=name").await), [2, 3, 1]);
    assert_eq!(ids(&search("category=1&sort=-name").await), [1, 3, 2]);
    assert_eq!(ids(&search("category=1&sort=-newest").await), [1, 2, 3]);

    // Paging: the total is the whole list's.
    let page = search("sort=price&page=3&size=5").await;
    assert_eq!((page["page"].clone(), page["size"].clone(), page["total"].clone()), (json!(3), json!(5), json!(12)));
    assert_eq!(ids(&page), [2, 3], "the two dearest, after ten cheaper");
    assert_eq!(search("page=9&size=5").await["items"], json!([]));

    // Every bad parameter named in one 400.
    let bad = client.get("/api/products?category=x&min_price=-1&in_stock=maybe&sort=rating&size=1000").await;
    assert_eq!(bad.status, 400, "{bad:?}");
    assert_eq!(fields(&bad.body), ["size", "sort", "category", "min_price", "in_stock"]);
    let reversed = client.get("/api/products?min_price=500&max_price=100").await;
    assert_eq!(fields(&reversed.body), ["max_price"]);
}

#[tokio::test]
async fn only_admins_write_and_writes_are_checked() {
    let store = Store::new(Backends::Embedded);
    let host = store.start();
    let anonymous = Client::new(&host);
    let customer = anonymous.with_token(&issued_token(Role::Customer));
    let admin = anonymous.with_token(&issued_token(Role::Admin));

    let category = json!({"name": "E-readers", "description": "Screens made for reading"});
    assert_eq!(anonymous.post("/api/categories", category.clone()).await.status, 401);
    assert_eq!(customer.post("/api/categories", category.clone()).await.status, 403);
    assert_eq!(anonymous.with_token("forged.token").post("/api/categories", category.clone()).await.status, 401);
    assert_eq!(customer.post("/api/products", new_product("X-1", 1, 100)).await.status, 403);
    assert_eq!(customer.put("/api/products/1", new_product("X-1", 1, 100)).await.status, 403);
    assert_eq!(anonymous.delete("/api/products/1").await.status, 401);
    assert_eq!(customer.delete("/api/categories/1").await.status, 403);

    // Categories: create, conflicts, validation, update, delete.
    let created = admin.post("/api/categories", category.clone()).await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body["id"], 5);
    assert_eq!(admin.post("/api/categories", category.clone()).await.status, 409, "names are unique");
    let invalid = admin.post("/api/categories", json!({"name": " "})).await;
    assert_eq!((invalid.status, fields(&invalid.body)), (400, vec!["name"]));
    assert_eq!(fields(&admin.post("/api/categories", json!({})).await.body), ["name"]);
    let renamed = admin.put("/api/categories/5", json!({"name": "E-book readers"})).await;
    assert_eq!((renamed.status, renamed.body["name"].as_str()), (200, Some("E-book readers")));
    assert_eq!(admin.put("/api/categories/77", json!({"name": "Nothing"})).await.status, 404);
    assert_eq!(admin.delete("/api/categories/1").await.status, 409, "Laptops still has products");

    // Products: validation names every field; money is never a float.
    let float = admin
        .post(
            "/api/products",
            json!({"sku": "K-1", "name": "K", "brand": "B", "category_id": 5,
        "price": {"amount": 129.99, "currency": "EUR"}}),
        )
        .await;
    assert_eq!((float.status, fields(&float.body)), (400, vec!["price.amount"]), "{float:?}");
    let invalid = admin
        .post(
            "/api/products",
            json!({"sku": "", "name": "", "brand": "", "category_id": 0,
            "price": {"amount": 0, "currency": "USD"}}),
        )
        .await;
    assert_eq!(fields(&invalid.body), ["sku", "name", "brand", "category_id", "price.amount", "price.currency"]);
    let unknown = admin.post("/api/products", new_product("K-1", 42, 14999)).await;
    assert_eq!((unknown.status, fields(&unknown.body)), (400, vec!["category_id"]));

    let created = admin.post("/api/products", new_product("K-1", 5, 14999)).await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body["id"], 13);
    assert_eq!(created.body["available"], 0, "no stock until inventory says so");
    assert_eq!(admin.post("/api/products", new_product("K-1", 5, 14999)).await.status, 409, "SKUs are unique");
    assert_eq!(anonymous.get("/api/products?q=amazon").await.body["total"], 1);

    assert_eq!(admin.put("/api/products/99", new_product("K-9", 5, 1)).await.status, 404);
    assert_eq!(admin.delete("/api/categories/5").await.status, 409);
    assert_eq!(admin.delete("/api/products/13").await.status, 204);
    assert_eq!(anonymous.get("/api/products/13").await.status, 404);
    assert_eq!(admin.delete("/api/products/13").await.status, 404);
    assert_eq!(admin.delete("/api/categories/5").await.status, 204);
    assert_eq!(anonymous.get("/api/categories/5").await.status, 404);
}

#[tokio::test]
async fn a_write_is_visible_at_once_through_the_cache() {
    let store = Store::new(Backends::Embedded);
    let host = store.start();
    let client = Client::new(&host);
    let admin = client.with_token(&issued_token(Role::Admin));

    // Read twice, so the second read comes from the cache.
    for _ in 0..2 {
        assert_eq!(client.get("/api/products/7").await.body["price"]["amount"], 37900);
        assert_eq!(client.get("/api/products?q=sony").await.body["total"], 1);
        assert_eq!(client.get("/api/categories/3").await.body["name"], "Audio");
    }
    let mut update = client.get("/api/products/7").await.body;
    update["price"]["amount"] = json!(34900);
    update["name"] = json!("WH-1000XM5 Headphones");
    update["brand"] = json!("Sony Audio");
    let updated = admin.put("/api/products/7", update).await;
    assert_eq!(updated.status, 200, "{updated:?}");

    let read = client.get("/api/products/7").await.body;
    assert_eq!(read["price"], json!({"amount": 34900, "currency": "EUR"}));
    assert_eq!(read["name"], "WH-1000XM5 Headphones");
    assert_eq!(client.get("/api/products?q=sony+audio").await.body["items"][0]["id"], 7);
    assert_eq!(client.get("/api/products?category=3&sort=price").await.body["items"][2]["price"]["amount"], 34900);

    assert_eq!(admin.put("/api/categories/3", json!({"name": "Sound"})).await.status, 200);
    assert_eq!(client.get("/api/categories/3").await.body["name"], "Sound");
    assert!(client.get("/api/categories").await.body.as_array().unwrap().iter().any(|c| c["name"] == "Sound"));

    // An inactive product leaves the listings but keeps its page.
    let mut hidden = read.clone();
    hidden["active"] = json!(false);
    assert_eq!(admin.put("/api/products/7", hidden).await.status, 200);
    let listed = client.get("/api/products?q=sony").await;
    assert_eq!(listed.body["total"], 0, "{listed:?}");
    assert_eq!(client.get("/api/products/7").await.body["active"], false);
}

/// What the catalog keeps in the key-value store (its `catalog:` keys): how many
/// entries, and their keys' and values' bytes.
async fn catalog_cache_size(store: &Store) -> (i64, i64) {
    let file = store.state_dir().join("sqlite_key_value.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&file).read_only(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.expect("open the key-value file");
    sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(CAST(key AS BLOB)) + LENGTH(value)), 0) FROM spin_key_value \
         WHERE key LIKE 'catalog:%'",
    )
    .fetch_one(&pool)
    .await
    .expect("count the catalog's entries")
}

/// Distinct searches (a loop over `min_price`, as a scraper or an attacker runs)
/// fill a bounded cache, not the disk; a write's new generation takes no new room.
#[tokio::test]
async fn distinct_searches_keep_the_cache_bounded() {
    let store = Store::new(Backends::Embedded);
    let host = store.start();
    let client = Client::new(&host);
    let admin = client.admin().await;
    // The catalog's bound (components/catalog/src/cache.rs): 256 slots, the generation.
    const MOST_ENTRIES: i64 = 257;

    for min_price in 0..600 {
        let answer = client.get(&format!("/api/products?min_price={min_price}")).await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    let (entries, bytes) = catalog_cache_size(&store).await;
    assert!((100..=MOST_ENTRIES).contains(&entries), "{entries} entries after 600 distinct searches");
    assert!(bytes <= 256 * 128 * 1024, "{bytes} bytes");

    // A write starts a new generation: the next 600 searches reuse the same room,
    // and each shows the change.
    let mut product = client.get("/api/products/7").await.body;
    product["price"]["amount"] = json!(100);
    assert_eq!(admin.put("/api/products/7", product).await.status, 200);
    for min_price in 1000..1600 {
        let answer = client.get(&format!("/api/products?max_price={min_price}&sort=price")).await;
        assert_eq!(answer.body["items"][0]["price"]["amount"], 100, "{answer:?}");
    }
    let (entries, _) = catalog_cache_size(&store).await;
    assert!(entries <= MOST_ENTRIES, "{entries} entries after a write and 600 more searches");
}

/// Guard: the host reads a request's body before an instance starts for it
/// (`admission::read_body`). A client holds three times as many connections as the
/// store has instances, each with a checkout's head sent and its body never; a
/// shopper browsing the catalog is served all the while, each page within a second.
/// Without the guard each held connection would hold an instance, and the shop would
/// answer 503 until the client let go (the flood, scaled to a small pool).
#[tokio::test(flavor = "multi_thread")]
async fn a_client_holding_more_connections_than_instances_leaves_the_shop_browsable() {
    use tokio::io::AsyncWriteExt;
    const INSTANCES: usize = 16;
    // One component may take every instance, so the guard is the body read alone,
    // not the per-component slots.
    let limits = format!("\n[limits]\nmax_instances = {INSTANCES}\nmax_instances_per_component = {INSTANCES}\n");
    let store = Store::new(Backends::Embedded).runtime_config(&limits);
    let host = store.start();
    let address = host.url.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..3 * INSTANCES {
        let mut stream = tokio::net::TcpStream::connect(&address).await.expect("connect");
        let head = "POST /api/orders HTTP/1.1\r\nhost: shop\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{";
        stream.write_all(head.as_bytes()).await.expect("send a head");
        held.push(stream);
    }
    let shopper = Client::new(&host);
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let products = shopper.get("/api/products").await;
        assert_eq!(products.status, 200, "{products:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "the shopper waited {:?}", started.elapsed());
    }
    drop(held);
}
