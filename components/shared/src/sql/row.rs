//! Query results read by column name, into the caller's own types.

use super::{Error, FromValue, Value};
use crate::bindings::sql::RowSet;

/// The rows a query returned, with their column names.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rows {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
}

impl Rows {
    pub fn new(columns: Vec<String>, rows: Vec<Vec<Value>>) -> Self {
        Rows { columns, rows }
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<Row<'_>> {
        self.rows.get(index).map(|values| Row {
            columns: &self.columns,
            values,
        })
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter {
            columns: &self.columns,
            rows: self.rows.iter(),
        }
    }

    /// Every row as a `T`; the first row that does not fit is the error.
    pub fn decode<T: FromRow>(&self) -> Result<Vec<T>, Error> {
        self.iter().map(|row| T::from_row(&row)).collect()
    }

    /// The columns and the rows' values, as the interface returned them.
    pub fn into_parts(self) -> (Vec<String>, Vec<Vec<Value>>) {
        (self.columns, self.rows)
    }
}

impl From<RowSet> for Rows {
    fn from(set: RowSet) -> Self {
        Rows {
            columns: set.columns,
            rows: set.rows,
        }
    }
}

impl<'a> IntoIterator for &'a Rows {
    type Item = Row<'a>;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// The rows of [`Rows`], in order.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    columns: &'a [String],
    rows: std::slice::Iter<'a, Vec<Value>>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Row<'a>;

    fn next(&mut self) -> Option<Row<'a>> {
        let values = self.rows.next()?;
        Some(Row {
            columns: self.columns,
            values,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.rows.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// One row of [`Rows`]; its values are looked up by column name.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    columns: &'a [String],
    values: &'a [Value],
}

impl<'a> Row<'a> {
    /// The value of `column` as a `T`, e.g. `row.get::<Option<String>>("note")`.
    ///
    /// Names match exactly (as the backend spells them: alias computed columns and
    /// clashing names in joins, `SELECT count(*) AS n`); with duplicates, the first wins.
    pub fn get<T: FromValue>(&self, column: &str) -> Result<T, Error> {
        let value = self
            .value(column)
            .ok_or_else(|| Error::MissingColumn(column.to_owned()))?;
        T::from_value(value).map_err(|error| Error::Decode {
            column: column.to_owned(),
            error,
        })
    }

    /// The raw value of `column`, if the row has one.
    pub fn value(&self, column: &str) -> Option<&'a Value> {
        let index = self.columns.iter().position(|c| c == column)?;
        self.values.get(index)
    }

    pub fn columns(&self) -> &'a [String] {
        self.columns
    }

    /// The values in column order.
    pub fn values(&self) -> &'a [Value] {
        self.values
    }
}

/// A type a row can be read into, implemented by hand:
///
/// ```
/// use estore_shared::sql::{Error, FromRow, Row};
///
/// struct Note {
///     id: i64,
///     title: String,
///     body: Option<String>,
/// }
///
/// impl FromRow for Note {
///     fn from_row(row: &Row<'_>) -> Result<Self, Error> {
///         Ok(Note { id: row.get("id")?, title: row.get("title")?, body: row.get("body")? })
///     }
/// }
/// ```
pub trait FromRow: Sized {
    fn from_row(row: &Row<'_>) -> Result<Self, Error>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::DecodeError;

    #[derive(Debug, PartialEq)]
    struct Item {
        id: u32,
        name: String,
        note: Option<String>,
    }

    impl FromRow for Item {
        fn from_row(row: &Row<'_>) -> Result<Self, Error> {
            Ok(Item {
                id: row.get("id")?,
                name: row.get("name")?,
                note: row.get("note")?,
            })
        }
    }

    fn rows() -> Rows {
        Rows::from(RowSet {
            columns: vec!["id".into(), "name".into(), "note".into()],
            rows: vec![
                vec![Value::Int64(1), Value::Text("één".into()), Value::Null],
                vec![
                    Value::Int64(2),
                    Value::Text("two".into()),
                    Value::Text("n".into()),
                ],
            ],
        })
    }

    #[test]
    fn rows_decode_by_column_name() {
        let items: Vec<Item> = rows().decode().unwrap();
        assert_eq!(
            items,
            [
                Item {
                    id: 1,
                    name: "één".into(),
                    note: None
                },
                Item {
                    id: 2,
                    name: "two".into(),
                    note: Some("n".into())
                },
            ]
        );
    }

    #[test]
    fn lookups_name_the_column_that_failed() {
        let rows = rows();
        let row = rows.get(0).unwrap();
        assert_eq!(row.get::<String>("name").unwrap(), "één");
        assert_eq!(row.value("note"), Some(&Value::Null));
        assert_eq!(
            row.get::<i64>("nope"),
            Err(Error::MissingColumn("nope".into()))
        );
        assert_eq!(
            row.get::<i64>("name"),
            Err(Error::Decode {
                column: "name".into(),
                error: DecodeError::WrongType {
                    expected: "int64",
                    found: "text"
                },
            })
        );
        assert_eq!(
            row.get::<String>("note").unwrap_err().to_string(),
            "column `note`: expected text, found null"
        );
        assert!(rows.get(2).is_none());
    }

    #[test]
    fn iteration_and_parts() {
        let rows = rows();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows.columns(), ["id", "name", "note"]);
        let ids: Vec<i64> = (&rows).into_iter().map(|r| r.get("id").unwrap()).collect();
        assert_eq!(ids, [1, 2]);
        let (columns, values) = rows.into_parts();
        assert_eq!(columns.len(), 3);
        assert_eq!(values[1][2], Value::Text("n".into()));
        assert!(Rows::default().is_empty());
    }

    #[test]
    fn duplicate_names_take_the_first_and_short_rows_are_missing() {
        let rows = Rows::new(
            vec!["id".into(), "id".into(), "extra".into()],
            vec![vec![Value::Int64(1), Value::Int64(2)]],
        );
        let row = rows.get(0).unwrap();
        assert_eq!(row.get::<i64>("id"), Ok(1));
        assert_eq!(
            row.get::<i64>("extra"),
            Err(Error::MissingColumn("extra".into()))
        );
    }
}
