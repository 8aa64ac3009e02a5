//! The two backends behind one set of calls: values bound and read back, results
//! bounded, each call under the statement timeout, and each run for a [`Caller`]: the
//! component, or the host on its own tables.
//!
//! A call first waits for a connection (see [`acquire`]): as long as its caller's
//! deadline allows while every connection is busy, since that is load, and only a few
//! seconds while the pool has room for a connection yet cannot open one, since that
//! is a database that does not answer. The statement timeout starts once it has one.
//!
//! On SQLite the caller decides the authorizer the statement runs under (see
//! [`super::authorizer`]); on PostgreSQL the connection: the component's calls run on
//! its role's pool, the host's own statements outside the component's transactions on
//! a pool of the operator's (see [`postgres::Pools`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgRow, PgTypeInfo};
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteRow};
use sqlx::{Column, Encode, Executor, Pool, Postgres, Row, Sqlite, SqlitePool, Type, TypeInfo, ValueRef};
use tokio::sync::OnceCell;

pub use super::authorizer::Caller;
use super::authorizer;
use super::errors::{from_sqlx, limit};
use super::statements::numbered_placeholders;
use super::{Database, SqlLimits, migrations, outbox, postgres, tables};
use crate::bindings::sql::{Error, RowSet, Value};

pub enum Backend {
    Sqlite(SqlitePool),
    Postgres(postgres::Pools),
}

pub enum Transaction {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// One-time preparation of a database (PostgreSQL role and schema, the host's tables,
/// migrations), retried at the next call until it has succeeded once.
pub struct Setup {
    done: OnceCell<()>,
    migrations: Option<PathBuf>,
    postgres: Option<postgres::Provisioning>,
}

impl Setup {
    pub fn new(migrations: Option<PathBuf>, postgres: Option<postgres::Provisioning>) -> Setup {
        Setup { done: OnceCell::new(), migrations, postgres }
    }

    pub async fn ensure(&self, database: &Database) -> Result<(), Error> {
        self.done
            .get_or_try_init(|| async {
                let _exclusive = self.exclusive().await?;
                let (backend, limits) = (&database.backend, database.limits);
                // The host's tables, in one transaction with the signing of what an
                // earlier version left in the outbox unsigned, so that happens once.
                let (mut tx, outbox_predates_signing) = match &self.postgres {
                    Some(provisioning) => timed(limits.statement_timeout, provisioning.provision()).await?,
                    None => {
                        let mut tx = backend.begin(Caller::Host, limits).await?;
                        let upgraded = tables::create_on_sqlite(backend, &mut tx, limits).await?;
                        (tx, upgraded)
                    }
                };
                if outbox_predates_signing {
                    outbox::sign_earlier_rows(database, &mut tx).await?;
                }
                tx.commit(limits).await?;
                if let Some(folder) = &self.migrations {
                    migrations::apply(database, folder).await?;
                }
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// Applies the migrations in `folder` that the database has not applied yet.
    pub async fn migrate(&self, database: &Database, folder: &Path) -> Result<(), Error> {
        self.ensure(database).await?;
        let _exclusive = self.exclusive().await?;
        migrations::apply(database, folder).await
    }

    /// On PostgreSQL, which several hosts share, the database's set-up lock (see
    /// [`postgres::Provisioning::exclusive`]); a SQLite file has one host already.
    async fn exclusive(&self) -> Result<Option<sqlx::PgConnection>, Error> {
        match &self.postgres {
            Some(provisioning) => provisioning.exclusive().await.map(Some),
            None => Ok(None),
        }
    }
}

/// An embedded database: one SQLite file per component and label under the state dir.
pub async fn sqlite(
    state_dir: &Path,
    component: &str,
    label: &str,
    max_connections: u32,
    migrations: Option<PathBuf>,
) -> anyhow::Result<(Backend, Setup)> {
    let folder = state_dir.join("sql").join(component);
    std::fs::create_dir_all(&folder)?;
    let options = SqliteConnectOptions::new()
        .filename(folder.join(format!("{label}.db")))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true)
        // Statement journals and sorts in memory: on files, SQLite creates and deletes
        // a temporary file for many a statement inside a transaction.
        .pragma("temp_store", "memory");
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(POOL_ACQUIRE_CAP)
        .after_connect(|connection, _| {
            Box::pin(async move {
                authorizer::prepare_connection(&mut connection.lock_handle().await?);
                Ok(())
            })
        })
        .connect_lazy_with(options);
    Ok((Backend::Sqlite(pool), Setup::new(migrations, None)))
}

/// The pool's own bound on a wait for a connection, above any caller's: [`acquire`]
/// decides when a wait has lasted too long.
pub const POOL_ACQUIRE_CAP: Duration = Duration::from_secs(3600);
/// How long a call waits for a connection while the pool has room to open one and none
/// opens: the database is then unreachable, and the call hears so at once rather than
/// at its deadline.
const CONNECT_PATIENCE: Duration = Duration::from_secs(3);
/// How often a waiting call looks at the pool, to tell a busy database from one that
/// does not answer.
const POOL_CHECK: Duration = Duration::from_millis(250);

/// One of `pool`'s connections, waited for for at most `wait`.
///
/// Every connection busy is load, not failure: the call keeps its place in the pool's
/// queue (which is fair, so waiting callers are served in turn) until `wait` runs out,
/// and then fails with `timeout`, which services answer with 503 and `Retry-After`.
/// A pool with room for another connection that has not opened one within
/// [`CONNECT_PATIENCE`] means the server does not answer: `connection`.
pub async fn acquire<DB: sqlx::Database>(pool: &Pool<DB>, wait: Duration) -> Result<PoolConnection<DB>, Error> {
    let started = Instant::now();
    let acquire = pool.acquire();
    tokio::pin!(acquire);
    loop {
        let waited = started.elapsed();
        let next = POOL_CHECK.min(wait.saturating_sub(waited)).max(Duration::from_millis(1));
        tokio::select! {
            acquired = &mut acquire => return acquired.map_err(from_sqlx),
            () = tokio::time::sleep(next) => {}
        }
        let waited = started.elapsed();
        let max = pool.options().get_max_connections();
        let room = pool.size() < max;
        if room && (waited >= CONNECT_PATIENCE || waited >= wait) {
            return Err(Error::Connection(format!(
                "no connection to the database opened within {} ms: the server does not answer",
                waited.as_millis()
            )));
        }
        if waited >= wait {
            return Err(Error::Timeout(format!(
                "all {max} connections to the database stayed busy for {} ms, as long as the call could wait: \
                 the database is under load; try again",
                waited.as_millis()
            )));
        }
    }
}

async fn timed<T>(timeout: Duration, call: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result,
        Err(_) => Err(Error::Timeout(format!("the statement ran longer than {} ms", timeout.as_millis()))),
    }
}

impl Backend {
    /// The database system, as OpenTelemetry names it.
    pub fn system(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgresql",
        }
    }

    /// Open connections of the component's pool: (in use, idle).
    pub fn pool_use(&self) -> (u32, u32) {
        let (size, idle) = match self {
            Backend::Sqlite(pool) => (pool.size(), pool.num_idle()),
            Backend::Postgres(pools) => (pools.component.size(), pools.component.num_idle()),
        };
        let idle = u32::try_from(idle).unwrap_or(u32::MAX);
        (size.saturating_sub(idle), idle)
    }

    /// The name the host's statements use for its table `name`: qualified, so no
    /// object of the component's (a temp table, another schema) can stand in for it.
    pub fn host_table(&self, name: &str) -> String {
        match self {
            Backend::Sqlite(_) => format!("main.{name}"),
            Backend::Postgres(pools) => format!("{}.{name}", postgres::quote(&pools.schema)),
        }
    }

    pub async fn execute(
        &self,
        caller: Caller,
        tx: Option<&mut Transaction>,
        sql: &str,
        params: Vec<Value>,
        limits: SqlLimits,
    ) -> Result<u64, Error> {
        let mut connection = self.connection_outside(tx.is_some(), caller, limits).await?;
        timed(limits.statement_timeout, async {
            let done = match (self, tx, connection.as_mut()) {
                (Backend::Sqlite(_), None, Some(Pooled::Sqlite(connection))) => {
                    return sqlite_execute(connection, caller, sql, params, limits).await;
                }
                (Backend::Sqlite(_), Some(Transaction::Sqlite(tx)), _) => {
                    return sqlite_execute(tx, caller, sql, params, limits).await;
                }
                (Backend::Postgres(_), None, Some(Pooled::Postgres(connection))) => {
                    let sql = numbered_placeholders(sql);
                    bind_postgres(sqlx::query(&sql), params).execute(&mut **connection).await.map(|r| r.rows_affected())
                }
                (Backend::Postgres(_), Some(Transaction::Postgres(tx)), _) => {
                    let sql = numbered_placeholders(sql);
                    bind_postgres(sqlx::query(&sql), params).execute(&mut **tx).await.map(|r| r.rows_affected())
                }
                _ => return Err(mismatch()),
            };
            done.map_err(from_sqlx)
        })
        .await
    }

    pub async fn query(
        &self,
        caller: Caller,
        tx: Option<&mut Transaction>,
        sql: &str,
        params: Vec<Value>,
        limits: SqlLimits,
    ) -> Result<RowSet, Error> {
        let mut connection = self.connection_outside(tx.is_some(), caller, limits).await?;
        timed(limits.statement_timeout, async {
            match (self, tx, connection.as_mut()) {
                (Backend::Sqlite(_), None, Some(Pooled::Sqlite(connection))) => {
                    sqlite_query(connection, caller, sql, params, limits).await
                }
                (Backend::Sqlite(_), Some(Transaction::Sqlite(tx)), _) => sqlite_query(tx, caller, sql, params, limits).await,
                (Backend::Postgres(_), None, Some(Pooled::Postgres(connection))) => {
                    let sql = numbered_placeholders(sql);
                    collect(&mut **connection, bind_postgres(sqlx::query(&sql), params), postgres_values, limits).await
                }
                (Backend::Postgres(_), Some(Transaction::Postgres(tx)), _) => {
                    let sql = numbered_placeholders(sql);
                    collect(&mut **tx, bind_postgres(sqlx::query(&sql), params), postgres_values, limits).await
                }
                _ => Err(mismatch()),
            }
        })
        .await
    }

    /// One statement of Spin's SQLite interface, on one connection: its rows, and
    /// what it leaves on the connection (`last_insert_rowid()`, `changes()`).
    pub async fn spin_statement(&self, sql: &str, params: Vec<Value>, limits: SqlLimits) -> Result<(RowSet, i64, u64), Error> {
        let Backend::Sqlite(pool) = self else { return Err(mismatch()) };
        let mut connection = acquire(pool, limits.connection_wait).await?;
        timed(limits.statement_timeout, async {
            let rows = sqlite_query(&mut connection, Caller::Component, sql, params, limits).await?;
            let (rowid, changes): (i64, i64) =
                sqlx::query_as("SELECT last_insert_rowid(), changes()").fetch_one(&mut *connection).await.map_err(from_sqlx)?;
            Ok((rows, rowid, changes.unsigned_abs()))
        })
        .await
    }

    pub async fn begin(&self, caller: Caller, limits: SqlLimits) -> Result<Transaction, Error> {
        let connection = self.connection(caller, limits.connection_wait).await?;
        timed(limits.statement_timeout, connection.begin()).await
    }

    /// Runs a migration script's statements, each for its caller, in one
    /// transaction of the component's, naming the statement that failed.
    pub async fn run_script(&self, statements: &[(Caller, &str)]) -> Result<(), (usize, Error)> {
        let connection = self.connection(Caller::Component, POOL_ACQUIRE_CAP).await.map_err(|e| (0, e))?;
        let mut tx = connection.begin().await.map_err(|e| (0, e))?;
        for (index, (caller, statement)) in statements.iter().enumerate() {
            let result = match &mut tx {
                Transaction::Sqlite(tx) => {
                    let text = authorizer::statement_text(*caller, statement);
                    on_sqlite(tx, *caller, None, async |c| c.execute(&*text).await.map(drop).map_err(from_sqlx)).await
                }
                Transaction::Postgres(tx) => tx.execute(*statement).await.map(drop).map_err(from_sqlx),
            };
            result.map_err(|e| (index, e))?;
        }
        tx.commit_unbounded().await.map_err(|e| (statements.len(), e))
    }

    /// A connection for `caller`, waited for for at most `wait` (see [`acquire`]).
    async fn connection(&self, caller: Caller, wait: Duration) -> Result<Pooled, Error> {
        match self {
            Backend::Sqlite(pool) => acquire(pool, wait).await.map(Pooled::Sqlite),
            Backend::Postgres(pools) => acquire(pools.for_caller(caller), wait).await.map(Pooled::Postgres),
        }
    }

    /// A connection for a call outside a transaction; none for one inside, which runs
    /// on the transaction's.
    async fn connection_outside(&self, in_transaction: bool, caller: Caller, limits: SqlLimits) -> Result<Option<Pooled>, Error> {
        if in_transaction {
            return Ok(None);
        }
        self.connection(caller, limits.connection_wait).await.map(Some)
    }
}

/// A connection taken from one of the backend's pools.
enum Pooled {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl Pooled {
    /// SQLite transactions take the write lock at `BEGIN IMMEDIATE`, waiting for it
    /// under the busy timeout. A deferred transaction that reads and then writes
    /// cannot wait: if another writer committed meanwhile, its snapshot is stale and
    /// SQLite fails it at once with `SQLITE_BUSY`, which concurrent handlers would
    /// meet constantly. (Any authorizer allows `BEGIN`; each statement in the
    /// transaction is armed for its own caller.)
    ///
    /// `Transaction::begin` on a pooled connection is what sqlx's own `Pool::begin_with`
    /// does; it is called here so that the connection comes from [`acquire`].
    async fn begin(self) -> Result<Transaction, Error> {
        match self {
            Pooled::Sqlite(connection) => {
                sqlx::Transaction::begin(connection, Some("BEGIN IMMEDIATE".into())).await.map(Transaction::Sqlite)
            }
            Pooled::Postgres(connection) => sqlx::Transaction::begin(connection, None).await.map(Transaction::Postgres),
        }
        .map_err(from_sqlx)
    }
}

impl Transaction {
    pub async fn commit(self, limits: SqlLimits) -> Result<(), Error> {
        timed(limits.statement_timeout, self.commit_unbounded()).await
    }

    async fn commit_unbounded(self) -> Result<(), Error> {
        match self {
            Transaction::Sqlite(tx) => tx.commit().await,
            Transaction::Postgres(tx) => tx.commit().await,
        }
        .map_err(from_sqlx)
    }

    pub async fn rollback(self, limits: SqlLimits) -> Result<(), Error> {
        timed(limits.statement_timeout, async {
            match self {
                Transaction::Sqlite(tx) => tx.rollback().await,
                Transaction::Postgres(tx) => tx.rollback().await,
            }
            .map_err(from_sqlx)
        })
        .await
    }
}

/// Runs `call` on a SQLite connection armed for `caller` (see [`authorizer`]), and, with
/// a `deadline`, bounded by it: SQLite runs a statement on the connection's own thread,
/// where a timed-out future cannot stop it, so a progress handler interrupts the
/// statement itself once its deadline has passed, and a runaway query neither burns a
/// core nor keeps its connection after the component was told it timed out. A
/// refusal comes back as `not-allowed` saying what was refused.
async fn on_sqlite<T>(
    connection: &mut SqliteConnection,
    caller: Caller,
    deadline: Option<Instant>,
    call: impl AsyncFnOnce(&mut SqliteConnection) -> Result<T, Error>,
) -> Result<T, Error> {
    {
        let mut handle = connection.lock_handle().await.map_err(from_sqlx)?;
        match deadline {
            Some(deadline) => handle.set_progress_handler(1000, move || Instant::now() < deadline),
            None => handle.remove_progress_handler(),
        }
        authorizer::arm(&mut handle, caller);
    }
    let result = call(&mut *connection).await;
    let denial = match connection.lock_handle().await {
        Ok(mut handle) => {
            handle.remove_progress_handler();
            authorizer::take_denial(&mut handle)
        }
        Err(_) => None,
    };
    // A refused statement does not compile, whatever code SQLite gives the failure
    // (`SQLITE_AUTH`, or `SQLITE_ERROR` for a function).
    match (result, denial) {
        (Err(_), Some(reason)) => Err(Error::NotAllowed(reason)),
        (result, _) => result,
    }
}

async fn sqlite_execute(
    connection: &mut SqliteConnection,
    caller: Caller,
    sql: &str,
    params: Vec<Value>,
    limits: SqlLimits,
) -> Result<u64, Error> {
    let text = authorizer::statement_text(caller, sql);
    on_sqlite(connection, caller, Some(Instant::now() + limits.statement_timeout), async |c| {
        bind_sqlite(sqlx::query(&text), params).execute(c).await.map(|r| r.rows_affected()).map_err(from_sqlx)
    })
    .await
}

async fn sqlite_query(
    connection: &mut SqliteConnection,
    caller: Caller,
    sql: &str,
    params: Vec<Value>,
    limits: SqlLimits,
) -> Result<RowSet, Error> {
    let text = authorizer::statement_text(caller, sql);
    on_sqlite(connection, caller, Some(Instant::now() + limits.statement_timeout), async |c| {
        collect(c, bind_sqlite(sqlx::query(&text), params), sqlite_values, limits).await
    })
    .await
}

fn mismatch() -> Error {
    Error::Other("transaction belongs to another backend".into())
}

/// Streams rows, stopping as soon as a limit is passed rather than after loading
/// everything into memory.
async fn collect<'e, DB, A, E, R>(
    executor: E,
    query: Query<'e, DB, A>,
    values: impl Fn(&R) -> Result<Vec<Value>, Error>,
    limits: SqlLimits,
) -> Result<RowSet, Error>
where
    DB: sqlx::Database<Row = R>,
    A: sqlx::IntoArguments<'e, DB> + 'e,
    R: Row<Database = DB>,
    E: Executor<'e, Database = DB> + 'e,
{
    let mut rows = query.fetch(executor);
    let mut columns = Vec::new();
    let mut out = Vec::new();
    let mut bytes = 0u64;
    while let Some(row) = rows.try_next().await.map_err(from_sqlx)? {
        if columns.is_empty() {
            columns = row.columns().iter().map(|c| c.name().to_owned()).collect();
        }
        if out.len() as u64 >= limits.max_rows {
            return Err(limit(format!("the result has more than {} rows", limits.max_rows)));
        }
        let row = values(&row)?;
        bytes += row.iter().map(value_size).sum::<u64>();
        if bytes > limits.max_result_bytes {
            return Err(limit(format!("the result is larger than {} bytes", limits.max_result_bytes)));
        }
        out.push(row);
    }
    Ok(RowSet { columns, rows: out })
}

fn value_size(value: &Value) -> u64 {
    match value {
        Value::Text(s) => s.len() as u64,
        Value::Blob(b) => b.len() as u64,
        _ => 8,
    }
}

/// Binds the interface's values in order; `null` is the backend's untyped NULL.
fn bind<'q, DB, N>(
    mut query: Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    params: Vec<Value>,
    null: N,
) -> Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    N: Encode<'q, DB> + Type<DB> + Copy + Send + 'q,
    bool: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    f64: Encode<'q, DB> + Type<DB>,
    String: Encode<'q, DB> + Type<DB>,
    Vec<u8>: Encode<'q, DB> + Type<DB>,
{
    for param in params {
        query = match param {
            Value::Null => query.bind(null),
            Value::Boolean(b) => query.bind(b),
            Value::Int64(i) => query.bind(i),
            Value::Float64(f) => query.bind(f),
            Value::Text(s) => query.bind(s),
            Value::Blob(b) => query.bind(b),
        };
    }
    query
}

fn bind_sqlite<'q>(query: Query<'q, Sqlite, SqliteArguments<'q>>, params: Vec<Value>) -> Query<'q, Sqlite, SqliteArguments<'q>> {
    bind(query, params, None::<i64>)
}

fn bind_postgres<'q>(query: Query<'q, Postgres, PgArguments>, params: Vec<Value>) -> Query<'q, Postgres, PgArguments> {
    bind(query, params, postgres::UntypedNull)
}

/// A row's values in column order: NULL for NULL, `decode` for the rest.
fn row_values<R>(row: &R, decode: impl Fn(usize, &<R::Database as sqlx::Database>::Column) -> Result<Value, Error>) -> Result<Vec<Value>, Error>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
{
    row.columns()
        .iter()
        .enumerate()
        .map(|(index, column)| {
            if row.try_get_raw(index).map_err(from_sqlx)?.is_null() {
                return Ok(Value::Null);
            }
            decode(index, column)
        })
        .collect()
}

/// SQLite values carry their storage class; a column declared BOOLEAN stores 0/1 and
/// reads back as a boolean, so the same schema reads the same on both backends.
fn sqlite_values(row: &SqliteRow) -> Result<Vec<Value>, Error> {
    row_values(row, |index, column| {
        let declared = column.type_info().name().to_ascii_uppercase();
        let storage = row.try_get_raw(index).map_err(from_sqlx)?.type_info().name().to_ascii_uppercase();
        Ok(match storage.as_str() {
            "INTEGER" | "BOOLEAN" if declared.starts_with("BOOL") => {
                Value::Boolean(row.try_get::<i64, _>(index).map_err(from_sqlx)? != 0)
            }
            "INTEGER" | "BOOLEAN" => Value::Int64(row.try_get(index).map_err(from_sqlx)?),
            "REAL" => Value::Float64(row.try_get(index).map_err(from_sqlx)?),
            "BLOB" => Value::Blob(row.try_get(index).map_err(from_sqlx)?),
            _ => Value::Text(row.try_get(index).map_err(from_sqlx)?),
        })
    })
}

fn postgres_values(row: &PgRow) -> Result<Vec<Value>, Error> {
    row_values(row, |index, column| {
        let get = from_sqlx;
        let type_info: &PgTypeInfo = column.type_info();
        Ok(match type_info.name() {
            "BOOL" => Value::Boolean(row.try_get(index).map_err(get)?),
            "INT2" => Value::Int64(row.try_get::<i16, _>(index).map_err(get)?.into()),
            "INT4" => Value::Int64(row.try_get::<i32, _>(index).map_err(get)?.into()),
            "INT8" => Value::Int64(row.try_get(index).map_err(get)?),
            "FLOAT4" => Value::Float64(row.try_get::<f32, _>(index).map_err(get)?.into()),
            "FLOAT8" => Value::Float64(row.try_get(index).map_err(get)?),
            "TEXT" | "VARCHAR" | "BPCHAR" | "CHAR" | "NAME" | "UNKNOWN" => Value::Text(row.try_get(index).map_err(get)?),
            "BYTEA" => Value::Blob(row.try_get(index).map_err(get)?),
            other => {
                return Err(Error::InvalidQuery(format!(
                    "column `{}` has type {other}, which the sql interface does not carry: cast it \
                     (e.g. `::text`, `::bigint` or `::double precision`)",
                    column.name()
                )));
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{LIMITS, sqlite_database};

    async fn as_component(backend: &Backend, sql: &str) -> Result<RowSet, Error> {
        backend.query(Caller::Component, None, sql, Vec::new(), LIMITS).await
    }

    fn refusal(result: Result<RowSet, Error>) -> String {
        match result {
            Err(Error::NotAllowed(why)) => why,
            other => panic!("expected not-allowed, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_components_sql_stays_in_its_own_database() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = sqlite_database(dir.path(), &[]).await;
        let backend = &database.backend;
        as_component(backend, "CREATE TABLE notes (id BIGINT PRIMARY KEY, title TEXT)").await.expect("its own DDL");
        as_component(backend, "INSERT INTO notes VALUES (1, 'a'); UPDATE notes SET title = 'b'").await.expect("its own DML");
        let info = as_component(backend, "PRAGMA table_info(notes)").await.expect("a read-only pragma");
        assert_eq!(info.rows.len(), 2);
        as_component(backend, "SELECT count(*) FROM _estore_outbox").await.expect("reading a host table");

        let other = dir.path().join("other.db");
        let attach = refusal(as_component(backend, &format!("ATTACH DATABASE '{}' AS other", other.display())).await);
        assert!(attach.contains("other.db"), "{attach}");
        let copy = dir.path().join("copy.db");
        refusal(as_component(backend, &format!("VACUUM INTO '{}'", copy.display())).await);
        assert!(!copy.exists(), "VACUUM INTO wrote {}", copy.display());
        assert!(!other.exists());
        refusal(as_component(backend, "PRAGMA journal_mode = DELETE").await);
        refusal(as_component(backend, "SELECT load_extension('/nowhere')").await);
        refusal(as_component(backend, "CREATE TEMP TABLE _estore_outbox (seq INTEGER)").await);
        let trigger = "CREATE TEMP TRIGGER sneak AFTER INSERT ON main._estore_outbox BEGIN SELECT 1; END";
        refusal(as_component(backend, trigger).await);
        // The second statement of one call is checked as well as the first.
        refusal(as_component(backend, "SELECT 1; DELETE FROM _estore_handled").await);
        let journal = backend.query(Caller::Host, None, "PRAGMA journal_mode", Vec::new(), LIMITS).await.expect("journal");
        let mode = journal.rows.first().and_then(|row| row.first());
        assert!(matches!(mode, Some(Value::Text(mode)) if mode == "wal"), "still as the host set it up: {mode:?}");
    }

    #[tokio::test]
    async fn a_statement_the_host_compiled_is_not_reused_for_a_component() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = sqlite_database(dir.path(), &[]).await;
        let backend = &database.backend;
        let insert = "INSERT INTO main._estore_handled (consumer_group, message_id, handled_at_ms) VALUES ('g', 'm', 0)";
        // On the one connection: the host's statement is compiled and cached first.
        backend.execute(Caller::Host, None, insert, Vec::new(), LIMITS).await.expect("the host's bookkeeping");
        let refused = backend.execute(Caller::Component, None, insert, Vec::new(), LIMITS).await;
        assert!(matches!(refused, Err(Error::NotAllowed(_))), "{refused:?}");
        // And the component's refusal leaves the host's statements alone.
        let delete = "DELETE FROM main._estore_handled";
        let deleted = backend.execute(Caller::Host, None, delete, Vec::new(), LIMITS).await;
        assert!(matches!(deleted, Ok(1)), "{deleted:?}");
    }

    /// The `connection` limit is what one call may wait; the same connection, held,
    /// makes every other call wait.
    fn busy_call(wait: Duration) -> SqlLimits {
        SqlLimits { connection_wait: wait, ..LIMITS }
    }

    #[tokio::test]
    async fn a_call_waits_for_a_busy_database_as_long_as_it_may_and_hears_it_is_busy() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = sqlite_database(dir.path(), &[]).await;
        let Backend::Sqlite(pool) = &database.backend else { unreachable!("a SQLite backend") };
        let held = pool.acquire().await.expect("the one connection");

        // Longer than the 3 s the pool used to wait before calling the database
        // unreachable: a wait for a busy connection lasts as long as the call may wait.
        let wait = Duration::from_millis(3500);
        let started = Instant::now();
        let busy = database.backend.query(Caller::Component, None, "SELECT 1", Vec::new(), busy_call(wait)).await;
        assert!(started.elapsed() >= wait, "gave up after {:?}", started.elapsed());
        match busy {
            Err(Error::Timeout(why)) => assert!(why.contains("busy"), "{why}"),
            other => panic!("expected a timeout naming the busy connections, got {other:?}"),
        }

        // Released within the wait, the connection goes to the waiting call.
        let waiting = database.backend.query(Caller::Component, None, "SELECT 1", Vec::new(), busy_call(wait));
        let release = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(held);
        };
        let (answered, ()) = tokio::join!(waiting, release);
        let rows = answered.expect("served once the connection is free").rows;
        assert!(matches!(rows.as_slice(), [row] if matches!(row.as_slice(), [Value::Int64(1)])), "{rows:?}");
    }

    #[tokio::test]
    async fn a_database_that_does_not_answer_is_reported_unreachable_without_waiting_out_the_deadline() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port();
        let options = sqlx::postgres::PgConnectOptions::new().host("127.0.0.1").port(port).username("nobody");
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(2).acquire_timeout(POOL_ACQUIRE_CAP).connect_lazy_with(options);
        let started = Instant::now();
        match acquire(&pool, Duration::from_secs(30)).await {
            Err(Error::Connection(why)) => assert!(why.contains("does not answer"), "{why}"),
            other => panic!("expected a connection error, got {:?}", other.map(drop)),
        }
        assert!(started.elapsed() < Duration::from_secs(10), "waited {:?}", started.elapsed());
    }
}
