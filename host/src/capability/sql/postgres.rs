//! PostgreSQL: a schema per component database, owned by a role per component.
//!
//! The host connects with the operator's URL only to create roles and schemas. Each
//! component's pool logs in as the component's own role, with its schema as the only
//! one on the search path; the role has no privilege on any other component's schema
//! and may not create schemas, so cross-component access fails in PostgreSQL itself
//! with "permission denied" whatever SQL the component sends.

use std::path::PathBuf;

use anyhow::Context;
use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArgumentBuffer, PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgTypeInfo};

use super::{ACQUIRE_TIMEOUT, SqlLimits};
use super::backend::{Backend, Setup};
use super::errors::from_sqlx;
use crate::bindings::sql::Error;


/// The database-wide lock under which hosts set up what they share (roles, schemas,
/// migrations, the deploy ledger's tables): one key, so they all wait for each other.
pub const TAKE_SET_UP_LOCK: &str = "SELECT pg_advisory_lock(hashtext('estore set-up'))";
pub const RELEASE_SET_UP_LOCK: &str = "SELECT pg_advisory_unlock(hashtext('estore set-up'))";

pub struct Server {
    admin: PgConnectOptions,
    admin_pool: PgPool,
    /// Secret input of the derived role passwords: the operator's URL.
    secret: String,
}

/// Creating one component database's role and schema (idempotent).
pub struct Provisioning {
    admin: PgConnectOptions,
    admin_pool: PgPool,
    role: String,
    password: String,
    schema: String,
}

impl Server {
    pub fn new(url: &str) -> anyhow::Result<Server> {
        let admin: PgConnectOptions = url.parse().context("[sql] url is not a PostgreSQL connection URL")?;
        let admin_pool =
            PgPoolOptions::new().max_connections(2).acquire_timeout(ACQUIRE_TIMEOUT).connect_lazy_with(admin.clone());
        Ok(Server { admin, admin_pool, secret: url.to_owned() })
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
        let session = format!(
            "SET search_path TO {}; SET statement_timeout = {}",
            quote(&schema),
            limits.statement_timeout.as_millis()
        );
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(move |connection, _| {
                let session = session.clone();
                Box::pin(async move { connection.execute(session.as_str()).await.map(drop) })
            })
            .connect_lazy_with(options);
        let provisioning = Provisioning { admin: self.admin.clone(), admin_pool: self.admin_pool.clone(), role, password, schema };
        Ok((Backend::Postgres(pool), Setup::new(migrations, Some(provisioning))))
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

    pub async fn provision(&self) -> Result<(), Error> {
        let role = quote(&self.role);
        let schema = quote(&self.schema);
        let password = &self.password;
        // Another host may be provisioning the same role at this moment: creating it
        // then fails either way (duplicate object, or unique violation in the catalog),
        // and the role exists, so the password is set instead.
        let script = format!(
            "DO $$ BEGIN
                 CREATE ROLE {role} LOGIN PASSWORD '{password}';
             EXCEPTION WHEN duplicate_object OR unique_violation THEN
                 ALTER ROLE {role} LOGIN PASSWORD '{password}';
             END $$;
             DO $$ BEGIN
                 EXECUTE format('REVOKE CREATE, TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
             END $$;
             REVOKE ALL ON SCHEMA public FROM PUBLIC;
             CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role};"
        );
        self.admin_pool.execute(script.as_str()).await.map(drop).map_err(from_sqlx)
    }
}

/// A double-quoted identifier. Component ids and labels are validated by the
/// manifest (lower-case letters, digits, `-`, `_`), so quoting is all they need.
fn quote(identifier: &str) -> String {
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
