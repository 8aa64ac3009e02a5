//! The wasmtime engine, and turning a `.wasm` file into a ready-to-instantiate component.
//!
//! Compiling a component with Cranelift takes seconds; instantiating a compiled one
//! takes microseconds. So compilation happens once per (engine configuration, wasm
//! bytes) pair and the result is kept on disk, and every request gets a fresh instance
//! of the already compiled code.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances. Deadlines are counted in ticks, so this is the
/// resolution of request timeouts and of how often a busy guest yields to others.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

pub struct EngineSettings {
    /// Upper bound of any one component's linear memory, in bytes: the pool reserves
    /// this much address space per memory slot.
    pub max_memory_bytes: u64,
    pub max_instances: u32,
    pub cache_dir: PathBuf,
}

/// A wasmtime engine with its epoch ticker and compiled-component cache.
pub struct Engine {
    inner: wasmtime::Engine,
    cache_dir: PathBuf,
    ticker_stop: Arc<AtomicBool>,
}

/// A compiled component and the digest of the file it came from (its version).
pub struct LoadedWasm {
    pub component: Component,
    pub digest: String,
    /// Whether it came from the compiled cache rather than a fresh compilation.
    pub cached: bool,
}

impl Engine {
    /// Builds the engine with a pooling allocator, or with on-demand allocation where
    /// the pool's address space cannot be reserved (e.g. under a `ulimit -v`).
    pub fn new(settings: &EngineSettings) -> Result<Engine> {
        let inner = match wasmtime::Engine::new(&base_config(Some(settings))) {
            Ok(engine) => engine,
            Err(pool_error) => {
                tracing::warn!(
                    "pooling allocator unavailable ({pool_error:#}); falling back to on-demand instance allocation"
                );
                wasmtime::Engine::new(&base_config(None)).map_err(anyhow::Error::from).context("cannot create the wasm engine")?
            }
        };
        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(inner.clone(), ticker_stop.clone()).context("cannot start the epoch ticker")?;
        let cache_dir = settings.cache_dir.join(format!("{:016x}", compatibility_hash(&inner)));
        Ok(Engine { inner, cache_dir, ticker_stop })
    }

    pub fn wasmtime(&self) -> &wasmtime::Engine {
        &self.inner
    }

    /// Loads a component from a file: from the compiled cache when this exact file was
    /// compiled by a compatible engine before, otherwise by compiling it (adapting a
    /// WASI preview-1 core module into a component first) and caching the result.
    pub fn load(&self, path: &Path) -> Result<LoadedWasm> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let digest = hex::encode(Sha256::digest(&bytes));
        let cached = self.cache_dir.join(format!("{digest}.cwasm"));
        if cached.exists() {
            // SAFETY: the file was written by `Component::serialize` of an engine with
            // the same compatibility hash (it is part of the directory name), into a
            // directory only this host writes to.
            match unsafe { Component::deserialize_file(&self.inner, &cached) } {
                Ok(component) => return Ok(LoadedWasm { component, digest, cached: true }),
                Err(e) => tracing::warn!(
                    "ignoring unusable compiled cache entry {}: {e:#}",
                    cached.display()
                ),
            }
        }
        let component_bytes = if is_core_module(&bytes) {
            adapt_preview1_module(&bytes)
                .with_context(|| format!("cannot adapt WASI preview-1 module {}", path.display()))?
        } else {
            bytes
        };
        let component = Component::new(&self.inner, &component_bytes)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("cannot compile {}", path.display()))?;
        if let Err(e) = self.store_in_cache(&component, &cached) {
            tracing::warn!("cannot cache compiled {}: {e:#}", path.display());
        }
        Ok(LoadedWasm { component, digest, cached: false })
    }

    /// Writes through a temporary file and a rename, so a crash or a concurrent host
    /// never leaves a truncated entry behind for the next start to load.
    fn store_in_cache(&self, component: &Component, cached: &Path) -> Result<()> {
        std::fs::create_dir_all(&self.cache_dir)?;
        let serialized = component.serialize()?;
        let tmp = tempfile_beside(cached);
        std::fs::write(&tmp, serialized)?;
        std::fs::rename(&tmp, cached)?;
        Ok(())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

fn base_config(pool: Option<&EngineSettings>) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // WASI 0.3: async functions, streams and futures, and concurrent calls into one
    // instance.
    config.wasm_component_model_async(true);
    config.epoch_interruption(true);
    if let Some(settings) = pool {
        let mut pooling = PoolingAllocationConfig::default();
        let instances = settings.max_instances;
        pooling
            .total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(8))
            .total_memories(instances.saturating_mul(2))
            .total_tables(instances.saturating_mul(8))
            .total_stacks(instances)
            .max_memory_size(usize::try_from(settings.max_memory_bytes).unwrap_or(usize::MAX));
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    }
    config
}

fn compatibility_hash(engine: &wasmtime::Engine) -> u64 {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.finish()
}

fn spawn_epoch_ticker(engine: wasmtime::Engine, stop: Arc<AtomicBool>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })
        .map(drop)
}

/// A core module has binary version 1; a component has a different version/layer.
fn is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[0..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

/// Wraps a `wasm32-wasip1` core module into a component with the WASI preview-1
/// adapter, as Spin does for modules built by its templates. The module carries the
/// component type of its exports (wit-bindgen's custom section), which the encoder
/// uses to lift them.
fn adapt_preview1_module(module: &[u8]) -> Result<Vec<u8>> {
    wit_component::ComponentEncoder::default()
        .module(module)?
        .adapter(
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?
        .validate(true)
        .encode()
}

fn tempfile_beside(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{}.tmp", std::process::id()));
    PathBuf::from(name)
}
