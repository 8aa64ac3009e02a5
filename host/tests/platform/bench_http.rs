//! The HTTP benchmark: the same component served by `estore up` and by `wasmtime
//! serve`, loaded by the same generator (oha), side by side in one run; then service
//! chaining on estore. `scripts/bench` installs wasmtime-cli 48 and oha from
//! crates.io into `/var/cache/estore/tools` first; without them this says so and
//! measures nothing.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{App, wasm_dir};
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
    let (Some(wasmtime), Some(generator)) = (tool("wasmtime"), tool("oha")) else {
        println!("HTTP: wasmtime-cli or oha is not installed in /var/cache/estore/tools; scripts/bench installs them");
        return;
    };
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
    let wasm = wasm_dir().join("benchcheck.wasm");
    let wasmtime_serve = WasmtimeServe::start(&wasmtime, &wasm);
    println!("HTTP: the same component (benchcheck: answers `ok`), 5 s of oha per row, one after the other:");
    println!("  {:>5}  {:>22}  {:>22}  {:>6}", "conc.", "estore rps (p50/p99 ms)", "wasmtime rps (p50/p99)", "ratio");
    for concurrency in [1, 16, 64] {
        let ours = oha(&generator, &host.url("/"), concurrency);
        let theirs = oha(&generator, &format!("http://127.0.0.1:{}/", wasmtime_serve.1), concurrency);
        println!(
            "  {concurrency:>5}  {:>8.0} ({:>5.2}/{:>5.2})  {:>8.0} ({:>5.2}/{:>5.2})  {:>6.2}",
            ours.rps,
            ours.p50_ms,
            ours.p99_ms,
            theirs.rps,
            theirs.p50_ms,
            theirs.p99_ms,
            ours.rps / theirs.rps
        );
        if ours.rps < theirs.rps {
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
