//! Spin's SQLite interface, `spin:sqlite/sqlite@3.1.0`, as Spin 4 guests import it:
//! the labels of a component's `sqlite_databases`, each one SQLite file of the
//! component's own (`<state>/sql/<component>/<label>.db`, the file its
//! `sql_databases` label of the same name uses on the embedded backend).
//!
//! Statements run as the component's do on `estore:platform/sql`: under the
//! authorizer (no ATTACH, no `VACUUM INTO`, no extension, none of the host's tables),
//! with the statement timeout and the result limits. A label the component was not
//! granted is `access-denied`, as in Spin; a refused statement or any other failure
//! is `io` with the reason.
//!
//! The 3.1.0 async functions run the statement whole and then stream its rows, so
//! both forms answer the same.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use wasmtime::component::{Accessor, FutureReader, Resource, StreamReader};

use crate::backend::{self, Backend};
use crate::bindings::spin_sqlite as spin;
use crate::bindings::sql;
use crate::{HasSql, SqlLimits, SqlView, errors};
use spin::{Error, QueryResult, RowResult, Value};

/// The interface this serves, and the manifest key that grants it.
pub const INTERFACE: &str = "spin:sqlite/sqlite";
pub const GRANT: &str = "sqlite_databases";

/// One granted label's database.
pub struct SpinDatabase {
    backend: Backend,
    limits: SqlLimits,
}

/// The resource behind a guest's `connection` handle: its database, and what its
/// last statement left (SQLite's per-connection `last_insert_rowid` and `changes`).
pub struct SpinConnection {
    database: Arc<SpinDatabase>,
    last_insert_rowid: i64,
    changes: u64,
}

/// Opens the databases of a component's `sqlite_databases`.
pub async fn open(
    state_dir: &Path,
    component: &str,
    labels: &[String],
    max_connections: u32,
    limits: SqlLimits,
) -> anyhow::Result<BTreeMap<String, Arc<SpinDatabase>>> {
    let mut databases = BTreeMap::new();
    for label in labels {
        let (backend, _) = backend::sqlite(state_dir, component, label, max_connections, None).await?;
        databases.insert(label.clone(), Arc::new(SpinDatabase { backend, limits }));
    }
    Ok(databases)
}

impl SpinDatabase {
    /// Runs `statement`: its columns and rows, and the connection's rowid and changes.
    async fn run(&self, statement: &str, parameters: Vec<Value>) -> Result<(QueryResult, i64, u64), Error> {
        let parameters = parameters.into_iter().map(to_sql).collect();
        let (sql::RowSet { columns, rows }, rowid, changes) =
            self.backend.spin_statement(statement, parameters, self.limits).await.map_err(from_sql)?;
        let rows = rows.into_iter().map(|row| RowResult { values: row.into_iter().map(from_sql_value).collect() }).collect();
        Ok((QueryResult { columns, rows }, rowid, changes))
    }
}

fn to_sql(value: Value) -> sql::Value {
    match value {
        Value::Integer(i) => sql::Value::Int64(i),
        Value::Real(f) => sql::Value::Float64(f),
        Value::Text(t) => sql::Value::Text(t),
        Value::Blob(b) => sql::Value::Blob(b),
        Value::Null => sql::Value::Null,
    }
}

fn from_sql_value(value: sql::Value) -> Value {
    match value {
        sql::Value::Int64(i) => Value::Integer(i),
        sql::Value::Boolean(b) => Value::Integer(i64::from(b)),
        sql::Value::Float64(f) => Value::Real(f),
        sql::Value::Text(t) => Value::Text(t),
        sql::Value::Blob(b) => Value::Blob(b),
        sql::Value::Null => Value::Null,
    }
}

fn from_sql(e: sql::Error) -> Error {
    match e {
        sql::Error::AccessDenied(_) => Error::AccessDenied,
        e => Error::Io(errors::describe(&e)),
    }
}

impl SqlView<'_> {
    fn open_spin(&mut self, label: &str) -> wasmtime::Result<Result<Resource<SpinConnection>, Error>> {
        let Some(database) = self.state.access.spin_sqlite.get(label) else {
            tracing::warn!(component = %self.component, "denied SQLite database `{label}`: not in sqlite_databases");
            return Ok(Err(Error::AccessDenied));
        };
        let connection = SpinConnection { database: database.clone(), last_insert_rowid: 0, changes: 0 };
        Ok(Ok(self.table.push(connection)?))
    }

    fn spin_database(&self, handle: &Resource<SpinConnection>) -> wasmtime::Result<Arc<SpinDatabase>> {
        Ok(self.table.get(handle)?.database.clone())
    }

    /// Records what the connection's last statement left.
    fn ran(&mut self, handle: &Resource<SpinConnection>, rowid: i64, changes: u64) -> wasmtime::Result<()> {
        let connection = self.table.get_mut(handle)?;
        connection.last_insert_rowid = rowid;
        connection.changes = changes;
        Ok(())
    }
}

impl spin::Host for SqlView<'_> {}

impl spin::HostConnection for SqlView<'_> {
    async fn open(&mut self, database: String) -> wasmtime::Result<Result<Resource<SpinConnection>, Error>> {
        self.open_spin(&database)
    }

    async fn execute(
        &mut self,
        handle: Resource<SpinConnection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, Error>> {
        let database = self.spin_database(&handle)?;
        Ok(match database.run(&statement, parameters).await {
            Ok((result, rowid, changes)) => {
                self.ran(&handle, rowid, changes)?;
                Ok(result)
            }
            Err(e) => Err(e),
        })
    }

    async fn last_insert_rowid(&mut self, handle: Resource<SpinConnection>) -> wasmtime::Result<i64> {
        Ok(self.table.get(&handle)?.last_insert_rowid)
    }

    async fn changes(&mut self, handle: Resource<SpinConnection>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&handle)?.changes)
    }

    async fn drop(&mut self, handle: Resource<SpinConnection>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        Ok(())
    }
}

impl<U> spin::HostConnectionWithStore<U> for HasSql {
    async fn open_async(
        accessor: &Accessor<U, Self>,
        database: String,
    ) -> wasmtime::Result<Result<Resource<SpinConnection>, Error>> {
        accessor.with(|mut access| access.get().open_spin(&database))
    }

    async fn execute_async(
        accessor: &Accessor<U, Self>,
        handle: Resource<SpinConnection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<(Vec<String>, StreamReader<RowResult>, FutureReader<Result<(), Error>>), Error>> {
        let database = accessor.with(|mut access| access.get().spin_database(&handle))?;
        let (result, rowid, changes) = match database.run(&statement, parameters).await {
            Ok(ran) => ran,
            Err(e) => return Ok(Err(e)),
        };
        accessor.with(|mut access| {
            access.get().ran(&handle, rowid, changes)?;
            let rows = StreamReader::new(&mut access, result.rows)?;
            let done = FutureReader::new(&mut access, async { Ok::<_, wasmtime::Error>(Ok(())) })?;
            Ok(Ok((result.columns, rows, done)))
        })
    }

    async fn last_insert_rowid_async(accessor: &Accessor<U, Self>, handle: Resource<SpinConnection>) -> wasmtime::Result<i64> {
        accessor.with(|mut access| Ok(access.get().table.get(&handle)?.last_insert_rowid))
    }

    async fn changes_async(accessor: &Accessor<U, Self>, handle: Resource<SpinConnection>) -> wasmtime::Result<u64> {
        accessor.with(|mut access| Ok(access.get().table.get(&handle)?.changes))
    }
}
