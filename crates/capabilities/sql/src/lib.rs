//! SQL databases (`estore:platform/sql`): one per component and label, SQLite
//! embedded by default, PostgreSQL when the runtime config says so.
//!
//! Isolation is the backend's, not a convention: on SQLite each database is its own
//! file, and every statement of the component's runs under an authorizer that keeps
//! it there (no ATTACH, no VACUUM INTO, no extension, no pragma that changes files or
//! the connection: see [`authorizer`]); on PostgreSQL each is a schema the component's
//! own role may use, and the component's connections log in as that role, so even
//! crafted SQL cannot reach another component's tables. A component reaches only the
//! labels in its `sql_databases`. On both, the host's own tables in that database
//! (outbox, handled messages, migrations: see [`tables`]) are out of the component's
//! reach but for what the host does in its transactions, and the outbox relay sends
//! only rows the host signed ([`signing`]).
//!
//! Every call is bounded (statement timeout, rows and bytes per result), and a
//! transaction left open when a request ends, however it ends, is rolled back as its
//! resource is dropped with the instance.

/// The interface's bindings, generated here so this crate alone implements them.
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../../../wit",
        inline: "package estore:sql-host; world host {
            import estore:platform/sql@0.1.0;
            import spin:sqlite/sqlite@3.1.0;
        }",
        imports: { default: async | trappable },
        with: {
            "estore:platform/sql.connection": crate::Connection,
            "spin:sqlite/sqlite.connection": crate::spin_sqlite::SpinConnection,
        },
    });

    pub use self::estore::platform::sql;
    pub use self::spin::sqlite::sqlite as spin_sqlite;
}

mod authorizer;
mod backend;
mod errors;
mod migrations;
mod outbox;
mod postgres;
mod signing;
pub mod spin_sqlite;
mod statements;
mod tables;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tracing::Instrument;
use wasmtime::component::Resource;

use estore_manifest::Manifest;
use estore_runtime_config::{RuntimeConfig, SqlBackend};
use wasmtime::component::{HasData, Linker, ResourceTable};

pub use bindings::sql;
use sql::{Error, Host, HostConnection, RowSet, Value};
use backend::{Backend, Caller, Transaction};
pub use errors::describe as describe_error;
/// The cluster's deploy ledger sets up its tables under the same lock.
pub use postgres::{RELEASE_SET_UP_LOCK, TAKE_SET_UP_LOCK};
use signing::Signer;

const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_ROWS: u64 = 10_000;
const DEFAULT_MAX_RESULT_BYTES: u64 = 16 << 20;
const DEFAULT_MAX_CONNECTIONS: u32 = 5;
/// How much of a statement a trace span shows.
const MAX_TRACED_STATEMENT: usize = 500;
/// The interface this capability serves, and the manifest key that grants it.
pub const INTERFACE: &str = "estore:platform/sql";
pub const GRANT: &str = "sql_databases";

/// Environment variable overriding `[sql] url`.
pub const URL_ENV: &str = "ESTORE_SQL_URL";

/// What one call may cost.
#[derive(Clone, Copy, Debug)]
pub struct SqlLimits {
    pub statement_timeout: Duration,
    /// How long a call may wait for a connection while all are busy: the statement
    /// timeout for the host's own calls, what is left of its deadline for an
    /// instance's (see [`SqlState::deadline`]).
    pub connection_wait: Duration,
    pub max_rows: u64,
    pub max_result_bytes: u64,
}

/// One component's database for one label.
pub struct Database {
    component: String,
    label: String,
    backend: Backend,
    limits: SqlLimits,
    /// Schema, role and migrations; done at start, or at the first call when the
    /// server was unreachable then.
    setup: backend::Setup,
    /// Wakes the outbox relay after a commit that staged messages.
    relay_signal: tokio::sync::Notify,
    /// The topics the component may publish to: the relay sends no other.
    allowed_topics: BTreeSet<String>,
    /// Signs what the host stages in the outbox: the relay sends nothing else.
    signer: Signer,
}

/// The databases a component was granted.
#[derive(Clone, Default)]
pub struct SqlAccess {
    granted: Arc<BTreeMap<String, Arc<Database>>>,
    /// Its `sqlite_databases`, for Spin's SQLite interface.
    spin_sqlite: Arc<BTreeMap<String, Arc<spin_sqlite::SpinDatabase>>>,
}

/// The resource behind a guest's `connection` handle.
pub struct Connection {
    database: Arc<Database>,
    transaction: Option<Transaction>,
    /// Whether the open transaction staged outbox messages.
    staged: bool,
}

/// One instance's SQL: its grant, and what its calls have open.
#[derive(Default)]
pub struct SqlState {
    pub access: SqlAccess,
    /// Resource reps of the connections with a transaction open, oldest first.
    open_transactions: Vec<u32>,
    /// Set when the instance handles a message.
    pub message_in_progress: Option<MessageInProgress>,
    /// The instance's deadline: a call waits for a busy database's connection until
    /// then, as the request or message it serves can wait no longer. `None` for an
    /// instance that serves many requests, each with a deadline of its own: a call
    /// then waits as long as a statement may take.
    pub deadline: Option<Instant>,
}

impl SqlState {
    pub fn new(access: SqlAccess, deadline: Option<Instant>) -> SqlState {
        SqlState { access, open_transactions: Vec::new(), message_in_progress: None, deadline }
    }

    /// `limits` for one call of this instance's: its wait for a connection bounded by
    /// the instance's deadline.
    fn for_call(&self, limits: SqlLimits) -> SqlLimits {
        match self.deadline {
            Some(deadline) => SqlLimits { connection_wait: deadline.saturating_duration_since(Instant::now()), ..limits },
            None => limits,
        }
    }
}

/// What the interface's calls reach of an instance: its SQL state and the resource
/// table its connections live in.
pub struct SqlView<'a> {
    pub component: &'a str,
    pub state: &'a mut SqlState,
    pub table: &'a mut ResourceTable,
}

struct HasSql;

impl HasData for HasSql {
    type Data<'a> = SqlView<'a>;
}

/// Adds `estore:platform/sql` and Spin's `spin:sqlite/sqlite` to `linker`, served by
/// the view `view` gives of the embedder's state.
pub fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, view: fn(&mut T) -> SqlView<'_>) -> wasmtime::Result<()> {
    sql::add_to_linker::<T, HasSql>(linker, view)?;
    bindings::spin_sqlite::add_to_linker::<T, HasSql>(linker, view)
}

/// The message a handler instance was called for: recorded as handled in the
/// handler's transaction, so the record commits with the handler's effects.
pub struct MessageInProgress {
    pub group: Arc<str>,
    pub message_id: String,
    pub recorded: bool,
}

/// The PostgreSQL server's URL when the runtime config puts SQL there.
pub fn postgres_url(runtime: &RuntimeConfig) -> Result<Option<String>> {
    match runtime.sql.backend {
        SqlBackend::Sqlite => Ok(None),
        SqlBackend::Postgres => std::env::var(URL_ENV).ok().or_else(|| runtime.sql.url.clone()).map(Some).with_context(|| {
            format!("[sql] backend = \"postgres\" needs `url` in the runtime config or {URL_ENV}")
        }),
    }
}

/// Opens (and sets up, migrating) every database the application's components use.
/// A component whose database cannot be set up (a failing migration) gets the reason
/// instead of its grant: it does not start, the others do.
pub async fn open_all(
    manifest: &Manifest,
    runtime: &RuntimeConfig,
    state_dir: &Path,
) -> Result<BTreeMap<String, Result<SqlAccess, String>>> {
    let config = &runtime.sql;
    let statement_timeout = config.statement_timeout_ms.map(Duration::from_millis).unwrap_or(DEFAULT_STATEMENT_TIMEOUT);
    let limits = SqlLimits {
        statement_timeout,
        connection_wait: statement_timeout,
        max_rows: config.max_rows.unwrap_or(DEFAULT_MAX_ROWS),
        max_result_bytes: config.max_result_bytes.unwrap_or(DEFAULT_MAX_RESULT_BYTES),
    };
    let max_connections = config.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
    let databases = manifest.components.values().map(|c| c.sql_databases.len()).sum();
    let server = postgres_url(runtime)?.map(|url| postgres::Server::new(&url, databases, limits)).transpose()?;
    // Made with the first database, so no key file appears for an application without.
    let mut signer: Option<Signer> = None;
    let mut access = BTreeMap::new();
    for component in manifest.components.values() {
        let mut granted = BTreeMap::new();
        let mut failure = None;
        for (index, label) in component.sql_databases.iter().enumerate() {
            // Migrations belong to the component's first database.
            let migrations: Option<PathBuf> = if index == 0 { component.sql_migrations.clone() } else { None };
            let (backend, setup) = match &server {
                None => backend::sqlite(state_dir, &component.id, label, max_connections, migrations).await?,
                Some(server) => server.database(&component.id, label, max_connections, limits, migrations)?,
            };
            let signer = match signer.clone() {
                Some(signer) => signer,
                None => signer
                    .insert(match &server {
                        None => Signer::from_state_dir(state_dir)?,
                        Some(server) => server.outbox_signer(),
                    })
                    .clone(),
            };
            let database = Database {
                component: component.id.clone(),
                label: label.clone(),
                backend,
                limits,
                setup,
                relay_signal: tokio::sync::Notify::new(),
                allowed_topics: component.allowed_publish_topics.iter().cloned().collect(),
                signer,
            };
            match database.ensure_ready().await {
                Ok(()) => {}
                Err(Error::Connection(why)) => tracing::warn!(
                    component = %component.id,
                    "database `{label}` is unreachable ({why}); it will be set up when it answers"
                ),
                Err(e) => {
                    failure = Some(format!("database `{label}`: {}", errors::describe(&e)));
                    break;
                }
            }
            granted.insert(label.clone(), Arc::new(database));
        }
        let spin_sqlite =
            spin_sqlite::open(state_dir, &component.id, &component.sqlite_databases, max_connections, limits).await?;
        let grant = match failure {
            Some(why) => Err(why),
            None => Ok(SqlAccess { granted: Arc::new(granted), spin_sqlite: Arc::new(spin_sqlite) }),
        };
        access.insert(component.id.clone(), grant);
    }
    Ok(access)
}

impl SqlAccess {
    /// Starts the outbox relay of each database, sending what components publish in
    /// transactions to `bus`.
    pub fn start_relays(&self, bus: &estore_bus::Bus, publish_timeout: Duration) {
        for database in self.granted.values() {
            tokio::spawn(outbox::relay(database.clone(), bus.clone(), publish_timeout));
        }
    }

    /// Whether any of the component's databases records `message_id` as handled by
    /// `group`.
    pub async fn was_handled(&self, group: &str, message_id: &str) -> Result<bool, Error> {
        for database in self.granted.values() {
            database.ensure_ready().await?;
            if outbox::was_handled(&database.backend, group, message_id, database.limits).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Forgets the handled-message ids older than `age`, in every database of the
    /// component, so the record does not grow forever. A message redelivered after
    /// that long is past any bus's retention.
    pub async fn forget_handled(&self, age: Duration) -> Result<u64, Error> {
        let before = std::time::SystemTime::now()
            .checked_sub(age)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64);
        let mut forgotten = 0;
        for database in self.granted.values() {
            database.ensure_ready().await?;
            forgotten += outbox::forget_handled(&database.backend, before, database.limits).await?;
        }
        Ok(forgotten)
    }

    /// Whether every database of the component is set up and answers a query: part of
    /// the host's readiness. Says which database failed and why.
    pub async fn check(&self) -> Result<(), String> {
        for (label, database) in self.granted.iter() {
            let answered = async {
                database.ensure_ready().await?;
                database.backend.query(Caller::Component, None, "SELECT 1", Vec::new(), database.limits).await.map(drop)
            };
            answered.await.map_err(|e| format!("database `{label}`: {}", errors::describe(&e)))?;
        }
        Ok(())
    }

    /// Sets the component's database gauges: each pool's connections, and each
    /// outbox's backlog (left out for a database that does not answer now).
    pub async fn report_levels(&self, component: &str) {
        let metrics = estore_engine::metrics::global();
        for (label, database) in self.granted.iter() {
            let (in_use, idle) = database.backend.pool_use();
            for (state, count) in [("in_use", in_use), ("idle", idle)] {
                let labels = estore_engine::metrics::PoolLabels { component: component.to_owned(), database: label.clone(), state };
                metrics.pool_connections.get_or_create(&labels).set(i64::from(count));
            }
            let labels = estore_engine::metrics::DatabaseLabels { component: component.to_owned(), database: label.clone() };
            match outbox::backlog(&database.backend, database.limits).await {
                Ok(backlog) => {
                    metrics.outbox_backlog.get_or_create(&labels).set(backlog);
                }
                Err(_) => {
                    metrics.outbox_backlog.remove(&labels);
                }
            }
        }
    }

    /// Whether the component was granted any database.
    pub fn is_granted(&self) -> bool {
        !self.granted.is_empty()
    }

    /// Whether the component was granted any of Spin's SQLite databases.
    pub fn is_spin_sqlite_granted(&self) -> bool {
        !self.spin_sqlite.is_empty()
    }

    /// Applies what `folder` holds and database `label` has not applied yet: the
    /// migrations a deployed version brings. A failure says which file and statement.
    pub async fn migrate(&self, label: &str, folder: &Path) -> Result<(), String> {
        let database = self.granted.get(label).ok_or_else(|| format!("no database `{label}` is granted"))?;
        database.setup.migrate(database, folder).await.map_err(|e| errors::describe(&e))
    }

    /// Forgets that `group` handled `message_id`, in every database of the component:
    /// a handler that committed and then returned `retry` or `reject` has not handled
    /// it, and its redelivery (or a replay of the dead letter) must run it again.
    pub async fn forget_handled_message(&self, group: &str, message_id: &str) -> Result<(), Error> {
        for database in self.granted.values() {
            database.ensure_ready().await?;
            outbox::forget_message(&database.backend, group, message_id, database.limits).await?;
        }
        Ok(())
    }

    /// Records a message as handled outside any transaction, in the component's first
    /// database (for handlers whose effects were not in a transaction). A component
    /// without a database has nowhere to record it, and is told so by `false`.
    pub async fn record_handled(&self, group: &str, message_id: &str) -> Result<bool, Error> {
        let Some(database) = self.granted.values().next() else { return Ok(false) };
        database.ensure_ready().await?;
        outbox::record_handled(&database.backend, None, group, message_id, database.limits).await?;
        Ok(true)
    }
}

impl SqlView<'_> {
    /// Writes `message` into the transaction the instance has open, if any: `None`
    /// when no transaction is open. The most recently begun transaction wins.
    pub async fn stage_in_open_transaction(&mut self, message: &estore_bus::Outgoing) -> Option<Result<(), Error>> {
        let rep = *self.state.open_transactions.last()?;
        let connection = self.table.get_mut(&Resource::<Connection>::new_borrow(rep)).ok()?;
        let database = connection.database.clone();
        let tx = connection.transaction.as_mut()?;
        let result = outbox::stage(&database, tx, message).await;
        connection.staged |= result.is_ok();
        Some(result)
    }
}

impl Database {
    async fn ensure_ready(&self) -> Result<(), Error> {
        self.setup.ensure(self).await
    }

    /// The span of one SQL call; the statement without its parameters, shortened.
    fn span(&self, operation: &str, statement: &str) -> tracing::Span {
        let mut end = statement.len().min(MAX_TRACED_STATEMENT);
        while !statement.is_char_boundary(end) {
            end -= 1;
        }
        tracing::debug_span!(
            "sql",
            otel.name = format!("{operation} {}", self.label),
            otel.kind = "client",
            db.system.name = self.backend.system(),
            db.namespace = %self.label,
            db.query.text = &statement[..end],
            error.type = tracing::field::Empty,
        )
    }

    /// Logs what the operator should hear of: the database failing, and a statement
    /// the host refused (a component trying to leave its database).
    fn log_failure(&self, what: &str, error: &Error) {
        if matches!(error, Error::Connection(_) | Error::Other(_) | Error::NotAllowed(_)) {
            tracing::warn!(component = %self.component, database = %self.label, "{what}: {}", errors::describe(error));
        }
    }
}

impl Connection {
    /// Runs one call of the component's (`what`: execute, query, begin) in a span of
    /// its own, naming the statement.
    async fn run<T>(
        &mut self,
        what: &str,
        statement: &str,
        state: &SqlState,
        call: impl AsyncFnOnce(&Backend, Option<&mut Transaction>, SqlLimits) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let database = self.database.clone();
        let span = database.span(what, statement);
        let limits = state.for_call(database.limits);
        let result = async {
            database.ensure_ready().await?;
            call(&database.backend, self.transaction.as_mut(), limits).await
        }
        .instrument(span.clone())
        .await;
        if let Err(e) = &result {
            span.record("error.type", errors::describe(e));
            database.log_failure(what, e);
        }
        result
    }
}

impl Host for SqlView<'_> {}

impl HostConnection for SqlView<'_> {
    async fn open(&mut self, label: String) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        let Some(database) = self.state.access.granted.get(&label) else {
            tracing::warn!(component = %self.component, "denied SQL database `{label}`: not in sql_databases");
            return Ok(Err(Error::AccessDenied(format!(
                "component `{}` has no database `{label}` (grant it with sql_databases)",
                self.component
            ))));
        };
        let connection = Connection { database: database.clone(), transaction: None, staged: false };
        Ok(Ok(self.table.push(connection)?))
    }

    async fn execute(&mut self, connection: Resource<Connection>, statement: String, params: Vec<Value>) -> wasmtime::Result<Result<u64, Error>> {
        let connection = self.table.get_mut(&connection)?;
        Ok(connection
            .run("execute", &statement, self.state, async |backend, tx, limits| {
                backend.execute(Caller::Component, tx, &statement, params, limits).await
            })
            .await)
    }

    async fn query(&mut self, connection: Resource<Connection>, statement: String, params: Vec<Value>) -> wasmtime::Result<Result<RowSet, Error>> {
        let connection = self.table.get_mut(&connection)?;
        Ok(connection
            .run("query", &statement, self.state, async |backend, tx, limits| {
                backend.query(Caller::Component, tx, &statement, params, limits).await
            })
            .await)
    }

    async fn begin(&mut self, connection: Resource<Connection>) -> wasmtime::Result<Result<(), Error>> {
        let rep = connection.rep();
        let connection = self.table.get_mut(&connection)?;
        if connection.transaction.is_some() {
            return Ok(Err(Error::InvalidQuery("a transaction is already open on this connection".into())));
        }
        let result =
            connection.run("begin", "BEGIN", self.state, async |backend, _, limits| backend.begin(Caller::Component, limits).await).await;
        Ok(result.map(|tx| {
            connection.transaction = Some(tx);
            connection.staged = false;
            self.state.open_transactions.push(rep);
        }))
    }

    /// Commits, with the record of the message being handled (if any) in the same
    /// transaction, then wakes the outbox relay if the transaction published.
    async fn commit(&mut self, connection: Resource<Connection>) -> wasmtime::Result<Result<(), Error>> {
        self.state.open_transactions.retain(|open| *open != connection.rep());
        let connection = self.table.get_mut(&connection)?;
        let Some(mut tx) = connection.transaction.take() else {
            return Ok(Err(Error::InvalidQuery("commit without begin".into())));
        };
        let database = connection.database.clone();
        let message = self.state.message_in_progress.as_mut();
        let committed = async {
            if let Some(message) = message.as_ref().filter(|m| !m.recorded) {
                let recorded =
                    outbox::record_handled(&database.backend, Some(&mut tx), &message.group, &message.message_id, database.limits)
                        .await;
                if let Err(e) = recorded {
                    database.log_failure("recording the handled message", &e);
                    return Err(e);
                }
            }
            tx.commit(database.limits).await
        }
        .instrument(database.span("commit", "COMMIT"))
        .await;
        if committed.is_ok() {
            if let Some(message) = message {
                message.recorded = true;
            }
            if std::mem::take(&mut connection.staged) {
                database.relay_signal.notify_one();
            }
        }
        Ok(committed)
    }

    async fn rollback(&mut self, connection: Resource<Connection>) -> wasmtime::Result<Result<(), Error>> {
        self.state.open_transactions.retain(|open| *open != connection.rep());
        let connection = self.table.get_mut(&connection)?;
        let Some(tx) = connection.transaction.take() else {
            return Ok(Err(Error::InvalidQuery("rollback without begin".into())));
        };
        connection.staged = false;
        Ok(tx.rollback(connection.database.limits).await)
    }

    /// Dropping an open transaction rolls it back before its connection is reused.
    async fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        self.state.open_transactions.retain(|open| *open != connection.rep());
        self.table.delete(connection)?;
        Ok(())
    }
}

/// Databases for the capability's unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    pub const LIMITS: SqlLimits =
        SqlLimits {
            statement_timeout: Duration::from_secs(5),
            connection_wait: Duration::from_secs(5),
            max_rows: 1000,
            max_result_bytes: 1 << 20,
        };

    /// Database `default` of component `c` in `state_dir`, set up, allowed to publish
    /// to `topics`; one connection, so consecutive calls share it.
    pub async fn sqlite_database(state_dir: &Path, topics: &[&str]) -> Database {
        let (backend, setup) = backend::sqlite(state_dir, "c", "default", 1, None).await.expect("open");
        let database = Database {
            component: "c".into(),
            label: "default".into(),
            backend,
            limits: LIMITS,
            setup,
            relay_signal: tokio::sync::Notify::new(),
            allowed_topics: topics.iter().map(|t| t.to_string()).collect(),
            signer: Signer::from_state_dir(state_dir).expect("signing key"),
        };
        database.ensure_ready().await.expect("set up");
        database
    }
}
