//! The storefront in a real browser: Playwright (`playwright-core`, from the npm
//! registry with the rest of the web shop's packages) drives Debian's Chromium
//! headless through the shop and the console of a real store, served by the real
//! `estore` with every component built by `estore build`. The scenarios are in
//! `components/storefront/web/tests/`; their screenshots are kept as test artefacts in
//! `target/test-artifacts/storefront` (or `$ESTORE_TEST_ARTIFACTS`).

use std::path::PathBuf;
use std::process::Command;

use crate::harness::{Host, workspace};
use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, Backends, Client, Store, get_until, unique_id};

/// Where Debian's package puts Chromium; `CHROMIUM` overrides it.
const DEBIAN_CHROMIUM: &str = "/usr/bin/chromium";

fn artefacts() -> PathBuf {
    std::env::var_os("ESTORE_TEST_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/test-artifacts"))
        .join("storefront")
}

/// Runs the scenarios of `components/storefront/web/tests/` against `host`, with
/// `environment` added (the scenarios that need a prepared store run only when theirs
/// is set) and, when `only` is given, just the scenarios whose names match it.
fn run_scenarios(host: &Host, environment: &[(&str, &str)], only: Option<&str>) {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| DEBIAN_CHROMIUM.to_owned());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "no Chromium at {chromium}: scripts/setup installs Debian's `chromium` (or set CHROMIUM)"
    );
    let artefacts = artefacts();
    std::fs::create_dir_all(&artefacts).expect("create the artefacts folder");
    let mut node = Command::new("node");
    node.args(["--test", "--test-concurrency=1", "--test-reporter=spec"]);
    if let Some(pattern) = only {
        node.arg(format!("--test-name-pattern={pattern}"));
    }
    let output = node
        .arg("tests/")
        .current_dir(workspace().join("components/storefront/web"))
        .env("STORE_URL", &host.url)
        .env("ADMIN_EMAIL", ADMIN_EMAIL)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("CHROMIUM", &chromium)
        .env("ARTIFACTS", &artefacts)
        .envs(environment.iter().copied())
        .output()
        .expect("run node (Node.js 20.19 or newer) for the browser tests");
    let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    println!("{report}");
    assert!(
        output.status.success(),
        "the browser tests failed (screenshots in {}):\n{report}\nhost log:\n{}",
        artefacts.display(),
        host.log()
    );
}

/// A shopper buys with the approve card and with the decline card (on a phone), an
/// admin changes stock in the console, and API errors show in words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shoppers_and_an_admin_use_the_store_in_a_browser() {
    let store = Store::new(Backends::Embedded);
    let host = store.start();
    pages_carry_their_security_headers(&host).await;
    tokio::task::block_in_place(|| run_scenarios(&host, &[], None));
}

/// Whatever the storefront answers (the shop's page, a page of the app, a built
/// script, a miss) carries its content security policy and the headers beside it;
/// the scenarios then show the shop working within them.
async fn pages_carry_their_security_headers(host: &Host) {
    let page = reqwest::get(host.url("/")).await.expect("GET /");
    let html = page.text().await.expect("the shop's page");
    let script = html
        .split("src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("the shop's page names its script: {html}"))
        .to_owned();
    for path in ["/", "/orders/42", script.as_str(), "/no-such-file.png"] {
        let answer = reqwest::get(host.url(path)).await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let header = |name: &str| answer.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let policy = header("content-security-policy");
        for directive in ["script-src 'self'", "frame-ancestors 'none'", "object-src 'none'"] {
            assert!(policy.contains(directive), "{path}: {directive} in {policy:?}");
        }
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("referrer-policy"), "same-origin", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
    }
}

/// On Kafka and PostgreSQL, with `welcome` deployed over and a message inventory
/// cannot read dead-lettered: an admin rolls `welcome` back and replays the dead letter
/// from the console.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_rolls_back_and_replays_a_dead_letter_from_the_console() {
    let store = Store::new(Backends::KafkaPostgres);
    let host = store.start();
    tokio::task::block_in_place(|| store.deploy("welcome", &crate::console::stand_in_for_welcome()));
    let admin = Client::new(&host).admin().await;
    let key = unique_id("console-poison");
    crate::kafka::shared().produce_keyed("order.placed", &[(&key, "not an event either")]);
    get_until(&admin, "/api/platform/dead-letters?topic=order.placed&limit=500", |answer| {
        answer.body["items"].as_array().into_iter().flatten().any(|letter| letter["key"] == key.as_str())
    })
    .await;
    let environment = [("ROLLBACK_COMPONENT", "welcome"), ("DEAD_LETTER_TOPIC", "order.placed")];
    tokio::task::block_in_place(|| run_scenarios(&host, &environment, Some("rolls a component back|dead letter")));
}

/// How fast the built shop loads on loopback, as the benchmark suite prints it
/// (`scripts/bench`): first visits in headless Chromium, from navigation to the
/// products on screen. Not a timed test: it asserts nothing about speed.
#[test]
#[ignore = "a benchmark: scripts/bench runs it"]
fn bench_storefront_load() {
    let store = Store::new(Backends::Embedded);
    let host = store.start();
    let output = Command::new("node")
        .arg("bench/load.mjs")
        .current_dir(workspace().join("components/storefront/web"))
        .env("STORE_URL", &host.url)
        .env("CHROMIUM", std::env::var("CHROMIUM").unwrap_or_else(|_| DEBIAN_CHROMIUM.to_owned()))
        .output()
        .expect("run node for the storefront benchmark");
    println!("{}", String::from_utf8_lossy(&output.stdout));
    assert!(output.status.success(), "the benchmark failed: {}", String::from_utf8_lossy(&output.stderr));
}
