//! The HTTP benchmark: the same component served by `estore up` and by `wasmtime
//! serve`, loaded by the same generator (oha), side by side in one run; then service
//! chaining on estore. `scripts/bench` installs wasmtime-cli 48 and oha from
//! crates.io into `/var/cache/estore/tools` first; without them this says so and
//! measures nothing.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{App, wasm_dir};

fn tool(name: &str) -> Option<PathBuf> {
    let root = std::env::var("ESTORE_TOOLS").unwrap_or_else(|_| "/var/cache/estore/tools".to_owned());
    let path = PathBuf::from(root).join("bin").join(name);
    path.exists().then_some(path)
}

/// Requests per second and p50/p99 latency of `url` at `concurrency`, for 5 s.
fn load(oha: &PathBuf, url: &str, concurrency: u32) -> (f64, f64, f64) {
    let output = Command::new(oha)
        .args(["-z", "5s", "-c", &concurrency.to_string(), "--no-tui", "--output-format", "json", url])
        .output()
        .expect("run oha");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("oha's report is not JSON ({e}): {}", String::from_utf8_lossy(&output.stderr)));
    let ms = |key: &str| report["latencyPercentiles"][key].as_f64().unwrap_or(f64::NAN) * 1000.0;
    (report["summary"]["requestsPerSec"].as_f64().unwrap_or(f64::NAN), ms("p50"), ms("p99"))
}

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
    let (Some(wasmtime), Some(oha)) = (tool("wasmtime"), tool("oha")) else {
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
        let (ours, ours_p50, ours_p99) = load(&oha, &host.url("/"), concurrency);
        let (theirs, theirs_p50, theirs_p99) = load(&oha, &format!("http://127.0.0.1:{}/", wasmtime_serve.1), concurrency);
        println!(
            "  {concurrency:>5}  {ours:>8.0} ({ours_p50:>5.2}/{ours_p99:>5.2})  {theirs:>8.0} ({theirs_p50:>5.2}/{theirs_p99:>5.2})  {:>6.2}",
            ours / theirs
        );
        if ours < theirs {
            println!("         estore is slower than wasmtime serve here");
        }
    }
    let chained = host.url("/chain/?action=fetch&url=http%3A%2F%2Fbench.spin.internal%2F");
    let (rps, p50, p99) = load(&oha, &chained, 16);
    println!("  service chaining (hello calls bench in process), 16 concurrent: {rps:.0} rps ({p50:.2}/{p99:.2} ms)");
}
