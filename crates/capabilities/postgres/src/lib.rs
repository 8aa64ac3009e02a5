//! Outbound PostgreSQL, `spin:postgres/postgres@4.2.0`, as Spin 4 guests import it:
//! a connection to a server the guest names in a connection string, separate from
//! the databases estore keeps for its components (`sql_databases`).
//!
//! A connection opens only to a host and port the component's
//! `allowed_outbound_hosts` grants with the `postgres` scheme (default port 5432),
//! as in Spin; any other address fails with `connection-failed` saying it is not
//! permitted, and a warning in the host log names the component and the address
//! (never the password). Unix sockets are never permitted.
//!
//! Values carry the 4.x types ([`values`]): dates and times, JSON, decimals, UUIDs,
//! ranges, arrays and intervals. The 4.2.0 async functions run the statement whole,
//! then stream its rows.
//!
//! A connection is a server session of its own, closed when the guest drops it or
//! its instance ends.

mod values;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Executor as _, Row as _};
use tokio::sync::Mutex;
use wasmtime::component::{Accessor, FutureReader, HasData, Linker, Resource, ResourceTable, StreamReader};

use bindings::spin::postgres::postgres::{self as pg, Column, DbError, Error, ParameterValue, QueryError, RowSet};
use estore_outbound_http::OutboundPolicy;

/// The interface's bindings, generated here so this crate alone implements them.
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../../wit",
        inline: "package estore:postgres-host; world host { import spin:postgres/postgres@4.2.0; }",
        imports: { default: async | trappable },
        with: {
            "spin:postgres/postgres.connection": crate::Connection,
            "spin:postgres/postgres.connection-builder": crate::ConnectionBuilder,
        },
    });
}

/// The interface this capability serves, and the manifest key that grants it.
pub const INTERFACE: &str = "spin:postgres/postgres";
pub const GRANT: &str = "allowed_outbound_hosts (postgres://host:port)";

/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The resource behind a guest's `connection` handle.
pub struct Connection {
    session: Arc<Mutex<PgConnection>>,
}

/// The resource behind a guest's `connection-builder` handle.
pub struct ConnectionBuilder {
    address: String,
}

/// What the interface's calls reach of an instance: its component's outbound grants,
/// and the resource table its connections live in.
pub struct PostgresView<'a> {
    pub component: &'a str,
    pub policy: &'a OutboundPolicy,
    pub table: &'a mut ResourceTable,
}

struct HasPostgres;

impl HasData for HasPostgres {
    type Data<'a> = PostgresView<'a>;
}

/// Adds `spin:postgres/postgres@4.2.0` to `linker`, served by the view `view` gives of
/// the embedder's state.
pub fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, view: fn(&mut T) -> PostgresView<'_>) -> wasmtime::Result<()> {
    pg::add_to_linker::<T, HasPostgres>(linker, view)
}

impl PostgresView<'_> {
    /// The connection options of `address`, if the component may connect there.
    fn permitted(&self, address: &str) -> Result<PgConnectOptions, Error> {
        let options = PgConnectOptions::from_str(address)
            .map_err(|e| Error::ConnectionFailed(format!("invalid connection string: {e}")))?;
        let (host, port) = (options.get_host(), options.get_port());
        if host.starts_with('/') || !self.policy.allows("postgres", host, Some(port)) {
            tracing::warn!(
                component = %self.component,
                "denied PostgreSQL connection to {host}:{port}: not in allowed_outbound_hosts"
            );
            return Err(Error::ConnectionFailed(format!("address postgres://{host}:{port} is not permitted")));
        }
        Ok(options)
    }
}

/// Opens a session with the server `options` name.
async fn connect(options: PgConnectOptions) -> Result<Connection, Error> {
    let session = tokio::time::timeout(CONNECT_TIMEOUT, options.log_statements(tracing::log::LevelFilter::Off).connect())
        .await
        .map_err(|_| Error::ConnectionFailed(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())))?
        .map_err(|e| Error::ConnectionFailed(e.to_string()))?;
    Ok(Connection { session: Arc::new(Mutex::new(session)) })
}

impl Connection {
    /// Runs `statement` with `params`: its columns and rows.
    async fn query(&self, statement: &str, params: Vec<ParameterValue>) -> Result<RowSet, Error> {
        let mut session = self.session.lock().await;
        let query = values::bind(sqlx::query(statement), params)?;
        let rows = session.fetch_all(query).await.map_err(query_failed)?;
        let columns = match rows.first() {
            Some(row) => row.columns().iter().map(values::column).collect(),
            // No rows, so no row to read the columns from: the statement's description.
            None => session.describe(statement).await.map_err(query_failed)?.columns().iter().map(values::column).collect(),
        };
        let rows = rows.iter().map(|row| (0..row.len()).map(|i| values::value(row, i)).collect()).collect();
        Ok(RowSet { columns, rows })
    }

    /// Runs `statement` with `params`: the rows it changed.
    async fn execute(&self, statement: &str, params: Vec<ParameterValue>) -> Result<u64, Error> {
        let mut session = self.session.lock().await;
        let query = values::bind(sqlx::query(statement), params)?;
        Ok(session.execute(query).await.map_err(query_failed)?.rows_affected())
    }
}

/// A failed statement, with the server's error fields when it sent them.
fn query_failed(e: sqlx::Error) -> Error {
    match e {
        sqlx::Error::Database(db) => {
            let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>();
            Error::QueryFailed(QueryError::DbError(DbError {
                as_text: db.to_string(),
                severity: pg.map(|e| format!("{:?}", e.severity()).to_uppercase()).unwrap_or_default(),
                code: db.code().map(|c| c.into_owned()).unwrap_or_default(),
                message: db.message().to_owned(),
                detail: pg.and_then(|e| e.detail()).map(str::to_owned),
                extras: Vec::new(),
            }))
        }
        sqlx::Error::Io(e) => Error::ConnectionFailed(e.to_string()),
        e => Error::QueryFailed(QueryError::Text(e.to_string())),
    }
}

impl PostgresView<'_> {
    /// The session behind `handle`, to be used without the view.
    fn connection(&self, handle: &Resource<Connection>) -> wasmtime::Result<Connection> {
        Ok(Connection { session: self.table.get(handle)?.session.clone() })
    }
}

impl pg::Host for PostgresView<'_> {}

impl pg::HostConnection for PostgresView<'_> {
    async fn open(&mut self, address: String) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        let options = match self.permitted(&address) {
            Ok(options) => options,
            Err(e) => return Ok(Err(e)),
        };
        Ok(match connect(options).await {
            Ok(connection) => Ok(self.table.push(connection)?),
            Err(e) => Err(e),
        })
    }

    async fn query(
        &mut self,
        handle: Resource<Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<RowSet, Error>> {
        let connection = self.connection(&handle)?;
        Ok(connection.query(&statement, params).await)
    }

    async fn execute(
        &mut self,
        handle: Resource<Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<u64, Error>> {
        let connection = self.connection(&handle)?;
        Ok(connection.execute(&statement, params).await)
    }

    async fn drop(&mut self, handle: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        Ok(())
    }
}

impl pg::HostConnectionBuilder for PostgresView<'_> {
    async fn new(&mut self, address: String) -> wasmtime::Result<Resource<ConnectionBuilder>> {
        Ok(self.table.push(ConnectionBuilder { address })?)
    }

    /// The host's TLS roots are the only ones: this host connects without TLS where the
    /// server allows it and does not take a guest's certificate authority.
    async fn set_ca_root(&mut self, _: Resource<ConnectionBuilder>, _: String) -> wasmtime::Result<Result<(), Error>> {
        Ok(Err(Error::Other("this host does not take a custom CA root for PostgreSQL".into())))
    }

    async fn build(&mut self, handle: Resource<ConnectionBuilder>) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        let address = self.table.get(&handle)?.address.clone();
        pg::HostConnection::open(self, address).await
    }

    async fn drop(&mut self, handle: Resource<ConnectionBuilder>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        Ok(())
    }
}

impl<U> pg::HostConnectionWithStore<U> for HasPostgres {
    async fn open_async(accessor: &Accessor<U, Self>, address: String) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        let options = match accessor.with(|mut access| access.get().permitted(&address)) {
            Ok(options) => options,
            Err(e) => return Ok(Err(e)),
        };
        match connect(options).await {
            Ok(connection) => accessor.with(|mut access| Ok(Ok(access.get().table.push(connection)?))),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn query_async(
        accessor: &Accessor<U, Self>,
        handle: Resource<Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<(Vec<Column>, StreamReader<Vec<pg::DbValue>>, FutureReader<Result<(), Error>>), Error>> {
        let connection = accessor.with(|mut access| access.get().connection(&handle))?;
        let RowSet { columns, rows } = match connection.query(&statement, params).await {
            Ok(rows) => rows,
            Err(e) => return Ok(Err(e)),
        };
        accessor.with(|mut access| {
            let rows = StreamReader::new(&mut access, rows)?;
            let done = FutureReader::new(&mut access, async { Ok::<_, wasmtime::Error>(Ok(())) })?;
            Ok(Ok((columns, rows, done)))
        })
    }

    async fn execute_async(
        accessor: &Accessor<U, Self>,
        handle: Resource<Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<u64, Error>> {
        let connection = accessor.with(|mut access| access.get().connection(&handle))?;
        Ok(connection.execute(&statement, params).await)
    }
}

impl<U> pg::HostConnectionBuilderWithStore<U> for HasPostgres {
    async fn build_async(accessor: &Accessor<U, Self>, handle: Resource<ConnectionBuilder>) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        let address = accessor.with(|mut access| Ok::<_, wasmtime::Error>(access.get().table.get(&handle)?.address.clone()))?;
        <Self as pg::HostConnectionWithStore<U>>::open_async(accessor, address).await
    }
}
