//! Typed access to the platform's `sql` interface.
//!
//! ```no_run
//! use estore_shared::params;
//! use estore_shared::sql::{Database, Error, FromRow, Row};
//!
//! struct Note {
//!     id: i64,
//!     title: String,
//! }
//!
//! impl FromRow for Note {
//!     fn from_row(row: &Row<'_>) -> Result<Self, Error> {
//!         Ok(Note { id: row.get("id")?, title: row.get("title")? })
//!     }
//! }
//!
//! fn rename(id: i64, title: &str) -> Result<Option<Note>, Error> {
//!     let db = Database::open("default")?;
//!     db.transaction(|tx| {
//!         tx.execute("UPDATE notes SET title = ? WHERE id = ?", params![title, id])?;
//!         tx.query_optional_as("SELECT id, title FROM notes WHERE id = ?", &[id.into()])
//!     })
//! }
//! ```
//!
//! Statements use `?` placeholders, bound in order; the host rewrites them for
//! PostgreSQL, so the same SQL text runs on both backends.

mod error;
mod row;
mod value;

pub use crate::bindings::sql::{ConstraintKind, ConstraintViolation};
pub use error::{DecodeError, Error};
pub use row::{FromRow, Iter, Row, Rows};
pub use value::{FromValue, Value};

/// Parameters for a statement, each converted with `Value::from`:
/// `db.execute(sql, params![id, name, None::<String>])`.
#[macro_export]
macro_rules! params {
    () => {
        &[] as &[$crate::sql::Value]
    };
    ($($value:expr),+ $(,)?) => {
        &[$($crate::sql::Value::from($value)),+]
    };
}

pub use crate::params;

use crate::bindings::sql::Connection;

/// A database this component was granted (`sql_databases` in the manifest).
///
/// Opening is cheap; open it where it is needed. Dropping it releases the connection.
#[derive(Debug)]
pub struct Database {
    conn: Connection,
}

impl Database {
    /// Opens the database granted under `label`; `access-denied` without the grant.
    pub fn open(label: &str) -> Result<Self, Error> {
        Ok(Database {
            conn: Connection::open(label)?,
        })
    }

    /// Runs a statement; returns the number of rows it changed.
    pub fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, Error> {
        Ok(self.conn.execute(sql, params)?)
    }

    /// Runs a query; read the rows by column name with [`Row::get`].
    pub fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, Error> {
        Ok(self.conn.query(sql, params)?.into())
    }

    /// Runs a query and reads every row into a `T`.
    pub fn query_as<T: FromRow>(&self, sql: &str, params: &[Value]) -> Result<Vec<T>, Error> {
        self.query(sql, params)?.decode()
    }

    /// The first row as a `T`; [`Error::NoRows`] when there is none.
    ///
    /// Further rows are ignored but still transferred: the query should select at
    /// most one (a key lookup, or `LIMIT 1`).
    pub fn query_one_as<T: FromRow>(&self, sql: &str, params: &[Value]) -> Result<T, Error> {
        self.query_optional_as(sql, params)?.ok_or(Error::NoRows)
    }

    /// The first row as a `T`, or `None` when there is none.
    pub fn query_optional_as<T: FromRow>(
        &self,
        sql: &str,
        params: &[Value],
    ) -> Result<Option<T>, Error> {
        let rows = self.query(sql, params)?;
        rows.get(0).map(|row| T::from_row(&row)).transpose()
    }

    /// Runs `f` in a transaction: commits when it returns `Ok`, rolls back when it
    /// returns `Err`, and returns what `f` returned (or the commit's error).
    ///
    /// `f` may return its own error type, as long as a database [`Error`] converts
    /// into it, so a handler's `?` works inside. No transaction is left open when
    /// this returns: a failed commit is followed by a rollback. If the instance traps
    /// inside `f`, the host rolls back when the request ends. Transactions do not
    /// nest; `begin` inside `f` is an `invalid-query` error.
    pub fn transaction<T, E>(&self, f: impl FnOnce(&Self) -> Result<T, E>) -> Result<T, E>
    where
        E: From<Error>,
    {
        self.conn.begin().map_err(Error::from)?;
        match f(self) {
            Ok(value) => match self.conn.commit() {
                Ok(()) => Ok(value),
                Err(commit) => {
                    // SQLite leaves the transaction open after a failed COMMIT
                    // (e.g. SQLITE_BUSY); PostgreSQL has ended it, and this fails harmlessly.
                    let _ = self.conn.rollback();
                    Err(Error::from(commit).into())
                }
            },
            Err(e) => {
                // The closure's error is the one worth reporting; if the rollback
                // fails too, the host still rolls back when the request ends.
                let _ = self.conn.rollback();
                Err(e)
            }
        }
    }

    /// The raw connection, for what the helpers do not cover (e.g. explicit
    /// `begin`/`commit`/`rollback`).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_macro_converts_each_value() {
        let name = String::from("n");
        let params: &[Value] = params![1i64, "a", &name, None::<i32>, vec![1u8], true, 2.5];
        assert_eq!(
            params,
            [
                Value::Int64(1),
                Value::Text("a".into()),
                Value::Text("n".into()),
                Value::Null,
                Value::Blob(vec![1]),
                Value::Boolean(true),
                Value::Float64(2.5),
            ]
        );
        assert!(params![].is_empty());
    }
}
