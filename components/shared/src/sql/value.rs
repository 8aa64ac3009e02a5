//! Rust values in and out of SQL: parameters from Rust values ([`From`] for
//! [`Value`]), and Rust values from columns ([`FromValue`]).

use super::DecodeError;
pub use crate::bindings::sql::Value;

impl Value {
    /// The kind of value, by its WIT case name (`null`, `boolean`, `int64`,
    /// `float64`, `text`, `blob`), as decode errors report it.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Boolean(_) => "boolean",
            Value::Int64(_) => "int64",
            Value::Float64(_) => "float64",
            Value::Text(_) => "text",
            Value::Blob(_) => "blob",
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

// Parameters: every conversion here is lossless, so a call site reads
// `&[id.into(), name.into()]` (or `params![id, name]`). `u64` is left out on purpose:
// it does not fit in `int64`; convert it with `i64::try_from` where it is used.

macro_rules! value_from {
    ($($ty:ty => |$v:ident| $expr:expr),* $(,)?) => {$(
        impl From<$ty> for Value {
            fn from($v: $ty) -> Self {
                $expr
            }
        }
    )*};
}

value_from! {
    bool => |v| Value::Boolean(v),
    i64 => |v| Value::Int64(v),
    i32 => |v| Value::Int64(v.into()),
    i16 => |v| Value::Int64(v.into()),
    i8 => |v| Value::Int64(v.into()),
    u32 => |v| Value::Int64(v.into()),
    u16 => |v| Value::Int64(v.into()),
    u8 => |v| Value::Int64(v.into()),
    f64 => |v| Value::Float64(v),
    f32 => |v| Value::Float64(v.into()),
    String => |v| Value::Text(v),
    &str => |v| Value::Text(v.to_owned()),
    &String => |v| Value::Text(v.clone()),
    Vec<u8> => |v| Value::Blob(v),
    &[u8] => |v| Value::Blob(v.to_vec()),
}

/// `None` is SQL `NULL`.
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// A Rust type a column's value can be read into; see [`Row::get`](super::Row::get).
///
/// Implemented for the types the interface's values map to. Integer types are
/// range-checked (the interface only has `int64`). Implement it for a newtype (an id,
/// an amount) to read it straight out of a row.
pub trait FromValue: Sized {
    fn from_value(value: &Value) -> Result<Self, DecodeError>;
}

fn wrong_type(expected: &'static str, found: &Value) -> DecodeError {
    DecodeError::WrongType {
        expected,
        found: found.kind(),
    }
}

/// The value itself, for code that handles any kind.
impl FromValue for Value {
    fn from_value(value: &Value) -> Result<Self, DecodeError> {
        Ok(value.clone())
    }
}

/// `NULL` is `None`; anything else must fit `T`.
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Result<Self, DecodeError> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// `boolean`, or `int64` 0/1: SQLite has no boolean storage class and stores a
/// `BOOLEAN` column as an integer, while PostgreSQL returns a real boolean.
impl FromValue for bool {
    fn from_value(value: &Value) -> Result<Self, DecodeError> {
        match *value {
            Value::Boolean(b) => Ok(b),
            Value::Int64(0) => Ok(false),
            Value::Int64(1) => Ok(true),
            Value::Int64(n) => Err(DecodeError::OutOfRange {
                value: n,
                target: "bool",
            }),
            ref other => Err(wrong_type("boolean", other)),
        }
    }
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Result<Self, DecodeError> {
        match *value {
            Value::Int64(n) => Ok(n),
            ref other => Err(wrong_type("int64", other)),
        }
    }
}

macro_rules! checked_int {
    ($($ty:ident),*) => {$(
        impl FromValue for $ty {
            fn from_value(value: &Value) -> Result<Self, DecodeError> {
                let n = i64::from_value(value)?;
                $ty::try_from(n)
                    .map_err(|_| DecodeError::OutOfRange { value: n, target: stringify!($ty) })
            }
        }
    )*};
}

checked_int!(i32, i16, i8, u64, u32, u16, u8);

/// `float64`, or an `int64` that converts exactly: SQLite hands back an integer for
/// expressions such as `COALESCE(price, 0)` or `SUM` over integers, where PostgreSQL
/// would give a float for a `DOUBLE PRECISION` column.
impl FromValue for f64 {
    fn from_value(value: &Value) -> Result<Self, DecodeError> {
        match *value {
            Value::Float64(x) => Ok(x),
            // 2^53: every integer up to here has an exact f64.
            Value::Int64(n) if n.unsigned_abs() <= 1 << 53 => Ok(n as f64),
            Value::Int64(n) => Err(DecodeError::OutOfRange {
                value: n,
                target: "f64",
            }),
            ref other => Err(wrong_type("float64", other)),
        }
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Result<Self, DecodeError> {
        match value {
            Value::Text(s) => Ok(s.clone()),
            other => Err(wrong_type("text", other)),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: &Value) -> Result<Self, DecodeError> {
        match value {
            Value::Blob(b) => Ok(b.clone()),
            other => Err(wrong_type("blob", other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<T: FromValue>(value: Value) -> Result<T, DecodeError> {
        T::from_value(&value)
    }

    fn wrong(expected: &'static str, found: &'static str) -> DecodeError {
        DecodeError::WrongType { expected, found }
    }

    #[test]
    fn params_convert_losslessly() {
        assert_eq!(Value::from(true), Value::Boolean(true));
        assert_eq!(Value::from(-5i64), Value::Int64(-5));
        assert_eq!(Value::from(-5i32), Value::Int64(-5));
        assert_eq!(Value::from(u32::MAX), Value::Int64(4_294_967_295));
        assert_eq!(Value::from(1.5f64), Value::Float64(1.5));
        assert_eq!(Value::from("grüße"), Value::Text("grüße".into()));
        assert_eq!(Value::from(String::from("a")), Value::Text("a".into()));
        assert_eq!(Value::from(&String::from("a")), Value::Text("a".into()));
        assert_eq!(Value::from(vec![0u8, 255]), Value::Blob(vec![0, 255]));
        assert_eq!(Value::from(&[1u8, 2][..]), Value::Blob(vec![1, 2]));
        assert_eq!(Value::from(None::<i64>), Value::Null);
        assert_eq!(Value::from(Some("x")), Value::Text("x".into()));
        let params: &[Value] = &[7i64.into(), "name".into(), None::<String>.into()];
        assert_eq!(params.len(), 3);
    }

    #[test]
    fn integers_are_range_checked() {
        assert_eq!(get::<i64>(Value::Int64(i64::MIN)), Ok(i64::MIN));
        assert_eq!(get::<i32>(Value::Int64(-7)), Ok(-7));
        assert_eq!(
            get::<i32>(Value::Int64(1 << 31)),
            Err(DecodeError::OutOfRange {
                value: 1 << 31,
                target: "i32"
            })
        );
        assert_eq!(get::<u32>(Value::Int64(4_294_967_295)), Ok(u32::MAX));
        assert_eq!(
            get::<u32>(Value::Int64(-1)),
            Err(DecodeError::OutOfRange {
                value: -1,
                target: "u32"
            })
        );
        assert_eq!(get::<u64>(Value::Int64(i64::MAX)), Ok(i64::MAX as u64));
        assert!(get::<u64>(Value::Int64(-1)).is_err());
        assert_eq!(
            get::<i64>(Value::Text("1".into())),
            Err(wrong("int64", "text"))
        );
        assert_eq!(
            get::<i64>(Value::Float64(1.0)),
            Err(wrong("int64", "float64"))
        );
        assert_eq!(get::<u32>(Value::Null), Err(wrong("int64", "null")));
    }

    #[test]
    fn bool_reads_sqlite_integers_too() {
        assert_eq!(get::<bool>(Value::Boolean(true)), Ok(true));
        assert_eq!(get::<bool>(Value::Int64(1)), Ok(true));
        assert_eq!(get::<bool>(Value::Int64(0)), Ok(false));
        assert_eq!(
            get::<bool>(Value::Int64(2)),
            Err(DecodeError::OutOfRange {
                value: 2,
                target: "bool"
            })
        );
        assert_eq!(
            get::<bool>(Value::Text("true".into())),
            Err(wrong("boolean", "text"))
        );
    }

    #[test]
    fn floats_take_exact_integers() {
        assert_eq!(get::<f64>(Value::Float64(-0.25)), Ok(-0.25));
        assert_eq!(get::<f64>(Value::Int64(3)), Ok(3.0));
        assert_eq!(
            get::<f64>(Value::Int64(1 << 53)),
            Ok(9_007_199_254_740_992.0)
        );
        assert!(get::<f64>(Value::Int64((1 << 53) + 1)).is_err());
        assert_eq!(
            get::<f64>(Value::Blob(vec![])),
            Err(wrong("float64", "blob"))
        );
    }

    #[test]
    fn text_and_blob_are_not_interchangeable() {
        assert_eq!(get::<String>(Value::Text("日本".into())), Ok("日本".into()));
        assert_eq!(
            get::<String>(Value::Blob(b"x".to_vec())),
            Err(wrong("text", "blob"))
        );
        assert_eq!(get::<Vec<u8>>(Value::Blob(vec![1, 2])), Ok(vec![1, 2]));
        assert_eq!(
            get::<Vec<u8>>(Value::Text("x".into())),
            Err(wrong("blob", "text"))
        );
    }

    #[test]
    fn option_maps_null_and_passes_the_rest_through() {
        assert_eq!(get::<Option<String>>(Value::Null), Ok(None));
        assert_eq!(
            get::<Option<String>>(Value::Text("a".into())),
            Ok(Some("a".into()))
        );
        assert_eq!(
            get::<Option<i64>>(Value::Text("a".into())),
            Err(wrong("int64", "text"))
        );
        assert_eq!(get::<Value>(Value::Float64(2.5)), Ok(Value::Float64(2.5)));
    }
}
