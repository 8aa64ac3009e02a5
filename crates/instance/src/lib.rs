//! One instance of a component: the capabilities composed into its state, the linker
//! that serves them, and the registry of the versions that serve.
//!
//! This crate is where the host lists its capabilities, each once:
//! - [`Capabilities`] opens each at start, from the manifest and the runtime config;
//! - [`ComponentContext`] holds what each grants one component;
//! - [`HostState`] holds each one's per-instance state;
//! - [`linker`] adds each one's interface, served by a view of its own state.
//!
//! Every request gets a fresh `Store<HostState>` built from the component's
//! [`ComponentContext`], so nothing one request leaves behind (memory, open resources,
//! globals) is seen by the next. The context holds only what the manifest granted.

mod capabilities;
pub mod exports;
mod grants;
mod linker;
pub mod registry;

use std::sync::Arc;
use std::time::Duration;

use estore_email::Mailer;
use estore_engine::Engine;
use estore_engine::limits::{MemoryCap, RequestLimits, Slots, set_deadline};
use estore_engine::trace::TraceContext;
use estore_key_value::KeyValueAccess;
use estore_messaging::PublishGrant;
use estore_operations::Operations;
use estore_outbound_http::{Chaining, OutboundHttp, OutboundPolicy};
use estore_sql::{SqlAccess, SqlState};
use estore_variables::Variables;
use estore_wasi::WasiGrant;
use wasmtime::Store;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

pub use capabilities::Capabilities;
pub use linker::linker;

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

/// What one instance is made for, beyond its component's grants.
pub struct Work {
    /// The request or message this instance works for.
    pub trace: TraceContext,
    /// How many chained calls led to it: 0 for a request from the network or a
    /// message. Counted by the host, whatever headers the callers sent.
    pub chain_depth: u32,
    /// Its wall-clock deadline: its route's, else its component's.
    pub timeout: Duration,
}

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
        engine: &Engine,
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
            sql: SqlState::new(context.sql.clone()),
            publish: context.publish.clone(),
            email: context.email.clone(),
            operations: context.operations.clone(),
            _live: estore_engine::metrics::LiveInstance::new(id),
        };
        let mut store = Store::new(engine.wasmtime(), state);
        store.limiter(|state| &mut state.memory);
        set_deadline(&mut store, timeout);
        Ok(store)
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
