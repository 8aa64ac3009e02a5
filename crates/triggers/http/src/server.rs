//! The listening socket: HTTP/1.1 connections served by hyper, within the server's
//! limits, and a graceful stop.
//!
//! Each connection runs under its [`Clock`] (the header and keep-alive timeouts), and
//! at most `max_connections` are open at once: past that the server stops accepting,
//! so further clients wait in the listen queue rather than the host running out of
//! file descriptors, which its databases need too. The cap only holds if the process
//! may open that many files: at start the host raises its soft open-files limit as far
//! as the hard limit allows ([`fit_to_open_files`]), and serves fewer connections,
//! saying so, if even that is too low. Otherwise a client holding a thousand idle
//! connections under a 1024 limit would make `accept` fail for everyone.
//!
//! On shutdown the listener closes first (new connections are refused), then every
//! in-flight request runs to completion (bounded by its own deadline) before the
//! process exits.

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::HttpDispatcher;
use super::connection::{Clock, Timed, Watched};
use estore_runtime_config::ServerLimits;
use estore_engine::telemetry::Throttle;

/// How often, at most, the log says the server is at its connection cap.
const FULL_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Open files the host keeps for everything but client connections: database files
/// and their journals, the bus, outbound connections, the compiled cache.
const RESERVED_FILES: u64 = 256;
/// The fewest connections served, however low the open-files limit.
const MIN_CONNECTIONS: u64 = 16;

pub async fn serve(
    listener: TcpListener,
    dispatcher: Arc<HttpDispatcher>,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
    drain_limit: Duration,
) -> anyhow::Result<()> {
    let local = listener.local_addr()?;
    let graceful = GracefulShutdown::new();
    let max_connections = fit_to_open_files(limits.max_connections);
    let open = Arc::new(Semaphore::new(max_connections));
    let full = Throttle::new(FULL_LOG_INTERVAL);
    let metrics = estore_engine::metrics::global();
    tokio::pin!(shutdown);
    loop {
        if open.available_permits() == 0 && full.hit().is_some() {
            tracing::warn!("{max_connections} connections open (http.max_connections): new ones wait until one closes");
        }
        let permit = tokio::select! {
            permit = open.clone().acquire_owned() => permit,
            () = &mut shutdown => break,
        };
        // The semaphore is never closed.
        let Ok(permit) = permit else { break };
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // A response whose head and body go out as separate writes (a streamed body,
        // as WASI 0.3 guests send) would otherwise wait on Nagle's algorithm for the
        // client's delayed acknowledgement: 40 ms on Linux.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY for {client}: {e}");
        }
        let clock = Clock::start(limits.header_read_timeout, limits.keep_alive_timeout);
        let dispatcher = dispatcher.clone();
        let service = {
            let clock = clock.clone();
            service_fn(move |req| {
                let dispatcher = dispatcher.clone();
                let serving = clock.serving();
                async move {
                    let response = dispatcher.handle(req, client, local).await;
                    Ok::<_, std::convert::Infallible>(response.map(|body| Watched::new(body, serving)))
                }
            })
        };
        // hyper's own header timer is left off: it would also time idle keep-alive
        // connections at the header timeout (see `connection`).
        let connection = http1::Builder::new()
            .keep_alive(true)
            .header_read_timeout(None)
            .serve_connection(TokioIo::new(Timed::new(stream, clock)), service);
        let connection = graceful.watch(connection);
        metrics.connections.inc();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection from {client} ended: {e}");
            }
            metrics.connections.dec();
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("shutting down: waiting for in-flight requests");
    if tokio::time::timeout(drain_limit, graceful.shutdown()).await.is_err() {
        tracing::warn!("in-flight requests still running after {drain_limit:?}; exiting anyway");
    }
    Ok(())
}

/// Raises the soft open-files limit to what `max_connections` connections and the
/// host's own files need, as far as the hard limit allows; returns how many
/// connections fit, fewer than asked (with a warning) when the hard limit is lower.
fn fit_to_open_files(max_connections: usize) -> usize {
    let wanted = (max_connections as u64).saturating_add(RESERVED_FILES);
    let limit = getrlimit(Resource::Nofile);
    let (soft, hard) = (limit.current.unwrap_or(u64::MAX), limit.maximum.unwrap_or(u64::MAX));
    let mut allowed = soft;
    if soft < wanted {
        let raised = wanted.min(hard);
        match setrlimit(Resource::Nofile, Rlimit { current: Some(raised), maximum: limit.maximum }) {
            Ok(()) => allowed = raised,
            Err(e) => tracing::warn!("cannot raise the open-files limit from {soft} to {raised}: {e}"),
        }
    }
    if allowed >= wanted {
        return max_connections;
    }
    let fitted = allowed.saturating_sub(RESERVED_FILES).max(MIN_CONNECTIONS);
    tracing::warn!(
        "http.max_connections = {max_connections} needs {wanted} open files, but this process may open \
         {allowed} (ulimit -n; hard limit {hard}): serving at most {fitted} connections at once"
    );
    usize::try_from(fitted).unwrap_or(max_connections).min(max_connections)
}
