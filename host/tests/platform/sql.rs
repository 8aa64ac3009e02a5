//! The SQL capability, end to end: the same suite on embedded SQLite and on a real
//! PostgreSQL server started by the tests.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::harness::{App, Host, workspace};
use crate::postgres::Postgres;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Two components on the sqlcheck fixture (`alpha` with the fixture's migrations,
/// `beta` without) and one without any database grant.
struct SqlApp {
    app: App,
    runtime_config: PathBuf,
}

fn manifest(migrations: &str) -> String {
    format!(
        r#"
spin_manifest_version = 2
[application]
name = "sql"
[[trigger.http]]
route = "/alpha/..."
component = "alpha"
[[trigger.http]]
route = "/beta/..."
component = "beta"
[[trigger.http]]
route = "/nogrant/..."
component = "nogrant"
[component.alpha]
source = "{{wasm}}/sqlcheck.wasm"
sql_databases = ["default"]
sql_migrations = "{migrations}"
[component.beta]
source = "{{wasm}}/sqlcheck.wasm"
sql_databases = ["default"]
[component.nogrant]
source = "{{wasm}}/sqlcheck.wasm"
"#
    )
}

fn fixture_migrations() -> String {
    workspace().join("host/tests/fixtures/sqlcheck/migrations").display().to_string()
}

/// A fresh database per test on the shared server, so tests never see each other.
fn postgres_url(server: &Postgres) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!("t{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    server.create_database(&name)
}

impl SqlApp {
    fn new(backend: Backend) -> SqlApp {
        Self::with(backend, &manifest(&fixture_migrations()), "", None)
    }

    fn with(backend: Backend, manifest: &str, extra_config: &str, server: Option<&Postgres>) -> SqlApp {
        let app = App::new(manifest);
        let runtime_config = app.dir.path().join("runtime-config.toml");
        let sql = match backend {
            Backend::Sqlite => String::new(),
            Backend::Postgres => {
                let url = postgres_url(server.unwrap_or_else(|| crate::postgres::shared()));
                format!("backend = \"postgres\"\nurl = \"{url}\"\n")
            }
        };
        std::fs::write(&runtime_config, format!("[sql]\n{sql}{extra_config}")).unwrap();
        SqlApp { app, runtime_config }
    }

    fn command(&self) -> Command {
        let mut command = self.app.command();
        command.arg("--runtime-config-file").arg(&self.runtime_config);
        command
    }

    fn start(&self) -> Host {
        Host::start(self.command())
    }

    fn start_failure(&self) -> String {
        let output = self.command().output().unwrap();
        assert!(!output.status.success(), "estore should have refused to start");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "{stderr}");
        stderr
    }
}

async fn call(host: &Host, component: &str, action: &str, body: Json) -> (u16, Json) {
    let url = host.url(&format!("/{component}/?action={action}"));
    let response = reqwest::Client::new().post(&url).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn execute(host: &Host, component: &str, sql: &str, params: Json) -> (u16, Json) {
    call(host, component, "execute", json!({"sql": sql, "params": params})).await
}

async fn query(host: &Host, component: &str, sql: &str, params: Json) -> (u16, Json) {
    call(host, component, "query", json!({"sql": sql, "params": params})).await
}

async fn ok(host: &Host, component: &str, sql: &str, params: Json) -> Json {
    let (status, body) = if sql.trim_start().to_uppercase().starts_with("SELECT") {
        query(host, component, sql, params).await
    } else {
        execute(host, component, sql, params).await
    };
    assert_eq!(status, 200, "{sql}: {body}");
    body
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $name() {
                    super::$name(super::Backend::Sqlite).await
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $name() {
                    super::$name(super::Backend::Postgres).await
                }
            )*
        }
    };
}

on_both_backends!(
    every_type_round_trips,
    constraint_errors_have_a_kind_and_a_name,
    commit_and_rollback,
    a_trap_rolls_back_the_open_transaction,
    components_cannot_see_each_others_tables,
    migrations_run_once_across_restarts,
    a_broken_migration_stops_its_component_and_changes_nothing,
    limits_are_errors_to_the_component,
);

async fn every_type_round_trips(backend: Backend) {
    let sql = SqlApp::new(backend);
    let host = sql.start();
    ok(&host, "alpha", "CREATE TABLE everything (id BIGINT PRIMARY KEY, flag BOOLEAN, n BIGINT, x DOUBLE PRECISION, s TEXT, data BYTEA, missing TEXT)", json!([])).await;
    let row = json!([
        {"int64": 1},
        {"bool": true},
        {"int64": -9_007_199_254_740_993_i64},
        {"float64": 0.1},
        {"text": "Grüße, 世界 🚀 'quoted' ?"},
        {"blob": [0, 1, 2, 254, 255]},
        null
    ]);
    let inserted = ok(&host, "alpha", "INSERT INTO everything VALUES (?, ?, ?, ?, ?, ?, ?)", row.clone()).await;
    assert_eq!(inserted["rows_affected"], 1);
    let body = ok(&host, "alpha", "SELECT id, flag, n, x, s, data, missing FROM everything WHERE s = ?", json!([{"text": "Grüße, 世界 🚀 'quoted' ?"}])).await;
    assert_eq!(body["columns"], json!(["id", "flag", "n", "x", "s", "data", "missing"]));
    assert_eq!(body["rows"], json!([row]));

    // The shared crate's typed helpers: a struct written and read back field by field.
    let (status, typed) = crate::harness::get(&host.url("/alpha/?action=typed")).await;
    assert_eq!(status, 200, "{typed}");
    assert_eq!(typed["label"], "Grüße, 世界 — 🛒 ✓");
    assert_eq!(typed["price"], 4_000_000_000_i64);
    assert_eq!(typed["note"], Json::Null);
}

async fn constraint_errors_have_a_kind_and_a_name(backend: Backend) {
    let sql = SqlApp::new(backend);
    let host = sql.start();
    ok(&host, "alpha", "INSERT INTO notes (id, title, priority) VALUES (1, 'first', 1)", json!([])).await;
    let cases = [
        ("INSERT INTO notes (id, title) VALUES (2, 'first')", "unique"),
        ("INSERT INTO notes (id, title) VALUES (3, NULL)", "not-null"),
        ("INSERT INTO notes (id, title, priority) VALUES (4, 'p', 9)", "check"),
        ("INSERT INTO note_tags (note_id, tag) VALUES (99, 'orphan')", "foreign-key"),
    ];
    for (statement, kind) in cases {
        let (status, body) = execute(&host, "alpha", statement, json!([])).await;
        assert_eq!(status, 409, "{statement}: {body}");
        assert_eq!(body["error"]["kind"], "constraint-violation", "{body}");
        assert_eq!(body["error"]["constraint"]["kind"], kind, "{statement}: {body}");
        if kind != "foreign-key" || backend == Backend::Postgres {
            assert!(body["error"]["constraint"]["name"].is_string(), "{statement}: the name is reported: {body}");
        }
    }
    let (status, body) = execute(&host, "alpha", "INSERT INTO notes (id, title, priority) VALUES (5, 'p', 9)", json!([])).await;
    assert_eq!(status, 409);
    assert!(body["error"]["constraint"]["name"].as_str().unwrap().contains("notes_priority_check"), "{body}");
    let (status, body) = execute(&host, "alpha", "INSERT INTO nowhere VALUES (1)", json!([])).await;
    assert_eq!((status, body["error"]["kind"].as_str()), (400, Some("invalid-query")), "{body}");
    let (status, body) = execute(&host, "alpha", "SELEC 1", json!([])).await;
    assert_eq!((status, body["error"]["kind"].as_str()), (400, Some("invalid-query")), "{body}");
}

async fn commit_and_rollback(backend: Backend) {
    let sql = SqlApp::new(backend);
    let host = sql.start();
    let insert = |id: i64| json!({"sql": "INSERT INTO notes (id, title) VALUES (?, ?)", "params": [{"int64": id}, {"text": format!("note {id}")}]});
    let (status, body) = call(&host, "alpha", "batch", json!({"statements": [insert(1), insert(2)], "end": "commit"})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(&host, "alpha", "batch", json!({"statements": [insert(3)], "end": "rollback"})).await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = call(&host, "alpha", "batch", json!({"statements": [insert(4)], "end": "none"})).await;
    assert!(body.get("error").is_none(), "{body}");
    // A failing statement rolls back the statements before it.
    let (_, body) = call(&host, "alpha", "batch", json!({"statements": [insert(5), insert(1)], "end": "commit"})).await;
    assert!(body.to_string().contains("constraint-violation"), "{body}");
    let body = ok(&host, "alpha", "SELECT id FROM notes ORDER BY id", json!([])).await;
    assert_eq!(body["rows"], json!([[{"int64": 1}], [{"int64": 2}]]));
}

async fn a_trap_rolls_back_the_open_transaction(backend: Backend) {
    let sql = SqlApp::new(backend);
    let host = sql.start();
    let insert = json!({"sql": "INSERT INTO notes (id, title) VALUES (7, 'trapped')", "params": []});
    let (status, _) = call(&host, "alpha", "batch", json!({"statements": [insert], "end": "trap"})).await;
    assert_eq!(status, 500, "the instance trapped");
    // The connection went back to the pool clean: the next requests see no row and
    // can write (no lock held by the dead transaction).
    let body = ok(&host, "alpha", "SELECT COUNT(*) AS n FROM notes", json!([])).await;
    assert_eq!(body["rows"], json!([[{"int64": 0}]]));
    ok(&host, "alpha", "INSERT INTO notes (id, title) VALUES (7, 'after the trap')", json!([])).await;
}

async fn components_cannot_see_each_others_tables(backend: Backend) {
    let sql = SqlApp::new(backend);
    let host = sql.start();
    ok(&host, "alpha", "INSERT INTO notes (id, title) VALUES (1, 'alpha only')", json!([])).await;
    let (status, body) = query(&host, "beta", "SELECT * FROM notes", json!([])).await;
    assert_ne!(status, 200, "beta must not read alpha's table: {body}");
    if backend == Backend::Postgres {
        for crafted in [
            r#"SELECT * FROM "alpha__default".notes"#,
            r#"SELECT * FROM "alpha__default"._estore_migrations"#,
        ] {
            let (status, body) = query(&host, "beta", crafted, json!([])).await;
            assert_eq!(body["error"]["kind"], "access-denied", "{crafted}: {body}");
            assert_eq!(status, 403);
        }
        for escalation in [r#"SET search_path TO "alpha__default""#, "RESET ROLE", r#"CREATE SCHEMA sneaky"#] {
            let _ = execute(&host, "beta", escalation, json!([])).await;
            let (status, _) = query(&host, "beta", "SELECT * FROM notes", json!([])).await;
            assert_ne!(status, 200, "after `{escalation}` beta still cannot read alpha's notes");
        }
    }
    let (status, body) = query(&host, "nogrant", "SELECT 1", json!([])).await;
    assert_eq!((status, body["error"]["kind"].as_str()), (403, Some("access-denied")), "{body}");
}

async fn migrations_run_once_across_restarts(backend: Backend) {
    let sql = SqlApp::new(backend);
    for _ in 0..2 {
        let host = sql.start();
        let body = ok(&host, "alpha", "SELECT COUNT(*) AS n FROM seeded", json!([])).await;
        assert_eq!(body["rows"], json!([[{"int64": 1}]]));
        let body = ok(&host, "alpha", "SELECT name FROM _estore_migrations ORDER BY name", json!([])).await;
        assert_eq!(body["rows"], json!([[{"text": "0001_create_notes.sql"}], [{"text": "0002_seed.sql"}]]));
    }
}

async fn a_broken_migration_stops_its_component_and_changes_nothing(backend: Backend) {
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("0001_ok.sql"), "CREATE TABLE kept (id BIGINT PRIMARY KEY);").unwrap();
    std::fs::write(
        folder.path().join("0002_broken.sql"),
        "CREATE TABLE half (id BIGINT PRIMARY KEY);\nINSERT INTO kept (id) VALUES (1);\nCREATE TABLE oops (id BIGINT PRIMARY KEY,);\n",
    )
    .unwrap();
    let sql = SqlApp::with(backend, &manifest(&folder.path().display().to_string()), "", None);
    {
        // The component does not start; the others do, and its requests say why.
        let host = sql.start();
        let (status, problem) = crate::harness::get(&host.url("/alpha/?action=typed")).await;
        assert_eq!(status, 503, "{problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("alpha") && detail.contains("0002_broken.sql"), "{detail}");
        assert!(detail.contains("statement 3") && detail.contains("CREATE TABLE oops"), "names the failing statement: {detail}");
        host.wait_for_log(&["alpha", "0002_broken.sql"]);
        ok(&host, "beta", "CREATE TABLE fine (id BIGINT)", json!([])).await;
    }

    // Fixed, it applies from a clean slate: `half` was not left behind (creating it
    // again would fail) and the row of the failed file was rolled back.
    std::fs::write(
        folder.path().join("0002_broken.sql"),
        "CREATE TABLE half (id BIGINT PRIMARY KEY);\nINSERT INTO kept (id) VALUES (1);\n",
    )
    .unwrap();
    let host = sql.start();
    let body = ok(&host, "alpha", "SELECT COUNT(*) AS n FROM kept", json!([])).await;
    assert_eq!(body["rows"], json!([[{"int64": 1}]]));
}

async fn limits_are_errors_to_the_component(backend: Backend) {
    // One connection: if a timed-out statement kept running, it would keep the only
    // connection and the queries after it could not be answered.
    let config = "max_rows = 5\nmax_result_bytes = 4096\nstatement_timeout_ms = 300\nmax_connections = 1\n";
    let sql = SqlApp::with(backend, &manifest(&fixture_migrations()), config, None);
    let host = sql.start();
    let ten = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) SELECT i FROM n";
    let (status, body) = query(&host, "alpha", ten, json!([])).await;
    assert_eq!((status, body["error"]["kind"].as_str()), (413, Some("limit-exceeded")), "{body}");
    let big = json!([{"text": "x".repeat(5000)}]);
    let (status, body) = query(&host, "alpha", "SELECT ? AS big", big).await;
    assert_eq!((status, body["error"]["kind"].as_str()), (413, Some("limit-exceeded")), "{body}");
    let slow = match backend {
        Backend::Postgres => "SELECT pg_sleep(2)".to_owned(),
        Backend::Sqlite => "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT COUNT(*) FROM n".to_owned(),
    };
    let started = Instant::now();
    let (status, body) = query(&host, "alpha", &slow, json!([])).await;
    assert_eq!((status, body["error"]["kind"].as_str()), (504, Some("timeout")), "{body}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let body = ok(&host, "alpha", "SELECT COUNT(*) AS n FROM seeded", json!([])).await;
    assert_eq!(body["rows"], json!([[{"int64": 1}]]), "the database still answers after a timeout");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_going_away_and_coming_back() {
    let server = Postgres::start();
    let sql = SqlApp::with(Backend::Postgres, &manifest(&fixture_migrations()), "", Some(&server));
    let host = sql.start();
    ok(&host, "alpha", "INSERT INTO notes (id, title) VALUES (1, 'before')", json!([])).await;

    server.stop();
    let (status, body) = query(&host, "alpha", "SELECT COUNT(*) AS n FROM notes", json!([])).await;
    assert_eq!((status, body["error"]["kind"].as_str()), (503, Some("connection")), "{body}");
    assert_eq!(reqwest::get(host.url("/nogrant/?action=typed")).await.unwrap().status().as_u16(), 403, "the host keeps serving");

    server.start_again();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = query(&host, "alpha", "SELECT COUNT(*) AS n FROM notes", json!([])).await;
        if status == 200 {
            assert_eq!(body["rows"], json!([[{"int64": 1}]]));
            break;
        }
        assert!(Instant::now() < deadline, "the host did not recover: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_unreachable_at_start_is_set_up_when_it_answers() {
    let server = Postgres::start();
    let sql = SqlApp::with(Backend::Postgres, &manifest(&fixture_migrations()), "", Some(&server));
    server.stop();
    let host = sql.start();
    host.wait_for_log(&["alpha", "unreachable"]);
    let (status, body) = query(&host, "alpha", "SELECT COUNT(*) AS n FROM seeded", json!([])).await;
    assert_eq!((status, body["error"]["kind"].as_str()), (503, Some("connection")), "{body}");
    server.start_again();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = query(&host, "alpha", "SELECT COUNT(*) AS n FROM seeded", json!([])).await;
        if status == 200 {
            assert_eq!(body["rows"], json!([[{"int64": 1}]]), "migrations ran once the server answered");
            break;
        }
        assert!(Instant::now() < deadline, "never set up: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_url_from_the_environment() {
    let sql = SqlApp::with(Backend::Sqlite, &manifest(&fixture_migrations()), "backend = \"postgres\"\n", None);
    let stderr = sql.start_failure();
    assert!(stderr.contains("ESTORE_SQL_URL"), "says where the URL comes from: {stderr}");

    let url = postgres_url(crate::postgres::shared());
    let mut command = sql.command();
    command.env("ESTORE_SQL_URL", &url);
    let host = Host::start(command);
    let body = ok(&host, "alpha", "SELECT COUNT(*) AS n FROM seeded", json!([])).await;
    assert_eq!(body["rows"], json!([[{"int64": 1}]]));
    let database = url.rsplit('/').next().unwrap();
    let schemas = crate::postgres::shared().psql_in(database, "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'alpha%'");
    assert_eq!(schemas.trim(), "alpha__default", "the database lives in the PostgreSQL schema of its own");
}
