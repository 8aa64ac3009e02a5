//! Starts the real `estore` binary on real components, built once per test run by the
//! real build (`estore build` on the fixtures' manifest).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, LazyLock, Mutex, Once};
use std::time::{Duration, Instant};

/// The host binary under test: the one cargo built beside the running test binary
/// (`target/<profile>/estore`, which cargo builds for the `estore` package's tests),
/// or the one named by `ESTORE_BIN` (`scripts/bench` points it at the release build).
pub static ESTORE: LazyLock<PathBuf> = LazyLock::new(|| {
    std::env::var_os("ESTORE_BIN").map(PathBuf::from).unwrap_or_else(|| profile_dir().join("estore"))
});

/// `target/<profile>`: the test binary runs from its `deps` folder.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>").to_owned()
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the workspace folder")
}

/// Where the fixture components land after the build.
pub fn wasm_dir() -> PathBuf {
    workspace().join("target/wasm32-wasip2/release")
}

pub fn wasm_p1_dir() -> PathBuf {
    workspace().join("target/wasm32-wasip1/release")
}

/// Builds every fixture component once per test binary run.
pub fn build_fixtures() {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let manifest = workspace().join("host/tests/fixtures/spin.toml");
        let output = Command::new(&*ESTORE).args(["build", "-f"]).arg(&manifest).output().expect("run estore build");
        assert!(
            output.status.success(),
            "estore build of the fixtures failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    });
}

/// Compiled components are shared between tests (keyed by digest, so always right).
pub fn compiled_cache() -> PathBuf {
    profile_dir().join("../tmp/estore-compiled")
}

/// A manifest with one component at one route; `source` may use `{wasm}`/`{wasm_p1}`.
pub fn one_component(id: &str, route: &str, source: &str) -> String {
    format!(
        "spin_manifest_version = 2\n[application]\nname = \"{id}-app\"\n\
         [[trigger.http]]\nroute = \"{route}\"\ncomponent = \"{id}\"\n\
         [component.{id}]\nsource = \"{source}\"\n"
    )
}

/// An application: its manifest, and a folder of the test's for its state (and, for
/// an application the test writes, the manifest too).
pub struct App {
    pub dir: tempfile::TempDir,
    manifest: PathBuf,
}

impl App {
    /// An application the test writes; `{wasm}` and `{wasm_p1}` in the text stand for
    /// the folders of the built fixtures.
    pub fn new(manifest: &str) -> App {
        build_fixtures();
        let dir = tempfile::tempdir().expect("temp dir");
        let text = manifest
            .replace("{wasm}", &wasm_dir().display().to_string())
            .replace("{wasm_p1}", &wasm_p1_dir().display().to_string());
        let manifest = dir.path().join("spin.toml");
        std::fs::write(&manifest, text).expect("write manifest");
        App { dir, manifest }
    }

    /// The Spin application `host/tests/fixtures/<name>` as its author left it: built
    /// by its own build commands (`estore build`, once per test run) and served from
    /// its own manifest, unmodified.
    pub fn spin(name: &str) -> App {
        let manifest = workspace().join("host/tests/fixtures").join(name).join("spin.toml");
        static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
        let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
        if !built.iter().any(|b| b == name) {
            // Its own target folder, as its author's `cargo build` would use.
            let output = Command::new(&*ESTORE)
                .args(["build", "-f"])
                .arg(&manifest)
                .env_remove("CARGO_TARGET_DIR")
                .output()
                .expect("run estore build");
            assert!(
                output.status.success(),
                "estore build of {name} failed:\n{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            built.push(name.to_owned());
        }
        App { dir: tempfile::tempdir().expect("temp dir"), manifest }
    }

    pub fn manifest(&self) -> PathBuf {
        self.manifest.clone()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn command(&self) -> Command {
        self.command_with_cache(&compiled_cache())
    }

    pub fn command_with_cache(&self, cache: &Path) -> Command {
        self.command_on(&self.state_dir(), cache)
    }

    /// `estore up` on a state dir of the caller's: another host of the application.
    pub fn command_on(&self, state_dir: &Path, cache: &Path) -> Command {
        self.command_of(&ESTORE, state_dir, cache)
    }

    /// [`App::command_on`] with another build of the host (the benchmark's dev build).
    pub fn command_of(&self, estore: &Path, state_dir: &Path, cache: &Path) -> Command {
        let mut command = Command::new(estore);
        command
            .arg("up")
            .arg("-f")
            .arg(self.manifest())
            .args(["--listen", "127.0.0.1:0", "--state-dir"])
            .arg(state_dir)
            .arg("--cache-dir")
            .arg(cache)
            .env("RUST_LOG", "info")
            .env_remove("ESTORE_LISTEN");
        command
    }

    pub fn start(&self) -> Host {
        Host::start(self.command())
    }

    /// `estore up` with `--runtime-config-file config`.
    pub fn start_with_runtime_config(&self, config: &Path) -> Host {
        let mut command = self.command();
        command.arg("--runtime-config-file").arg(config);
        Host::start(command)
    }

    /// Runs `estore up` expecting it to fail at start; returns its stderr.
    pub fn start_failure(&self) -> String {
        let output = self.command().stdin(Stdio::null()).output().expect("run estore up");
        assert!(!output.status.success(), "estore up should have failed; stdout: {}", String::from_utf8_lossy(&output.stdout));
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "estore panicked: {stderr}");
        assert!(!stderr.contains("stack backtrace"), "estore printed a backtrace: {stderr}");
        stderr
    }
}

/// A running `estore up`.
pub struct Host {
    child: Child,
    pub url: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Host {
    pub fn start(mut command: Command) -> Host {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn estore up");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("Serving ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(300)) {
            Ok(url) => Host { child, url, log },
            Err(_) => {
                let _ = child.kill();
                panic!("estore did not start; log:\n{}", log.lock().unwrap().join("\n"));
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits up to a few seconds for a log line containing every one of `parts`.
    pub fn wait_for_log(&self, parts: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(line) = self.log.lock().unwrap().iter().find(|l| parts.iter().all(|p| l.contains(p))) {
                return line.clone();
            }
            if Instant::now() > deadline {
                panic!("no log line with {parts:?}; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait estore") {
                return status;
            }
            assert!(Instant::now() < deadline, "estore did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// How much of a host's log a failing test shows.
const LOG_LINES_ON_FAILURE: usize = 300;

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A test that failed while this host ran shows the end of its log (the test
        // harness prints a failing test's output), so a failure in CI can be read.
        if std::thread::panicking() {
            let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
            let tail = &log[log.len().saturating_sub(LOG_LINES_ON_FAILURE)..];
            eprintln!("--- the last {} lines of the log of estore on {} ---\n{}", tail.len(), self.url, tail.join("\n"));
        }
    }
}

/// `GET` on the admin listener of the host running on `state_dir`, without a token
/// (health and metrics need none): status and body text.
pub async fn admin_get(state_dir: &Path, path: &str) -> (u16, String) {
    let address = std::fs::read_to_string(state_dir.join("admin/address")).expect("the admin address");
    let url = format!("http://{}{path}", address.trim());
    let response = reqwest::get(&url).await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    (response.status().as_u16(), response.text().await.unwrap_or_default())
}

/// The value of metric `name` with (at least) `labels` in Prometheus text `metrics`.
pub fn metric(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} ")))
        .find(|line| labels.iter().all(|(key, value)| line.contains(&format!("{key}=\"{value}\""))))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

pub async fn get(url: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(url).await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("GET {url}: not JSON ({status}): {text}"));
    (status, json)
}
