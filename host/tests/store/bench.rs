//! Benchmarks of the store (ignored tests; `scripts/bench` runs them and prints their
//! numbers): start-up, memory, and checkout throughput on both backends. None asserts
//! a speed.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::loadgen::{oha, tool};
use crate::orders::{APPROVED_CARD, checkout, fill_cart, statuses_until};
use crate::support::{Backends, Client, Store, register};

/// The host's resident memory, from /proc.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time the process has used so far (user and system), from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // Linux reports clock ticks of 1/100 s (USER_HZ) on every platform estore runs on.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// CPU time the whole machine has been busy so far (every process), from /proc/stat.
fn machine_busy_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .map(|cpu| cpu.split_whitespace().skip(1).filter_map(|t| t.parse().ok()).collect())
        .unwrap_or_default();
    // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
    let busy: u64 = ticks.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, t)| t).sum();
    Duration::from_millis(busy * 10)
}

/// Until the store answers its first request: process start, migrations, every
/// component loaded, listener open, first answer.
async fn time_to_first_answer<'s>(store: &'s Store, cache: &std::path::Path) -> (Duration, u32, crate::support::Running<'s>) {
    let started = Instant::now();
    let host = store.start_with_cache(cache);
    let client = Client::new(&host);
    while client.get("/api/products").await.status != 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid = host.pid();
    (started.elapsed(), pid, host)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: scripts/bench runs it"]
async fn bench_startup_and_memory() {
    let cold_cache = tempfile::tempdir().expect("an empty compiled cache");
    let cold = Store::new(Backends::Embedded);
    let (cold_took, _, host) = time_to_first_answer(&cold, cold_cache.path()).await;
    drop(host);
    let warm = Store::new(Backends::Embedded);
    let (warm_took, pid, host) = time_to_first_answer(&warm, cold_cache.path()).await;
    let idle = rss_kib(pid);

    // Instances that stay alive: order status streams, one instance each.
    let client = Client::new(&host);
    let (ada, _) = register(&client, "ada", json!({})).await;
    fill_cart(&ada, &[(10, 1)]).await;
    let placed = checkout(&ada, APPROVED_CARD).await;
    let path = format!("/api/orders/{}/events", placed.body["id"].as_str().unwrap_or_default());
    const STREAMS: usize = 50;
    let mut streams = Vec::new();
    for _ in 0..STREAMS {
        let (_, stream) = ada.events(&path, None).await;
        let mut stream = stream.expect("a stream");
        stream.next(Duration::from_secs(30)).await.expect("its first event");
        streams.push(stream);
    }
    let busy = rss_kib(pid);
    println!("Start-up of the store (10 components, embedded defaults), until the first answer:");
    println!("  cold (nothing compiled yet): {cold_took:?}");
    println!("  warm (compiled cache)      : {warm_took:?}");
    println!("Memory (resident):");
    println!("  host with every component loaded, idle: {} MiB", idle / 1024);
    println!(
        "  per live instance ({STREAMS} open status streams): {} KiB",
        busy.saturating_sub(idle) / STREAMS as u64
    );
}

/// From `POST /api/orders` to CONFIRMED as the order's status stream reports it (the
/// stream reads the order's history 50 ms after each change, less often while quiet).
async fn time_to_confirmed(shopper: &Client) -> Duration {
    let begun = Instant::now();
    let placed = checkout(shopper, APPROVED_CARD).await;
    assert_eq!(placed.status, 202, "{placed:?}");
    let path = format!("/api/orders/{}/events", placed.body["id"].as_str().unwrap_or_default());
    let (_, stream) = shopper.events(&path, Some("0")).await;
    statuses_until(&mut stream.expect("a stream"), "CONFIRMED").await;
    begun.elapsed()
}

/// The same, watching with `GET /api/orders/{id}` every 5 ms instead: the saga's own
/// time, without the stream's reading period.
async fn saga_time_to_confirmed(shopper: &Client) -> Duration {
    let begun = Instant::now();
    let placed = checkout(shopper, APPROVED_CARD).await;
    assert_eq!(placed.status, 202, "{placed:?}");
    let path = format!("/api/orders/{}", placed.body["id"].as_str().unwrap_or_default());
    while shopper.get(&path).await.body["status"] != "CONFIRMED" {
        assert!(begun.elapsed() < Duration::from_secs(30), "{path} not CONFIRMED after 30 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    begun.elapsed()
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

/// The saga's latency on an idle store (one shopper, one order after the other), then
/// orders per second and p50/p99 with many shoppers checking out at once, every
/// shopper registered and every cart filled first.
async fn checkout_throughput(backends: Backends) {
    let store = Store::new(backends);
    let host = store.start();
    let client = Client::new(&host);

    const ALONE: usize = 10;
    let (alone, _) = register(&client, "bench_alone", json!({})).await;
    let (mut streamed, mut polled) = (Vec::new(), Vec::new());
    for _ in 0..ALONE {
        fill_cart(&alone, &[(10, 1)]).await;
        streamed.push(time_to_confirmed(&alone).await);
        fill_cart(&alone, &[(10, 1)]).await;
        polled.push(saga_time_to_confirmed(&alone).await);
    }
    streamed.sort();
    polled.sort();
    println!("Checkout on {backends:?}, POST /api/orders until CONFIRMED:");
    println!(
        "  one shopper, {ALONE} orders one after the other: on the status stream p50 {:?}, max {:?}; \
         polling GET every 5 ms p50 {:?}, max {:?}",
        quantile(&streamed, 0.5),
        quantile(&streamed, 1.0),
        quantile(&polled, 0.5),
        quantile(&polled, 1.0)
    );

    const SHOPPERS: usize = 40;
    let mut shoppers = Vec::new();
    for n in 0..SHOPPERS {
        let (shopper, _) = register(&client, &format!("bench_{n}"), json!({})).await;
        // Demo products with stock enough for everyone: 10 (80), 8 (60), 12 (45).
        fill_cart(&shopper, &[([10, 8, 12][n % 3], 1)]).await;
        shoppers.push(shopper);
    }
    let started = Instant::now();
    let (cpu_before, machine_before) = (cpu_time(host.pid()), machine_busy_time());
    let orders = shoppers.into_iter().map(|shopper| tokio::spawn(async move { time_to_confirmed(&shopper).await }));
    let mut took: Vec<Duration> = Vec::new();
    for order in orders.collect::<Vec<_>>() {
        took.push(order.await.expect("an order"));
    }
    let all = started.elapsed();
    let cores = |used: Duration| used.as_secs_f64() / all.as_secs_f64();
    let (host_cpu, machine) = (cpu_time(host.pid()) - cpu_before, machine_busy_time() - machine_before);
    took.sort();
    println!(
        "  {SHOPPERS} shoppers at once: {:.1} orders/s; p50 {:?}, p99 {:?}; cores busy meanwhile: host {:.2}, whole machine {:.2} of {}",
        SHOPPERS as f64 / all.as_secs_f64(),
        quantile(&took, 0.5),
        quantile(&took, 0.99),
        cores(host_cpu),
        cores(machine),
        std::thread::available_parallelism().map(usize::from).unwrap_or(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a benchmark: scripts/bench runs it"]
async fn bench_checkout_on_the_embedded_defaults() {
    checkout_throughput(Backends::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a benchmark: scripts/bench runs it"]
async fn bench_checkout_on_kafka_and_postgres() {
    checkout_throughput(Backends::KafkaPostgres).await;
}

/// A store endpoint under load: product search (catalog, answered from its key-value
/// cache after the first request), with the same generator as the HTTP benchmark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: scripts/bench runs it"]
async fn bench_product_search() {
    let Some(generator) = tool("oha") else {
        println!("Product search: oha is not installed; scripts/bench installs it");
        return;
    };
    let store = Store::new(Backends::Embedded);
    let host = store.start();
    let url = format!("{}/api/products?q=sony&sort=price", host.url);
    println!("Product search (GET /api/products?q=sony&sort=price, embedded defaults), 5 s of oha per row:");
    for concurrency in [1, 16] {
        let load = tokio::task::block_in_place(|| oha(&generator, &url, concurrency));
        println!("  {concurrency:>3} concurrent: {:.0} rps, p50 {:.2} ms, p99 {:.2} ms", load.rps, load.p50_ms, load.p99_ms);
    }
}
