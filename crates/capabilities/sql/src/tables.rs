//! The host's own tables in every component database, and who may do what to them.
//!
//! - `_estore_outbox`: messages published in a transaction, until the relay sends them
//!   (see [`super::outbox`]); each row signed by the host.
//! - `_estore_handled`: the ids of the messages each consumer group handled.
//! - `_estore_migrations`: the migration files applied (see [`super::migrations`]).
//!
//! The host writes them, partly inside the component's own transactions (staging a
//! message, recording a handled one, recording a migration with its statements), so
//! they must live in the component's database. The component must not write them: on
//! SQLite the authorizer refuses it ([`super::authorizer`]); on PostgreSQL the admin
//! connection creates and owns them, and the component's role gets only
//! [`HostTable::component_may`], which is what the host's statements in the
//! component's transactions need (plus reading which migrations ran).

use super::SqlLimits;
use super::backend::{Backend, Caller, Transaction};
use crate::bindings::sql::{Error, Value};

/// One of the host's tables.
pub struct HostTable {
    pub name: &'static str,
    /// Its columns; `{serial}` stands for the backend's generated key, `{bytes}` for
    /// its byte-string type.
    columns: &'static str,
    /// What a table left by an earlier version holds that is worth keeping when the
    /// table is rebuilt (PostgreSQL), with the type PostgreSQL names it by. Rows are
    /// copied in the order of the first column.
    pub kept: &'static [(&'static str, &'static str)],
    /// The column the database numbers itself: not copied, numbered again in order.
    pub generated: Option<&'static str>,
    /// The privileges the component's role gets on it (PostgreSQL).
    pub component_may: &'static str,
}

pub const OUTBOX: &str = "_estore_outbox";
pub const HANDLED: &str = "_estore_handled";
pub const MIGRATIONS: &str = "_estore_migrations";

pub const HOST_TABLES: [HostTable; 3] = [
    HostTable {
        name: OUTBOX,
        columns: "seq {serial}, topic TEXT NOT NULL, message_key {bytes}, payload {bytes} NOT NULL, \
                  headers TEXT NOT NULL, created_at_ms BIGINT NOT NULL, signature {bytes}",
        kept: &[
            ("seq", "bigint"),
            ("topic", "text"),
            ("message_key", "bytea"),
            ("payload", "bytea"),
            ("headers", "text"),
            ("created_at_ms", "bigint"),
        ],
        generated: Some("seq"),
        // Staging; the relay (which reads and deletes) runs on the host's connection.
        component_may: "INSERT",
    },
    HostTable {
        name: HANDLED,
        columns: "consumer_group TEXT NOT NULL, message_id TEXT NOT NULL, handled_at_ms BIGINT NOT NULL, \
                  PRIMARY KEY (consumer_group, message_id)",
        kept: &[("consumer_group", "text"), ("message_id", "text"), ("handled_at_ms", "bigint")],
        generated: None,
        // `INSERT … ON CONFLICT DO NOTHING` in the handler's transaction.
        component_may: "INSERT",
    },
    HostTable {
        name: MIGRATIONS,
        columns: "name TEXT PRIMARY KEY, applied_at TEXT NOT NULL",
        kept: &[("name", "text"), ("applied_at", "text")],
        generated: None,
        // Recorded in the migration's own transaction; which ran is the component's to see.
        component_may: "SELECT, INSERT",
    },
];

impl HostTable {
    /// `CREATE TABLE IF NOT EXISTS` for the table named `qualified`.
    pub fn create(&self, qualified: &str, postgres: bool) -> String {
        let (serial, bytes) = match postgres {
            // An identity column needs no privilege on its sequence to insert.
            true => ("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "BYTEA"),
            false => ("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB"),
        };
        let columns = self.columns.replace("{serial}", serial).replace("{bytes}", bytes);
        format!("CREATE TABLE IF NOT EXISTS {qualified} ({columns})")
    }
}

/// Creates the host's tables (SQLite) in `tx`, a transaction of the host's. Says
/// whether the outbox was already there from a version that did not sign its rows:
/// its `signature` column is added now, and the caller signs those rows in the same
/// transaction.
pub async fn create_on_sqlite(backend: &Backend, tx: &mut Transaction, limits: SqlLimits) -> Result<bool, Error> {
    let columns = "SELECT name FROM pragma_table_info(?, 'main')";
    let outbox_columns =
        backend.query(Caller::Host, Some(&mut *tx), columns, vec![Value::Text(OUTBOX.into())], limits).await?.rows;
    let is_signature = |row: &Vec<Value>| matches!(row.first(), Some(Value::Text(name)) if name == "signature");
    let predates_signing = !outbox_columns.is_empty() && !outbox_columns.iter().any(is_signature);
    for table in &HOST_TABLES {
        let create = table.create(&backend.host_table(table.name), false);
        backend.execute(Caller::Host, Some(&mut *tx), &create, Vec::new(), limits).await?;
    }
    if predates_signing {
        let add = format!("ALTER TABLE {} ADD COLUMN signature BLOB", backend.host_table(OUTBOX));
        backend.execute(Caller::Host, Some(&mut *tx), &add, Vec::new(), limits).await?;
    }
    Ok(predates_signing)
}
