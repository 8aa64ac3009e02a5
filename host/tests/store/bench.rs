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

/// How long an arrival's order may take to be CONFIRMED before it counts as failed.
const ORDER_PATIENCE: Duration = Duration::from_secs(30);

/// What became of one arrival of the open-loop generator.
enum Outcome {
    /// CONFIRMED on the status stream, this long after `POST /api/orders`.
    Confirmed(Duration),
    /// The cart, the checkout or the stream (the step named) answered this status.
    Refused(&'static str, u16),
    /// The order was cancelled (stock, payment).
    Cancelled,
    /// Not CONFIRMED within [`ORDER_PATIENCE`], or the stream ended before.
    Lost,
}

/// One shopper's order: one unit of `product` into the cart, then the clock runs from
/// `POST /api/orders` until the order's status stream says CONFIRMED.
async fn one_order(shopper: &Client, product: i64) -> Outcome {
    let added = shopper.post("/api/cart/items", json!({"product_id": product, "quantity": 1})).await;
    if added.status != 201 {
        return Outcome::Refused("the cart", added.status);
    }
    let begun = Instant::now();
    let placed = checkout(shopper, APPROVED_CARD).await;
    if placed.status != 202 {
        return Outcome::Refused("the checkout", placed.status);
    }
    let path = format!("/api/orders/{}/events", placed.body["id"].as_str().unwrap_or_default());
    let (answer, stream) = shopper.events(&path, Some("0")).await;
    let Some(mut stream) = stream else { return Outcome::Refused("the status stream", answer.status) };
    loop {
        let left = ORDER_PATIENCE.saturating_sub(begun.elapsed());
        // The outer timeout fires first, so the stream's own (which panics) never does.
        match tokio::time::timeout(left, stream.next(left + Duration::from_secs(1))).await {
            Ok(Some(event)) => match event.data["status"].as_str() {
                Some("CONFIRMED") => return Outcome::Confirmed(begun.elapsed()),
                Some("CANCELLED") => return Outcome::Cancelled,
                _ => {}
            },
            Ok(None) | Err(_) => return Outcome::Lost,
        }
    }
}

/// The registered shoppers with no order under way.
type Shoppers = std::sync::Arc<tokio::sync::Mutex<Vec<Client>>>;

/// One run of the open-loop generator: what its arrivals came to, and the CPU the
/// host and the machine used meanwhile.
struct Sustained {
    rate: u32,
    outcomes: Vec<Outcome>,
    /// Arrivals that found no free shopper (the generator's own shortfall: the run
    /// then did not offer its rate, and says so).
    unoffered: usize,
    wall: Duration,
    host_cores: f64,
    machine_cores: f64,
}

impl Sustained {
    fn confirmed(&self) -> Vec<Duration> {
        let mut took: Vec<Duration> =
            self.outcomes.iter().filter_map(|o| if let Outcome::Confirmed(d) = o { Some(*d) } else { None }).collect();
        took.sort();
        took
    }

    fn failures(&self) -> usize {
        self.outcomes.len() - self.confirmed().len()
    }

    /// p99 of the confirmed orders, counting every failed arrival as slower than any.
    fn p99_with_failures(&self) -> Duration {
        let took = self.confirmed();
        let rank = ((self.outcomes.len() as f64) * 0.99) as usize;
        took.get(rank).copied().unwrap_or(Duration::MAX)
    }

    fn print(&self) {
        let took = self.confirmed();
        let failures: Vec<String> = self
            .outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Confirmed(_) => None,
                Outcome::Refused(step, status) => Some(format!("{step} answered {status}")),
                Outcome::Cancelled => Some("cancelled".to_owned()),
                Outcome::Lost => Some(format!("not confirmed within {ORDER_PATIENCE:?}")),
            })
            .fold(std::collections::BTreeMap::<String, usize>::new(), |mut counts, what| {
                *counts.entry(what).or_default() += 1;
                counts
            })
            .into_iter()
            .map(|(what, n)| format!("{n}× {what}"))
            .collect();
        let percentiles = if took.len() >= 1000 {
            format!("p50 {:?}, p99 {:?}, max {:?}", quantile(&took, 0.5), quantile(&took, 0.99), quantile(&took, 1.0))
        } else {
            format!("fewer than 1,000 samples: p50 {:?}, max {:?}", quantile(&took, 0.5), quantile(&took, 1.0))
        };
        let marked = if failures.is_empty() && self.unoffered == 0 { String::new() } else { " — RUN WITH ERRORS".to_owned() };
        println!(
            "  {:>3}/s offered for {:.0} s: {} arrivals, {} confirmed ({:.1}/s); {percentiles}; host {:.2} cores, machine {:.2} of {}; \
             failed: {}; arrivals without a free shopper: {}{marked}",
            self.rate,
            self.wall.as_secs_f64(),
            self.outcomes.len(),
            took.len(),
            took.len() as f64 / self.wall.as_secs_f64(),
            self.host_cores,
            self.machine_cores,
            std::thread::available_parallelism().map(usize::from).unwrap_or(1),
            if failures.is_empty() { "none".to_owned() } else { failures.join(", ") },
            self.unoffered,
        );
    }
}

/// Shoppers arrive `rate` times a second for `secs`, whether or not earlier orders
/// are done (open loop: a slow store does not slow the arrivals). Each arrival takes
/// a registered shopper who has no order under way, and returns it when its order is
/// done. The CPU is measured over the arrivals and the orders they started.
async fn sustained(pid: u32, shoppers: &Shoppers, rate: u32, secs: u64) -> Sustained {
    settle(pid).await;
    let arrivals = u64::from(rate) * secs;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    // A generator that fell behind catches up: the store is offered every arrival.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let (cpu_before, machine_before, started) = (cpu_time(pid), machine_busy_time(), Instant::now());
    let mut orders = Vec::new();
    let mut unoffered = 0;
    for n in 0..arrivals {
        ticks.tick().await;
        let Some(shopper) = shoppers.lock().await.pop() else {
            unoffered += 1;
            continue;
        };
        // Demo products with stock raised for the run: 10, 8, 12.
        let product = [10, 8, 12][(n % 3) as usize];
        let free = shoppers.clone();
        orders.push(tokio::spawn(async move {
            let outcome = one_order(&shopper, product).await;
            free.lock().await.push(shopper);
            outcome
        }));
    }
    let mut outcomes = Vec::new();
    for order in orders {
        outcomes.push(order.await.expect("an arrival's task"));
    }
    let wall = started.elapsed();
    let cores = |used: Duration| used.as_secs_f64() / wall.as_secs_f64();
    Sustained {
        rate,
        outcomes,
        unoffered,
        wall,
        host_cores: cores(cpu_time(pid) - cpu_before),
        machine_cores: cores(machine_busy_time() - machine_before),
    }
}

/// Waits until the host has worked off what an earlier run left (shipping, e-mails,
/// the outbox): less than a tenth of a core over a second, or a minute at most.
async fn settle(pid: u32) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let before = cpu_time(pid);
        tokio::time::sleep(Duration::from_secs(1)).await;
        if cpu_time(pid) - before < Duration::from_millis(100) {
            return;
        }
    }
}

/// Sustained checkout (#20): the open-loop generator at 50 orders/s for 60 s, then at
/// rising rates to find the highest whose p99 (failed arrivals counted as slowest)
/// stays under `aim`. A 10 s warm-up at 20/s comes first, and each run starts once
/// the host has settled from the one before.
async fn checkout_sustained(backends: Backends, aim: Duration) {
    const SHOPPERS: usize = 400;
    const SECONDS: u64 = 60;
    let store = Store::new(backends);
    let host = store.start();
    let client = Client::new(&host);
    let admin = client.admin().await;
    for product in [10, 8, 12] {
        let stocked = admin.put(&format!("/api/inventory/{product}"), json!({"available": 1_000_000})).await;
        assert_eq!(stocked.status, 200, "{stocked:?}");
    }
    let mut registered = Vec::new();
    for n in 0..SHOPPERS {
        registered.push(register(&client, &format!("sustained_{n}"), json!({})).await.0);
    }
    let shoppers: Shoppers = std::sync::Arc::new(tokio::sync::Mutex::new(registered));
    let pid = host.pid();
    println!(
        "Sustained checkout on {backends:?}: shoppers arrive at a fixed rate (open loop), {SHOPPERS} registered shoppers, \
         each order timed from POST /api/orders to CONFIRMED on its status stream (failed after {ORDER_PATIENCE:?}); \
         aim: p99 under {aim:?}; after a 10 s warm-up at 20/s"
    );
    sustained(pid, &shoppers, 20, 10).await;
    // `ESTORE_BENCH_RATES=40,45` runs those rates alone, e.g. to profile the host
    // (`perf record -p <pid>`) at a rate it cannot hold.
    if let Ok(rates) = std::env::var("ESTORE_BENCH_RATES") {
        println!("  host pid {pid}");
        for rate in rates.split(',').filter_map(|r| r.trim().parse().ok()) {
            sustained(pid, &shoppers, rate, SECONDS).await.print();
        }
        return;
    }
    let holds = |run: &Sustained| run.failures() == 0 && run.unoffered == 0 && run.p99_with_failures() < aim;
    let at_fifty = sustained(pid, &shoppers, 50, SECONDS).await;
    at_fifty.print();
    // Upwards from 50/s while the aim holds, else downwards until it does.
    let rates: &[u32] = if holds(&at_fifty) { &[60, 80, 100] } else { &[40, 30, 20] };
    let mut highest = holds(&at_fifty).then_some(50);
    for &rate in rates {
        let run = sustained(pid, &shoppers, rate, SECONDS).await;
        run.print();
        match (holds(&run), rate > 50) {
            (true, true) => highest = Some(rate),
            (false, true) => break,
            (true, false) => {
                highest = Some(rate);
                break;
            }
            (false, false) => {}
        }
    }
    match highest {
        Some(rate) => println!("  the highest rate tried whose p99 stays under {aim:?} without errors: {rate}/s"),
        None => println!("  no rate tried keeps p99 under {aim:?} without errors"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: scripts/bench runs it"]
async fn bench_checkout_sustained_on_the_embedded_defaults() {
    checkout_sustained(Backends::Embedded, Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: scripts/bench runs it"]
async fn bench_checkout_sustained_on_kafka_and_postgres() {
    checkout_sustained(Backends::KafkaPostgres, Duration::from_secs(1)).await;
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
