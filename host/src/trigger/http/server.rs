//! The listening socket: HTTP/1.1 connections served by hyper, within the server's
//! limits, and a graceful stop.
//!
//! Each connection runs under its [`Clock`] (the header and keep-alive timeouts), and
//! at most `max_connections` are open at once: past that the server stops accepting,
//! so further clients wait in the listen queue rather than the host running out of
//! file descriptors, which its databases need too.
//!
//! On shutdown the listener closes first (new connections are refused), then every
//! in-flight request runs to completion (bounded by its own deadline) before the
//! process exits.

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::HttpDispatcher;
use super::connection::{Clock, Timed, Watched};
use crate::runtime_config::ServerLimits;
use crate::telemetry::Throttle;

/// How often, at most, the log says the server is at its connection cap.
const FULL_LOG_INTERVAL: Duration = Duration::from_secs(10);

pub async fn serve(
    listener: TcpListener,
    dispatcher: Arc<HttpDispatcher>,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
    drain_limit: Duration,
) -> anyhow::Result<()> {
    let local = listener.local_addr()?;
    let graceful = GracefulShutdown::new();
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let full = Throttle::new(FULL_LOG_INTERVAL);
    let metrics = crate::metrics::global();
    tokio::pin!(shutdown);
    loop {
        if open.available_permits() == 0 && full.hit().is_some() {
            tracing::warn!(
                "{} connections open (http.max_connections): new ones wait until one closes",
                limits.max_connections
            );
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
