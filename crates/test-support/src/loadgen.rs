//! The benchmarks' load generator: oha, installed by `scripts/bench` from crates.io
//! into `$ESTORE_TOOLS` (default `/var/cache/estore/tools`) with the other anchors.

use std::path::PathBuf;
use std::process::Command;

/// An installed benchmark tool (`wasmtime`, `oha`), if there is one.
pub fn tool(name: &str) -> Option<PathBuf> {
    let root = std::env::var("ESTORE_TOOLS").unwrap_or_else(|_| "/var/cache/estore/tools".to_owned());
    let path = PathBuf::from(root).join("bin").join(name);
    path.exists().then_some(path)
}

/// What a run of load at one concurrency measured.
pub struct Load {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Answers with a 2xx status.
    pub ok: u64,
    /// Answers with another status, and requests that got no answer.
    pub failed: u64,
}

/// 5 s of GET `url` from oha at `concurrency`.
pub fn oha(oha: &PathBuf, url: &str, concurrency: u32) -> Load {
    oha_for(oha, url, concurrency, 5)
}

/// `seconds` of GET `url` from oha at `concurrency`.
pub fn oha_for(oha: &PathBuf, url: &str, concurrency: u32, seconds: u32) -> Load {
    let output = Command::new(oha)
        .args(["-z", &format!("{seconds}s"), "-c", &concurrency.to_string(), "--no-tui", "--output-format", "json", url])
        .output()
        .expect("run oha");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("oha's report is not JSON ({e}): {}", String::from_utf8_lossy(&output.stderr)));
    let ms = |key: &str| report["latencyPercentiles"][key].as_f64().unwrap_or(f64::NAN) * 1000.0;
    let count = |map: &serde_json::Value, ok: bool| {
        map.as_object().map_or(0, |m| {
            m.iter().filter(|(status, _)| status.starts_with('2') == ok).filter_map(|(_, n)| n.as_u64()).sum::<u64>()
        })
    };
    let statuses = &report["statusCodeDistribution"];
    // The requests still in flight when the run's time is up are oha's "aborted due
    // to deadline": the end of the run, not a failure of the server.
    let errors = report["errorDistribution"].as_object().map_or(0, |m| {
        m.iter().filter(|(why, _)| !why.contains("aborted due to deadline")).filter_map(|(_, n)| n.as_u64()).sum::<u64>()
    });
    Load {
        rps: report["summary"]["requestsPerSec"].as_f64().unwrap_or(f64::NAN),
        p50_ms: ms("p50"),
        p99_ms: ms("p99"),
        ok: count(statuses, true),
        failed: count(statuses, false) + errors,
    }
}
