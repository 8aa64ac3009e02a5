//! The typed reading of a manifest: how the serde structs of [`crate::raw`] take
//! their values from `toml`, each with its position and never failing on a value
//! of the wrong kind.
//!
//! Contract: deserializing never fails on the manifest's content (only `toml`'s
//! syntax errors fail); a value of the wrong kind is kept as the kind found
//! ([`Typed`]), so that the checker reports it with its key path and its own words;
//! keys that a struct does not declare are kept ([`Table::unknown`]), so that the
//! checker can refuse them with a suggestion.
//!
//! Why not `toml::Spanned` and `#[serde(flatten)]`: with toml 0.8, `Spanned` fails
//! on a table that has no header of its own (`component` in `[component.hello]`,
//! `trigger` in `[[trigger.http]]`: nearly every manifest), and `flatten` buffers
//! the struct, which loses every span inside it. [`Node`] therefore speaks the same
//! span protocol as `Spanned` but accepts a value without a span.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;

use serde::de::{
    Deserialize, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, IntoDeserializer,
    MapAccess, SeqAccess, Visitor,
};
use toml::Value;

/// Byte offsets in the manifest text.
pub(crate) type Span = Range<usize>;

/// A value of the expected type, or else the kind of value found (`"an integer"`).
pub(crate) type Typed<T> = Result<T, &'static str>;

// serde_spanned's protocol, through which toml hands out spans: it answers a
// request for a struct of this name with a map of these fields. toml's datetimes
// arrive as a map with one field. Should the protocol change, the tests fail.
const SPANNED_NAME: &str = "$__serde_spanned_private_Spanned";
const SPANNED_START: &str = "$__serde_spanned_private_start";
const SPANNED_END: &str = "$__serde_spanned_private_end";
const SPANNED_VALUE: &str = "$__serde_spanned_private_value";
const SPANNED_FIELDS: &[&str] = &[SPANNED_START, SPANNED_END, SPANNED_VALUE];
const DATETIME_FIELD: &str = "$__toml_private_datetime";

/// A table key as written, with its position when toml knows it.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    pub name: String,
    pub span: Option<Span>,
}

/// A value with its position when toml knows it (not for a table without a header
/// of its own).
pub(crate) struct Node<T> {
    pub span: Option<Span>,
    pub value: Typed<T>,
}

/// A scalar as toml hands it over; a datetime in its TOML form.
pub(crate) enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Datetime(String),
}

impl Scalar {
    fn kind(&self) -> &'static str {
        match self {
            Scalar::Bool(_) => "a boolean",
            Scalar::Int(_) => "an integer",
            Scalar::Float(_) => "a float",
            Scalar::Str(_) => "a string",
            Scalar::Datetime(_) => "a date-time",
        }
    }
}

/// A type a manifest value is read as. Each kind of value it does not take is
/// refused with that kind; a refused array or table is left unread.
pub(crate) trait FromToml: Sized {
    fn scalar(value: Scalar) -> Typed<Self> {
        Err(value.kind())
    }

    fn seq<'de, A: SeqAccess<'de>>(_seq: A) -> Result<Typed<Self>, A::Error> {
        Ok(Err("an array"))
    }

    /// A table, whose first key the caller may already have read.
    fn map<'de, A: MapAccess<'de>>(_first: Option<Key>, _map: A) -> Result<Typed<Self>, A::Error> {
        Ok(Err("a table"))
    }
}

impl FromToml for String {
    fn scalar(value: Scalar) -> Typed<Self> {
        match value {
            Scalar::Str(s) => Ok(s),
            other => Err(other.kind()),
        }
    }
}

impl FromToml for bool {
    fn scalar(value: Scalar) -> Typed<Self> {
        match value {
            Scalar::Bool(b) => Ok(b),
            other => Err(other.kind()),
        }
    }
}

impl FromToml for i64 {
    fn scalar(value: Scalar) -> Typed<Self> {
        match value {
            Scalar::Int(n) => Ok(n),
            other => Err(other.kind()),
        }
    }
}

/// Any value, for what is only displayed or tested for emptiness.
impl FromToml for Value {
    fn scalar(value: Scalar) -> Typed<Self> {
        Ok(match value {
            Scalar::Bool(b) => Value::Boolean(b),
            Scalar::Int(n) => Value::Integer(n),
            Scalar::Float(x) => Value::Float(x),
            Scalar::Str(s) => Value::String(s),
            Scalar::Datetime(d) => match d.parse() {
                Ok(d) => Value::Datetime(d),
                Err(_) => Value::String(d),
            },
        })
    }

    fn seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Typed<Self>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(Ok(Value::Array(items)))
    }

    fn map<'de, A: MapAccess<'de>>(
        first: Option<Key>,
        mut map: A,
    ) -> Result<Typed<Self>, A::Error> {
        let mut table = toml::Table::new();
        if let Some(first) = first {
            table.insert(first.name, map.next_value()?);
        }
        while let Some((key, value)) = map.next_entry::<String, Value>()? {
            table.insert(key, value);
        }
        Ok(Ok(Value::Table(table)))
    }
}

/// An array.
impl<T: FromToml> FromToml for Vec<Node<T>> {
    fn seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Typed<Self>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Ok(items))
    }
}

/// A table of entries named by the manifest (component ids, variable names), in the
/// order of their names.
pub(crate) struct Entries<T>(pub Vec<(Key, Node<T>)>);

impl<T: FromToml> FromToml for Entries<T> {
    fn map<'de, A: MapAccess<'de>>(
        first: Option<Key>,
        mut map: A,
    ) -> Result<Typed<Self>, A::Error> {
        let mut entries = Vec::new();
        if let Some(first) = first {
            entries.push((first, map.next_value()?));
        }
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        entries.sort_by(|(a, _), (b, _)| a.name.cmp(&b.name));
        Ok(Ok(Entries(entries)))
    }
}

/// A string, or another kind of value (`route = "/x"` or `route = { private = true }`).
pub(crate) enum StringOr<T> {
    String(String),
    Other(T),
}

impl<T: FromToml> FromToml for StringOr<T> {
    fn scalar(value: Scalar) -> Typed<Self> {
        match value {
            Scalar::Str(s) => Ok(StringOr::String(s)),
            other => T::scalar(other).map(StringOr::Other),
        }
    }

    fn seq<'de, A: SeqAccess<'de>>(seq: A) -> Result<Typed<Self>, A::Error> {
        Ok(T::seq(seq)?.map(StringOr::Other))
    }

    fn map<'de, A: MapAccess<'de>>(first: Option<Key>, map: A) -> Result<Typed<Self>, A::Error> {
        Ok(T::map(first, map)?.map(StringOr::Other))
    }
}

/// A table read into the serde struct `F` (whose fields are `Option<Node<_>>`), with
/// the keys `F` does not declare kept aside.
pub(crate) struct Table<F> {
    pub fields: F,
    /// The keys `F` declares, in declaration order.
    pub names: &'static [&'static str],
    /// Every key, in file order.
    keys: Vec<Key>,
    /// The keys `F` does not declare, in file order.
    pub unknown: Vec<(Key, Node<Value>)>,
}

impl<F> Table<F> {
    /// The key `name` as written, if it is.
    pub fn key(&self, name: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.name == name)
    }

    /// The keys in order of their names (the order entries are checked in).
    pub fn sorted_keys(&self) -> Vec<&Key> {
        let mut keys: Vec<&Key> = self.keys.iter().collect();
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        keys
    }
}

impl<F: DeserializeOwned> FromToml for Table<F> {
    fn map<'de, A: MapAccess<'de>>(first: Option<Key>, map: A) -> Result<Typed<Self>, A::Error> {
        let (mut names, mut keys, mut unknown) = (&[][..], Vec::new(), Vec::new());
        let fields = F::deserialize(Fields {
            first,
            map,
            names: &mut names,
            keys: &mut keys,
            unknown: &mut unknown,
        })?;
        Ok(Ok(Table {
            fields,
            names,
            keys,
            unknown,
        }))
    }
}

/// Hands a serde struct the entries of a table whose keys it declares, and keeps
/// the others: what `#[serde(flatten)]` would do without losing the spans.
struct Fields<'a, A> {
    first: Option<Key>,
    map: A,
    names: &'a mut &'static [&'static str],
    keys: &'a mut Vec<Key>,
    unknown: &'a mut Vec<(Key, Node<Value>)>,
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for Fields<'_, A> {
    type Error = A::Error;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        *self.names = fields;
        visitor.visit_map(self)
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_map(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Fields<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        loop {
            let key = match self.first.take() {
                Some(key) => key,
                None => match self.map.next_key::<Key>()? {
                    Some(key) => key,
                    None => return Ok(None),
                },
            };
            self.keys.push(key.clone());
            if self.names.contains(&key.name.as_str()) {
                return seed.deserialize(key.name.into_deserializer()).map(Some);
            }
            let value = self.map.next_value()?;
            self.unknown.push((key, value));
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        d.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML key")
    }

    fn visit_str<E>(self, name: &str) -> Result<Key, E> {
        Ok(Key {
            name: name.to_string(),
            span: None,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Key, A::Error> {
        let (mut start, mut end, mut name) = (None, None, String::new());
        while let Some(field) = map.next_key::<String>()? {
            match field.as_str() {
                SPANNED_START => start = Some(map.next_value::<usize>()?),
                SPANNED_END => end = Some(map.next_value::<usize>()?),
                SPANNED_VALUE => name = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Key {
            name,
            span: start.zip(end).map(|(s, e)| s..e),
        })
    }
}

impl<'de, T: FromToml> Deserialize<'de> for Node<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, NodeVisitor::<T>::new(true))
    }
}

/// The value inside a span, which must not ask for a span again.
struct Unspanned<T>(PhantomData<T>);

impl<'de, T: FromToml> DeserializeSeed<'de> for Unspanned<T> {
    type Value = Typed<T>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Typed<T>, D::Error> {
        d.deserialize_any(NodeVisitor::<T>::new(false))
            .map(|node| node.value)
    }
}

struct NodeVisitor<T> {
    /// Whether toml was asked for the span (and may answer with it).
    spanned: bool,
    kind: PhantomData<T>,
}

impl<T> NodeVisitor<T> {
    fn new(spanned: bool) -> Self {
        NodeVisitor {
            spanned,
            kind: PhantomData,
        }
    }
}

fn unspanned<T>(value: Typed<T>) -> Node<T> {
    Node { span: None, value }
}

impl<'de, T: FromToml> Visitor<'de> for NodeVisitor<T> {
    type Value = Node<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Node<T>, E> {
        Ok(unspanned(T::scalar(Scalar::Bool(b))))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Node<T>, E> {
        Ok(unspanned(T::scalar(Scalar::Int(n))))
    }

    fn visit_f64<E>(self, x: f64) -> Result<Node<T>, E> {
        Ok(unspanned(T::scalar(Scalar::Float(x))))
    }

    fn visit_str<E>(self, s: &str) -> Result<Node<T>, E> {
        Ok(unspanned(T::scalar(Scalar::Str(s.to_string()))))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Node<T>, A::Error> {
        Ok(unspanned(T::seq(seq)?))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<T>, A::Error> {
        let Some(first) = map.next_key::<Key>()? else {
            return Ok(unspanned(T::map(None, map)?));
        };
        if first.span.is_some() {
            return Ok(unspanned(T::map(Some(first), map)?));
        }
        match first.name.as_str() {
            SPANNED_START if self.spanned => {
                let start: usize = map.next_value()?;
                let (mut end, mut value) = (start, Err("nothing"));
                while let Some(field) = map.next_key::<String>()? {
                    match field.as_str() {
                        SPANNED_END => end = map.next_value()?,
                        SPANNED_VALUE => value = map.next_value_seed(Unspanned(PhantomData))?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Node {
                    span: Some(start..end),
                    value,
                })
            }
            DATETIME_FIELD => Ok(unspanned(T::scalar(Scalar::Datetime(map.next_value()?)))),
            _ => Ok(unspanned(T::map(Some(first), map)?)),
        }
    }
}
