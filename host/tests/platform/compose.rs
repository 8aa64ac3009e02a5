//! The deployment files: `docker-compose.yml`, `Dockerfile`, `.dockerignore` and
//! `deploy/`. No Docker engine runs here (nor in CI), so these tests check what can be
//! checked without one:
//!
//! - the compose tool itself validates `docker-compose.yml` (`config`, which needs no
//!   engine): Compose v2 (`docker compose` or a v2 `docker-compose`) with
//!   `config --format json`, or Debian 12's Compose v1 (`docker-compose`, Python, what
//!   `scripts/setup` installs), whose YAML output is turned into JSON by the Python
//!   that runs Compose v1 (it has PyYAML, Compose needs it);
//! - the normalised config wires what the README promises: kafka, postgres and store,
//!   each with a health check, the store starting after the other two are healthy and
//!   its runtime config pointing at them;
//! - the runtime config parses with the real loader;
//! - the Dockerfile copies only what exists, and the runtime image's `/app`, staged by
//!   `deploy/stage-app` as the Dockerfile does it, is enough for `estore up` to serve.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

use estore_manifest::Manifest;
use estore_runtime_config::{RuntimeConfig, SqlBackend};

use crate::harness::{ESTORE, Host, compiled_cache, get, workspace};

const SERVICES: [&str; 3] = ["kafka", "postgres", "store"];

/// The store's secrets, which compose takes from its environment and hands the store
/// as the manifest's variables.
const SECRETS: [(&str, &str, &str); 6] = [
    ("ESTORE_TOKEN_SECRET", "SPIN_VARIABLE_TOKEN_SECRET", "compose-test-token-secret-0123456789abcdef"),
    ("ESTORE_ADMIN_PASSWORD", "SPIN_VARIABLE_ADMIN_PASSWORD", "compose-test-admin-password"),
    ("ESTORE_DHL_WEBHOOK_SECRET", "SPIN_VARIABLE_DHL_WEBHOOK_SECRET", "compose-test-dhl-webhook-secret-0123456789"),
    ("ESTORE_UPS_WEBHOOK_SECRET", "SPIN_VARIABLE_UPS_WEBHOOK_SECRET", "compose-test-ups-webhook-secret-0123456789"),
    ("ESTORE_DPD_WEBHOOK_SECRET", "SPIN_VARIABLE_DPD_WEBHOOK_SECRET", "compose-test-dpd-webhook-secret-0123456789"),
    ("ESTORE_CARD_VAULT_KEY", "SPIN_VARIABLE_CARD_VAULT_KEY", "compose-test-card-vault-key-0123456789abcd"),
];

/// The compose file as the compose tool read it: validated, normalised (relative
/// paths made absolute), as JSON. Computed once per test run.
fn compose_config() -> &'static Value {
    static CONFIG: OnceLock<Value> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let file = workspace().join("docker-compose.yml");
        let (tool, output) = run_compose_config(&file, &SECRETS.map(|(name, _, value)| (name, value)));
        assert!(
            output.status.success(),
            "`{tool} -f {} config` refused the compose file:\n{}{}",
            file.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8(output.stdout).expect("compose config prints UTF-8");
        if let Ok(json) = serde_json::from_str::<Value>(&text) {
            return json;
        }
        yaml_to_json(&text)
    })
}

/// Runs `config` with whichever compose is installed, with `environment` and none of
/// the store's secrets from the test's own; returns its name and output (JSON for
/// Compose v2, YAML for v1).
fn run_compose_config(file: &Path, environment: &[(&str, &str)]) -> (String, Output) {
    let run = |program: &str, args: &[&str]| {
        let mut command = Command::new(program);
        for (name, ..) in SECRETS {
            command.env_remove(name);
        }
        command
            .args(args)
            .arg("-f")
            .arg(file)
            .arg("config")
            .args(if program == "docker" || !is_compose_v1() { &["--format", "json"][..] } else { &[][..] })
            .current_dir(workspace())
            .env_remove("COMPOSE_FILE")
            .env_remove("COMPOSE_PROFILES")
            .envs(environment.iter().copied())
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"))
    };
    let plugin = Command::new("docker").args(["compose", "version"]).output().is_ok_and(|o| o.status.success());
    if plugin {
        return ("docker compose".into(), run("docker", &["compose"]));
    }
    assert!(
        docker_compose_version().is_some(),
        "neither `docker compose` nor `docker-compose` is installed: run scripts/setup \
         (Debian: apt-get install docker-compose)"
    );
    ("docker-compose".into(), run("docker-compose", &[]))
}

fn docker_compose_version() -> Option<String> {
    let output = Command::new("docker-compose").args(["version", "--short"]).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().trim_start_matches('v').to_owned())
}

fn is_compose_v1() -> bool {
    docker_compose_version().is_some_and(|v| v.starts_with("1."))
}

/// Compose v1 prints YAML only. It is a Python program that needs PyYAML: its own
/// interpreter (the script's `#!` line) converts the YAML to JSON.
fn yaml_to_json(yaml: &str) -> Value {
    let script = find_on_path("docker-compose").expect("docker-compose on PATH");
    let text = std::fs::read_to_string(&script).unwrap_or_default();
    let shebang = text.lines().next().and_then(|l| l.strip_prefix("#!")).map(str::trim).unwrap_or("python3");
    let mut words = shebang.split_whitespace();
    let mut python = Command::new(words.next().expect("an interpreter"));
    python.args(words);
    let mut child = python
        .args(["-c", "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {shebang} to read Compose v1's YAML: {e}"));
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(yaml.as_bytes()).expect("write YAML");
    let output = child.wait_with_output().expect("wait for python");
    assert!(
        output.status.success(),
        "{shebang} could not turn the YAML of `docker-compose config` into JSON: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON from python")
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(program)).find(|p| p.is_file())
}

fn service(name: &str) -> &'static Value {
    let service = &compose_config()["services"][name];
    assert!(service.is_object(), "no service `{name}` in docker-compose.yml");
    service
}

/// A scalar as text: Compose v1 keeps YAML's numbers, v2 prints strings.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `environment` as a map, whichever form compose printed.
fn env(service: &Value, name: &str) -> Option<String> {
    match &service["environment"] {
        Value::Object(map) => map.get(name).map(text),
        Value::Array(list) => {
            list.iter().map(text).find_map(|e| e.strip_prefix(&format!("{name}=")).map(str::to_owned))
        }
        _ => None,
    }
}

/// A list of words (`command`, a health check's `test`), whichever form compose printed.
fn words(value: &Value) -> Vec<String> {
    match value {
        Value::Array(list) => list.iter().map(text).collect(),
        Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// (source, target, read-only) of each of a service's volumes, short or long form.
fn mounts(service: &Value) -> Vec<(String, String, bool)> {
    let Some(list) = service["volumes"].as_array() else { return Vec::new() };
    list.iter()
        .map(|v| match v {
            Value::String(s) => {
                let parts: Vec<&str> = s.split(':').collect();
                let read_only = parts.len() > 2 && parts[2].split(',').any(|o| o == "ro");
                (parts[0].to_owned(), parts.get(1).copied().unwrap_or(parts[0]).to_owned(), read_only)
            }
            other => (text(&other["source"]), text(&other["target"]), other["read_only"].as_bool().unwrap_or(false)),
        })
        .collect()
}

/// The argument after `flag` in the store's command.
fn store_arg(flag: &str) -> String {
    let command = words(&service("store")["command"]);
    let at = command
        .iter()
        .position(|w| w == flag)
        .unwrap_or_else(|| panic!("the store's command has no {flag}: {command:?}"));
    command.get(at + 1).cloned().unwrap_or_else(|| panic!("{flag} without a value in {command:?}"))
}

/// The runtime config file on this machine that compose mounts where the store's
/// `--runtime-config-file` points.
fn store_runtime_config_file() -> PathBuf {
    let inside = store_arg("--runtime-config-file");
    let (source, _, read_only) = mounts(service("store"))
        .into_iter()
        .find(|(_, target, _)| *target == inside)
        .unwrap_or_else(|| panic!("nothing is mounted at the store's --runtime-config-file {inside}"));
    assert!(read_only, "the runtime config should be mounted read-only");
    let source = PathBuf::from(source);
    assert!(source.is_file(), "the store's runtime config {} does not exist", source.display());
    source
}

fn named_volumes() -> BTreeSet<String> {
    compose_config()["volumes"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

#[test]
fn compose_has_kafka_postgres_and_store_each_with_a_health_check() {
    let services: BTreeSet<&str> =
        compose_config()["services"].as_object().expect("services").keys().map(String::as_str).collect();
    assert_eq!(services, SERVICES.into_iter().collect(), "the compose services");
    for name in SERVICES {
        let check = &service(name)["healthcheck"];
        let test = words(&check["test"]);
        assert!(
            check.is_object() && check["disable"] != Value::Bool(true) && test.len() > 1 && test[0] != "NONE",
            "service {name} has no health check: {check}"
        );
    }

    let kafka = service("kafka");
    assert_eq!(text(&kafka["image"]), "apache/kafka:4.1.1");
    let roles: BTreeSet<String> =
        env(kafka, "KAFKA_PROCESS_ROLES").unwrap_or_default().split(',').map(|r| r.trim().to_owned()).collect();
    assert_eq!(roles, ["broker", "controller"].map(String::from).into(), "one KRaft node, broker and controller");
    assert!(env(kafka, "KAFKA_CONTROLLER_QUORUM_VOTERS").is_some(), "a KRaft controller quorum");
    assert!(
        words(&kafka["healthcheck"]["test"])
            .join(" ")
            .contains("kafka-broker-api-versions.sh --bootstrap-server localhost:9092"),
        "the broker's health check asks the broker itself"
    );

    let postgres = service("postgres");
    assert_eq!(text(&postgres["image"]), "postgres:17");
    assert!(words(&postgres["healthcheck"]["test"]).contains(&"pg_isready".to_owned()));
    let data = mounts(postgres).into_iter().find(|(_, target, _)| target == "/var/lib/postgresql/data");
    let (volume, ..) = data.expect("PostgreSQL's data folder is a volume");
    assert!(named_volumes().contains(&volume), "PostgreSQL's data is on a named volume, not {volume}");

    let store = service("store");
    let check = words(&store["healthcheck"]["test"]).join(" ");
    assert!(check.contains("http://127.0.0.1:3000/api"), "the store's health check GETs /api: {check}");
}

#[test]
fn compose_starts_the_store_after_kafka_and_postgres_are_healthy() {
    let depends = &service("store")["depends_on"];
    for name in ["kafka", "postgres"] {
        assert_eq!(
            text(&depends[name]["condition"]),
            "service_healthy",
            "the store should wait for a healthy {name}: depends_on = {depends}"
        );
    }
}

#[test]
fn compose_builds_and_serves_the_store_on_port_3000() {
    let store = service("store");
    let build = &store["build"];
    assert_eq!(PathBuf::from(text(&build["context"])), workspace(), "the store is built from the workspace");
    let dockerfile = match text(&build["dockerfile"]) {
        d if d.is_empty() => "Dockerfile".to_owned(),
        d => d,
    };
    assert!(workspace().join(&dockerfile).is_file(), "no {dockerfile} at the top level");

    let command = words(&store["command"]);
    assert_eq!(command.first().map(String::as_str), Some("up"), "the store runs `estore up`: {command:?}");
    assert_eq!(store_arg("--listen"), "0.0.0.0:3000");
    // On loopback unless the operator says otherwise: the store is for a proxy in
    // front of it, not for every interface of the machine.
    let published = store["ports"].as_array().expect("the store publishes a port").iter().any(|p| match p {
        Value::String(s) => s.trim_end_matches("/tcp") == "127.0.0.1:3000:3000",
        p => text(&p["host_ip"]) == "127.0.0.1" && text(&p["published"]) == "3000" && text(&p["target"]) == "3000",
    });
    assert!(published, "port 3000 published on 127.0.0.1: {}", store["ports"]);

    let state = store_arg("--state-dir");
    let (volume, ..) = mounts(store)
        .into_iter()
        .find(|(_, target, _)| *target == state)
        .unwrap_or_else(|| panic!("the state dir {state} should be a volume"));
    assert!(named_volumes().contains(&volume), "the state dir is a named volume, not {volume}");
}

#[test]
fn compose_hands_the_store_the_secrets_of_its_environment() {
    let store = service("store");
    for (_, variable, value) in SECRETS {
        assert_eq!(env(store, variable).as_deref(), Some(value), "the store's {variable}");
    }
}

#[test]
fn compose_refuses_to_start_without_the_stores_secrets() {
    let (tool, output) = run_compose_config(&workspace().join("docker-compose.yml"), &[]);
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!output.status.success(), "`{tool} config` accepted the compose file without secrets:\n{printed}");
    assert!(printed.contains("set ESTORE_TOKEN_SECRET to at least 32 random bytes"), "{printed}");
}

#[test]
fn compose_runtime_config_selects_kafka_and_postgres_services() {
    let path = store_runtime_config_file();
    let config: toml::Table = toml::from_str(&std::fs::read_to_string(&path).expect("read the runtime config"))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let store = service("store");
    let section = |name: &str| {
        config.get(name).and_then(|s| s.as_table()).unwrap_or_else(|| panic!("{}: no [{name}]", path.display()))
    };
    let messaging = section("messaging");
    let sql = section("sql");

    assert_eq!(
        messaging.get("backend").and_then(|b| b.as_str()),
        Some("kafka"),
        "{}: messaging.backend",
        path.display()
    );
    let brokers = env(store, "ESTORE_KAFKA_BROKERS")
        .or_else(|| messaging.get("brokers").and_then(|b| b.as_str()).map(str::to_owned))
        .expect("[messaging] brokers (or ESTORE_KAFKA_BROKERS)");
    let advertised = env(service("kafka"), "KAFKA_ADVERTISED_LISTENERS").unwrap_or_default();
    for broker in brokers.split(',') {
        assert!(
            advertised.split(',').any(|l| l.split_once("://").map(|(_, address)| address) == Some(broker.trim())),
            "broker {broker} is not one the kafka service advertises ({advertised})"
        );
    }
    assert_eq!(
        messaging.get("replication_factor").and_then(|r| r.as_integer()),
        Some(1),
        "one broker can hold one replica of a partition"
    );

    assert_eq!(sql.get("backend").and_then(|b| b.as_str()), Some("postgres"), "{}: sql.backend", path.display());
    let url = env(store, "ESTORE_SQL_URL")
        .or_else(|| sql.get("url").and_then(|u| u.as_str()).map(str::to_owned))
        .expect("[sql] url (or ESTORE_SQL_URL)");
    let postgres = service("postgres");
    let user = env(postgres, "POSTGRES_USER").unwrap_or_else(|| "postgres".into());
    let password = env(postgres, "POSTGRES_PASSWORD").expect("POSTGRES_PASSWORD");
    let database = env(postgres, "POSTGRES_DB").unwrap_or_else(|| user.clone());
    assert_eq!(
        url,
        format!("postgres://{user}:{password}@postgres:5432/{database}"),
        "the store's database URL should be the postgres service's superuser and database"
    );
}

// The runtime config compose mounts is read by the host's own loader, so a section
// the loader does not know (or a misspelt one) fails here rather than in a deployment.
#[test]
fn compose_runtime_config_loads_with_the_real_loader() {
    let path = store_runtime_config_file();
    let config = RuntimeConfig::load(&path).unwrap_or_else(|e| panic!("estore refuses {}: {e:#}", path.display()));
    assert_eq!(config.sql.backend, SqlBackend::Postgres);
    assert!(config.sql.url.as_deref().is_some_and(|u| u.contains("@postgres:5432/")));
}

/// `.dockerignore` patterns, simplified: the top-level names they exclude.
fn docker_ignored() -> BTreeSet<String> {
    std::fs::read_to_string(workspace().join(".dockerignore"))
        .expect("a .dockerignore at the top level")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .map(|l| l.trim_start_matches("./").trim_start_matches('/').trim_end_matches('/').to_owned())
        .collect()
}

#[test]
fn compose_dockerignore_leaves_out_build_output_and_state() {
    let ignored = docker_ignored();
    for name in ["target", ".estore"] {
        assert!(ignored.contains(name), ".dockerignore should exclude {name}: {ignored:?}");
    }
}

#[test]
fn compose_dockerfile_copies_only_what_exists() {
    let dockerfile = std::fs::read_to_string(workspace().join("Dockerfile")).expect("a Dockerfile at the top level");
    // One instruction per logical line (continuations joined), comments dropped.
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(trimmed);
                instructions.push(std::mem::take(&mut current));
            }
        }
    }
    let ignored = docker_ignored();
    let mut stages = Vec::new();
    let mut copies = 0;
    for instruction in &instructions {
        let mut words = instruction.split_whitespace();
        let keyword = words.next().unwrap_or_default().to_ascii_uppercase();
        let rest: Vec<&str> = words.collect();
        match keyword.as_str() {
            "FROM" => {
                if let [_, as_, name] = rest[..] {
                    if as_.eq_ignore_ascii_case("as") {
                        stages.push(name.to_owned());
                    }
                }
            }
            "COPY" | "ADD" => {
                copies += 1;
                let from = rest.iter().find_map(|w| w.strip_prefix("--from="));
                let paths: Vec<&str> = rest.iter().copied().filter(|w| !w.starts_with("--")).collect();
                assert!(paths.len() >= 2, "{instruction}: a source and a destination");
                match from {
                    Some(stage) => assert!(
                        stages.iter().any(|s| s == stage),
                        "{instruction}: no earlier stage is called {stage} (stages: {stages:?})"
                    ),
                    None => {
                        for source in &paths[..paths.len() - 1] {
                            assert!(
                                workspace().join(source).exists(),
                                "{instruction}: {source} is not in the repository"
                            );
                            let top = source.trim_start_matches("./").split('/').next().unwrap_or_default();
                            assert!(!ignored.contains(top), "{instruction}: {source} is excluded by .dockerignore");
                        }
                    }
                }
            }
            _ => {}
        }
    }
    assert!(copies > 0 && !stages.is_empty(), "a named build stage and copies from it: {stages:?}");
    // What the build stage runs, it must have: the scripts it calls are in the context.
    for script in ["scripts/build-component", "scripts/build-storefront", "deploy/stage-app"] {
        assert!(workspace().join(script).is_file(), "{script} is missing");
    }
    assert!(dockerfile.contains("rustup target add wasm32-wasip2"), "the builder adds rustup's wasm32-wasip2 target");
    assert!(dockerfile.contains("estore build -f spin.toml"), "the builder builds the components with `estore build`");
}

/// The image's `/app` is what `deploy/stage-app` copies after `estore build`: here the
/// same two steps on the real spin.toml, then `estore up` on the staged folder alone
/// (the image's own command, on its embedded defaults) must serve `/api`.
#[tokio::test(flavor = "multi_thread")]
async fn compose_image_app_folder_is_enough_to_serve() {
    let manifest = workspace().join("spin.toml");
    let output = Command::new(&*ESTORE).args(["build", "-f"]).arg(&manifest).output().expect("run estore build");
    assert!(
        output.status.success(),
        "estore build of spin.toml failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let app = dir.path().join("app");
    let output = Command::new(workspace().join("deploy/stage-app"))
        .arg(&manifest)
        .arg(&app)
        .output()
        .expect("run deploy/stage-app");
    assert!(output.status.success(), "deploy/stage-app failed: {}", String::from_utf8_lossy(&output.stderr));

    let staged = Manifest::load(&app.join("spin.toml")).expect("the staged manifest loads");
    staged.check_sources().expect("the staged folder holds everything the manifest references");
    assert_eq!(staged.components.len(), Manifest::load(&manifest).expect("spin.toml").components.len());

    let mut command = Command::new(&*ESTORE);
    command
        .arg("up")
        .arg("-f")
        .arg(app.join("spin.toml"))
        .args(["--listen", "127.0.0.1:0", "--state-dir"])
        .arg(dir.path().join("state"))
        .arg("--cache-dir")
        .arg(compiled_cache())
        .env("RUST_LOG", "info")
        .env_remove("ESTORE_LISTEN")
        .env_remove("ESTORE_RUNTIME_CONFIG")
        .envs(SECRETS.map(|(_, variable, value)| (variable, value)));
    let host = Host::start(command);
    let (status, body) = get(&host.url("/api")).await;
    assert_eq!(status, 200, "GET /api on the staged app: {body}\nlog:\n{}", host.log());
    assert_eq!(body["name"], "electronic-store");
}
