//! What every check shares: the [`Checker`] that turns the raw structs of
//! [`crate::raw`] into the public types, where a value stands ([`Loc`]), and the
//! readings common to all tables (kinds, strings, positive integers, unknown keys).
//!
//! Contract: an error names the key path of the value it is about and points at the
//! value (or, for an error about a key, at the key); when toml knows neither
//! position, at the nearest enclosing key that it knows.

use std::collections::BTreeMap;
use std::path::Path;

use toml::Value;

use crate::de::{Entries, Key, Node, Span, Table, Typed};
use crate::error::{KeyPath, ManifestError, line_col};
use crate::raw::Strings;
use crate::topics::validate_topic;

pub(crate) type Checked<T> = Result<T, ManifestError>;

/// Where a value stands: its key path, and the positions errors about it point at.
#[derive(Debug, Clone, Default)]
pub(crate) struct Loc {
    pub path: KeyPath,
    /// For an error about the key: the key, else its value, else the enclosing key.
    key_pos: Option<usize>,
    /// For an error about the value: the value, else its key, else the enclosing key.
    value_pos: Option<usize>,
}

impl Loc {
    fn step(&self, path: KeyPath, key: Option<&Span>, value: Option<&Span>) -> Loc {
        let (key, value) = (key.map(|s| s.start), value.map(|s| s.start));
        Loc {
            path,
            key_pos: key.or(value).or(self.key_pos),
            value_pos: value.or(key).or(self.key_pos),
        }
    }

    /// The entry `key` of this table.
    pub fn entry<T>(&self, key: &Key, node: &Node<T>) -> Loc {
        self.step(
            self.path.key(&key.name),
            key.span.as_ref(),
            node.span.as_ref(),
        )
    }

    /// The key `name` of this table, which the manifest does not write.
    pub fn missing(&self, name: &str) -> Loc {
        self.step(self.path.key(name), None, None)
    }

    /// The key `name` of `table` (this), which the table does not declare.
    pub fn undeclared<F>(&self, table: &Table<F>, name: &str) -> Loc {
        match table.unknown.iter().find(|(k, _)| k.name == name) {
            Some((key, value)) => self.entry(key, value),
            None => self.missing(name),
        }
    }

    /// Element `i` of this array.
    pub fn index<T>(&self, i: usize, node: &Node<T>) -> Loc {
        self.step(self.path.index(i), None, node.span.as_ref())
    }

    /// The field `name` of `table` (this), if written: where it stands and its value.
    pub fn field<'n, F, T>(
        &self,
        table: &Table<F>,
        name: &str,
        node: &'n Option<Node<T>>,
    ) -> Option<(Loc, &'n Typed<T>)> {
        let node = node.as_ref()?;
        let key = table.key(name).and_then(|k| k.span.as_ref());
        let loc = self.step(self.path.key(name), key, node.span.as_ref());
        Some((loc, &node.value))
    }
}

pub(crate) struct Checker<'a> {
    pub file: &'a Path,
    pub text: &'a str,
}

impl Checker<'_> {
    fn error_at(&self, path: &KeyPath, pos: Option<usize>, message: String) -> ManifestError {
        ManifestError {
            file: self.file.to_path_buf(),
            key: (!path.is_root()).then(|| path.to_string()),
            line_col: pos.and_then(|offset| line_col(self.text, offset)),
            message,
        }
    }

    /// An error about the value at `loc`.
    pub fn error(&self, loc: &Loc, message: impl Into<String>) -> ManifestError {
        self.error_at(&loc.path, loc.value_pos, message.into())
    }

    /// An error about the key at `loc` itself (unknown, unsupported, misnamed).
    pub fn key_error(&self, loc: &Loc, message: impl Into<String>) -> ManifestError {
        self.error_at(&loc.path, loc.key_pos, message.into())
    }

    /// Refuses the keys `table` does not declare, and keys in `unsupported` unless
    /// their value is empty (`[]`, `{}`, `false`), reporting the first one in the file.
    pub fn check_keys<F>(
        &self,
        loc: &Loc,
        table: &Table<F>,
        unsupported: &[(&str, &str)],
    ) -> Checked<()> {
        let mut bad: Vec<(Loc, &str)> = table
            .unknown
            .iter()
            .filter(|(k, v)| {
                let empty = matches!(&v.value, Ok(value) if is_empty_value(value));
                !(empty && unsupported.iter().any(|(u, _)| *u == k.name))
            })
            .map(|(k, v)| (loc.entry(k, v), k.name.as_str()))
            .collect();
        bad.sort_by_key(|(at, key)| (at.key_pos.unwrap_or(usize::MAX), key.to_string()));
        let Some((at, key)) = bad.first() else {
            return Ok(());
        };
        if let Some((_, what)) = unsupported.iter().find(|(u, _)| u == key) {
            return Err(self.key_error(at, format!("`{key}` is not supported by estore ({what})")));
        }
        let mut message = format!(
            "unknown key `{key}` (expected one of: {})",
            table.names.join(", ")
        );
        if let Some(close) = table.names.iter().find(|a| is_close(a, key)) {
            message.push_str(&format!("; did you mean `{close}`?"));
        }
        Err(self.error_at(&loc.path, at.key_pos, message))
    }

    /// The value, or an error `expected <expected>, found <kind>`.
    pub fn expect<'v, T>(&self, loc: &Loc, value: &'v Typed<T>, expected: &str) -> Checked<&'v T> {
        value
            .as_ref()
            .map_err(|found| self.error(loc, format!("expected {expected}, found {found}")))
    }

    pub fn string<'v>(&self, loc: &Loc, value: &'v Typed<String>) -> Checked<&'v str> {
        self.expect(loc, value, "a string").map(String::as_str)
    }

    pub fn table<'v, T>(&self, loc: &Loc, value: &'v Typed<T>) -> Checked<&'v T> {
        self.expect(loc, value, "a table")
    }

    pub fn boolean(&self, loc: &Loc, value: &Typed<bool>) -> Checked<bool> {
        self.expect(loc, value, "true or false").copied()
    }

    pub fn array<'v, T>(&self, loc: &Loc, value: &'v Typed<Vec<T>>) -> Checked<&'v Vec<T>> {
        self.expect(loc, value, "an array")
    }

    /// The elements of an array of strings.
    pub fn items(&self, loc: &Loc, items: &Strings) -> Checked<Vec<String>> {
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                self.string(&loc.index(i, item), &item.value)
                    .map(str::to_string)
            })
            .collect()
    }

    pub fn strings(&self, loc: &Loc, value: &Typed<Strings>) -> Checked<Vec<String>> {
        self.items(loc, self.array(loc, value)?)
    }

    /// A table of strings (`environment`), in the order of its keys.
    pub fn string_map(
        &self,
        loc: &Loc,
        value: &Typed<Entries<String>>,
    ) -> Checked<BTreeMap<String, String>> {
        self.table(loc, value)?
            .0
            .iter()
            .map(|(k, v)| {
                Ok((
                    k.name.clone(),
                    self.string(&loc.entry(k, v), &v.value)?.to_string(),
                ))
            })
            .collect()
    }

    /// An array of strings, each passing `check` (errors point at the element).
    pub fn checked_strings(
        &self,
        loc: &Loc,
        value: &Typed<Strings>,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> Checked<Vec<String>> {
        let items = self.array(loc, value)?;
        let strings = self.items(loc, items)?;
        for (i, (item, node)) in strings.iter().zip(items).enumerate() {
            check(item).map_err(|e| self.error(&loc.index(i, node), e))?;
        }
        Ok(strings)
    }

    /// A list of topic names, none twice: a duplicate is a slip, never a meaning.
    pub fn topics(&self, loc: &Loc, value: &Typed<Strings>) -> Checked<Vec<String>> {
        let topics =
            self.checked_strings(loc, value, |t| validate_topic(t).map_err(|e| e.to_string()))?;
        if let Some(i) = (1..topics.len()).find(|&i| topics[..i].contains(&topics[i])) {
            let items = self.array(loc, value)?;
            return Err(self.error(
                &loc.index(i, &items[i]),
                format!("topic `{}` is listed twice", topics[i]),
            ));
        }
        Ok(topics)
    }

    /// An optional string field.
    pub fn opt_string<F>(
        &self,
        loc: &Loc,
        table: &Table<F>,
        name: &str,
        node: &Option<Node<String>>,
    ) -> Checked<Option<String>> {
        loc.field(table, name, node)
            .map(|(at, v)| self.string(&at, v).map(str::to_string))
            .transpose()
    }

    /// An optional boolean field, false unless written.
    pub fn flag<F>(
        &self,
        loc: &Loc,
        table: &Table<F>,
        name: &str,
        node: &Option<Node<bool>>,
    ) -> Checked<bool> {
        match loc.field(table, name, node) {
            Some((at, v)) => self.boolean(&at, v),
            None => Ok(false),
        }
    }

    /// An optional positive integer field that must fit `T` (`u64`, `u32`).
    pub fn opt_positive<F, T: TryFrom<u64>>(
        &self,
        loc: &Loc,
        table: &Table<F>,
        name: &str,
        node: &Option<Node<i64>>,
    ) -> Checked<Option<T>> {
        let Some((at, value)) = loc.field(table, name, node) else {
            return Ok(None);
        };
        let n = match value {
            Ok(n) if *n > 0 => n.unsigned_abs(),
            Ok(n) => return Err(self.error(&at, format!("must be a positive integer, not {n}"))),
            Err(found) => {
                return Err(self.error(&at, format!("expected a positive integer, found {found}")));
            }
        };
        T::try_from(n)
            .map(Some)
            .map_err(|_| self.error(&at, format!("{n} is too large")))
    }
}

fn is_empty_value(value: &Value) -> bool {
    match value {
        Value::Array(a) => a.is_empty(),
        Value::Table(t) => t.is_empty(),
        Value::Boolean(b) => !b,
        _ => false,
    }
}

/// Close enough to be a typo: edit distance at most 2 (1 for short words).
pub(crate) fn is_close(candidate: &str, typed: &str) -> bool {
    let limit = if typed.chars().count() <= 4 { 1 } else { 2 };
    let a: Vec<char> = candidate.chars().collect();
    let b: Vec<char> = typed.chars().collect();
    if a.len().abs_diff(b.len()) > limit {
        return false;
    }
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous.last().is_some_and(|d| *d <= limit)
}
