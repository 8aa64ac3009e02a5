//! The data boundaries against a hostile component (issue 16): the `hostile` fixture
//! tries each way out of its SQL database and past its publishing grant, next to
//! another component's database (`victim`, the sqlcheck fixture) and a consumer of the
//! topics (`events`, the eventcheck fixture, which may publish `payment.completed`).
//! Every attempt is refused, and the component's legitimate publishing still goes
//! through. On the embedded defaults, and on PostgreSQL where the boundary differs:
//! there the host's tables are the admin's, out of the role's reach, and a row the
//! role writes into the outbox is dropped by the relay rather than refused.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};

use crate::events::{publish_as, wait_for};
use crate::harness::{App, Host, admin_get, metric, workspace};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The topic `hostile` may publish to, and the one it must not reach.
const GRANTED: &str = "hostile.events";
const PAYMENTS: &str = "payment.completed";
/// The payload of every forged message: `events` records the seq of what it handles.
const FORGED_SEQ: i64 = 666;

struct HostileApp {
    app: App,
    runtime_config: PathBuf,
    /// The PostgreSQL database's name, on the shared server.
    database: Option<String>,
}

impl HostileApp {
    fn new(backend: Backend) -> HostileApp {
        let migrations =
            |fixture: &str| workspace().join(format!("host/tests/fixtures/{fixture}/migrations")).display().to_string();
        let app = App::new(&format!(
            r#"
spin_manifest_version = 2
[application]
name = "hostile"
[[trigger.http]]
route = "/hostile/..."
component = "hostile"
[[trigger.http]]
route = "/victim/..."
component = "victim"
[[trigger.http]]
route = "/eventcheck/..."
component = "events"
[[trigger.kafka]]
component = "events"
topics = ["{PAYMENTS}", "{GRANTED}"]
[component.hostile]
source = "{{wasm}}/hostile.wasm"
sql_databases = ["default"]
allowed_publish_topics = ["{GRANTED}"]
[component.victim]
source = "{{wasm}}/sqlcheck.wasm"
sql_databases = ["default"]
sql_migrations = "{victim}"
[component.events]
source = "{{wasm}}/eventcheck.wasm"
sql_databases = ["default"]
sql_migrations = "{events}"
allowed_publish_topics = ["{PAYMENTS}"]
"#,
            victim = migrations("sqlcheck"),
            events = migrations("eventcheck"),
        ));
        let database = (backend == Backend::Postgres).then(|| {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            format!("hostile_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
        });
        let sql = match &database {
            Some(name) => {
                let url = crate::postgres::shared().create_database(name);
                format!("[sql]\nbackend = \"postgres\"\nurl = \"{url}\"\n")
            }
            None => String::new(),
        };
        let runtime_config = app.dir.path().join("runtime-config.toml");
        std::fs::write(&runtime_config, format!("{sql}[messaging]\nbackend = \"embedded\"\npartitions = 1\n"))
            .expect("write runtime config");
        HostileApp { app, runtime_config, database }
    }

    fn start(&self) -> Host {
        self.app.start_with_runtime_config(&self.runtime_config)
    }

    /// `sql` as the PostgreSQL admin in the app's database.
    fn psql(&self, sql: &str) -> String {
        crate::postgres::shared().psql_in(self.database.as_deref().expect("a PostgreSQL app"), sql)
    }

    /// The role `hostile`'s connections log in as (named as the host names it).
    fn hostile_role(&self) -> String {
        let database = self.database.as_deref().expect("a PostgreSQL app");
        format!("estore_hostile_{}", &hex::encode(Sha256::digest(database))[..8])
    }
}

/// `hostile`'s answer to `action` with `params`, `body` as the request body.
async fn attack(host: &Host, action: &str, params: &[(&str, &str)], body: &str) -> Json {
    let response = reqwest::Client::new()
        .post(host.url("/hostile/"))
        .query(&[("action", action)])
        .query(params)
        .body(body.to_owned())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{action}: {e}"));
    let status = response.status().as_u16();
    let answer: Json = response.json().await.unwrap_or_else(|e| panic!("{action}: not JSON: {e}"));
    assert_eq!(status, 200, "{action}: {answer}");
    answer
}

/// `statement`, run by `hostile`.
async fn hostile_sql(host: &Host, statement: &str) -> Json {
    attack(host, "sql", &[("sql", statement)], "").await
}

/// Asserts `answer` is a refusal of kind `kind`; returns its message.
fn refused<'a>(answer: &'a Json, kind: &str, what: &str) -> &'a str {
    assert_eq!(answer["ok"], false, "{what} went through: {answer}");
    assert_eq!(answer["error"]["kind"], kind, "{what}: {answer}");
    answer["error"]["message"].as_str().unwrap_or_default()
}

/// A command for the `events` consumer.
fn command(seq: i64) -> String {
    json!({"seq": seq, "action": "ok"}).to_string()
}

/// Another component's database holds a card number; `hostile` attaches its file and
/// asks for the rows.
#[tokio::test(flavor = "multi_thread")]
async fn attaching_another_components_database_is_refused() {
    let app = HostileApp::new(Backend::Sqlite);
    let host = app.start();
    let secret = "4242 4242 4242 4242";
    let insert = json!({"sql": "INSERT INTO notes (id, title, body) VALUES (1, 'card', ?)", "params": [{"text": secret}]});
    let response = reqwest::Client::new().post(host.url("/victim/?action=execute")).json(&insert).send().await.expect("insert");
    assert_eq!(response.status().as_u16(), 200, "{:?}", response.text().await);
    let victim = app.app.state_dir().join("sql/victim/default.db");
    assert!(victim.exists(), "{} holds the victim's notes", victim.display());

    let path = victim.display().to_string();
    let answer = attack(&host, "attach", &[("path", &path), ("table", "notes")], "").await;
    let message = refused(&answer, "not-allowed", "ATTACH of another component's file");
    assert!(message.contains("ATTACH") && message.contains(&path), "names what was refused: {message}");
    assert!(!answer.to_string().contains(secret), "{answer}");
    host.wait_for_log(&["hostile", "not allowed", "ATTACH"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn vacuum_into_writes_no_file() {
    let app = HostileApp::new(Backend::Sqlite);
    let host = app.start();
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let copy = elsewhere.path().join("copy-of-hostile.db");
    let answer = attack(&host, "vacuum-into", &[("path", &copy.display().to_string())], "").await;
    refused(&answer, "not-allowed", "VACUUM INTO");
    assert!(!copy.exists(), "VACUUM INTO wrote {}", copy.display());
}

/// SQLite's file header says how the file is journalled: bytes 18 and 19 are 2 in
/// WAL mode.
fn journalled_as_wal(file: &Path) -> bool {
    let header = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    header.get(18..20) == Some(&[2, 2])
}

#[tokio::test(flavor = "multi_thread")]
async fn pragmas_that_change_files_durability_or_the_connection_are_refused() {
    let app = HostileApp::new(Backend::Sqlite);
    let host = app.start();
    for pragma in [
        "PRAGMA journal_mode = DELETE",
        "PRAGMA synchronous = OFF",
        "PRAGMA writable_schema = ON",
        "PRAGMA foreign_keys = OFF",
        "PRAGMA temp_store_directory = '/tmp'",
        "PRAGMA busy_timeout = 0",
        "PRAGMA query_only = 1",
        "PRAGMA cache_size = -1000000",
    ] {
        let message = refused(&hostile_sql(&host, pragma).await, "not-allowed", pragma).to_owned();
        let name = pragma.split_whitespace().nth(1).unwrap_or_default();
        assert!(message.contains(&format!("PRAGMA {name}")), "{pragma}: {message}");
    }
    assert!(journalled_as_wal(&app.app.state_dir().join("sql/hostile/default.db")), "the file is still in WAL mode");
    // What a component's own schema work needs still answers.
    for pragma in [
        "PRAGMA table_info(_estore_outbox)",
        "PRAGMA foreign_key_list(_estore_outbox)",
        "PRAGMA index_list(_estore_handled)",
        "PRAGMA defer_foreign_keys = ON",
    ] {
        let answer = hostile_sql(&host, pragma).await;
        assert_eq!(answer["ok"], true, "{pragma}: {answer}");
    }
    let answer = attack(&host, "load-extension", &[], "").await;
    let message = refused(&answer, "not-allowed", "load_extension");
    assert!(message.contains("load_extension"), "{message}");
}

/// Writes, DDL and triggers on the host's tables; the host's own use of them goes on.
async fn the_host_tables_are_out_of_the_components_reach(backend: Backend) {
    let app = HostileApp::new(backend);
    let host = app.start();
    let (kind, attempts): (&str, &[&str]) = match backend {
        Backend::Sqlite => (
            "not-allowed",
            &[
                "UPDATE _estore_outbox SET topic = 'payment.completed'",
                "DELETE FROM _estore_handled",
                "INSERT INTO _estore_migrations (name, applied_at) VALUES ('9999_skip.sql', 'now')",
                "DROP TABLE _estore_outbox",
                "ALTER TABLE _estore_outbox ADD COLUMN sneaky TEXT",
                "CREATE TRIGGER sneak AFTER INSERT ON _estore_outbox BEGIN DELETE FROM _estore_outbox; END",
                "CREATE INDEX slow ON _ESTORE_OUTBOX (payload)",
            ],
        ),
        Backend::Postgres => (
            "access-denied",
            &[
                "UPDATE _estore_outbox SET topic = 'payment.completed'",
                "DELETE FROM _estore_handled",
                "TRUNCATE _estore_outbox",
                "DROP TABLE _estore_outbox",
                "ALTER TABLE _estore_outbox ADD COLUMN sneaky TEXT",
                "CREATE TRIGGER sneak BEFORE INSERT ON _estore_outbox FOR EACH ROW \
                 EXECUTE FUNCTION suppress_redundant_updates_trigger()",
                "CREATE INDEX slow ON _estore_outbox (payload)",
                "DROP SCHEMA hostile__default CASCADE",
            ],
        ),
    };
    for statement in attempts {
        refused(&hostile_sql(&host, statement).await, kind, statement);
    }
    let shadows = attack(&host, "shadow-outbox", &[], "").await;
    for attempt in ["temp-table", "temp-trigger"] {
        assert_eq!(shadows[attempt]["ok"], false, "{attempt}: {shadows}");
    }
    let answer = hostile_sql(&host, "SELECT name FROM _estore_migrations").await;
    assert_eq!(answer["ok"], true, "which migrations ran is the component's to read: {answer}");
    if backend == Backend::Postgres {
        let owners = app.psql("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'hostile__default'");
        assert_eq!(owners.trim(), crate::postgres::shared().user(), "the host's tables are the admin's");
    }

    // The outbox still works for the host: a message published in a transaction.
    let sent = attack(&host, "publish", &[], &command(1)).await;
    assert_eq!(sent["ok"], true, "{sent}");
    wait_for(&host, "handled", "the published message", |rows| rows.iter().any(|r| r["seq"] == 1)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_host_tables_are_out_of_the_components_reach_on_sqlite() {
    the_host_tables_are_out_of_the_components_reach(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_host_tables_are_out_of_the_components_reach_on_postgres() {
    the_host_tables_are_out_of_the_components_reach(Backend::Postgres).await
}

/// `hostile` writes a `payment.completed` message with a forged message id straight
/// into the outbox, then publishes on its own topic the legitimate way, trying to set
/// the host's headers. The consumer gets the legitimate one with the host's message
/// id, and never the forged one: after it, `events` publishes a fence under the same
/// key to the same topic, and the fence is handled without the forgery before it.
async fn a_forged_outbox_row_is_never_published(backend: Backend) {
    let app = HostileApp::new(backend);
    let host = app.start();
    let forged = attack(&host, "forge-outbox", &[("topic", PAYMENTS), ("key", "k")], &command(FORGED_SEQ)).await;
    match backend {
        // The authorizer refuses the write.
        Backend::Sqlite => {
            let message = refused(&forged, "not-allowed", "a row written into the outbox");
            assert!(message.contains("_estore_outbox"), "{message}");
            host.wait_for_log(&["hostile", "not allowed", "_estore_outbox"]);
        }
        // The role may insert (the host stages in its transactions): the relay drops
        // the row, unsigned, and says so.
        Backend::Postgres => {
            assert_eq!(forged["ok"], true, "{forged}");
            let line = host.wait_for_log(&["hostile", "dropped, never published", "did not stage"]);
            assert!(line.contains(PAYMENTS), "{line}");
        }
    }

    let sent = attack(&host, "publish", &[("key", "k")], &command(1)).await;
    assert_eq!(sent["ok"], true, "{sent}");
    let handled = wait_for(&host, "handled", "the legitimate message", |rows| rows.iter().any(|r| r["seq"] == 1)).await;
    let legit = handled.iter().find(|r| r["seq"] == 1).expect("handled");
    assert_eq!(legit["topic"], GRANTED);
    assert_eq!(legit["message_id"], sent["message_id"], "the host's message id, not the forged one: {legit}");

    let (status, fence) = publish_as(&host, json!({"topic": PAYMENTS, "key": "k", "payloads": [command(2)]}), &[]).await;
    assert_eq!(status, 200, "{fence}");
    let handled = wait_for(&host, "handled", "the fence", |rows| rows.iter().any(|r| r["seq"] == 2)).await;
    assert!(!handled.iter().any(|r| r["seq"] == FORGED_SEQ), "the forged message was published: {handled:#?}");
    if backend == Backend::Postgres {
        let (_, metrics) = admin_get(&app.app.state_dir(), "/metrics").await;
        let dropped = metric(&metrics, "estore_outbox_dropped_total", &[("component", "hostile"), ("reason", "forged")]);
        assert_eq!(dropped, Some(1.0), "{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_outbox_row_is_never_published_on_sqlite() {
    a_forged_outbox_row_is_never_published(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_outbox_row_is_never_published_on_postgres() {
    a_forged_outbox_row_is_never_published(Backend::Postgres).await
}

/// A database set up by an earlier version: the host's tables were the role's, and
/// the role had put a trigger on the outbox that keeps rows from being deleted (so
/// each would be sent again and again). The host takes the tables over: they become
/// the admin's, without the trigger; the message left with a granted topic is sent
/// once, the one with a topic not granted is dropped.
#[tokio::test(flavor = "multi_thread")]
async fn an_earlier_versions_host_tables_are_taken_from_the_role() {
    let app = HostileApp::new(Backend::Postgres);
    let role = app.hostile_role();
    let message_id = |id: &str| hex::encode(id);
    app.psql(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'set by the earlier version';
         CREATE SCHEMA hostile__default AUTHORIZATION {role};
         SET ROLE {role};
         SET search_path TO hostile__default;
         CREATE TABLE _estore_outbox (seq BIGSERIAL PRIMARY KEY, topic TEXT NOT NULL, message_key BYTEA,
             payload BYTEA NOT NULL, headers TEXT NOT NULL, created_at_ms BIGINT NOT NULL);
         CREATE TABLE _estore_handled (consumer_group TEXT NOT NULL, message_id TEXT NOT NULL,
             handled_at_ms BIGINT NOT NULL, PRIMARY KEY (consumer_group, message_id));
         CREATE TABLE _estore_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL);
         CREATE FUNCTION keep_rows() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
         CREATE TRIGGER keep_rows BEFORE DELETE ON _estore_outbox FOR EACH ROW EXECUTE FUNCTION keep_rows();
         INSERT INTO _estore_outbox (topic, message_key, payload, headers, created_at_ms) VALUES
             ('{GRANTED}', 'k', convert_to('{legacy}', 'UTF8'), '[[\"message-id\", \"{legacy_id}\"]]', 0),
             ('{PAYMENTS}', 'k', convert_to('{forged}', 'UTF8'), '[[\"message-id\", \"{forged_id}\"]]', 0);
         RESET ROLE;",
        legacy = command(7),
        forged = command(FORGED_SEQ),
        legacy_id = message_id("left-by-the-earlier-version"),
        forged_id = message_id("forged-before-the-upgrade"),
    ));
    let host = app.start();

    wait_for(&host, "handled", "the earlier version's message", |rows| rows.iter().any(|r| r["seq"] == 7)).await;
    host.wait_for_log(&["hostile", "dropped, never published", PAYMENTS]);
    let owners = app.psql("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'hostile__default' ORDER BY 1");
    assert_eq!(owners.trim(), crate::postgres::shared().user(), "the host's tables are the admin's now");
    let triggers = app.psql(
        "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'hostile__default' AND NOT t.tgisinternal",
    );
    assert_eq!(triggers.trim(), "0", "the role's trigger went with its table");
    let may = app.psql(&format!(
        "SELECT has_table_privilege('{role}', 'hostile__default._estore_outbox', 'DELETE'),
                has_table_privilege('{role}', 'hostile__default._estore_outbox', 'INSERT'),
                has_schema_privilege('{role}', 'hostile__default', 'CREATE')"
    ));
    assert_eq!(may.trim(), "f|t|t", "the role stages and creates its own tables, nothing more");
    // Both rows leave the outbox (the relay's pass commits after the sends), and
    // neither is sent again.
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.psql("SELECT count(*) FROM hostile__default._estore_outbox").trim() != "0" {
        assert!(Instant::now() < deadline, "the earlier version's rows stay in the outbox:\n{}", host.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let handled = crate::events::rows(&host, "handled").await;
    assert_eq!(handled.iter().filter(|r| r["seq"] == 7).count(), 1, "{handled:#?}");
    assert!(!handled.iter().any(|r| r["seq"] == FORGED_SEQ), "{handled:#?}");
}
