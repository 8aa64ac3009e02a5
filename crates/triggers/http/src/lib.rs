//! The HTTP trigger: routes each request to a component and runs it: a WASI 0.2
//! component on a fresh instance, a WASI 0.3 one on one of its reused instances
//! ([`reuse`]). The component's exports tell which.
//!
//! Before an instance starts, the request must be admitted ([`admission`]): its body
//! read whole within the component's size limit and the server's time limit (413,
//! 408), and a slot free among the component's instances (503 with `Retry-After`).
//! Each runs to the deadline of its route (a `[[trigger.http]]` entry's
//! `request_timeout_ms`), else of its component.
//!
//! Whatever the component does (trap, loop, exhaust its memory), the client gets an
//! answer: a JSON problem document with 500, or 504 when the deadline passed, and the
//! host log gets a line naming the component. Nothing of a failed instance survives
//! the request, so the next request to the same component starts clean (on a reused
//! instance, the failed instance is dropped with the requests it was serving).

pub mod admission;
mod connection;
mod headers;
mod reuse;
mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiBody, WasiHttpView};

use estore_engine::limits::{Busy, Stopped, root_cause};
use estore_engine::trace::{self, TraceContext};
use estore_instance::registry::{LoadedComponent, Registry};
use estore_instance::{HostState, Work};
use estore_manifest::Manifest;
use estore_manifest::routes::{RouteMatch, Router};
use estore_outbound_http::{Chained, Chaining};


pub use server::serve;

/// How deep chained calls may nest before the host calls it a loop. The store's
/// deepest chain is two calls (orders → cart → catalog).
const MAX_CHAIN_DEPTH: u32 = 10;

/// A request body's error, as the body reader takes it.
type BodyError = Box<dyn std::error::Error + Send + Sync>;

pub struct HttpDispatcher {
    router: Router,
    /// Each public route's own deadline, by its position in the router's list.
    route_timeouts: Vec<Option<Duration>>,
    registry: Arc<Registry>,
    /// How long a request's body may take to arrive.
    body_read_timeout: Duration,
}

impl Chaining for HttpDispatcher {
    fn chain(self: Arc<Self>, target: String, request: Request<WasiBody>, depth: u32) -> Chained {
        Box::pin(async move { self.handle_chained(&target, request, depth).await })
    }
}

/// Why a component produced no response.
#[derive(Debug)]
enum Failure {
    Timeout,
    MemoryExceeded { max_bytes: usize },
    Trap(anyhow::Error),
    NoResponse,
    Instantiate(anyhow::Error),
    /// Every instance the component may have is busy (WASI 0.3: each instance
    /// takes its slot when made).
    Busy(Busy),
}

impl HttpDispatcher {
    pub fn new(manifest: &Manifest, registry: Arc<Registry>, body_read_timeout: Duration) -> Result<HttpDispatcher, String> {
        let routes = manifest.http_routes();
        let router = Router::build(
            &manifest.application.http_base,
            routes.iter().map(|(route, trigger)| (route.to_string(), trigger.component.clone())),
        )?;
        let route_timeouts = routes.iter().map(|(_, trigger)| trigger.request_timeout_ms.map(Duration::from_millis)).collect();
        Ok(HttpDispatcher { router, route_timeouts, registry, body_read_timeout })
    }

    /// A request from the network.
    pub async fn handle<B>(self: &Arc<Self>, req: Request<B>, client: SocketAddr, host: SocketAddr) -> Response<WasiBody>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<BodyError>,
    {
        let path = req.uri().path().to_owned();
        let Some(route) = self.router.route(&path) else {
            return problem(StatusCode::NOT_FOUND, &format!("no route matches {path}"));
        };
        let Some(component) = self.registry.get(route.component_id) else {
            return match self.registry.failure(route.component_id) {
                Some(why) => problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("component `{}` is not running: {why}", route.component_id),
                ),
                None => problem(StatusCode::NOT_FOUND, &format!("no route matches {path}")),
            };
        };
        self.invoke(&component, req, &route, client, host, 0).await
    }

    /// A request from a component to `http://<id>.spin.internal/...`, served in process.
    /// `depth` is the caller's own depth plus one, as the host counted it.
    async fn handle_chained(
        self: &Arc<Self>,
        target: &str,
        req: Request<WasiBody>,
        depth: u32,
    ) -> Result<Response<WasiBody>, wasmtime_wasi_http::Error> {
        if depth > MAX_CHAIN_DEPTH {
            tracing::warn!("chained request to `{target}` refused: {depth} calls deep, the limit is {MAX_CHAIN_DEPTH} (a loop?)");
            return Err(wasmtime_wasi_http::Error::LoopDetected);
        }
        let Some(component) = self.registry.get(target) else {
            tracing::warn!("chained request to unknown component `{target}`");
            return Err(wasmtime_wasi_http::Error::DestinationNotFound);
        };
        let route = RouteMatch::synthetic(target, req.uri().path());
        // What Spin reports as the client of a chained request.
        let nobody: SocketAddr = ([0, 0, 0, 0], 0).into();
        Ok(self.invoke(&component, req, &route, nobody, nobody, depth).await)
    }

    async fn invoke<B>(
        self: &Arc<Self>,
        component: &Arc<LoadedComponent>,
        mut req: Request<B>,
        route: &RouteMatch<'_>,
        client: SocketAddr,
        host: SocketAddr,
        chain_depth: u32,
    ) -> Response<WasiBody>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<BodyError>,
    {
        let id = component.context.id.clone();
        let method = req.method().clone();
        let uri = req.uri().clone();
        let mut trace = trace_of(req.headers());
        // Every log line of this request, the component's own included, carries these.
        let span = tracing::info_span!(
            "request",
            component = %id,
            trace_id = tracing::field::Empty,
            otel.name = format!("{id} {method} {}", uri.path()),
            otel.kind = "server",
            http.request.method = %method,
            url.path = uri.path(),
            http.response.status_code = tracing::field::Empty,
        );
        trace.attach(&span);
        headers::apply(&mut req, route, client, host);
        let started = std::time::Instant::now();
        let metrics = estore_engine::metrics::global();
        let limits = &component.context.limits;
        let admitted = async {
            let req = admission::read_body(req, limits.max_request_body_bytes, self.body_read_timeout).await?;
            // A WASI 0.3 component's instances take their slots when made.
            let slot = match component.http_p3 {
                Some(_) => None,
                None => Some(component.context.slots.take(&id).await?),
            };
            Ok::<_, admission::Refusal>((req, slot))
        };
        let refuse = |refusal: admission::Refusal| {
            let response = refusal.response(&id);
            metrics.count_refusal(&id, refusal.reason());
            metrics.count_request(&id, response.status().as_u16(), started.elapsed());
            span.record("http.response.status_code", response.status().as_u16());
            span.in_scope(|| tracing::debug!("{method} {}: refused ({})", estore_engine::redact::uri(&uri), refusal.reason()));
            response
        };
        let (req, slot) = match admitted.instrument(span.clone()).await {
            Ok(admitted) => admitted,
            Err(refusal) => return refuse(refusal),
        };
        let timeout = route.index.and_then(|i| self.route_timeouts.get(i).copied().flatten()).unwrap_or(limits.timeout);
        match self.run(component, req, Work { trace, chain_depth, timeout }, slot).instrument(span.clone()).await {
            Ok(response) => {
                metrics.count_request(&id, response.status().as_u16(), started.elapsed());
                span.record("http.response.status_code", response.status().as_u16());
                response
            }
            Err(Failure::Busy(busy)) => refuse(busy.into()),
            Err(failure) => {
                let (status, detail) = match &failure {
                    Failure::Timeout => (
                        StatusCode::GATEWAY_TIMEOUT,
                        format!("component `{id}` did not answer within {} ms", timeout.as_millis()),
                    ),
                    Failure::MemoryExceeded { max_bytes } => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("component `{id}` exceeded its memory limit of {} MiB", max_bytes >> 20),
                    ),
                    Failure::Trap(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("component `{id}` failed: {}", root_cause(e))),
                    Failure::NoResponse => (StatusCode::INTERNAL_SERVER_ERROR, format!("component `{id}` returned no response")),
                    Failure::Instantiate(_) => (StatusCode::SERVICE_UNAVAILABLE, format!("component `{id}` could not be started")),
                    Failure::Busy(_) => unreachable!("answered as a refusal above"),
                };
                let cause = match &failure {
                    Failure::Trap(e) | Failure::Instantiate(e) => format!(": {e:?}"),
                    _ => String::new(),
                };
                metrics.count_failure(&id, failure.kind());
                metrics.count_request(&id, status.as_u16(), started.elapsed());
                span.record("http.response.status_code", status.as_u16());
                let uri = estore_engine::redact::uri(&uri);
                span.in_scope(|| tracing::error!("{method} {uri}: {detail}{cause}"));
                problem(status, &detail)
            }
        }
    }

    /// Runs the component: a WASI 0.3 one on one of its reused instances, a WASI 0.2
    /// one on a fresh instance, which holds `slot` until it ends. The guest runs in
    /// its own task because it may keep streaming the body after it has handed over
    /// the response head.
    async fn run(
        self: &Arc<Self>,
        component: &Arc<LoadedComponent>,
        req: Request<http_body_util::Collected<Bytes>>,
        work: Work,
        slot: Option<OwnedSemaphorePermit>,
    ) -> Result<Response<WasiBody>, Failure> {
        let chaining: Arc<dyn Chaining> = self.clone();
        if let Some(instances) = reuse::VersionInstances::of(component, self.registry.engine(), Arc::downgrade(&chaining)) {
            component.served.count_request();
            let req = req.map(|body| Full::new(body.to_bytes()).map_err(|never| match never {}).boxed_unsync());
            return instances.handle(req, work).await;
        }
        let Some(http) = component.http.clone() else {
            return Err(Failure::Instantiate(anyhow::anyhow!("component `{}` has no HTTP trigger", component.context.id)));
        };
        component.served.count_request();
        let engine = self.registry.engine().wasmtime();
        let timeout = work.timeout;
        let mut store =
            HostState::new_store(engine, &component.context, self.clone() as Arc<dyn Chaining>, work).map_err(Failure::Instantiate)?;
        let incoming =
            store.data_mut().http().new_incoming_request(Scheme::Http, req).map_err(|e| Failure::Instantiate(e.into()))?;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let outparam = store.data_mut().http().new_response_outparam(sender).map_err(|e| Failure::Instantiate(e.into()))?;
        let task = tokio::spawn(async move {
            let _slot = slot;
            let call = async {
                let proxy = http.instantiate_async(&mut store).await.map_err(|e| Failure::Instantiate(e.into()))?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, incoming, outparam)
                    .await
                    .map_err(|e| classify_trap(e, &store))
            };
            // The epoch deadline stops a guest that computes; this stops one that
            // waits (on a sleep, a slow upstream) past the same deadline.
            match tokio::time::timeout(timeout, call).await {
                Ok(result) => result,
                Err(_) => Err(Failure::Timeout),
            }
        }
        .in_current_span());
        match receiver.await {
            Ok(Ok(response)) => {
                let guest = task.abort_handle();
                Ok(response.map(|body| UntilClientLeaves { body, ended: false, guest }.boxed_unsync()))
            }
            Ok(Err(code)) => Err(Failure::Trap(anyhow::anyhow!("component answered with error {code:?}"))),
            Err(_) => match task.await {
                Ok(Ok(())) => Err(Failure::NoResponse),
                Ok(Err(failure)) => Err(failure),
                Err(join) => Err(Failure::Trap(anyhow::anyhow!("request task ended abnormally: {join}"))),
            },
        }
    }
}

/// A WASI 0.2 instance's response body, which stops the instance when the client
/// goes away before the body's end.
///
/// The server drops a response's body when its connection closes. A guest learns of
/// that only at its next write, and a guest that streams (the order status stream
/// writes when the order changes, or a keep-alive every 15 s) would hold its
/// instance, and its component's slot, that long after its client left: at a few
/// dozen checkouts a second, the departed streams filled the orders component's
/// slots and checkouts got 503. A body dropped unfinished therefore stops its guest:
/// the instance is discarded after every request anyway, and what the guest had open
/// (a transaction, a call) is dropped as at any other stop. A guest that finished its
/// body runs on to its end.
struct UntilClientLeaves {
    body: WasiBody,
    /// The body gave its last frame.
    ended: bool,
    guest: tokio::task::AbortHandle,
}

impl Body for UntilClientLeaves {
    type Data = Bytes;
    type Error = <WasiBody as Body>::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.body).poll_frame(cx);
        if let std::task::Poll::Ready(None) = polled {
            self.ended = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for UntilClientLeaves {
    fn drop(&mut self) {
        if !self.ended && !self.body.is_end_stream() && !self.guest.is_finished() {
            tracing::debug!("the client went away before the response's end; its instance is stopped");
            self.guest.abort();
        }
    }
}

impl Failure {
    /// The `kind` label of the failure metric.
    fn kind(&self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::MemoryExceeded { .. } => "memory",
            Failure::Trap(_) | Failure::NoResponse => "trap",
            Failure::Instantiate(_) => "instantiate",
            Failure::Busy(_) => "busy",
        }
    }

    /// The same failure, for another request that the same instance was serving.
    fn for_another(&self) -> Failure {
        match self {
            Failure::Timeout => Failure::Timeout,
            Failure::MemoryExceeded { max_bytes } => Failure::MemoryExceeded { max_bytes: *max_bytes },
            Failure::Trap(e) => Failure::Trap(anyhow::anyhow!("{}", root_cause(e))),
            Failure::NoResponse => Failure::NoResponse,
            Failure::Instantiate(e) => Failure::Instantiate(anyhow::anyhow!("{e:#}")),
            Failure::Busy(busy) => Failure::Busy(*busy),
        }
    }
}

fn classify_trap(error: wasmtime::Error, store: &wasmtime::Store<HostState>) -> Failure {
    match Stopped::of(error, &store.data().memory) {
        Stopped::Timeout => Failure::Timeout,
        Stopped::MemoryExceeded { max_bytes } => Failure::MemoryExceeded { max_bytes },
        Stopped::Trap(error) => Failure::Trap(error),
    }
}

/// The trace this request continues (a new one when it carries none).
fn trace_of(headers: &http::HeaderMap) -> TraceContext {
    let header = |name: &str| headers.get(name).map(|v| v.as_bytes());
    TraceContext::continue_from(header(trace::TRACEPARENT), header(trace::CORRELATION_REQUEST_HEADER))
}

/// An RFC 9457 problem document: the same error shape the store's services use.
pub fn problem(status: StatusCode, detail: &str) -> Response<WasiBody> {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    let body = Full::new(Bytes::from(body.to_string())).map_err(|never| match never {}).boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/problem+json"));
    response
}
