//! WASI 0.3 components (`wasi:http/handler@0.3.0`): instances reused across requests
//! and serving several at once, as Spin 4 and `wasmtime serve` do.
//!
//! wasmtime-wasi-http's [`ProxyHandler`] runs the instances; this module decides what
//! an instance is made of and when it ends:
//! - an instance is built like any other (the component's grants, memory cap and
//!   capabilities) and holds one of its component's slots while it lives, so
//!   `max_instances_per_component` still bounds a component's instances; a request
//!   that finds none free within the slot wait gets 503 with `Retry-After`;
//! - it takes requests while under `max_instance_concurrent_reuse_count` at once and
//!   `max_instance_reuse_count` in all, and is dropped after `idle_instance_timeout`
//!   with nothing to do;
//! - each request has its own deadline: one that passes answers that request 504 and
//!   the instance takes no more. A guest busy past its deadline, a trap, or a blown
//!   memory cap drops that instance only; the requests it was serving get 504 or 500
//!   with the cause, and every other instance serves on;
//! - a version replaced by a deploy keeps its instances until their requests end,
//!   then drops them at once instead of waiting out their idle time.
//!
//! A request from the network (chain depth 0) may share an instance with others; a
//! chained request gets an instance of its own, so the depth the host counts for its
//! outbound calls is exactly its own. The calls out of a shared instance carry the
//! trace of the request it started last.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use wasmtime::StoreContextMut;
use wasmtime::component::TaskGroupId;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::handler::{
    ExpirationError, HandlerState, Instance, InstantiationError, ProxyHandler, ProxyPre, ShouldAccept, TrapOrPanicError,
    WorkerExpiration, WorkerState, WorkerStatus,
};

use estore_engine::Engine;
use estore_engine::limits::{Busy, InstanceReuse, Stopped, yield_every_tick};
use estore_engine::trace::TraceContext;
use estore_instance::registry::LoadedComponent;
use estore_instance::{ComponentContext, HostState, Work};
use estore_outbound_http::Chaining;

use crate::Failure;

/// How long past its deadline a reused instance may stay busy before the host drops
/// it: the deadline itself answers the request; this catches a guest that keeps its
/// instance from noticing (a long call into the host).
const DEADLINE_GRACE: Duration = Duration::from_secs(1);

/// The reused instances of one version of a WASI 0.3 component, kept with the
/// version ([`LoadedComponent::trigger_state`]) and retired when it is dropped.
pub struct VersionInstances {
    /// Requests from the network, several to an instance.
    shared: ProxyHandler<Pool>,
    /// Chained requests, one to an instance.
    own: ProxyHandler<Pool>,
    retired: CancellationToken,
}

impl Drop for VersionInstances {
    fn drop(&mut self) {
        self.retired.cancel();
    }
}

/// One request, as the instance serving it sees it.
pub struct RequestWork {
    trace: TraceContext,
    chain_depth: u32,
    timeout: Duration,
    ended: Arc<Ended>,
}

/// Why the instance ended under a request, when it did. The request hears that its
/// instance is gone a moment before the host has looked at why, so it waits for this.
#[derive(Default)]
struct Ended {
    why: Mutex<Option<Failure>>,
    told: tokio::sync::Notify,
}

/// How long a request whose instance ended waits to be told why.
const WHY_WAIT: Duration = Duration::from_secs(1);

/// What builds the instances of one pool.
pub struct Pool {
    pre: ProxyPre<HostState>,
    context: Arc<ComponentContext>,
    engine: wasmtime::Engine,
    chaining: Weak<dyn Chaining>,
    reuse: InstanceReuse,
    retired: CancellationToken,
}

impl VersionInstances {
    /// The instances of `component`'s version, made on its first request.
    pub fn of<'a>(
        component: &'a LoadedComponent,
        engine: &Engine,
        chaining: Weak<dyn Chaining>,
    ) -> Option<&'a VersionInstances> {
        let pre = component.http_p3.clone()?;
        let state: &Box<dyn Any + Send + Sync> = component.trigger_state.get_or_init(|| {
            let retired = CancellationToken::new();
            let pool = |reuse| Pool {
                pre: ProxyPre::P3(pre.clone()),
                context: component.context.clone(),
                engine: engine.wasmtime().clone(),
                chaining: chaining.clone(),
                reuse,
                retired: retired.clone(),
            };
            let reuse = component.context.limits.reuse;
            let alone = InstanceReuse { max_requests: 1, max_concurrent: 1, ..reuse };
            Box::new(VersionInstances {
                shared: ProxyHandler::new(pool(reuse)),
                own: ProxyHandler::new(pool(alone)),
                retired,
            })
        });
        state.downcast_ref()
    }

    /// Serves `request` on one of this version's instances.
    pub async fn handle(
        &self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        work: Work,
    ) -> Result<http::Response<wasmtime_wasi_http::WasiBody>, Failure> {
        let Work { trace, chain_depth, timeout } = work;
        let ended = Arc::new(Ended::default());
        let data = RequestWork { trace, chain_depth, timeout, ended: ended.clone() };
        let handler = if chain_depth == 0 { &self.shared } else { &self.own };
        match handler.handle(data, request).await {
            Ok(response) => Ok(response),
            Err(error) => Err(classify(error, &ended).await),
        }
    }
}

/// Why a request on a reused instance got no response.
async fn classify(error: wasmtime::Error, ended: &Ended) -> Failure {
    if error.is::<ExpirationError>() {
        return Failure::Timeout;
    }
    if let Some(failed) = error.downcast_ref::<InstantiationError<RequestWork>>() {
        return match failed.error.downcast_ref::<Busy>() {
            Some(busy) => Failure::Busy(*busy),
            None => Failure::Instantiate(anyhow::anyhow!("{:?}", failed.error)),
        };
    }
    if error.is::<TrapOrPanicError>() {
        let _ = tokio::time::timeout(WHY_WAIT, ended.told.notified()).await;
        if let Some(why) = ended.why.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return why;
        }
    }
    Failure::Trap(error.into())
}

impl HandlerState for Pool {
    type StoreData = HostState;
    type WorkerExpiration = Expiration;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<HostState, Expiration, Worker>> {
        let id = &self.context.id;
        let slot = self.context.slots.take(id).await?;
        let chaining = self.chaining.upgrade().ok_or_else(|| wasmtime::format_err!("the HTTP trigger has stopped"))?;
        // The trace and depth are each request's, set as it starts; the deadlines
        // are each request's too.
        let work = Work { trace: TraceContext::continue_from(None, None), chain_depth: 0, timeout: self.context.limits.timeout };
        let mut store =
            HostState::new_store(&self.engine, &self.context, chaining, work).map_err(wasmtime::Error::from_anyhow)?;
        yield_every_tick(&mut store);
        // Its requests have deadlines of their own, which the worker keeps.
        store.data_mut().sql.deadline = None;
        let proxy = self.pre.instantiate_async(&mut store).await?;
        let busy = Arc::new(AtomicBool::new(false));
        Ok(Instance {
            store,
            proxy,
            view: <HostState as WasiHttpView>::http,
            expiration: Expiration {
                reuse: self.reuse,
                timeout: self.context.limits.timeout,
                retired: Box::pin(self.retired.clone().cancelled_owned()),
                timer: Box::pin(tokio::time::sleep(self.reuse.idle_timeout)),
                busy: busy.clone(),
            },
            state: Worker {
                reuse: self.reuse,
                serving: Mutex::new(Vec::new()),
                busy,
                _slot: slot,
            },
        })
    }
}

/// When an instance is done: idle too long, busy past every deadline, or its version
/// retired while it had nothing to do.
pub struct Expiration {
    reuse: InstanceReuse,
    /// The component's deadline: a request's own may be shorter, never longer.
    timeout: Duration,
    retired: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Set to the instant it expires in its present state.
    timer: Pin<Box<tokio::time::Sleep>>,
    /// Set when it expired busy: what it was serving gets 504.
    busy: Arc<AtomicBool>,
}

impl WorkerExpiration for Expiration {
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>, status: WorkerStatus, start: Instant) -> Poll<()> {
        if status == WorkerStatus::Idle && self.retired.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        let limit = match status {
            WorkerStatus::Idle => self.reuse.idle_timeout,
            WorkerStatus::Requests | WorkerStatus::PostReturn => self.timeout + DEADLINE_GRACE,
        };
        let deadline = tokio::time::Instant::from(start + limit);
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        if self.timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        if status != WorkerStatus::Idle {
            self.busy.store(true, Ordering::Relaxed);
        }
        Poll::Ready(())
    }
}

/// One instance's bookkeeping: how much it may take, and what it is serving.
pub struct Worker {
    reuse: InstanceReuse,
    /// The requests it took, to be told why if it ends under them.
    serving: Mutex<Vec<Weak<Ended>>>,
    busy: Arc<AtomicBool>,
    _slot: OwnedSemaphorePermit,
}

impl WorkerState for Worker {
    type StoreData = HostState;
    type RequestData = RequestWork;

    fn should_accept_request(&self, at_once: usize, in_all: usize) -> ShouldAccept {
        if in_all >= self.reuse.max_requests {
            ShouldAccept::Never
        } else if at_once >= self.reuse.max_concurrent {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        mut store: StoreContextMut<'_, HostState>,
        work: RequestWork,
        _: TaskGroupId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        let RequestWork { trace, chain_depth, timeout, ended } = work;
        let mut serving = self.serving.lock().unwrap_or_else(|e| e.into_inner());
        serving.retain(|request| request.strong_count() > 0);
        serving.push(Arc::downgrade(&ended));
        store.data_mut().continue_work(trace, chain_depth);
        Box::pin(tokio::time::sleep(timeout))
    }

    fn drop(&self, store: wasmtime::Store<HostState>, result: wasmtime::Result<()>) {
        let Err(error) = result else { return };
        let component = store.data().component.clone();
        tracing::warn!(component = %component, "dropped a reused instance: {error:?}");
        let why = if self.busy.load(Ordering::Relaxed) {
            Failure::Timeout
        } else {
            match Stopped::of(error, &store.data().memory) {
                Stopped::Timeout => Failure::Timeout,
                Stopped::MemoryExceeded { max_bytes } => Failure::MemoryExceeded { max_bytes },
                Stopped::Trap(e) => Failure::Trap(e),
            }
        };
        for request in self.serving.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            if let Some(ended) = request.upgrade() {
                *ended.why.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.for_another());
                ended.told.notify_one();
            }
        }
    }
}
