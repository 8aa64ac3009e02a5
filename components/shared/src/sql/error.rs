//! One error type for everything the helpers can fail with: what the database said,
//! and what did not fit when a row was read into a Rust type.

use std::fmt;

use crate::bindings::sql::{self as raw, ConstraintKind, ConstraintViolation};

/// An error from the database, or from reading a row into Rust types.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// The host's error, as the `sql` interface reports it.
    Sql(raw::Error),
    /// The result has no column of this name (a typo, or a column not selected).
    MissingColumn(String),
    /// The column is there, but its value does not fit the Rust type asked for.
    Decode { column: String, error: DecodeError },
    /// A query that had to return a row returned none.
    NoRows,
}

/// Why a value does not fit a Rust type. [`Row::get`](super::Row::get) wraps it in
/// [`Error::Decode`] with the column's name.
#[derive(Debug, Clone, PartialEq)]
pub enum DecodeError {
    /// Another kind of value, e.g. `null` for a non-`Option` field. Kinds are the
    /// WIT case names: `null`, `boolean`, `int64`, `float64`, `text`, `blob`.
    WrongType {
        expected: &'static str,
        found: &'static str,
    },
    /// An integer the target type cannot hold, e.g. `-1` for a `u32`, `2` for a `bool`.
    OutOfRange { value: i64, target: &'static str },
    /// Text that does not parse as what the column holds (a status name, JSON).
    Malformed(String),
}

impl Error {
    /// The host's error, if this is one.
    pub fn sql_error(&self) -> Option<&raw::Error> {
        match self {
            Error::Sql(e) => Some(e),
            _ => None,
        }
    }

    /// The violated constraint, if this is a constraint violation.
    pub fn constraint(&self) -> Option<&ConstraintViolation> {
        match self {
            Error::Sql(raw::Error::ConstraintViolation(c)) => Some(c),
            _ => None,
        }
    }

    /// A duplicate key: usually a 409 for the caller, not a 500.
    pub fn is_unique_violation(&self) -> bool {
        self.is_constraint(ConstraintKind::Unique)
    }

    /// A reference to a row that does not exist (or a delete of a referenced one).
    pub fn is_foreign_key_violation(&self) -> bool {
        self.is_constraint(ConstraintKind::ForeignKey)
    }

    pub fn is_not_null_violation(&self) -> bool {
        self.is_constraint(ConstraintKind::NotNull)
    }

    pub fn is_check_violation(&self) -> bool {
        self.is_constraint(ConstraintKind::Check)
    }

    /// The host refused the statement as reaching beyond the component's own database
    /// (another file, an extension, a host table): a bug in the component, not a
    /// passing failure.
    pub fn is_not_allowed(&self) -> bool {
        matches!(self, Error::Sql(raw::Error::NotAllowed(_)))
    }

    /// The interface's name for what went wrong (`constraint-violation`,
    /// `not-allowed`, …), or `decode`, `missing-column` and `no-rows` for the helpers'
    /// own errors: for logs and for answers that say which it was.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Sql(raw::Error::ConstraintViolation(_)) => "constraint-violation",
            Error::Sql(raw::Error::InvalidQuery(_)) => "invalid-query",
            Error::Sql(raw::Error::Timeout(_)) => "timeout",
            Error::Sql(raw::Error::Connection(_)) => "connection",
            Error::Sql(raw::Error::AccessDenied(_)) => "access-denied",
            Error::Sql(raw::Error::NotAllowed(_)) => "not-allowed",
            Error::Sql(raw::Error::LimitExceeded(_)) => "limit-exceeded",
            Error::Sql(raw::Error::Other(_)) => "other",
            Error::MissingColumn(_) => "missing-column",
            Error::Decode { .. } => "decode",
            Error::NoRows => "no-rows",
        }
    }

    /// The statement ran past the host's statement timeout: worth a retry.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Sql(raw::Error::Timeout(_)))
    }

    /// The database was busy past what the call could wait, or out of reach: the same
    /// call may succeed later (503 with `Retry-After`, or a message's retry).
    pub fn is_passing(&self) -> bool {
        matches!(self, Error::Sql(raw::Error::Timeout(_) | raw::Error::Connection(_)))
    }

    /// A `query_one_as` found nothing: usually a 404.
    pub fn is_no_rows(&self) -> bool {
        matches!(self, Error::NoRows)
    }

    /// Column `column` holds text that does not parse: `why` says how.
    pub fn malformed(column: &str, why: impl Into<String>) -> Error {
        Error::Decode { column: column.to_owned(), error: DecodeError::Malformed(why.into()) }
    }

    fn is_constraint(&self, kind: ConstraintKind) -> bool {
        self.constraint().is_some_and(|c| c.kind == kind)
    }
}

impl From<raw::Error> for Error {
    fn from(error: raw::Error) -> Self {
        Error::Sql(error)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sql(raw::Error::ConstraintViolation(c)) => {
                let kind = match c.kind {
                    ConstraintKind::Unique => "unique",
                    ConstraintKind::ForeignKey => "foreign key",
                    ConstraintKind::NotNull => "not-null",
                    ConstraintKind::Check => "check",
                };
                match &c.name {
                    Some(name) => write!(f, "{kind} constraint `{name}` violated: {}", c.message),
                    None => write!(f, "{kind} constraint violated: {}", c.message),
                }
            }
            Error::Sql(raw::Error::InvalidQuery(m)) => write!(f, "invalid query: {m}"),
            Error::Sql(raw::Error::Timeout(m)) => write!(f, "statement timed out: {m}"),
            Error::Sql(raw::Error::Connection(m)) => write!(f, "database unreachable: {m}"),
            Error::Sql(raw::Error::AccessDenied(m)) => write!(f, "database access denied: {m}"),
            Error::Sql(raw::Error::NotAllowed(m)) => write!(f, "statement not allowed: {m}"),
            Error::Sql(raw::Error::LimitExceeded(m)) => write!(f, "result too large: {m}"),
            Error::Sql(raw::Error::Other(m)) => write!(f, "database error: {m}"),
            Error::MissingColumn(column) => write!(f, "column `{column}` is missing"),
            Error::Decode { column, error } => write!(f, "column `{column}`: {error}"),
            Error::NoRows => f.write_str("the query returned no rows"),
        }
    }
}

impl std::error::Error for Error {}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::WrongType { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
            DecodeError::OutOfRange { value, target } => {
                write!(f, "{value} does not fit in {target}")
            }
            DecodeError::Malformed(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn unique(name: Option<&str>) -> Error {
        Error::Sql(raw::Error::ConstraintViolation(ConstraintViolation {
            kind: ConstraintKind::Unique,
            name: name.map(str::to_owned),
            message: "UNIQUE constraint failed: notes.title".into(),
        }))
    }

    #[test]
    fn constraint_helpers_look_at_the_kind() {
        let e = unique(Some("notes_title_unique"));
        assert!(e.is_unique_violation());
        assert!(!e.is_foreign_key_violation());
        assert!(!e.is_timeout());
        assert_eq!(
            e.constraint().unwrap().name.as_deref(),
            Some("notes_title_unique")
        );
        assert!(Error::Sql(raw::Error::Timeout("slow".into())).is_timeout());
        assert!(Error::NoRows.is_no_rows());
        assert!(Error::NoRows.constraint().is_none());
        let refused = Error::Sql(raw::Error::NotAllowed("ATTACH is not allowed".into()));
        assert!(refused.is_not_allowed() && !e.is_not_allowed());
        assert_eq!((refused.kind(), e.kind(), Error::NoRows.kind()), ("not-allowed", "constraint-violation", "no-rows"));
        assert_eq!(refused.to_string(), "statement not allowed: ATTACH is not allowed");
    }

    #[test]
    fn messages_name_the_constraint_or_column() {
        assert_eq!(
            unique(Some("notes_title_unique")).to_string(),
            "unique constraint `notes_title_unique` violated: UNIQUE constraint failed: notes.title"
        );
        assert_eq!(
            unique(None).to_string(),
            "unique constraint violated: UNIQUE constraint failed: notes.title"
        );
        assert_eq!(
            Error::MissingColumn("x".into()).to_string(),
            "column `x` is missing"
        );
        let decode = Error::Decode {
            column: "x".into(),
            error: DecodeError::WrongType {
                expected: "int64",
                found: "text",
            },
        };
        assert_eq!(decode.to_string(), "column `x`: expected int64, found text");
        let range = Error::Decode {
            column: "n".into(),
            error: DecodeError::OutOfRange {
                value: -1,
                target: "u32",
            },
        };
        assert_eq!(range.to_string(), "column `n`: -1 does not fit in u32");
    }
}
