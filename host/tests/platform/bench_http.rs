//! The HTTP benchmark: the same component served by `estore up` and by `wasmtime
//! serve`, loaded by the same generator (oha), side by side in one run; with
//! `ESTORE_DEV_BIN` (which `scripts/bench` sets), also by the dev build of estore, the
//! one `scripts/start` and the tests run, as a ratio to the release build. Then service
//! chaining on estore. And WASI 0.3 instance reuse: the same spin-sdk 7 hello reused
//! by estore and by `wasmtime serve` of the same wasmtime, against fresh instances. `scripts/bench` installs wasmtime-cli 50 and oha from
//! crates.io into `/var/cache/estore/tools` first; without them this says so and
//! measures nothing.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{App, Host, compiled_cache, wasm_dir};
use crate::loadgen::{Load, oha, oha_for, tool};

/// `wasmtime serve` of `wasm` on a free port; killed on drop.
struct WasmtimeServe(Child, u16);

impl WasmtimeServe {
    fn start(wasmtime: &PathBuf, wasm: &PathBuf) -> WasmtimeServe {
        let port = crate::watched::free_port();
        let child = Command::new(wasmtime)
            .args(["serve", "-S", "cli", "--addr", &format!("127.0.0.1:{port}")])
            .arg(wasm)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wasmtime serve");
        let serve = WasmtimeServe(child, port);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return serve;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("wasmtime serve did not listen on {port}");
    }
}

impl Drop for WasmtimeServe {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "a benchmark: scripts/bench runs it"]
fn bench_http_against_wasmtime_serve() {
    let Some(generator) = tool("oha") else {
        println!("HTTP: oha is not installed in /var/cache/estore/tools; scripts/bench installs it");
        return;
    };
    let wasmtime = tool("wasmtime");
    if wasmtime.is_none() {
        println!("HTTP: wasmtime-cli is not installed in /var/cache/estore/tools (scripts/bench installs it): estore alone");
    }
    let app = App::new(
        r#"spin_manifest_version = 2
[application]
name = "bench-http"
[[trigger.http]]
route = "/..."
component = "bench"
[[trigger.http]]
route = "/chain/..."
component = "hello"
[component.bench]
source = "{wasm}/benchcheck.wasm"
[component.hello]
source = "{wasm}/hello.wasm"
key_value_stores = ["default"]
allowed_outbound_hosts = ["http://bench.spin.internal"]
[component.hello.variables]
greeting = "hi"
target = "bench"
"#,
    );
    let host = app.start();
    // The dev build on a state dir of its own (the first host holds the app's).
    let dev_state = tempfile::tempdir().expect("a state dir for the dev host");
    let dev = std::env::var_os("ESTORE_DEV_BIN")
        .map(|bin| Host::start(app.command_of(&PathBuf::from(bin), dev_state.path(), &compiled_cache())));
    let wasm = wasm_dir().join("benchcheck.wasm");
    let wasmtime_serve = wasmtime.map(|wasmtime| WasmtimeServe::start(&wasmtime, &wasm));
    let wasmtime_url = wasmtime_serve.as_ref().map(|serve| format!("http://127.0.0.1:{}/", serve.1));
    println!("HTTP: the same component (benchcheck: answers `ok`), 5 s of oha per row and server, in turn:");
    println!(
        "  {:>5}  {:>22}  {:>22}  {:>6}  {:>22}  {:>9}",
        "conc.", "estore rps (p50/p99 ms)", "wasmtime rps (p50/p99)", "ratio", "dev estore rps", "dev/rel."
    );
    for concurrency in [1, 16, 64] {
        let ours = oha(&generator, &host.url("/"), concurrency);
        let theirs = wasmtime_url.as_ref().map(|url| oha(&generator, url, concurrency));
        let dev = dev.as_ref().map(|dev| oha(&generator, &dev.url("/"), concurrency));
        let (theirs_column, ratio) = match &theirs {
            Some(theirs) => (
                format!("{:>8.0} ({:>5.2}/{:>5.2})", theirs.rps, theirs.p50_ms, theirs.p99_ms),
                format!("{:.2}", ours.rps / theirs.rps),
            ),
            None => ("(no wasmtime-cli)".to_owned(), "-".to_owned()),
        };
        let (dev_column, dev_ratio) = match &dev {
            Some(dev) => (
                format!("{:>8.0} ({:>5.2}/{:>5.2})", dev.rps, dev.p50_ms, dev.p99_ms),
                format!("{:.2}", dev.rps / ours.rps),
            ),
            None => ("(no ESTORE_DEV_BIN)".to_owned(), "-".to_owned()),
        };
        println!(
            "  {concurrency:>5}  {:>8.0} ({:>5.2}/{:>5.2})  {theirs_column:>22}  {ratio:>6}  {dev_column:>22}  {dev_ratio:>9}",
            ours.rps, ours.p50_ms, ours.p99_ms,
        );
        if theirs.is_some_and(|theirs| ours.rps < theirs.rps) {
            println!("         estore is slower than wasmtime serve here");
        }
    }
    let chained = host.url("/chain/?action=fetch&url=http%3A%2F%2Fbench.spin.internal%2F");
    let chain = oha(&generator, &chained, 16);
    println!(
        "  service chaining (hello calls bench in process), 16 concurrent: {:.0} rps ({:.2}/{:.2} ms)",
        chain.rps, chain.p50_ms, chain.p99_ms
    );
}

/// One server of a side-by-side comparison: a name and the URL it is loaded at.
struct Side {
    name: &'static str,
    url: String,
}

/// The runs of each side at one concurrency, after a warm-up of each: three rounds,
/// the sides in turn, the order reversed every other round; each side's median run
/// (by requests per second) is its figure.
fn side_by_side(generator: &PathBuf, sides: &[Side], concurrency: u32) -> Vec<Vec<Load>> {
    for side in sides {
        oha_for(generator, &side.url, concurrency, 2);
    }
    let mut runs: Vec<Vec<Load>> = sides.iter().map(|_| Vec::new()).collect();
    for round in 0..3 {
        let mut order: Vec<usize> = (0..sides.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            runs[i].push(oha_for(generator, &sides[i].url, concurrency, 5));
        }
    }
    for side in &mut runs {
        side.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    }
    runs
}

#[test]
#[ignore = "a benchmark: scripts/bench runs it"]
fn bench_wasi_p3_reuse() {
    let Some(generator) = tool("oha") else {
        println!("WASI 0.3: oha is not installed in /var/cache/estore/tools; scripts/bench installs it");
        return;
    };
    // The same WASI 0.3 hello (spin4's, spin-sdk 7), reused and fresh; and a WASI
    // 0.2 hello (benchcheck), fresh per request as every WASI 0.2 host serves it.
    let hello = App::spin("spin4").manifest().with_file_name("target/wasm32-wasip2/release/hello.wasm");
    let app = |limits: &str, source: &str| {
        App::new(&format!(
            "spin_manifest_version = 2\n[application]\nname = \"bench-p3\"\n\
             [[trigger.http]]\nroute = \"/...\"\ncomponent = \"hello\"\n\
             [component.hello]\nsource = \"{source}\"\n[component.hello.limits]\n{limits}\n"
        ))
    };
    let hello_source = hello.display().to_string();
    let reused = app("", &hello_source);
    let fresh = app("max_instance_reuse_count = 1", &hello_source);
    let p2 = app("", "{wasm}/benchcheck.wasm");
    let hosts = [reused.start(), fresh.start(), p2.start()];
    let wasmtime_serve = tool("wasmtime").map(|wasmtime| WasmtimeServe::start(&wasmtime, &hello));
    let mut sides = vec![
        Side { name: "estore, WASI 0.3 reused", url: hosts[0].url("/hello") },
        Side { name: "estore, WASI 0.3 fresh", url: hosts[1].url("/hello") },
        Side { name: "estore, WASI 0.2 fresh", url: hosts[2].url("/") },
    ];
    match &wasmtime_serve {
        Some(serve) => sides.insert(1, Side { name: "wasmtime serve 50, reused", url: format!("http://127.0.0.1:{}/hello", serve.1) }),
        None => println!("WASI 0.3: wasmtime-cli is not installed in /var/cache/estore/tools (scripts/bench installs it)"),
    }
    println!(
        "WASI 0.3 reuse: the same spin-sdk 7 hello; estore's defaults (128 requests per instance, 16 at once) and \
         wasmtime serve's (the same); a WASI 0.2 hello fresh per request. A 2 s warm-up each, then 3 rounds of 5 s \
         each, order reversed every other round; the median run's figures, the range of the three, and every \
         failed request:"
    );
    for concurrency in [16, 64] {
        let runs = side_by_side(&generator, &sides, concurrency);
        println!("  {concurrency} connections:");
        println!("    {:<28} {:>9} {:>17} {:>9} {:>9} {:>9} {:>7}", "server", "rps", "(min-max)", "p50 ms", "p99 ms", "answers", "failed");
        for (side, runs) in sides.iter().zip(&runs) {
            let median = &runs[1];
            let failed: u64 = runs.iter().map(|r| r.failed).sum();
            let answers: u64 = runs.iter().map(|r| r.ok + r.failed).sum();
            println!(
                "    {:<28} {:>9.0} {:>17} {:>9.2} {:>9.2} {:>9} {:>7}{}",
                side.name,
                median.rps,
                format!("({:.0}-{:.0})", runs[0].rps, runs[2].rps),
                median.p50_ms,
                median.p99_ms,
                answers,
                failed,
                if failed > 0 { "  (errors: not a valid figure)" } else { "" }
            );
        }
        let rps = |name: &str| sides.iter().zip(&runs).find(|(s, _)| s.name == name).map(|(_, r)| r[1].rps);
        let ours = rps("estore, WASI 0.3 reused").unwrap_or(f64::NAN);
        if let Some(theirs) = rps("wasmtime serve 50, reused") {
            println!("    estore reused / wasmtime serve reused: {:.2}", ours / theirs);
        }
        if let Some(fresh) = rps("estore, WASI 0.2 fresh") {
            println!("    estore WASI 0.3 reused / WASI 0.2 fresh: {:.2}", ours / fresh);
        }
    }
}
