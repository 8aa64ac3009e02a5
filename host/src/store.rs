//! The per-instance state of a component: what one request or message can touch.
//!
//! Every request gets a fresh `Store<HostState>` built from the component's
//! [`ComponentContext`], so nothing one request leaves behind (memory, open resources,
//! globals) is seen by the next. The context holds only what the manifest granted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capability::email::Mailer;
use crate::capability::key_value::KeyValueAccess;
use crate::capability::messaging::PublishGrant;
use crate::capability::operations::Operations;
use crate::capability::outbound_http::OutboundHttp;
use crate::capability::sql::{MessageInProgress, SqlAccess};
use crate::capability::variables::Variables;
use crate::capability::wasi::WasiGrant;
use crate::engine::Engine;
use crate::trace::TraceContext;
use crate::trigger::http::HttpDispatcher;
use crate::trigger::http::admission::Slots;

/// Everything the manifest and runtime config grant one component, resolved at start.
pub struct ComponentContext {
    pub id: Arc<str>,
    pub wasi: WasiGrant,
    pub variables: Arc<Variables>,
    pub key_value: KeyValueAccess,
    pub sql: SqlAccess,
    pub publish: Arc<PublishGrant>,
    /// The application's mailer, only for a component with `allow_email = true`.
    pub email: Option<Arc<Mailer>>,
    pub outbound: Arc<crate::capability::outbound_http::OutboundPolicy>,
    /// The platform's controls, only for a component with `allow_operations = true`.
    pub operations: Option<Arc<Operations>>,
    pub limits: RequestLimits,
    /// The instances it may have serving requests at once, shared by its versions.
    pub slots: Slots,
}

#[derive(Clone, Copy, Debug)]
pub struct RequestLimits {
    /// The deadline of a message, and of a request whose route sets none.
    pub timeout: Duration,
    pub max_memory_bytes: usize,
    pub max_request_body_bytes: u64,
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
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub table: ResourceTable,
    pub outbound: OutboundHttp,
    pub memory: MemoryCap,
    pub variables: Arc<Variables>,
    pub key_value: KeyValueAccess,
    pub sql: SqlAccess,
    /// Resource reps of the connections with a transaction open, oldest first.
    pub open_transactions: Vec<u32>,
    pub publish: Arc<PublishGrant>,
    /// `None`: the component may not send e-mail.
    pub email: Option<Arc<Mailer>>,
    /// `None`: the component may not run platform operations.
    pub operations: Option<Arc<Operations>>,
    /// The request or message this instance works for.
    pub trace: TraceContext,
    /// Set when the instance handles a message.
    pub message_in_progress: Option<MessageInProgress>,
    /// Counts this instance in the `instances_running` metric while it lives.
    _live: crate::metrics::LiveInstance,
}

impl HostState {
    /// A store for one request of `context`'s component, with its memory cap and a
    /// wall-clock deadline enforced through epoch interruption.
    pub fn new_store(
        engine: &Engine,
        context: &ComponentContext,
        dispatcher: Arc<HttpDispatcher>,
        work: Work,
    ) -> anyhow::Result<Store<HostState>> {
        let Work { trace, chain_depth, timeout } = work;
        let outbound =
            OutboundHttp::new(context.id.clone(), context.outbound.clone(), dispatcher, trace.clone(), chain_depth);
        let state = HostState {
            component: context.id.clone(),
            wasi: context.wasi.build_ctx(&context.id)?,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            outbound,
            memory: MemoryCap::new(context.limits.max_memory_bytes),
            variables: context.variables.clone(),
            key_value: context.key_value.clone(),
            sql: context.sql.clone(),
            open_transactions: Vec::new(),
            publish: context.publish.clone(),
            email: context.email.clone(),
            operations: context.operations.clone(),
            trace,
            message_in_progress: None,
            _live: crate::metrics::LiveInstance::new(&context.id),
        };
        let mut store = Store::new(engine.wasmtime(), state);
        store.limiter(|state| &mut state.memory);
        let deadline = Instant::now() + timeout;
        // Yield to the executor every tick so a busy guest never starves other
        // requests on the same worker thread, and trap once the deadline has passed.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        Ok(store)
    }
}

/// Why a call into an instance ended in an error rather than a result.
#[derive(Debug)]
pub enum Stopped {
    /// The deadline passed (the epoch interrupt fired).
    Timeout,
    /// The instance asked for more memory than its limit, and failed for it.
    MemoryExceeded { max_bytes: usize },
    Trap(anyhow::Error),
}

impl Stopped {
    pub fn of(error: wasmtime::Error, store: &Store<HostState>) -> Stopped {
        if store.data().memory.exceeded() {
            return Stopped::MemoryExceeded { max_bytes: store.data().memory.max_bytes() };
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => Stopped::Timeout,
            _ => Stopped::Trap(error.into()),
        }
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

/// Caps one instance's linear memory. A refused `memory.grow` makes the guest's
/// allocator fail (and a Rust guest abort), which the trigger reports as the
/// component exceeding its memory limit rather than as an unexplained trap.
pub struct MemoryCap {
    max_bytes: usize,
    exceeded: bool,
}

impl MemoryCap {
    fn new(max_bytes: usize) -> MemoryCap {
        MemoryCap { max_bytes, exceeded: false }
    }

    pub fn exceeded(&self) -> bool {
        self.exceeded
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}
