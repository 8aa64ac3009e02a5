//! The HTTP benchmark: the same component served by `estore up` and by `wasmtime
//! serve`, loaded by the same generator (oha), side by side in one run; with
//! `ESTORE_DEV_BIN` (which `scripts/bench` sets), also by the dev build of estore, the
//! one `scripts/start` and the tests run, as a ratio to the release build. Then service
//! chaining on estore. `scripts/bench` installs wasmtime-cli 50 and oha from
//! crates.io into `/var/cache/estore/tools` first; without them this says so and
//! measures nothing.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{App, Host, compiled_cache, wasm_dir};
use crate::loadgen::{oha, tool};

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
