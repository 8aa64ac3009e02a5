//! The component registry: every component of the application, compiled, linked and
//! pre-instantiated, with the grants it runs under.
//!
//! Linking happens here, once, so a component whose imports the host cannot satisfy
//! or whose exports do not fit its trigger fails at start with its id in the message,
//! and a request only pays for instantiation.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use wasmtime::component::Linker;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::bindings::message_trigger::MessageTriggerPre;
use crate::engine::Engine;
use crate::store::{ComponentContext, HostState};

/// One component, ready to serve.
pub struct LoadedComponent {
    pub context: ComponentContext,
    /// Pre-instantiated for the HTTP trigger (`wasi:http/incoming-handler`), when an
    /// HTTP trigger names the component.
    pub http: Option<ProxyPre<HostState>>,
    /// Pre-instantiated for the Kafka trigger (`estore:platform/message-handler`),
    /// when a Kafka trigger names the component.
    pub messages: Option<MessageTriggerPre<HostState>>,
}

/// Which exports a component's triggers call.
#[derive(Debug, Clone, Copy, Default)]
pub struct TriggeredBy {
    pub http: bool,
    pub kafka: bool,
}

pub struct Registry {
    engine: Engine,
    components: BTreeMap<String, Arc<LoadedComponent>>,
    /// Components that could not start, with the reason: their requests get it as a
    /// 503 while every other component serves.
    failed: BTreeMap<String, String>,
}

impl Registry {
    pub fn new(engine: Engine) -> Registry {
        Registry { engine, components: BTreeMap::new(), failed: BTreeMap::new() }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles (or fetches from the compiled cache) and links one component, checking
    /// it exports what its triggers call.
    pub fn load(
        &mut self,
        linker: &Linker<HostState>,
        context: ComponentContext,
        source: &Path,
        triggered_by: TriggeredBy,
    ) -> Result<()> {
        let id = context.id.to_string();
        let loaded = self.engine.load(source).with_context(|| format!("component `{id}`"))?;
        let pre = linker
            .instantiate_pre(&loaded.component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("component `{id}` imports something this host does not provide"))?;
        let http = triggered_by
            .http
            .then(|| {
                ProxyPre::new(pre.clone()).map_err(anyhow::Error::from).with_context(|| {
                    format!("component `{id}` is routed HTTP requests but does not export wasi:http/incoming-handler@0.2")
                })
            })
            .transpose()?;
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
        let component = LoadedComponent { context, http, messages };
        self.components.insert(id, Arc::new(component));
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<Arc<LoadedComponent>> {
        self.components.get(id).cloned()
    }

    pub fn mark_failed(&mut self, id: &str, reason: String) {
        tracing::error!(component = %id, "component not started: {reason}");
        self.failed.insert(id.to_owned(), reason);
    }

    pub fn failure(&self, id: &str) -> Option<&str> {
        self.failed.get(id).map(String::as_str)
    }
}
