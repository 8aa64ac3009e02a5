//! One client connection's clock: how long it may take to send a request's head, and
//! how long it may sit idle between requests. A connection out of time is closed.
//!
//! hyper's own `header_read_timeout` starts whenever hyper begins waiting for a head,
//! which is at a connection's start and again as soon as each response is written,
//! so it counts a keep-alive connection's idle time as header time and would cut
//! every idle connection at the header timeout. The two are kept apart here, as Go's
//! server keeps `ReadHeaderTimeout` and `IdleTimeout`:
//!
//! - a new connection has the header timeout to complete its first request head;
//! - after a response, it has the keep-alive timeout for the first byte of its next
//!   request, whose head must then be complete within the header timeout;
//! - while a request is served (its body read, its component run, its response
//!   written) nothing is timed here: the body has its own time limit in
//!   [`super::admission`], the component its deadline.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// What a connection is doing, for its clock.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Receiving a request head, since then.
    Head(Instant),
    /// Waiting for the next request, since the last response ended.
    Idle(Instant),
    /// Serving a request.
    Busy,
}

pub struct Clock {
    state: Mutex<State>,
    header_read_timeout: Duration,
    keep_alive_timeout: Duration,
}

struct State {
    phase: Phase,
    /// The task that found the stream with nothing to read while a request was
    /// served: it must look again (and start the keep-alive timer) once the request
    /// is done, because hyper does not read again on its own until bytes arrive.
    reader: Option<Waker>,
}

impl Clock {
    /// The clock of a connection accepted now.
    pub fn start(header_read_timeout: Duration, keep_alive_timeout: Duration) -> Arc<Clock> {
        let state = State { phase: Phase::Head(Instant::now()), reader: None };
        Arc::new(Clock { state: Mutex::new(state), header_read_timeout, keep_alive_timeout })
    }

    /// Stops the clock while a request is served: until the guard is dropped, with
    /// the response's body ([`Watched`]).
    pub fn serving(self: &Arc<Self>) -> Serving {
        self.lock().phase = Phase::Busy;
        Serving(self.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes came in: an idle connection has started its next request.
    fn bytes_arrived(&self) {
        let mut state = self.lock();
        if let Phase::Idle(_) = state.phase {
            state.phase = Phase::Head(Instant::now());
        }
    }

    /// When the connection runs out of time, and what it was waiting for; with no
    /// deadline (a request is served), `reader` is woken when there is one.
    fn deadline(&self, reader: &Waker) -> Option<(Instant, &'static str)> {
        let mut state = self.lock();
        match state.phase {
            Phase::Head(since) => Some((since + self.header_read_timeout, "the request head did not arrive in time")),
            Phase::Idle(since) => Some((since + self.keep_alive_timeout, "idle past the keep-alive timeout")),
            Phase::Busy => {
                state.reader = Some(reader.clone());
                None
            }
        }
    }
}

/// A request being served on a connection; the connection goes idle when it is dropped.
pub struct Serving(Arc<Clock>);

impl Drop for Serving {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.phase = Phase::Idle(Instant::now());
        if let Some(reader) = state.reader.take() {
            reader.wake();
        }
    }
}

/// A response body that keeps its connection's clock stopped until hyper has written
/// (or dropped) it: a body may stream for as long as its route's deadline.
pub struct Watched<B> {
    body: B,
    _serving: Serving,
}

impl<B> Watched<B> {
    pub fn new(body: B, serving: Serving) -> Watched<B> {
        Watched { body, _serving: serving }
    }
}

impl<B: Body + Unpin> Body for Watched<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A connection's stream under its clock: a read that waits past the deadline fails
/// with `TimedOut`, which ends the connection.
pub struct Timed<S> {
    stream: S,
    clock: Arc<Clock>,
    timer: Pin<Box<Sleep>>,
}

impl<S> Timed<S> {
    pub fn new(stream: S, clock: Arc<Clock>) -> Timed<S> {
        let timer = Box::pin(tokio::time::sleep(Duration::ZERO));
        Timed { stream, clock, timer }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Timed<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.clock.bytes_arrived();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let Some((deadline, why)) = self.clock.deadline(cx.waker()) else {
                    return Poll::Pending;
                };
                if self.timer.deadline() != deadline {
                    self.timer.as_mut().reset(deadline);
                }
                match self.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, why))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Timed<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const HEAD: Duration = Duration::from_millis(150);
    const IDLE: Duration = Duration::from_millis(600);
    /// How late a timer may fire on a busy test machine.
    const SLACK: Duration = Duration::from_millis(100);

    /// A connection under a clock, and the client's end of it.
    fn connection() -> (Timed<tokio::io::DuplexStream>, tokio::io::DuplexStream, Arc<Clock>) {
        let (server, client) = tokio::io::duplex(64);
        let clock = Clock::start(HEAD, IDLE);
        (Timed::new(server, clock.clone()), client, clock)
    }

    /// Reads until the clock ends the connection; how long that took from `since`.
    async fn time_out(server: &mut Timed<tokio::io::DuplexStream>, since: Instant) -> Duration {
        let mut buf = [0; 8];
        match server.read(&mut buf).await {
            Ok(n) => panic!("read {n} bytes, expected a time-out"),
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}"),
        }
        since.elapsed()
    }

    fn assert_about(took: Duration, expected: Duration) {
        assert!(took >= expected && took < expected + SLACK, "took {took:?}, expected {expected:?}");
    }

    #[tokio::test]
    async fn a_new_connection_has_the_header_timeout() {
        let (mut server, _client, _) = connection();
        assert_about(time_out(&mut server, Instant::now()).await, HEAD);
    }

    #[tokio::test]
    async fn an_idle_connection_has_the_keep_alive_timeout_then_the_header_timeout() {
        let (mut server, _client, clock) = connection();
        drop(clock.serving());
        assert_about(time_out(&mut server, Instant::now()).await, IDLE);

        let (mut server, mut next, clock) = connection();
        drop(clock.serving());
        // Idle for longer than a head may take: the keep-alive timeout applies...
        tokio::time::sleep(HEAD * 2).await;
        next.write_all(b"GET").await.unwrap();
        let mut buf = [0; 3];
        server.read_exact(&mut buf).await.unwrap();
        // ...until the next request's first bytes; its head has its own time from there.
        assert_about(time_out(&mut server, Instant::now()).await, HEAD);
    }

    #[tokio::test]
    async fn a_read_waiting_while_a_request_is_served_is_timed_once_it_is_done() {
        let (mut server, _client, clock) = connection();
        let serving = clock.serving();
        // Like hyper: one read, started while the request is served, that nothing
        // wakes until bytes arrive.
        let reading = tokio::spawn(async move {
            time_out(&mut server, Instant::now()).await;
            Instant::now()
        });
        tokio::time::sleep(HEAD).await;
        let done = Instant::now();
        drop(serving);
        let closed = tokio::time::timeout(IDLE * 3, reading).await.expect("the idle connection was never timed");
        assert_about(closed.unwrap() - done, IDLE);
    }

    #[tokio::test]
    async fn a_request_being_served_is_not_timed() {
        let (mut server, mut client, clock) = connection();
        let serving = clock.serving();
        let reading = tokio::spawn(async move {
            let mut buf = [0; 4];
            server.read_exact(&mut buf).await.map(|_| buf)
        });
        tokio::time::sleep(IDLE + HEAD).await;
        client.write_all(b"body").await.unwrap();
        assert_eq!(reading.await.unwrap().unwrap(), *b"body");
        drop(serving);
    }
}
