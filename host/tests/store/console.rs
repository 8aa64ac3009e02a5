//! The console's view of the platform (`/api/platform/...`, the `console` component
//! with `allow_operations = true`): administrators see the running components with
//! their deploy history, roll one back, and read and replay dead letters; nobody else
//! gets in.

use serde_json::{Value as Json, json};

use crate::support::{Backends, Client, Store, get_until, register, unique_id};

/// Another component's wasm to deploy as `welcome`: it serves files, so `GET /api`
/// stops describing the API, and a rollback is seen at once.
pub(crate) fn stand_in_for_welcome() -> std::path::PathBuf {
    crate::harness::workspace().join("target/wasm32-wasip2/release/storefront.wasm")
}

fn ids(components: &Json) -> Vec<&str> {
    components.as_array().into_iter().flatten().filter_map(|c| c["id"].as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_see_the_components_and_roll_one_back() {
    let store = Store::new(Backends::Embedded);
    let host = store.start();
    let client = Client::new(&host);
    assert_eq!(client.get("/api/platform/components").await.status, 401);
    let (shopper, _) = register(&client, &unique_id("nosy"), json!({})).await;
    assert_eq!(shopper.get("/api/platform/components").await.status, 403);
    assert_eq!(shopper.post("/api/platform/components/welcome/rollback", json!({})).await.status, 403);

    let admin = client.admin().await;
    let listed = admin.get("/api/platform/components").await;
    assert_eq!(listed.status, 200, "{listed:?}");
    for id in ["users", "catalog", "inventory", "cart", "orders", "payments", "shipping", "email", "sms", "welcome", "storefront", "console"] {
        assert!(ids(&listed.body).contains(&id), "{id} in {:?}", ids(&listed.body));
    }
    let orders = listed.body.as_array().into_iter().flatten().find(|c| c["id"] == "orders").cloned().unwrap_or_default();
    assert_eq!(orders["version"].as_str().map(str::len), Some(64), "a SHA-256: {orders}");
    let triggers = orders["triggers"].to_string();
    assert!(triggers.contains("http /api/orders/...") && triggers.contains("kafka inventory.reserved"), "{triggers}");

    let refused = admin.post("/api/platform/components/welcome/rollback", json!({})).await;
    assert_eq!(refused.status, 409, "nothing to roll back to yet: {refused:?}");
    assert_eq!(admin.post("/api/platform/components/nothing/rollback", json!({})).await.status, 404);

    assert_eq!(client.get("/api").await.body["name"], "electronic-store");
    tokio::task::block_in_place(|| store.deploy("welcome", &stand_in_for_welcome()));
    assert!(client.get("/api").await.body["name"].is_null(), "the stand-in serves /api now");
    let welcome = admin.get("/api/platform/components").await.body;
    let history = welcome.as_array().into_iter().flatten().find(|c| c["id"] == "welcome").map(|c| c["history"].clone());
    assert_eq!(history.as_ref().and_then(Json::as_array).map(Vec::len), Some(2), "{history:?}");

    let rolled = admin.post("/api/platform/components/welcome/rollback", json!({})).await;
    assert_eq!(rolled.status, 200, "{rolled:?}");
    assert_eq!(rolled.body["version"]["serving"], true);
    assert_eq!(client.get("/api").await.body["name"], "electronic-store", "the rollback took effect");
}

/// On Kafka: a message inventory cannot read is dead-lettered; the console lists it
/// with the error it carried, and a replay sends it through again (to fail again).
#[tokio::test]
async fn a_dead_letter_is_listed_with_its_error_and_replayed() {
    let store = Store::new(Backends::KafkaPostgres);
    let host = store.start();
    let admin = Client::new(&host).admin().await;
    let key = unique_id("poison");
    crate::kafka::shared().produce_keyed("order.placed", &[(&key, "this is not an event")]);
    let path = "/api/platform/dead-letters?topic=order.placed&limit=500";
    let mine = |answer: &crate::support::Answer| -> Vec<Json> {
        answer.body["items"].as_array().into_iter().flatten().filter(|l| l["key"] == key.as_str()).cloned().collect()
    };
    let listed = get_until(&admin, path, |answer| !mine(answer).is_empty()).await;
    let letter = mine(&listed).remove(0);
    assert_eq!(letter["component"], "inventory", "{letter}");
    assert_eq!(letter["payload"], "this is not an event");
    assert!(letter["error"].as_str().is_some_and(|e| !e.is_empty()), "{letter}");
    assert!(letter["dead_lettered_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{letter}");

    let replay = format!("/api/platform/dead-letters/order.placed/{}/{}/replay", letter["partition"], letter["offset"]);
    let replayed = admin.post(&replay, json!({})).await;
    assert_eq!(replayed.status, 202, "{replayed:?}");
    get_until(&admin, path, |answer| mine(answer).len() == 2).await;

    let overview = admin.get("/api/platform/dead-letters").await;
    assert_eq!(overview.status, 200, "{overview:?}");
    let placed = overview.body["topics"].as_array().into_iter().flatten().find(|t| t["topic"] == "order.placed").cloned();
    assert!(placed.is_some_and(|t| t["dead_letters"].as_u64() >= Some(2)), "{}", overview.body);
    let missing = admin.post("/api/platform/dead-letters/order.placed/0/999999999/replay", json!({})).await;
    assert_eq!(missing.status, 404, "{missing:?}");
}
