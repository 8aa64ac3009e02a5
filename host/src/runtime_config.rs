//! `runtime-config.toml`: the operator's half of the configuration.
//!
//! The manifest says what an application needs (a key-value store called `cache`);
//! the runtime config says where this host gets it from (which file), and how hard the
//! host may be pushed (limits). It is Spin's runtime config file, extended with the
//! sections this platform adds; unknown sections are an error, so a typo does not
//! silently fall back to a default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

/// Defaults chosen so a request that misbehaves is stopped long before it hurts its
/// neighbours, while a normal request (a few database calls) never comes close.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_MEMORY_MB: u64 = 128;
pub const DEFAULT_MAX_INSTANCES: u32 = 1000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    #[serde(skip)]
    pub path: Option<PathBuf>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub key_value_store: BTreeMap<String, KeyValueStoreConfig>,
    #[serde(default)]
    pub sql: SqlConfig,
}

/// `[sql]`: where components' databases live, and the limits of one call.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlConfig {
    #[serde(default)]
    pub backend: SqlBackend,
    /// PostgreSQL connection URL of a role that may create roles and schemas.
    /// `ESTORE_SQL_URL` overrides it.
    pub url: Option<String>,
    /// Connections per component database.
    pub max_connections: Option<u32>,
    pub statement_timeout_ms: Option<u64>,
    /// Rows one query may return.
    pub max_rows: Option<u64>,
    /// Bytes of values one query may return.
    pub max_result_bytes: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqlBackend {
    #[default]
    Sqlite,
    Postgres,
}

/// Host-wide defaults; a component's `[component.<id>.limits]` overrides them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub request_timeout_ms: Option<u64>,
    pub max_memory_mb: Option<u64>,
    /// Instances alive at once across all components (the pooling allocator's size).
    pub max_instances: Option<u32>,
}

/// `[key_value_store.<label>]`, as in Spin. Only the embedded SQLite backend (`spin`)
/// exists so far.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, tag = "type", rename_all = "snake_case")]
pub enum KeyValueStoreConfig {
    Spin { path: Option<PathBuf> },
}

impl RuntimeConfig {
    /// Reads the file, resolving relative paths in it against the file's directory.
    pub fn load(path: &Path) -> anyhow::Result<RuntimeConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read runtime config {}", path.display()))?;
        let mut config: RuntimeConfig = toml::from_str(&text).map_err(|e| {
            let at = e
                .span()
                .and_then(|s| crate::manifest::line_col(&text, s.start))
                .map(|(l, c)| format!(":{l}:{c}"))
                .unwrap_or_default();
            anyhow::anyhow!("{}{at}: {}", path.display(), e.message())
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        for store in config.key_value_store.values_mut() {
            let KeyValueStoreConfig::Spin { path: Some(p) } = store else { continue };
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
        config.validate(path)?;
        config.path = Some(path.to_owned());
        Ok(config)
    }

    fn validate(&self, path: &Path) -> anyhow::Result<()> {
        let limits = [
            ("limits.request_timeout_ms", self.limits.request_timeout_ms),
            ("limits.max_memory_mb", self.limits.max_memory_mb),
            ("limits.max_instances", self.limits.max_instances.map(u64::from)),
            ("sql.max_connections", self.sql.max_connections.map(u64::from)),
            ("sql.statement_timeout_ms", self.sql.statement_timeout_ms),
            ("sql.max_rows", self.sql.max_rows),
            ("sql.max_result_bytes", self.sql.max_result_bytes),
        ];
        for (key, value) in limits {
            if value == Some(0) {
                bail!("{}: {key}: must be greater than zero", path.display());
            }
        }
        Ok(())
    }

    pub fn request_timeout(&self) -> Duration {
        self.limits.request_timeout_ms.map(Duration::from_millis).unwrap_or(DEFAULT_REQUEST_TIMEOUT)
    }

    pub fn max_memory_mb(&self) -> u64 {
        self.limits.max_memory_mb.unwrap_or(DEFAULT_MAX_MEMORY_MB)
    }

    pub fn max_instances(&self) -> u32 {
        self.limits.max_instances.unwrap_or(DEFAULT_MAX_INSTANCES)
    }
}
