//! The component registry: every component of the application, compiled, linked and
//! pre-instantiated, with the grants it runs under, and the version of each that
//! serves now.
//!
//! Linking happens here, once per version, so a component whose imports the host
//! cannot satisfy or whose exports do not fit its trigger fails at start (or its
//! deploy is refused) with its id in the message, and a request only pays for
//! instantiation.
//!
//! A deploy swaps a component's version whole: a request or message takes the
//! version serving when it starts ([`Registry::get`]) and keeps it to the end, so
//! what runs when the swap happens finishes on the old version and everything after
//! runs on the new one. Nothing else is paused.

use std::any::Any;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use anyhow::{Context, Result};
use wasmtime::component::Linker;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p3::bindings::ServicePre;

use crate::exports::message_trigger::MessageTriggerPre;
use estore_engine::Engine;
use crate::{ComponentContext, HostState};

/// One version of a component, ready to serve.
pub struct LoadedComponent {
    /// What the manifest grants the component: the same for every version.
    pub context: Arc<ComponentContext>,
    /// Pre-instantiated for the HTTP trigger, when an HTTP trigger names the
    /// component: a WASI 0.2 one (`wasi:http/incoming-handler@0.2`, a fresh instance
    /// per request) in `http`, a WASI 0.3 one (`wasi:http/handler@0.3.0`, instances
    /// reused) in `http_p3`. The component's exports tell which.
    pub http: Option<ProxyPre<HostState>>,
    pub http_p3: Option<ServicePre<HostState>>,
    /// What the HTTP trigger keeps for this version (its reused WASI 0.3 instances),
    /// made on the first request and dropped with the version.
    pub trigger_state: OnceLock<Box<dyn Any + Send + Sync>>,
    /// Pre-instantiated for the Kafka trigger (`estore:platform/message-handler`),
    /// when a Kafka trigger names the component.
    pub messages: Option<MessageTriggerPre<HostState>>,
    /// The compiled component (what it imports and exports).
    pub component: wasmtime::component::Component,
    /// The SHA-256 of the wasm file this version was compiled from.
    pub digest: String,
    /// The wasm file it was loaded from.
    pub file: std::path::PathBuf,
    /// Counts over every version of the component.
    pub served: Arc<Served>,
}

/// Which exports a component's triggers call.
#[derive(Debug, Clone, Copy, Default)]
pub struct TriggeredBy {
    pub http: bool,
    pub kafka: bool,
}

/// How much a component has served since the host started, over all its versions.
#[derive(Default)]
pub struct Served {
    pub requests: AtomicU64,
    pub messages: AtomicU64,
}

/// A running component: the version serving now, and what stays across versions.
struct Slot {
    current: RwLock<Arc<LoadedComponent>>,
    triggered_by: TriggeredBy,
}

pub struct Registry {
    engine: Engine,
    linker: Linker<HostState>,
    components: BTreeMap<String, Slot>,
    /// Components that could not start, with the reason: their requests get it as a
    /// 503 while every other component serves.
    failed: BTreeMap<String, String>,
}

impl Registry {
    pub fn new(engine: Engine, linker: Linker<HostState>) -> Registry {
        Registry { engine, linker, components: BTreeMap::new(), failed: BTreeMap::new() }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Loads the component's first version at start.
    pub fn load(&mut self, context: ComponentContext, source: &Path, triggered_by: TriggeredBy) -> Result<()> {
        let id = context.id.to_string();
        let loaded = self.prepare(Arc::new(context), Arc::default(), source, triggered_by)?;
        let slot = Slot { current: RwLock::new(Arc::new(loaded)), triggered_by };
        self.components.insert(id, slot);
        Ok(())
    }

    /// Compiles (or fetches from the compiled cache) and links a version of a
    /// component, checking it exports what its triggers call.
    fn prepare(
        &self,
        context: Arc<ComponentContext>,
        served: Arc<Served>,
        source: &Path,
        triggered_by: TriggeredBy,
    ) -> Result<LoadedComponent> {
        let id = context.id.to_string();
        let loaded = self.engine.load(source).with_context(|| format!("component `{id}`"))?;
        refuse_wasi_release_candidates(&loaded.component, self.engine.wasmtime())
            .with_context(|| format!("component `{id}`"))?;
        let pre = self
            .linker
            .instantiate_pre(&loaded.component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("component `{id}` imports something this host does not provide"))?;
        let wasi_p3 = loaded
            .component
            .component_type()
            .exports(self.engine.wasmtime())
            .any(|(name, _)| name.starts_with(P3_HANDLER));
        let (http, http_p3) = match (triggered_by.http, wasi_p3) {
            (false, _) => (None, None),
            (true, true) => {
                let pre = ServicePre::new(pre.clone())
                    .map_err(anyhow::Error::from)
                    .with_context(|| format!("component `{id}` exports {P3_HANDLER} of another shape than this host's"))?;
                (None, Some(pre))
            }
            (true, false) => {
                let pre = ProxyPre::new(pre.clone()).map_err(anyhow::Error::from).with_context(|| {
                    format!(
                        "component `{id}` is routed HTTP requests but exports neither \
                         wasi:http/incoming-handler@0.2 nor {P3_HANDLER}"
                    )
                })?;
                (Some(pre), None)
            }
        };
        let messages = triggered_by
            .kafka
            .then(|| {
                MessageTriggerPre::new(pre).map_err(anyhow::Error::from).with_context(|| {
                    format!(
                        "component `{id}` is named by a [[trigger.kafka]] but does not export \
                         estore:platform/message-handler@0.1.0"
                    )
                })
            })
            .transpose()?;
        let how = if loaded.cached { "from the compiled cache" } else { "compiled" };
        tracing::info!(component = %id, digest = &loaded.digest[..12], "loaded {} ({how})", source.display());
        Ok(LoadedComponent {
            context,
            http,
            http_p3,
            trigger_state: OnceLock::new(),
            messages,
            component: loaded.component,
            digest: loaded.digest,
            file: source.to_owned(),
            served,
        })
    }

    /// Loads `source` as the next version of running component `id`, without
    /// switching to it: the caller checks more (migrations) before [`Registry::switch`].
    pub fn prepare_version(&self, id: &str, source: &Path) -> Result<LoadedComponent> {
        let slot = self.components.get(id).with_context(|| format!("no running component `{id}`"))?;
        let current = slot.current.read().unwrap_or_else(|e| e.into_inner()).clone();
        self.prepare(current.context.clone(), current.served.clone(), source, slot.triggered_by)
    }

    /// Makes `version` the one that serves component `id` from now on; returns the
    /// one it replaces. Requests and messages running on the old one finish on it.
    pub fn switch(&self, id: &str, version: LoadedComponent) -> Option<Arc<LoadedComponent>> {
        let slot = self.components.get(id)?;
        let mut current = slot.current.write().unwrap_or_else(|e| e.into_inner());
        Some(std::mem::replace(&mut *current, Arc::new(version)))
    }

    /// The version of `id` serving now.
    pub fn get(&self, id: &str) -> Option<Arc<LoadedComponent>> {
        self.components.get(id).map(|slot| slot.current.read().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// The ids of the running components.
    pub fn running(&self) -> impl Iterator<Item = &str> {
        self.components.keys().map(String::as_str)
    }

    pub fn mark_failed(&mut self, id: &str, reason: String) {
        tracing::error!(component = %id, "component not started: {reason}");
        self.failed.insert(id.to_owned(), reason);
    }

    pub fn failure(&self, id: &str) -> Option<&str> {
        self.failed.get(id).map(String::as_str)
    }
}

/// The export of a WASI 0.3 HTTP component.
const P3_HANDLER: &str = "wasi:http/handler@0.3.0";

/// A component built against a release candidate of WASI 0.3 (spin-sdk 6.x targets
/// `0.3.0-rc-2026-03-15`) cannot link here: this host's wasmtime serves WASI 0.3.0
/// only, and a release candidate's interfaces are not the release's. Say so, and
/// what to do, rather than name the first import that fails to link.
fn refuse_wasi_release_candidates(component: &wasmtime::component::Component, engine: &wasmtime::Engine) -> Result<()> {
    let ty = component.component_type();
    let names = ty.imports(engine).map(|(name, _)| name).chain(ty.exports(engine).map(|(name, _)| name));
    for name in names {
        if let Some((interface, version)) = name.split_once('@')
            && interface.starts_with("wasi:")
            && version.starts_with("0.3.0-")
        {
            anyhow::bail!(
                "it uses {name}, a release candidate of WASI 0.3; this host serves WASI 0.3.0 \
                 (spin-sdk 7.x) and WASI 0.2 (spin-sdk 5.x and earlier): rebuild it with spin-sdk 7"
            );
        }
    }
    Ok(())
}

impl Served {
    pub fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_message(&self) {
        self.messages.fetch_add(1, Ordering::Relaxed);
    }
}
