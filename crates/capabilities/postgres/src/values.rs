//! Spin's PostgreSQL values and PostgreSQL's: parameters bound by the variant the
//! guest chose, and columns read by their server type, as Spin maps them (the
//! spin-sdk 7 table): `date`/`time`/`datetime` are DATE, TIME and TIMESTAMP;
//! `timestamp` is seconds since the epoch (a BIGINT parameter; a TIMESTAMPTZ column
//! reads as one); `jsonb`, `decimal`, `uuid`, the ranges, the arrays and `interval`
//! their PostgreSQL types. A column of another type reads as `unsupported` with its
//! bytes, its data type `other` with the type's name.

use std::ops::Bound;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use rust_decimal::Decimal;
use sqlx::encode::IsNull;
use sqlx::postgres::types::{Oid, PgInterval, PgRange};
use sqlx::postgres::{PgArgumentBuffer, PgArguments, PgColumn, PgRow, PgTypeInfo, Postgres};
use sqlx::query::Query;
use sqlx::{Column as _, Row as _, TypeInfo as _, ValueRef as _};

use crate::bindings::spin::postgres::postgres::{Column, DbDataType, DbValue, Error, Interval, ParameterValue, RangeBoundKind};

/// A NULL of no declared type: the server gives it the type its place needs, as a
/// NULL literal gets.
struct Null;

impl sqlx::Type<Postgres> for Null {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(0))
    }
}

impl sqlx::Encode<'_, Postgres> for Null {
    fn encode_by_ref(&self, _: &mut PgArgumentBuffer) -> Result<IsNull, sqlx::error::BoxDynError> {
        Ok(IsNull::Yes)
    }
}

type PgQuery<'q> = Query<'q, Postgres, PgArguments>;

fn bad(what: &str, value: impl std::fmt::Debug) -> Error {
    Error::BadParameter(format!("{value:?} is not a valid {what}"))
}

fn bound<T>(end: Option<(T, RangeBoundKind)>) -> Bound<T> {
    match end {
        Some((value, RangeBoundKind::Inclusive)) => Bound::Included(value),
        Some((value, RangeBoundKind::Exclusive)) => Bound::Excluded(value),
        None => Bound::Unbounded,
    }
}

fn decimal(text: &str) -> Result<Decimal, Error> {
    Decimal::from_str(text).map_err(|_| bad("decimal", text))
}

type DecimalBound = Option<(String, RangeBoundKind)>;

fn decimal_bound(end: DecimalBound) -> Result<Bound<Decimal>, Error> {
    Ok(bound(end.map(|(text, kind)| decimal(&text).map(|d| (d, kind))).transpose()?))
}

/// `query` with `params` bound in order.
pub fn bind<'q>(query: PgQuery<'q>, params: Vec<ParameterValue>) -> Result<PgQuery<'q>, Error> {
    params.into_iter().try_fold(query, |query, param| {
        Ok(match param {
            ParameterValue::Boolean(v) => query.bind(v),
            ParameterValue::Int8(v) => query.bind(v),
            ParameterValue::Int16(v) => query.bind(v),
            ParameterValue::Int32(v) => query.bind(v),
            ParameterValue::Int64(v) | ParameterValue::Timestamp(v) => query.bind(v),
            ParameterValue::Floating32(v) => query.bind(v),
            ParameterValue::Floating64(v) => query.bind(v),
            ParameterValue::Str(v) => query.bind(v),
            ParameterValue::Binary(v) => query.bind(v),
            ParameterValue::Date((y, m, d)) => {
                query.bind(NaiveDate::from_ymd_opt(y, m.into(), d.into()).ok_or_else(|| bad("date", (y, m, d)))?)
            }
            ParameterValue::Time((h, m, s, ns)) => query.bind(
                NaiveTime::from_hms_nano_opt(h.into(), m.into(), s.into(), ns).ok_or_else(|| bad("time", (h, m, s, ns)))?,
            ),
            ParameterValue::Datetime((y, mo, d, h, mi, s, ns)) => {
                let date = NaiveDate::from_ymd_opt(y, mo.into(), d.into());
                let time = NaiveTime::from_hms_nano_opt(h.into(), mi.into(), s.into(), ns);
                let at = date.zip(time).map(|(date, time)| NaiveDateTime::new(date, time));
                query.bind(at.ok_or_else(|| bad("datetime", (y, mo, d, h, mi, s, ns)))?)
            }
            ParameterValue::Uuid(v) => query.bind(uuid::Uuid::parse_str(&v).map_err(|_| bad("UUID", &v))?),
            ParameterValue::Jsonb(v) => {
                let json: serde_json::Value = serde_json::from_slice(&v).map_err(|_| bad("JSON document", String::from_utf8_lossy(&v)))?;
                query.bind(sqlx::types::Json(json))
            }
            ParameterValue::Decimal(v) => query.bind(decimal(&v)?),
            ParameterValue::RangeInt32((lower, upper)) => query.bind(PgRange { start: bound(lower), end: bound(upper) }),
            ParameterValue::RangeInt64((lower, upper)) => query.bind(PgRange { start: bound(lower), end: bound(upper) }),
            ParameterValue::RangeDecimal((lower, upper)) => {
                query.bind(PgRange { start: decimal_bound(lower)?, end: decimal_bound(upper)? })
            }
            ParameterValue::ArrayInt32(v) => query.bind(v),
            ParameterValue::ArrayInt64(v) => query.bind(v),
            ParameterValue::ArrayDecimal(v) => {
                query.bind(v.iter().map(|d| d.as_deref().map(decimal).transpose()).collect::<Result<Vec<_>, _>>()?)
            }
            ParameterValue::ArrayStr(v) => query.bind(v),
            ParameterValue::Interval(Interval { micros, days, months }) => {
                query.bind(PgInterval { months, days, microseconds: micros })
            }
            ParameterValue::DbNull => query.bind(Null),
        })
    })
}

/// A column as the guest sees it: its name and Spin's data type.
pub fn column(column: &PgColumn) -> Column {
    Column { name: column.name().to_owned(), data_type: data_type(column.type_info()) }
}

fn data_type(ty: &PgTypeInfo) -> DbDataType {
    match ty.name() {
        "BOOL" => DbDataType::Boolean,
        "\"CHAR\"" => DbDataType::Int8,
        "INT2" => DbDataType::Int16,
        "INT4" => DbDataType::Int32,
        "INT8" => DbDataType::Int64,
        "FLOAT4" => DbDataType::Floating32,
        "FLOAT8" => DbDataType::Floating64,
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => DbDataType::Str,
        "BYTEA" => DbDataType::Binary,
        "DATE" => DbDataType::Date,
        "TIME" => DbDataType::Time,
        "TIMESTAMP" => DbDataType::Datetime,
        "TIMESTAMPTZ" => DbDataType::Timestamp,
        "UUID" => DbDataType::Uuid,
        "JSON" | "JSONB" => DbDataType::Jsonb,
        "NUMERIC" => DbDataType::Decimal,
        "INT4RANGE" => DbDataType::RangeInt32,
        "INT8RANGE" => DbDataType::RangeInt64,
        "NUMRANGE" => DbDataType::RangeDecimal,
        "INT4[]" => DbDataType::ArrayInt32,
        "INT8[]" => DbDataType::ArrayInt64,
        "NUMERIC[]" => DbDataType::ArrayDecimal,
        "TEXT[]" | "VARCHAR[]" => DbDataType::ArrayStr,
        "INTERVAL" => DbDataType::Interval,
        other => DbDataType::Other(other.to_owned()),
    }
}

fn end<T, U>(bound: Bound<T>, f: impl Fn(T) -> U) -> Option<(U, RangeBoundKind)> {
    match bound {
        Bound::Included(v) => Some((f(v), RangeBoundKind::Inclusive)),
        Bound::Excluded(v) => Some((f(v), RangeBoundKind::Exclusive)),
        Bound::Unbounded => None,
    }
}

/// Column `i` of `row`; `unsupported` with its bytes where the type has no variant
/// (or the value cannot be read as its type says).
pub fn value(row: &PgRow, i: usize) -> DbValue {
    let raw = match row.try_get_raw(i) {
        Ok(raw) => raw,
        Err(_) => return DbValue::Unsupported(Vec::new()),
    };
    if raw.is_null() {
        return DbValue::DbNull;
    }
    let unsupported = || DbValue::Unsupported(raw.as_bytes().map(<[u8]>::to_vec).unwrap_or_default());
    let read = || -> Result<DbValue, sqlx::Error> {
        Ok(match data_type(raw.type_info().as_ref()) {
            DbDataType::Boolean => DbValue::Boolean(row.try_get(i)?),
            DbDataType::Int8 => DbValue::Int8(row.try_get(i)?),
            DbDataType::Int16 => DbValue::Int16(row.try_get(i)?),
            DbDataType::Int32 => DbValue::Int32(row.try_get(i)?),
            DbDataType::Int64 => DbValue::Int64(row.try_get(i)?),
            DbDataType::Floating32 => DbValue::Floating32(row.try_get(i)?),
            DbDataType::Floating64 => DbValue::Floating64(row.try_get(i)?),
            DbDataType::Str => DbValue::Str(row.try_get(i)?),
            DbDataType::Binary => DbValue::Binary(row.try_get(i)?),
            DbDataType::Date => {
                let d: NaiveDate = row.try_get(i)?;
                DbValue::Date((d.year(), d.month() as u8, d.day() as u8))
            }
            DbDataType::Time => {
                let t: NaiveTime = row.try_get(i)?;
                DbValue::Time((t.hour() as u8, t.minute() as u8, t.second() as u8, t.nanosecond()))
            }
            DbDataType::Datetime => {
                let at: NaiveDateTime = row.try_get(i)?;
                let (d, t) = (at.date(), at.time());
                DbValue::Datetime((
                    d.year(),
                    d.month() as u8,
                    d.day() as u8,
                    t.hour() as u8,
                    t.minute() as u8,
                    t.second() as u8,
                    t.nanosecond(),
                ))
            }
            DbDataType::Timestamp => DbValue::Timestamp(row.try_get::<DateTime<Utc>, _>(i)?.timestamp()),
            DbDataType::Uuid => DbValue::Uuid(row.try_get::<uuid::Uuid, _>(i)?.to_string()),
            DbDataType::Jsonb => {
                let json: serde_json::Value = row.try_get(i)?;
                DbValue::Jsonb(serde_json::to_vec(&json).unwrap_or_default())
            }
            DbDataType::Decimal => DbValue::Decimal(row.try_get::<Decimal, _>(i)?.to_string()),
            DbDataType::RangeInt32 => {
                let r: PgRange<i32> = row.try_get(i)?;
                DbValue::RangeInt32((end(r.start, |v| v), end(r.end, |v| v)))
            }
            DbDataType::RangeInt64 => {
                let r: PgRange<i64> = row.try_get(i)?;
                DbValue::RangeInt64((end(r.start, |v| v), end(r.end, |v| v)))
            }
            DbDataType::RangeDecimal => {
                let r: PgRange<Decimal> = row.try_get(i)?;
                DbValue::RangeDecimal((end(r.start, |v| v.to_string()), end(r.end, |v| v.to_string())))
            }
            DbDataType::ArrayInt32 => DbValue::ArrayInt32(row.try_get(i)?),
            DbDataType::ArrayInt64 => DbValue::ArrayInt64(row.try_get(i)?),
            DbDataType::ArrayDecimal => {
                let v: Vec<Option<Decimal>> = row.try_get(i)?;
                DbValue::ArrayDecimal(v.into_iter().map(|d| d.map(|d| d.to_string())).collect())
            }
            DbDataType::ArrayStr => DbValue::ArrayStr(row.try_get(i)?),
            DbDataType::Interval => {
                let v: PgInterval = row.try_get(i)?;
                DbValue::Interval(Interval { micros: v.microseconds, days: v.days, months: v.months })
            }
            DbDataType::Other(_) => unsupported(),
        })
    };
    read().unwrap_or_else(|_| unsupported())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound_one(param: ParameterValue) -> Result<(), Error> {
        bind(sqlx::query("SELECT $1"), vec![param]).map(drop)
    }

    fn refusal(param: ParameterValue) -> String {
        match bound_one(param) {
            Err(Error::BadParameter(why)) => why,
            Err(other) => panic!("expected bad-parameter, got {other:?}"),
            Ok(()) => panic!("expected bad-parameter, got a bound value"),
        }
    }

    #[test]
    fn parameters_that_are_not_what_their_variant_says_are_refused_naming_the_value() {
        assert!(refusal(ParameterValue::Date((2026, 2, 30))).contains("(2026, 2, 30) is not a valid date"));
        assert!(refusal(ParameterValue::Time((24, 0, 0, 0))).contains("not a valid time"));
        assert!(refusal(ParameterValue::Datetime((2026, 13, 1, 0, 0, 0, 0))).contains("not a valid datetime"));
        assert!(refusal(ParameterValue::Uuid("not-a-uuid".into())).contains("\"not-a-uuid\" is not a valid UUID"));
        assert!(refusal(ParameterValue::Jsonb(b"{oops".to_vec())).contains("is not a valid JSON document"));
        assert!(refusal(ParameterValue::Decimal("12,5".into())).contains("\"12,5\" is not a valid decimal"));
        let range = ParameterValue::RangeDecimal((Some(("1".into(), RangeBoundKind::Inclusive)), Some(("x".into(), RangeBoundKind::Exclusive))));
        assert!(refusal(range).contains("\"x\" is not a valid decimal"));
        assert!(refusal(ParameterValue::ArrayDecimal(vec![Some("1.5".into()), Some("one".into())])).contains("\"one\""));
    }

    #[test]
    fn well_formed_parameters_bind() {
        for param in [
            ParameterValue::Date((2024, 2, 29)),
            ParameterValue::Time((23, 59, 59, 999_999_999)),
            ParameterValue::Datetime((2026, 12, 8, 3, 30, 0, 0)),
            ParameterValue::Uuid("67e55044-10b1-426f-9247-bb680e5fe0c8".into()),
            ParameterValue::Jsonb(br#"{"a": [1, 2]}"#.to_vec()),
            ParameterValue::Decimal("-12.345".into()),
            ParameterValue::RangeInt32((None, Some((10, RangeBoundKind::Exclusive)))),
            ParameterValue::ArrayDecimal(vec![Some("1.5".into()), None]),
            ParameterValue::Interval(Interval { micros: 1, days: 2, months: 3 }),
            ParameterValue::DbNull,
        ] {
            bound_one(param).expect("binds");
        }
    }

    #[test]
    fn range_ends_keep_their_kind_both_ways() {
        assert!(matches!(end(bound(Some((7, RangeBoundKind::Inclusive))), |v| v), Some((7, RangeBoundKind::Inclusive))));
        assert!(matches!(end(bound(Some((7, RangeBoundKind::Exclusive))), |v| v), Some((7, RangeBoundKind::Exclusive))));
        assert!(end(bound(None::<(i32, RangeBoundKind)>), |v| v).is_none());
    }

    #[test]
    fn server_types_read_as_spins_data_types() {
        let of = |name: &'static str| data_type(&PgTypeInfo::with_name(name));
        assert!(matches!(of("TIMESTAMPTZ"), DbDataType::Timestamp), "seconds since the epoch");
        assert!(matches!(of("TIMESTAMP"), DbDataType::Datetime));
        assert!(matches!(of("NUMRANGE"), DbDataType::RangeDecimal));
        assert!(matches!(of("VARCHAR"), DbDataType::Str));
        assert!(matches!(of("POINT"), DbDataType::Other(name) if name == "POINT"), "a type Spin has no variant for is named");
    }
}
