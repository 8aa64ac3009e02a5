//! Key-value stores, embedded in SQLite: `fermyon:spin/key-value@2.0.0` for WASI 0.2
//! guests and `spin:key-value/key-value@3.0.0` (async functions) for WASI 0.3 ones,
//! over the same stores, grants, quotas and errors.
//!
//! Each store label the application uses is one SQLite file: `default` lives in the
//! state dir, others where `[key_value_store.<label>]` of the runtime config puts
//! them. The rows use Spin's layout (`spin_key_value(store, key, value)`), so a Spin
//! user's mental model (and file) carries over. A component reaches only the labels
//! listed in its `key_value_stores`.
//!
//! Each store has a quota of entries and bytes (keys' and values' lengths) from the
//! runtime config (`RuntimeConfig::key_value_quota`). A `set` that would take a store
//! past it is refused with `other("key-value store `<label>` is full: ...")`, naming
//! the store and the quota; Spin's `store-table-full` means too many open handles,
//! not a full store, so it is not used for this. Replacing a value with one no
//! larger, and deleting, always work, so a full store can be emptied.
//!
//! The host keeps each store's usage in memory, counted once at start and updated by
//! every write under a per-store lock: a quota check costs no scan, and two writes
//! at once cannot both squeeze into the last free entry. The state dir's lock makes
//! this host the only writer of its files.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use tokio::sync::Mutex;
use wasmtime::component::Resource;

use estore_manifest::Manifest;
use estore_runtime_config::{KeyValueStoreConfig, RuntimeConfig};
use wasmtime::component::{HasData, Linker, ResourceTable};

pub use bindings::fermyon::spin::key_value;
use bindings::spin::key_value::key_value as v3;
use key_value::{Error, Host, HostStore};
use wasmtime::component::{Accessor, FutureReader, StreamReader};

/// The interfaces' bindings, generated here so this crate alone implements them.
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../../wit",
        inline: "package estore:key-value-host; world host {
            import fermyon:spin/key-value@2.0.0;
            import spin:key-value/key-value@3.0.0;
        }",
        imports: { default: async | trappable },
        with: {
            "fermyon:spin/key-value.store": crate::OpenStore,
            "spin:key-value/key-value.store": crate::OpenStore,
        },
    });
}

/// An opened store label: the pool of its SQLite file, its quota and what it holds.
#[derive(Clone)]
pub struct KeyValueStore {
    label: Arc<str>,
    pool: SqlitePool,
    quota: Quota,
    /// Taken by every write for its whole check-and-write, so the count stays exact.
    usage: Arc<Mutex<Usage>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Quota {
    max_entries: u64,
    max_bytes: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Usage {
    entries: u64,
    bytes: u64,
}

/// Why a write was refused or failed.
enum WriteError {
    Full(String),
    Storage(sqlx::Error),
}

impl From<sqlx::Error> for WriteError {
    fn from(e: sqlx::Error) -> Self {
        WriteError::Storage(e)
    }
}

/// The interface this capability serves, and the manifest key that grants it.
pub const INTERFACE: &str = "fermyon:spin/key-value";
pub const V3_INTERFACE: &str = "spin:key-value/key-value";
pub const GRANT: &str = "key_value_stores";

/// The resource behind a guest's `store` handle.
pub struct OpenStore(KeyValueStore);

/// The stores a component was granted.
#[derive(Clone, Default)]
pub struct KeyValueAccess {
    granted: Arc<BTreeMap<String, KeyValueStore>>,
}

impl KeyValueAccess {
    pub fn is_empty(&self) -> bool {
        self.granted.is_empty()
    }
}

/// What the interface's calls reach of an instance: the stores its component was
/// granted, and the resource table its open stores live in.
pub struct KeyValueView<'a> {
    pub component: &'a str,
    pub access: &'a KeyValueAccess,
    pub table: &'a mut ResourceTable,
}

struct HasKeyValue;

impl HasData for HasKeyValue {
    type Data<'a> = KeyValueView<'a>;
}

/// Adds both versions of Spin's key-value interface to `linker`, served by the view
/// `view` gives of the embedder's state.
pub fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, view: fn(&mut T) -> KeyValueView<'_>) -> wasmtime::Result<()> {
    key_value::add_to_linker::<T, HasKeyValue>(linker, view)?;
    v3::add_to_linker::<T, HasKeyValue>(linker, view)
}

/// Every store any component of the application uses, opened once at start.
pub struct KeyValueStores {
    stores: BTreeMap<String, KeyValueStore>,
}

impl KeyValueStores {
    pub async fn open(manifest: &Manifest, runtime: &RuntimeConfig, state_dir: &Path) -> Result<KeyValueStores> {
        let mut stores = BTreeMap::new();
        for component in manifest.components.values() {
            for label in &component.key_value_stores {
                if stores.contains_key(label) {
                    continue;
                }
                let path = match runtime.key_value_store.get(label) {
                    Some(KeyValueStoreConfig::Spin { path: Some(path), .. }) => path.clone(),
                    // A section that only sets the default store's quota keeps its file.
                    Some(KeyValueStoreConfig::Spin { path: None, .. }) | None if label == "default" => {
                        state_dir.join("sqlite_key_value.db")
                    }
                    Some(KeyValueStoreConfig::Spin { path: None, .. }) => state_dir.join(format!("key_value_{label}.db")),
                    None => bail!(
                        "{}: component.{}.key_value_stores: no store `{label}`; only `default` exists \
                         unless the runtime config defines [key_value_store.{label}]",
                        manifest.path.display(),
                        component.id
                    ),
                };
                let (max_entries, max_bytes) = runtime.key_value_quota(label);
                let store = KeyValueStore::open(label, &path, Quota { max_entries, max_bytes })
                    .await
                    .with_context(|| format!("cannot open key-value store `{label}` at {}", path.display()))?;
                stores.insert(label.clone(), store);
            }
        }
        Ok(KeyValueStores { stores })
    }

    pub fn access_for(&self, labels: &[String]) -> KeyValueAccess {
        let granted = labels
            .iter()
            .filter_map(|label| Some((label.clone(), self.stores.get(label)?.clone())))
            .collect();
        KeyValueAccess { granted: Arc::new(granted) }
    }
}

impl KeyValueStore {
    async fn open(label: &str, path: &Path, quota: Quota) -> Result<KeyValueStore> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
                PRIMARY KEY (store, key))",
        )
        .execute(&pool)
        .await?;
        let (entries, bytes): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(CAST(key AS BLOB)) + LENGTH(value)), 0) FROM spin_key_value WHERE store = ?",
        )
        .bind(label)
        .fetch_one(&pool)
        .await?;
        let usage = Usage { entries: entries.unsigned_abs(), bytes: bytes.unsigned_abs() };
        Ok(KeyValueStore { label: label.into(), pool, quota, usage: Arc::new(Mutex::new(usage)) })
    }

    async fn get(&self, key: &str) -> sqlx::Result<Option<Vec<u8>>> {
        sqlx::query_scalar("SELECT value FROM spin_key_value WHERE store = ? AND key = ?")
            .bind(&*self.label)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
    }

    /// The bytes `key` takes now (its key and value), if it is there.
    async fn size_of(&self, key: &str) -> sqlx::Result<Option<u64>> {
        let size: Option<i64> =
            sqlx::query_scalar("SELECT LENGTH(value) FROM spin_key_value WHERE store = ? AND key = ?")
                .bind(&*self.label)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        Ok(size.map(|value| value.unsigned_abs() + key.len() as u64))
    }

    async fn set(&self, key: &str, value: &[u8]) -> Result<(), WriteError> {
        let mut usage = self.usage.lock().await;
        let old = self.size_of(key).await?;
        let after = usage.replaced(old, Some(key.len() as u64 + value.len() as u64));
        if let Some(full) = self.quota.refusal(&self.label, *usage, after) {
            return Err(WriteError::Full(full));
        }
        sqlx::query(
            "INSERT INTO spin_key_value (store, key, value) VALUES (?, ?, ?)
             ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
        )
        .bind(&*self.label)
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        *usage = after;
        Ok(())
    }

    async fn delete(&self, key: &str) -> sqlx::Result<()> {
        let mut usage = self.usage.lock().await;
        let old = self.size_of(key).await?;
        sqlx::query("DELETE FROM spin_key_value WHERE store = ? AND key = ?")
            .bind(&*self.label)
            .bind(key)
            .execute(&self.pool)
            .await?;
        *usage = usage.replaced(old, None);
        Ok(())
    }

    async fn keys(&self) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar("SELECT key FROM spin_key_value WHERE store = ? ORDER BY key")
            .bind(&*self.label)
            .fetch_all(&self.pool)
            .await
    }
}

impl Usage {
    /// The usage once an entry of `old` bytes (or none) holds `new` bytes (or is gone).
    fn replaced(self, old: Option<u64>, new: Option<u64>) -> Usage {
        let count = |size: Option<u64>| u64::from(size.is_some());
        Usage {
            entries: (self.entries + count(new)).saturating_sub(count(old)),
            bytes: (self.bytes + new.unwrap_or(0)).saturating_sub(old.unwrap_or(0)),
        }
    }
}

impl Quota {
    /// Why going from `now` to `after` is refused, if it is: only growth past the
    /// quota is, so a store over it (its quota lowered since) can still shrink.
    fn refusal(self, label: &str, now: Usage, after: Usage) -> Option<String> {
        if after.entries > self.max_entries && after.entries > now.entries {
            return Some(format!(
                "key-value store `{label}` is full: it holds {} entries, its quota is {} (max_entries)",
                now.entries, self.max_entries
            ));
        }
        if after.bytes > self.max_bytes && after.bytes > now.bytes {
            return Some(format!(
                "key-value store `{label}` is full: this write would take it to {} bytes, its quota is {} (max_bytes)",
                after.bytes, self.max_bytes
            ));
        }
        None
    }
}

/// Storage failures reach the guest as `other`, with the cause, and the host log.
fn storage_error(component: &str, label: &str, e: sqlx::Error) -> Error {
    tracing::error!(component, store = label, "key-value store error: {e}");
    Error::Other(format!("key-value store `{label}`: {e}"))
}

/// A full store is the component's to handle (a cache skips the write), and the
/// operator's to see: logged as a warning, answered as `other` with the quota.
fn write_error(component: &str, label: &str, e: WriteError) -> Error {
    match e {
        WriteError::Full(message) => {
            tracing::warn!(component, store = label, "{message}");
            Error::Other(message)
        }
        WriteError::Storage(e) => storage_error(component, label, e),
    }
}

impl Host for KeyValueView<'_> {}

impl KeyValueView<'_> {
    /// A handle on store `label`, if the component was granted it.
    fn open(&mut self, label: &str) -> wasmtime::Result<Result<Resource<OpenStore>, Error>> {
        let Some(store) = self.access.granted.get(label) else {
            tracing::warn!(component = %self.component, "denied key-value store `{label}`: not in key_value_stores");
            return Ok(Err(Error::AccessDenied));
        };
        Ok(Ok(self.table.push(OpenStore(store.clone()))?))
    }
}

impl HostStore for KeyValueView<'_> {
    async fn open(&mut self, label: String) -> wasmtime::Result<Result<Resource<OpenStore>, Error>> {
        KeyValueView::open(self, &label)
    }

    async fn get(&mut self, store: Resource<OpenStore>, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let store = self.table.get(&store)?.0.clone();
        Ok(store.get(&key).await.map_err(|e| storage_error(self.component, &store.label, e)))
    }

    async fn set(&mut self, store: Resource<OpenStore>, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), Error>> {
        let store = self.table.get(&store)?.0.clone();
        Ok(store.set(&key, &value).await.map_err(|e| write_error(self.component, &store.label, e)))
    }

    async fn delete(&mut self, store: Resource<OpenStore>, key: String) -> wasmtime::Result<Result<(), Error>> {
        let store = self.table.get(&store)?.0.clone();
        Ok(store.delete(&key).await.map_err(|e| storage_error(self.component, &store.label, e)))
    }

    async fn exists(&mut self, store: Resource<OpenStore>, key: String) -> wasmtime::Result<Result<bool, Error>> {
        let store = self.table.get(&store)?.0.clone();
        Ok(store.get(&key).await.map(|v| v.is_some()).map_err(|e| storage_error(self.component, &store.label, e)))
    }

    async fn get_keys(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let store = self.table.get(&store)?.0.clone();
        Ok(store.keys().await.map_err(|e| storage_error(self.component, &store.label, e)))
    }

    async fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

impl v3::Host for KeyValueView<'_> {}

impl v3::HostStore for KeyValueView<'_> {
    async fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

/// The same error, in the WASI 0.3 interface's type.
fn v3_error(e: Error) -> v3::Error {
    match e {
        Error::StoreTableFull => v3::Error::StoreTableFull,
        Error::NoSuchStore => v3::Error::NoSuchStore,
        Error::AccessDenied => v3::Error::AccessDenied,
        Error::Other(why) => v3::Error::Other(why),
    }
}

/// The store behind `handle`, and the component that holds it (for the log).
fn opened<U>(
    accessor: &Accessor<U, HasKeyValue>,
    handle: &Resource<OpenStore>,
) -> wasmtime::Result<(String, KeyValueStore)> {
    accessor.with(|mut access| {
        let view = access.get();
        Ok((view.component.to_owned(), view.table.get(handle)?.0.clone()))
    })
}

impl<U> v3::HostStoreWithStore<U> for HasKeyValue {
    async fn open(
        accessor: &Accessor<U, Self>, label: String) -> wasmtime::Result<Result<Resource<OpenStore>, v3::Error>> {
        Ok(accessor.with(|mut access| access.get().open(&label))?.map_err(v3_error))
    }

    async fn get(
        accessor: &Accessor<U, Self>,
        handle: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, v3::Error>> {
        let (component, store) = opened(accessor, &handle)?;
        Ok(store.get(&key).await.map_err(|e| v3_error(storage_error(&component, &store.label, e))))
    }

    async fn set(
        accessor: &Accessor<U, Self>,
        handle: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), v3::Error>> {
        let (component, store) = opened(accessor, &handle)?;
        Ok(store.set(&key, &value).await.map_err(|e| v3_error(write_error(&component, &store.label, e))))
    }

    async fn delete(
        accessor: &Accessor<U, Self>, handle: Resource<OpenStore>, key: String) -> wasmtime::Result<Result<(), v3::Error>> {
        let (component, store) = opened(accessor, &handle)?;
        Ok(store.delete(&key).await.map_err(|e| v3_error(storage_error(&component, &store.label, e))))
    }

    async fn exists(
        accessor: &Accessor<U, Self>, handle: Resource<OpenStore>, key: String) -> wasmtime::Result<Result<bool, v3::Error>> {
        let (component, store) = opened(accessor, &handle)?;
        Ok(store.get(&key).await.map(|v| v.is_some()).map_err(|e| v3_error(storage_error(&component, &store.label, e))))
    }

    /// The keys, read whole and then streamed: a store's keys fit in memory (its
    /// quota bounds them), and the read is one statement.
    async fn get_keys(
        accessor: &Accessor<U, Self>,
        handle: Resource<OpenStore>,
    ) -> wasmtime::Result<(StreamReader<String>, FutureReader<Result<(), v3::Error>>)> {
        let (component, store) = opened(accessor, &handle)?;
        let (keys, outcome) = match store.keys().await {
            Ok(keys) => (keys, Ok(())),
            Err(e) => (Vec::new(), Err(v3_error(storage_error(&component, &store.label, e)))),
        };
        accessor.with(|mut access| {
            let keys = StreamReader::new(&mut access, keys)?;
            let outcome = FutureReader::new(&mut access, async move { Ok::<_, wasmtime::Error>(outcome) })?;
            Ok((keys, outcome))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUOTA: Quota = Quota { max_entries: 2, max_bytes: 100 };

    #[test]
    fn usage_follows_writes_and_deletes() {
        let empty = Usage::default();
        let one = empty.replaced(None, Some(10));
        assert_eq!(one, Usage { entries: 1, bytes: 10 });
        assert_eq!(one.replaced(Some(10), Some(30)), Usage { entries: 1, bytes: 30 });
        assert_eq!(one.replaced(Some(10), None), empty);
        assert_eq!(empty.replaced(None, None), empty, "deleting what is not there");
    }

    #[test]
    fn only_growth_past_the_quota_is_refused() {
        let full = Usage { entries: 2, bytes: 50 };
        let refused = QUOTA.refusal("cache", full, full.replaced(None, Some(1)));
        assert_eq!(
            refused.as_deref(),
            Some("key-value store `cache` is full: it holds 2 entries, its quota is 2 (max_entries)")
        );
        assert_eq!(QUOTA.refusal("cache", full, full.replaced(Some(20), Some(20))), None, "a replacement");
        let big = QUOTA.refusal("cache", full, full.replaced(Some(20), Some(71)));
        assert!(big.is_some_and(|m| m.contains("101 bytes, its quota is 100 (max_bytes)")));
        // Over its quota (lowered since): shrinking still works.
        let over = Usage { entries: 5, bytes: 500 };
        assert_eq!(QUOTA.refusal("cache", over, over.replaced(Some(100), Some(10))), None);
        assert_eq!(QUOTA.refusal("cache", over, over.replaced(Some(100), None)), None);
    }
}
