//! Backend errors turned into the interface's error variant, so a component can
//! match on what happened (a unique violation is a conflict, a timeout is worth a
//! retry) instead of parsing messages that differ between SQLite and PostgreSQL.

use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::postgres::PgDatabaseError;

use crate::bindings::sql::{ConstraintKind, ConstraintViolation, Error};

pub fn from_sqlx(error: sqlx::Error) -> Error {
    match error {
        sqlx::Error::Database(db) => from_database(db.as_ref()),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Error::Connection(error.to_string()),
        sqlx::Error::ColumnNotFound(_) | sqlx::Error::ColumnIndexOutOfBounds { .. } | sqlx::Error::TypeNotFound { .. } => {
            Error::InvalidQuery(error.to_string())
        }
        other => Error::Other(other.to_string()),
    }
}

fn from_database(db: &dyn DatabaseError) -> Error {
    let message = db.message().to_owned();
    let kind = match db.kind() {
        ErrorKind::UniqueViolation => Some(ConstraintKind::Unique),
        ErrorKind::ForeignKeyViolation => Some(ConstraintKind::ForeignKey),
        ErrorKind::NotNullViolation => Some(ConstraintKind::NotNull),
        ErrorKind::CheckViolation => Some(ConstraintKind::Check),
        _ => None,
    };
    if let Some(kind) = kind {
        // PostgreSQL names the constraint (a NOT NULL has none: it names the table and
        // column instead); SQLite puts what it knows (the name of a CHECK, the columns
        // of a UNIQUE or NOT NULL) after the colon of its message. Both give
        // `table.column` for a NOT NULL.
        let postgres = db.try_downcast_ref::<PgDatabaseError>();
        let name = db
            .constraint()
            .map(str::to_owned)
            .or_else(|| postgres.and_then(|pg| Some(format!("{}.{}", pg.table()?, pg.column()?))))
            .or_else(|| message.split_once("constraint failed: ").map(|(_, name)| name.trim().to_owned()));
        return Error::ConstraintViolation(ConstraintViolation { kind, name, message });
    }
    let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
    if code.len() == 5 {
        from_sqlstate(&code, message)
    } else {
        from_sqlite_code(&code, message)
    }
}

/// PostgreSQL SQLSTATE classes.
fn from_sqlstate(code: &str, message: String) -> Error {
    match code {
        "42501" => Error::AccessDenied(message),
        "57014" => Error::Timeout(message),
        "57P01" | "57P02" | "57P03" => Error::Connection(message),
        _ => match &code[..2] {
            "42" | "22" | "25" | "0A" | "2B" | "2F" | "34" => Error::InvalidQuery(message),
            "08" | "28" | "53" => Error::Connection(message),
            _ => Error::Other(format!("{message} (SQLSTATE {code})")),
        },
    }
}

/// SQLite primary result codes (the low byte of the extended code).
fn from_sqlite_code(code: &str, message: String) -> Error {
    match code.parse::<i32>().map(|c| c & 0xff) {
        Ok(1) | Ok(20) | Ok(25) => Error::InvalidQuery(message),
        Ok(5) | Ok(6) => Error::Timeout(format!("database is busy: {message}")),
        // SQLITE_INTERRUPT: the statement ran past its deadline (see sqlite_bounded).
        Ok(9) => Error::Timeout(format!("the statement ran longer than the statement timeout ({message})")),
        // SQLITE_AUTH: the host's authorizer refused the statement (see `authorizer`).
        Ok(23) => Error::NotAllowed(message),
        _ => Error::Other(message),
    }
}

pub fn limit(what: String) -> Error {
    Error::LimitExceeded(what)
}

/// One line for logs and start-up errors.
pub fn describe(error: &Error) -> String {
    match error {
        Error::ConstraintViolation(c) => format!("constraint violation: {}", c.message),
        Error::InvalidQuery(m) => format!("invalid query: {m}"),
        Error::Timeout(m) => format!("timeout: {m}"),
        Error::Connection(m) => format!("connection: {m}"),
        Error::AccessDenied(m) => format!("access denied: {m}"),
        Error::NotAllowed(m) => format!("not allowed: {m}"),
        Error::LimitExceeded(m) => format!("limit exceeded: {m}"),
        Error::Other(m) => m.clone(),
    }
}

/// The same kind of error, its message put in context.
pub fn prefixed(error: Error, context: &str) -> Error {
    let with = |m: String| format!("{context}: {m}");
    match error {
        Error::ConstraintViolation(mut c) => {
            c.message = with(c.message);
            Error::ConstraintViolation(c)
        }
        Error::InvalidQuery(m) => Error::InvalidQuery(with(m)),
        Error::Timeout(m) => Error::Timeout(with(m)),
        Error::Connection(m) => Error::Connection(with(m)),
        Error::AccessDenied(m) => Error::AccessDenied(with(m)),
        Error::NotAllowed(m) => Error::NotAllowed(with(m)),
        Error::LimitExceeded(m) => Error::LimitExceeded(with(m)),
        Error::Other(m) => Error::Other(with(m)),
    }
}
