//! The capabilities, listed: opening each at start, granting each component its
//! share, each one's per-instance state, its interface in the linker, and its grant in
//! the deploy check. Adding a capability adds one line to each list here (see
//! CONTRIBUTING.md).
//!
//! Each capability reads and checks its own part of the manifest and the runtime
//! config when opened, once, so a mistake stops `estore up` with the key at fault
//! rather than failing the first request.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use estore_bus::Bus;
use estore_email::{Mailer, MailerView};
use estore_engine::limits::{MemoryCap, RequestLimits, Slots, set_deadline};
use estore_engine::trace::TraceContext;
use estore_key_value::{KeyValueAccess, KeyValueStores, KeyValueView};
use estore_manifest::{ComponentDecl, Manifest};
use estore_messaging::{PublishGrant, PublisherView};
use estore_operations::{Operations, OperationsView};
use estore_postgres::PostgresView;
use estore_outbound_http::{Chaining, OutboundHttp, OutboundPolicy};
use estore_runtime_config::RuntimeConfig;
use estore_sql::{SqlAccess, SqlState, SqlView};
use estore_variables::{AppVariables, Variables, VariablesView};
use estore_wasi::WasiGrant;
use wasmtime::Store;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::Work;

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

/// Everything the manifest and runtime config grant one component, resolved at start.
pub struct ComponentContext {
    pub id: Arc<str>,
    pub limits: RequestLimits,
    /// The instances it may have serving requests at once, shared by its versions.
    pub slots: Slots,
    pub wasi: WasiGrant,
    pub outbound: Arc<OutboundPolicy>,
    pub variables: Arc<Variables>,
    pub key_value: KeyValueAccess,
    pub sql: SqlAccess,
    pub publish: Arc<PublishGrant>,
    /// The application's mailer, only for a component with `allow_email = true`.
    pub email: Option<Arc<Mailer>>,
    /// The platform's controls, only for a component with `allow_operations = true`.
    pub operations: Option<Arc<Operations>>,
}

/// One instance's state: each capability's share of it, and what they all borrow
/// (the component's id, the resource table, the work it does).
pub struct HostState {
    pub component: Arc<str>,
    pub table: ResourceTable,
    pub memory: MemoryCap,
    /// The request or message this instance works for.
    pub trace: TraceContext,
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub outbound: OutboundHttp,
    pub variables: Arc<Variables>,
    pub key_value: KeyValueAccess,
    pub sql: SqlState,
    pub publish: Arc<PublishGrant>,
    /// `None`: the component may not send e-mail.
    pub email: Option<Arc<Mailer>>,
    /// `None`: the component may not run platform operations.
    pub operations: Option<Arc<Operations>>,
    /// Counts this instance in the `instances_running` metric while it lives.
    _live: estore_engine::metrics::LiveInstance,
}

impl HostState {
    /// A store for one request of `context`'s component, with its memory cap and a
    /// wall-clock deadline; `chaining` serves its requests to other components.
    pub fn new_store(
        engine: &wasmtime::Engine,
        context: &ComponentContext,
        chaining: Arc<dyn Chaining>,
        work: Work,
    ) -> anyhow::Result<Store<HostState>> {
        let Work { trace, chain_depth, timeout } = work;
        let id = &context.id;
        let state = HostState {
            component: id.clone(),
            table: ResourceTable::new(),
            memory: MemoryCap::new(context.limits.max_memory_bytes),
            wasi: context.wasi.build_ctx(id)?,
            http: WasiHttpCtx::new(),
            outbound: OutboundHttp::new(id.clone(), context.outbound.clone(), chaining, trace.clone(), chain_depth),
            trace,
            variables: context.variables.clone(),
            key_value: context.key_value.clone(),
            sql: SqlState::new(context.sql.clone(), Some(Instant::now() + timeout)),
            publish: context.publish.clone(),
            email: context.email.clone(),
            operations: context.operations.clone(),
            _live: estore_engine::metrics::LiveInstance::new(id),
        };
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.memory);
        set_deadline(&mut store, timeout);
        Ok(store)
    }
}

impl HostState {
    /// Points a reused instance at the next request it serves: what it publishes
    /// and calls from now on continues that request's trace and chain.
    pub fn continue_work(&mut self, trace: TraceContext, chain_depth: u32) {
        self.outbound.continue_work(trace.clone(), chain_depth);
        self.trace = trace;
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.outbound }
    }
}

/// Every interface the host implements, in one linker shared by all components.
/// Linking is not the grant: a component may import key-value and still be refused
/// every store it was not given.
pub fn linker(engine: &wasmtime::Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::<HostState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    // WASI 0.3 beside 0.2: their interfaces' versions differ, so one linker serves both.
    wasmtime_wasi::p3::add_to_linker(&mut linker)?;
    wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
    estore_variables::add_to_linker(&mut linker, |s| VariablesView { component: &s.component, variables: &s.variables })?;
    estore_key_value::add_to_linker(&mut linker, |s| KeyValueView {
        component: &s.component,
        access: &s.key_value,
        table: &mut s.table,
    })?;
    estore_sql::add_to_linker(&mut linker, |s| SqlView { component: &s.component, state: &mut s.sql, table: &mut s.table })?;
    estore_messaging::add_to_linker(&mut linker, |s| PublisherView {
        component: &s.component,
        grant: &s.publish,
        trace: &s.trace,
        sql: SqlView { component: &s.component, state: &mut s.sql, table: &mut s.table },
    })?;
    estore_email::add_to_linker(&mut linker, |s| MailerView { component: &s.component, mailer: s.email.as_deref() })?;
    estore_postgres::add_to_linker(&mut linker, |s| PostgresView {
        component: &s.component,
        policy: s.outbound.policy(),
        table: &mut s.table,
    })?;
    estore_operations::add_to_linker(&mut linker, |s| OperationsView {
        component: &s.component,
        operations: s.operations.as_ref(),
    })?;
    Ok(linker)
}

// Whether a new version's imports fit what the manifest grants its component. The
// linker provides every interface the host has, so a version that imports one its
// component is not granted would only fail later, on a request; a deploy refuses it
// at once, naming the grant it lacks.
impl ComponentContext {
    /// The grants `component` would need and this context (what the manifest grants
    /// its component) lacks, in words.
    pub fn missing_grants(&self, component: &Component, engine: &wasmtime::Engine) -> Vec<String> {
        // Each capability's interface, whether this component has its grant, and the
        // manifest key that gives it.
        let capabilities = [
            (estore_sql::INTERFACE, self.sql.is_granted(), estore_sql::GRANT),
            (estore_sql::spin_sqlite::INTERFACE, self.sql.is_spin_sqlite_granted(), estore_sql::spin_sqlite::GRANT),
            (estore_messaging::INTERFACE, !self.publish.allowed_topics.is_empty(), estore_messaging::GRANT),
            (estore_email::INTERFACE, self.email.is_some(), estore_email::GRANT),
            (estore_key_value::INTERFACE, !self.key_value.is_empty(), estore_key_value::GRANT),
            (estore_key_value::V3_INTERFACE, !self.key_value.is_empty(), estore_key_value::GRANT),
        ];
        component
            .component_type()
            .imports(engine)
            .filter_map(|(name, _)| {
                let interface = name.split('@').next().unwrap_or(name);
                let (_, _, grant) = capabilities.iter().find(|(i, granted, _)| *i == interface && !granted)?;
                Some(format!("it imports {interface}, but the manifest gives component `{}` no {grant}", self.id))
            })
            .collect()
    }
}
