//! The listening socket: HTTP/1.1 connections served by hyper, and a graceful stop.
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

use super::HttpDispatcher;

pub async fn serve(
    listener: TcpListener,
    dispatcher: Arc<HttpDispatcher>,
    shutdown: impl Future<Output = ()>,
    drain_limit: Duration,
) -> anyhow::Result<()> {
    let local = listener.local_addr()?;
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
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
        let dispatcher = dispatcher.clone();
        let service = service_fn(move |req| {
            let dispatcher = dispatcher.clone();
            async move { Ok::<_, std::convert::Infallible>(dispatcher.handle(req, client, local).await) }
        });
        let connection = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection from {client} ended: {e}");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: waiting for in-flight requests");
    if tokio::time::timeout(drain_limit, graceful.shutdown()).await.is_err() {
        tracing::warn!("in-flight requests still running after {drain_limit:?}; exiting anyway");
    }
    Ok(())
}
