//! PostgreSQL: a schema per component database, used by a role per component.
//!
//! The host connects with the operator's URL ("the admin") to create roles and
//! schemas, and to run its own statements on its tables (see [`Pools`]). Each
//! component's pool logs in as the component's own role, with its schema as the only
//! one on the search path; the role has no privilege on any other component's schema
//! and may not create schemas, so cross-component access fails in PostgreSQL itself
//! with "permission denied" whatever SQL the component sends.
//!
//! The schema and the host's tables in it (see [`super::tables`]) belong to the
//! admin: the role may use the schema and create its own objects there, but cannot
//! drop, alter, truncate or put a trigger on the host's tables, and may do to them only
//! what the host does on its connection in its transactions (insert). Tables an
//! earlier version created as the role are rebuilt as the admin's when the database is
//! set up: their rows are copied (if their columns are what the host made, of
//! PostgreSQL's own types, so no code of the role's runs as the admin), and the rest of
//! them (triggers, rules, indexes, defaults) is dropped.

use std::path::PathBuf;

use anyhow::Context;
use sha2::{Digest, Sha256};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArgumentBuffer, PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgTypeInfo};
use sqlx::{Connection, Executor, Postgres};

use super::backend::{Backend, Caller, POOL_ACQUIRE_CAP, Setup, Transaction};
use super::errors::from_sqlx;
use super::signing::Signer;
use super::tables::{HOST_TABLES, HostTable, OUTBOX};
use super::SqlLimits;
use crate::bindings::sql::Error;

/// The database-wide lock under which hosts set up what they share (roles, schemas,
/// migrations, the deploy ledger's tables): one key, so they all wait for each other.
pub const TAKE_SET_UP_LOCK: &str = "SELECT pg_advisory_lock(hashtext('estore set-up'))";
pub const RELEASE_SET_UP_LOCK: &str = "SELECT pg_advisory_unlock(hashtext('estore set-up'))";
pub struct Server {
    admin: PgConnectOptions,
    /// The admin's connections, shared by every database of this host: provisioning,
    /// and the host's own statements (see [`Pools::host`]).
    admin_pool: PgPool,
    /// Secret input of the derived role passwords and outbox key: the operator's URL.
    secret: String,
}

/// The two pools of one component database.
pub struct Pools {
    /// As the component's role, its schema on the search path: the component's calls,
    /// its migrations, and the host's statements in the component's transactions.
    pub component: PgPool,
    /// As the admin (the server's one pool), with only `pg_catalog` on the search path
    /// (so nothing of the component's can stand in for a function or operator), naming
    /// the host's tables with their schema: the host's statements outside the
    /// component's transactions.
    pub host: PgPool,
    pub schema: String,
}

impl Pools {
    pub fn for_caller(&self, caller: Caller) -> &PgPool {
        match caller {
            Caller::Component => &self.component,
            Caller::Host => &self.host,
        }
    }
}

/// Creating one component database's role, schema and host tables (idempotent).
pub struct Provisioning {
    admin: PgConnectOptions,
    admin_pool: PgPool,
    role: String,
    password: String,
    schema: String,
}

impl Server {
    /// The server at `url`, for `databases` component databases: each relay's pass
    /// holds one of the admin's connections, and two more serve the rest.
    pub fn new(url: &str, databases: usize, limits: SqlLimits) -> anyhow::Result<Server> {
        let admin: PgConnectOptions = url.parse().context("[sql] url is not a PostgreSQL connection URL")?;
        let connections = u32::try_from(databases).unwrap_or(u32::MAX).saturating_add(2);
        let admin_pool = pool_with_session(admin.clone(), connections, "pg_catalog", limits);
        Ok(Server { admin, admin_pool, secret: url.to_owned() })
    }

    /// The outbox signing key of every host of this database.
    pub fn outbox_signer(&self) -> Signer {
        Signer::derived(&self.secret)
    }

    pub fn database(
        &self,
        component: &str,
        label: &str,
        max_connections: u32,
        limits: SqlLimits,
        migrations: Option<PathBuf>,
    ) -> anyhow::Result<(Backend, Setup)> {
        // Roles are cluster-wide while schemas live in one database: the role name
        // carries the database, so two applications on one server never share one.
        let database = self.admin.get_database().unwrap_or_default();
        let database_tag = &hex::encode(Sha256::digest(database))[..8];
        let role = format!("estore_{component}_{database_tag}");
        let schema = format!("{component}__{label}");
        // Derived, not random: every host sharing the server (and every restart)
        // computes the same password, so none locks the others out.
        let password = hex::encode(Sha256::digest(format!("estore role\0{}\0{role}", self.secret)))[..32].to_owned();
        let options = self.admin.clone().username(&role).password(&password);
        let pools = Pools {
            component: pool_with_session(options, max_connections, &quote(&schema), limits),
            host: self.admin_pool.clone(),
            schema: schema.clone(),
        };
        let admin_pool = self.admin_pool.clone();
        let provisioning = Provisioning { admin: self.admin.clone(), admin_pool, role, password, schema };
        Ok((Backend::Postgres(pools), Setup::new(migrations, Some(provisioning))))
    }
}

impl Provisioning {
    /// The set-up lock, held until the returned connection closes (or is dropped, or
    /// its host dies): hosts starting or deploying at once provision and migrate one
    /// after the other, and each finds what the one before it did. One lock for the
    /// whole PostgreSQL database, not one per schema: provisioning also changes
    /// database-wide privileges and roles, which PostgreSQL refuses to have changed by
    /// two sessions at once ("tuple concurrently updated").
    pub async fn exclusive(&self) -> Result<PgConnection, Error> {
        let mut connection = PgConnection::connect_with(&self.admin).await.map_err(from_sqlx)?;
        sqlx::query(TAKE_SET_UP_LOCK)
            .execute(&mut connection)
            .await
            .map_err(from_sqlx)?;
        Ok(connection)
    }

    /// Creates (or brings up to date) the role, the schema and the host's tables, in a
    /// transaction of the admin's that the caller commits. Says whether the outbox was
    /// rebuilt from an earlier version's, whose rows are then unsigned.
    pub async fn provision(&self) -> Result<(Transaction, bool), Error> {
        let role = quote(&self.role);
        let schema = quote(&self.schema);
        let password = &self.password;
        // Another host may be provisioning the same role at this moment: creating it
        // then fails either way (duplicate object, or unique violation in the catalog),
        // and the role exists, so the password is set instead. The search path holds
        // only PostgreSQL's own functions and types while the admin works, and
        // `row_security = off` makes reading a table with a role's policy fail rather
        // than run the policy.
        let script = format!(
            "SET LOCAL search_path TO pg_catalog;
             SET LOCAL row_security TO off;
             DO $$ BEGIN
                 CREATE ROLE {role} LOGIN PASSWORD '{password}';
             EXCEPTION WHEN duplicate_object OR unique_violation THEN
                 ALTER ROLE {role} LOGIN PASSWORD '{password}';
             END $$;
             DO $$ BEGIN
                 EXECUTE format('REVOKE CREATE, TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
             END $$;
             REVOKE ALL ON SCHEMA public FROM PUBLIC;
             CREATE SCHEMA IF NOT EXISTS {schema};
             ALTER SCHEMA {schema} OWNER TO CURRENT_USER;
             REVOKE ALL ON SCHEMA {schema} FROM PUBLIC;
             GRANT USAGE, CREATE ON SCHEMA {schema} TO {role};"
        );
        let mut tx = self.admin_pool.begin().await.map_err(from_sqlx)?;
        tx.execute(script.as_str()).await.map_err(from_sqlx)?;
        let mut outbox_rebuilt = false;
        for table in &HOST_TABLES {
            let rebuilt = self.set_up_table(&mut tx, table).await?;
            outbox_rebuilt |= rebuilt && table.name == OUTBOX;
        }
        Ok((Transaction::Postgres(tx), outbox_rebuilt))
    }

    /// Creates `table` as the admin's, rebuilding one an earlier version made as the
    /// role; grants the role what [`HostTable::component_may`] says. Says whether rows
    /// were copied from an earlier version's table.
    async fn set_up_table(&self, tx: &mut sqlx::Transaction<'static, Postgres>, table: &HostTable) -> Result<bool, Error> {
        let qualified = format!("{}.{}", quote(&self.schema), table.name);
        let found: Option<(String, bool)> = sqlx::query_as(
            "SELECT c.relkind::text, c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relname = $2",
        )
        .bind(&self.schema)
        .bind(table.name)
        .fetch_optional(&mut **tx)
        .await
        .map_err(from_sqlx)?;
        let mut copied = false;
        match found {
            None => {}
            Some((kind, true)) if kind == "r" => {}
            Some((kind, _)) => copied = self.rebuild(tx, table, &qualified, &kind).await?,
        }
        if !copied {
            tx.execute(table.create(&qualified, true).as_str()).await.map_err(from_sqlx)?;
        }
        let role = quote(&self.role);
        let grants = format!(
            "REVOKE ALL ON {qualified} FROM PUBLIC, {role}; GRANT {} ON {qualified} TO {role}",
            table.component_may
        );
        tx.execute(grants.as_str()).await.map_err(from_sqlx)?;
        Ok(copied)
    }

    /// Replaces what stands at `qualified` (of relation kind `kind`) with the host's
    /// table, keeping the rows worth keeping when it is a table of the expected columns.
    /// Says whether it kept them (and so created the table).
    async fn rebuild(
        &self,
        tx: &mut sqlx::Transaction<'static, Postgres>,
        table: &HostTable,
        qualified: &str,
        kind: &str,
    ) -> Result<bool, Error> {
        let columns: Vec<(String, String)> = sqlx::query_as(
            "SELECT attname::text, format_type(atttypid, NULL) FROM pg_attribute
             WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
        )
        .bind(qualified)
        .fetch_all(&mut **tx)
        .await
        .map_err(from_sqlx)?;
        let as_made = kind == "r"
            && table.kept.iter().all(|(name, type_)| columns.iter().any(|(n, t)| n == name && t == type_));
        if !as_made {
            let keyword = match kind {
                "r" | "p" => "TABLE",
                "v" => "VIEW",
                "m" => "MATERIALIZED VIEW",
                "f" => "FOREIGN TABLE",
                "S" => "SEQUENCE",
                "i" | "I" => "INDEX",
                "c" => "TYPE",
                other => {
                    return Err(Error::Other(format!(
                        "{qualified} is a relation of kind `{other}`: drop it to let the host create its table"
                    )));
                }
            };
            tracing::warn!(
                schema = %self.schema,
                "{qualified} is not the table the host made (kind `{kind}`, columns {columns:?}): dropped, its rows are lost"
            );
            tx.execute(format!("DROP {keyword} {qualified} CASCADE").as_str()).await.map_err(from_sqlx)?;
            return Ok(false);
        }
        // Renamed out of the way under a name the role cannot have taken beforehand.
        let legacy = format!("_estore_earlier_{}", uuid::Uuid::new_v4().simple());
        let kept: Vec<&str> = table.kept.iter().map(|(name, _)| *name).collect();
        let copied: Vec<&str> = kept.iter().copied().filter(|name| Some(*name) != table.generated).collect();
        let (kept_list, copied_list) = (kept.join(", "), copied.join(", "));
        let order = kept[0];
        let schema = quote(&self.schema);
        let rebuild = format!(
            "ALTER TABLE {qualified} RENAME TO {legacy};
             {create};
             INSERT INTO {qualified} ({copied_list}) SELECT {copied_list}
                 FROM (SELECT {kept_list} FROM {schema}.{legacy} ORDER BY {order}) AS earlier;
             DROP TABLE {schema}.{legacy} CASCADE;",
            create = table.create(qualified, true)
        );
        tx.execute(rebuild.as_str()).await.map_err(from_sqlx)?;
        tracing::info!(schema = %self.schema, "{qualified}: rebuilt as the host's, out of the component's reach");
        Ok(true)
    }
}

/// Connections made lazily, each with `search_path` as its search path and the
/// statement timeout of `limits`.
fn pool_with_session(options: PgConnectOptions, max_connections: u32, search_path: &str, limits: SqlLimits) -> PgPool {
    let session = format!(
        "SET search_path TO {search_path}; SET statement_timeout = {}",
        limits.statement_timeout.as_millis()
    );
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(POOL_ACQUIRE_CAP)
        .after_connect(move |connection, _| {
            let session = session.clone();
            Box::pin(async move { connection.execute(session.as_str()).await.map(drop) })
        })
        .connect_lazy_with(options)
}

/// A double-quoted identifier. Component ids and labels are validated by the
/// manifest (lower-case letters, digits, `-`, `_`), so quoting is all they need.
pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// SQL NULL with no type of its own, so PostgreSQL infers it from the context
/// (a typed NULL would be refused when it meets a column of another type).
#[derive(Clone, Copy)]
pub struct UntypedNull;

impl sqlx::Type<sqlx::Postgres> for UntypedNull {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(0))
    }
}

impl sqlx::Encode<'_, sqlx::Postgres> for UntypedNull {
    fn encode_by_ref(&self, _: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        Ok(IsNull::Yes)
    }
}
