//! Several hosts on one Kafka and one PostgreSQL: two `estore up` processes, each with
//! its own state dir, started at once and serving the same store. A few hundred orders
//! are placed round-robin across them; each completes once (one confirmation e-mail,
//! one `order.placed` on the bus, stock exact), and when one host is killed the other
//! takes over its partitions and outbox and every order still completes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::notifications::{SmsProvider, notifying_store};
use crate::orders::{APPROVED_CARD, checkout, fill_cart};
use crate::smtp::SmtpServer;
use crate::support::{Backends, Client, everything_on, get_until, register};

/// Every order buys one of this product; its stock is set high enough for all.
const PRODUCT: i64 = 10;
const STOCK: i64 = 1000;
const SHOPPERS: usize = 12;
/// Orders per shopper while both hosts run, then after one is killed.
const ROUNDS_TOGETHER: usize = 12;
const ROUNDS_ACROSS_THE_KILL: usize = 6;

/// Places one order per shopper for each round, each step on the next host in turn:
/// registration, cart and checkout of one shopper go to different hosts.
async fn place_orders(shoppers: &[[Client; 2]], rounds: std::ops::Range<usize>) -> Vec<String> {
    let mut placed = Vec::new();
    for round in rounds {
        let orders = shoppers.iter().enumerate().map(|(n, on)| {
            let (cart_host, checkout_host) = ((n + round) % on.len(), (n + round + 1) % on.len());
            let (cart, till) = (on[cart_host].clone(), on[checkout_host].clone());
            async move {
                fill_cart(&cart, &[(PRODUCT, 1)]).await;
                let answer = checkout(&till, APPROVED_CARD).await;
                assert_eq!(answer.status, 202, "{answer:?}");
                answer.body["id"].as_str().unwrap_or_default().to_owned()
            }
        });
        placed.extend(futures::future::join_all(orders).await);
    }
    placed
}

/// Waits until every order is SHIPPED (shipping dispatches on confirmation).
async fn all_shipped(admin: &Client, orders: &[String]) {
    for id in orders {
        get_until(admin, &format!("/api/orders/{id}"), |answer| answer.body["status"] == "SHIPPED").await;
    }
}

/// How many confirmation e-mails each order got, by the short id in their subject.
fn confirmations(smtp: &SmtpServer) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    for raw in smtp.messages() {
        let message = String::from_utf8_lossy(&raw).into_owned();
        let subject = message.lines().find_map(|line| line.strip_prefix("Subject: Order "));
        if let Some(short_id) = subject.and_then(|rest| rest.strip_suffix(" confirmed")) {
            *count.entry(short_id.trim().to_owned()).or_default() += 1;
        }
    }
    count
}

/// The e-mail service's records of the confirmations of the orders whose ids start
/// with `shorts`: what it knows of a mail that did not arrive.
async fn confirmation_records(admin: &Client, shorts: &[&String]) -> Vec<serde_json::Value> {
    let mut found = Vec::new();
    for page in 1.. {
        let answer = admin.get(&format!("/api/notifications/email?size=100&page={page}")).await;
        let items = answer.body["items"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            break;
        }
        found.extend(items.into_iter().filter(|record| {
            record["template"] == "order_confirmed"
                && shorts.iter().any(|short| record["reference"].as_str().is_some_and(|r| r.starts_with(short.as_str())))
        }));
    }
    found
}

/// `GET /metrics` from the admin listener of the host serving `store`.
async fn metrics_of(store: &crate::support::Store) -> String {
    let (status, metrics) = crate::harness::admin_get(&store.state_dir(), "/metrics").await;
    assert_eq!(status, 200, "{metrics}");
    metrics
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hosts_share_the_orders_and_one_finishes_when_the_other_is_killed() {
    let smtp = SmtpServer::start();
    let sms = SmsProvider::start();
    let first = notifying_store(Backends::KafkaPostgres, &smtp, &sms);
    let second = first.another_host();

    // Both at once: role, schema and migrations of every component race.
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| first.start());
        let b = scope.spawn(|| second.start());
        (a.join().expect("the first host starts"), b.join().expect("the second host starts"))
    });
    let mut a = Some(a);
    let hosts = [Client::new(a.as_ref().expect("running")), Client::new(&b)];
    for component in ["users", "orders", "inventory", "email"] {
        let applied = first.psql_in_component(component, "SELECT count(*) - count(DISTINCT name) FROM _estore_migrations;");
        assert_eq!(applied.trim(), "0", "{component}: a migration recorded twice");
    }

    let admin = hosts[0].admin().await;
    let set = admin.put(&format!("/api/inventory/{PRODUCT}"), json!({"available": STOCK})).await;
    assert_eq!(set.status, 200, "{set:?}");
    let mut shoppers = Vec::new();
    for n in 0..SHOPPERS {
        let (on_one, _) = register(&hosts[n % 2], &format!("shopper{n}"), json!({})).await;
        let token = on_one.token().expect("logged in").to_owned();
        shoppers.push([hosts[0].with_token(&token), hosts[1].with_token(&token)]);
    }

    // Together: every order once, whichever host took it and whichever handled it.
    let together = place_orders(&shoppers, 0..ROUNDS_TOGETHER).await;
    all_shipped(&admin, &together).await;
    let placed_on_the_bus = everything_on("order.placed").await;
    for id in &together {
        let sent = placed_on_the_bus.iter().filter(|(key, _)| key == id).count();
        assert_eq!(sent, 1, "order.placed of {id} went out {sent} times");
    }
    // The hosts' metrics, added up, say the same: each checkout answered once, each
    // order.placed handled once by inventory, on whichever host.
    let scraped = [metrics_of(&first).await, metrics_of(&second).await];
    let total = |name: &str, labels: &[(&str, &str)]| -> f64 {
        scraped.iter().filter_map(|metrics| crate::harness::metric(metrics, name, labels)).sum()
    };
    let expected = together.len() as f64;
    assert_eq!(total("estore_http_requests_total", &[("component", "orders"), ("status", "202")]), expected);
    let handled = [("component", "inventory"), ("topic", "order.placed"), ("outcome", "handled")];
    assert_eq!(total("estore_messages_total", &handled), expected, "{scraped:#?}");

    // Across the kill: half the rounds, then the first host dies (SIGKILL) with work
    // in flight, and the second takes over its partitions and its outbox rows.
    let before_kill = place_orders(&shoppers, ROUNDS_TOGETHER..ROUNDS_TOGETHER + ROUNDS_ACROSS_THE_KILL / 2).await;
    drop(a.take());
    let on_the_survivor: Vec<[Client; 2]> = shoppers.iter().map(|on| [on[1].clone(), on[1].clone()]).collect();
    let after_kill =
        place_orders(&on_the_survivor, ROUNDS_TOGETHER + ROUNDS_ACROSS_THE_KILL / 2..ROUNDS_TOGETHER + ROUNDS_ACROSS_THE_KILL).await;
    let admin = hosts[1].with_token(admin.token().expect("admin token"));
    let all: Vec<String> = together.iter().chain(&before_kill).chain(&after_kill).cloned().collect();
    all_shipped(&admin, &all).await;

    let expected_sold = all.len() as i64;
    get_until(&admin, &format!("/api/inventory/{PRODUCT}"), |answer| {
        answer.body["available"] == json!(STOCK - expected_sold) && answer.body["reserved"] == json!(0)
    })
    .await;
    // The subject names an order by the first group of its id.
    let ids: BTreeSet<String> = all.iter().map(|id| id.split('-').next().unwrap_or(id).to_owned()).collect();
    assert_eq!(ids.len(), all.len(), "short ids collide; the e-mail count cannot tell orders apart");
    // Every order is confirmed by e-mail, once. A host killed between handing a mail to
    // the SMTP server and recording it leaves the mail's record unfinished, and the
    // survivor sends it again: that at-least-once is allowed for the orders that were
    // in flight at the kill, and only for them.
    // The mails trail the shipping on a loaded machine (one host left, every order's
    // confirmation and shipping mail in line): a deadline for arrival, not for speed.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let mails = confirmations(&smtp);
        let in_flight_at_the_kill = |short: &str| before_kill.iter().any(|id| id.starts_with(short));
        let twice: Vec<(&String, &usize)> =
            mails.iter().filter(|(id, n)| **n > 1 && !in_flight_at_the_kill(id.as_str())).collect();
        assert!(twice.is_empty(), "confirmation e-mailed more than once: {twice:?}");
        let missing: Vec<&String> = ids.iter().filter(|id| !mails.contains_key(*id)).collect();
        if missing.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            let records = confirmation_records(&admin, &missing).await;
            panic!("no confirmation e-mail for {missing:?}; their records in the e-mail service: {records:#?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
