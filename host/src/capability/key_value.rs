//! Key-value stores (`fermyon:spin/key-value@2.0.0`), embedded in SQLite.
//!
//! Each store label the application uses is one SQLite file: `default` lives in the
//! state dir, others where `[key_value_store.<label>]` of the runtime config puts
//! them. The rows use Spin's layout (`spin_key_value(store, key, value)`), so a Spin
//! user's mental model (and file) carries over. A component reaches only the labels
//! listed in its `key_value_stores`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use wasmtime::component::Resource;

use crate::bindings::key_value::{Error, Host, HostStore};
use crate::manifest::Manifest;
use crate::runtime_config::{KeyValueStoreConfig, RuntimeConfig};
use crate::store::HostState;

/// An opened store label: the pool of its SQLite file.
#[derive(Clone)]
pub struct KeyValueStore {
    label: Arc<str>,
    pool: SqlitePool,
}

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
                    Some(KeyValueStoreConfig::Spin { path: Some(path) }) => path.clone(),
                    Some(KeyValueStoreConfig::Spin { path: None }) => state_dir.join(format!("key_value_{label}.db")),
                    None if label == "default" => state_dir.join("sqlite_key_value.db"),
                    None => bail!(
                        "{}: component.{}.key_value_stores: no store `{label}`; only `default` exists \
                         unless the runtime config defines [key_value_store.{label}]",
                        manifest.path.display(),
                        component.id
                    ),
                };
                let store = KeyValueStore::open(label, &path)
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
    async fn open(label: &str, path: &Path) -> Result<KeyValueStore> {
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
        Ok(KeyValueStore { label: label.into(), pool })
    }

    async fn get(&self, key: &str) -> sqlx::Result<Option<Vec<u8>>> {
        sqlx::query_scalar("SELECT value FROM spin_key_value WHERE store = ? AND key = ?")
            .bind(&*self.label)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
    }

    async fn set(&self, key: &str, value: &[u8]) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO spin_key_value (store, key, value) VALUES (?, ?, ?)
             ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
        )
        .bind(&*self.label)
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM spin_key_value WHERE store = ? AND key = ?")
            .bind(&*self.label)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn keys(&self) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar("SELECT key FROM spin_key_value WHERE store = ? ORDER BY key")
            .bind(&*self.label)
            .fetch_all(&self.pool)
            .await
    }
}

/// Storage failures reach the guest as `other`, with the cause, and the host log.
fn storage_error(component: &str, label: &str, e: sqlx::Error) -> Error {
    tracing::error!(component, store = label, "key-value store error: {e}");
    Error::Other(format!("key-value store `{label}`: {e}"))
}

impl Host for HostState {}

impl HostStore for HostState {
    async fn open(&mut self, label: String) -> wasmtime::Result<Result<Resource<OpenStore>, Error>> {
        let Some(store) = self.key_value.granted.get(&label) else {
            tracing::warn!(component = %self.component, "denied key-value store `{label}`: not in key_value_stores");
            return Ok(Err(Error::AccessDenied));
        };
        Ok(Ok(self.table.push(OpenStore(store.clone()))?))
    }

    async fn get(&mut self, store: Resource<OpenStore>, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let store = self.table.get(&store)?.0.clone();
        Ok(store.get(&key).await.map_err(|e| storage_error(&self.component, &store.label, e)))
    }

    async fn set(&mut self, store: Resource<OpenStore>, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), Error>> {
        let store = self.table.get(&store)?.0.clone();
        Ok(store.set(&key, &value).await.map_err(|e| storage_error(&self.component, &store.label, e)))
    }

    async fn delete(&mut self, store: Resource<OpenStore>, key: String) -> wasmtime::Result<Result<(), Error>> {
        let store = self.table.get(&store)?.0.clone();
        Ok(store.delete(&key).await.map_err(|e| storage_error(&self.component, &store.label, e)))
    }

    async fn exists(&mut self, store: Resource<OpenStore>, key: String) -> wasmtime::Result<Result<bool, Error>> {
        let store = self.table.get(&store)?.0.clone();
        Ok(store.get(&key).await.map(|v| v.is_some()).map_err(|e| storage_error(&self.component, &store.label, e)))
    }

    async fn get_keys(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let store = self.table.get(&store)?.0.clone();
        Ok(store.keys().await.map_err(|e| storage_error(&self.component, &store.label, e)))
    }

    async fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}
