//! Opening every capability at start, and granting each component its share.
//!
//! Each capability reads and checks its own part of the manifest and the runtime
//! config here, once, so a mistake stops `estore up` with the key at fault rather
//! than failing the first request.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use estore_bus::Bus;
use estore_email::Mailer;
use estore_engine::limits::{RequestLimits, Slots};
use estore_key_value::KeyValueStores;
use estore_manifest::{ComponentDecl, Manifest};
use estore_messaging::PublishGrant;
use estore_operations::Operations;
use estore_outbound_http::OutboundPolicy;
use estore_runtime_config::RuntimeConfig;
use estore_sql::SqlAccess;
use estore_variables::AppVariables;
use estore_wasi::WasiGrant;

use crate::ComponentContext;

/// Every capability of the application, opened.
pub struct Capabilities {
    variables: AppVariables,
    key_value: KeyValueStores,
    /// Each component's databases, or why they could not be set up.
    sql: BTreeMap<String, Result<SqlAccess, String>>,
    mailer: Option<Arc<Mailer>>,
    operations: Arc<Operations>,
    bus: Option<Bus>,
    publish_timeout: Duration,
}

impl Capabilities {
    /// Opens what the application's components use: its key-value stores, databases
    /// (set up and migrated) and mailer. `bus` is the application's event bus, if it
    /// has one; `publish_timeout` bounds a publish.
    pub async fn open(
        manifest: &Manifest,
        runtime: &RuntimeConfig,
        state_dir: &Path,
        variables: AppVariables,
        bus: Option<Bus>,
        publish_timeout: Duration,
    ) -> Result<Capabilities> {
        Ok(Capabilities {
            variables,
            key_value: KeyValueStores::open(manifest, runtime, state_dir).await?,
            sql: estore_sql::open_all(manifest, runtime, state_dir).await?,
            mailer: Mailer::for_app(manifest, runtime, state_dir)?,
            operations: Operations::new(bus.clone()),
            bus,
            publish_timeout,
        })
    }

    /// The platform's controls, connected to the admin once it exists.
    pub fn operations(&self) -> &Arc<Operations> {
        &self.operations
    }

    /// What the manifest grants `component`. An error stops the host (a grant the
    /// manifest gets wrong); `Ok(Err(why))` keeps only this component from starting
    /// (its database could not be set up).
    pub fn grant(
        &mut self,
        manifest: &Manifest,
        component: &ComponentDecl,
        state_dir: &Path,
        limits: RequestLimits,
        slots: Slots,
    ) -> Result<Result<ComponentContext, String>> {
        let key = |field: &str| format!("{}: component.{}.{field}", manifest.path.display(), component.id);
        let hosts = component
            .allowed_outbound_hosts
            .iter()
            .map(|entry| self.variables.render(entry))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow!("{}: {e}", key("allowed_outbound_hosts")))?;
        let outbound = OutboundPolicy::new(&hosts).map_err(|e| anyhow!("{}: {e}", key("allowed_outbound_hosts")))?;
        let wasi = WasiGrant::from_manifest(component, &manifest.dir, state_dir).with_context(|| key("files"))?;
        let variables = self.variables.for_component(manifest, component)?;
        let sql = match self.sql.remove(&component.id).unwrap_or_else(|| Ok(Default::default())) {
            Ok(access) => access,
            Err(why) => return Ok(Err(why)),
        };
        let publish = PublishGrant {
            allowed_topics: component.allowed_publish_topics.iter().cloned().collect(),
            bus: self.bus.clone(),
            timeout: self.publish_timeout,
        };
        // Only a component that may publish can have staged anything to relay.
        if let Some(bus) = self.bus.as_ref().filter(|_| !publish.allowed_topics.is_empty()) {
            sql.start_relays(bus, self.publish_timeout);
        }
        Ok(Ok(ComponentContext {
            id: component.id.as_str().into(),
            limits,
            slots,
            wasi,
            outbound: Arc::new(outbound),
            variables: Arc::new(variables),
            key_value: self.key_value.access_for(&component.key_value_stores),
            sql,
            publish: Arc::new(publish),
            email: self.mailer.clone().filter(|_| component.allow_email),
            operations: component.allow_operations.then(|| self.operations.clone()),
        }))
    }
}
