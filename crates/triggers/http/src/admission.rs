//! What a request must get through before an instance starts for it: its whole body,
//! within the component's size limit and the server's time limit, and a free slot
//! among the component's instances.
//!
//! The order is the point. A guest reads its body while it runs, so a client that
//! sends a request's head and then dawdles over (or never sends) the body would hold
//! an instance, and with it a share of the one instance pool, for as long as it
//! liked: about a thousand such connections once answered every route with 503. The
//! host therefore reads the body first, holding nothing but the connection and at most
//! the limit in memory, and takes an instance only for a request that is complete.
//! A component's slots then keep a flood of complete requests on one component from
//! taking the instances every other component needs.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Collected, LengthLimitError, Limited};
use hyper::body::Body;

use wasmtime_wasi_http::WasiBody;

use estore_engine::limits::{Busy, SLOT_WAIT};


/// Why a request was answered without running its component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The body is larger than the component's limit (its length said so, or it
    /// grew past it while arriving).
    BodyTooLarge { limit: u64 },
    /// The body did not arrive whole in time.
    BodyTimeout { timeout: Duration },
    /// The client broke off, or the body was malformed (bad chunk encoding).
    BodyUnreadable,
    /// The component has its maximum of instances serving requests.
    AtCapacity { slots: usize },
}

impl Refusal {
    /// The `reason` label of the refusal metric.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::BodyTooLarge { .. } => "body_too_large",
            Refusal::BodyTimeout { .. } => "body_timeout",
            Refusal::BodyUnreadable => "body_unreadable",
            Refusal::AtCapacity { .. } => "at_capacity",
        }
    }

    /// The problem document the client gets.
    pub fn response(self, component: &str) -> Response<WasiBody> {
        let (status, detail) = match self {
            Refusal::BodyTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than the {limit} bytes component `{component}` accepts"),
            ),
            Refusal::BodyTimeout { timeout } => (
                StatusCode::REQUEST_TIMEOUT,
                format!("the request body did not arrive within {} ms", timeout.as_millis()),
            ),
            Refusal::BodyUnreadable => {
                (StatusCode::BAD_REQUEST, "the request body could not be read".to_owned())
            }
            Refusal::AtCapacity { slots } => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("component `{component}` is busy ({slots} requests in progress); try again"),
            ),
        };
        let mut response = super::problem(status, &detail);
        if let Refusal::AtCapacity { .. } = self {
            response.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from(SLOT_WAIT.as_secs()));
        }
        response
    }
}

/// The request with its body read whole, or why it was not. A length announced above
/// `limit` is refused before a byte of the body is read.
pub async fn read_body<B>(req: Request<B>, limit: u64, timeout: Duration) -> Result<Request<Collected<Bytes>>, Refusal>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    if body.size_hint().lower() > limit {
        return Err(Refusal::BodyTooLarge { limit });
    }
    let bounded = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    match tokio::time::timeout(timeout, bounded.collect()).await {
        Ok(Ok(body)) => Ok(Request::from_parts(parts, body)),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(Refusal::BodyTooLarge { limit }),
        Ok(Err(e)) => {
            tracing::debug!("request body unreadable: {e}");
            Err(Refusal::BodyUnreadable)
        }
        Err(_) => Err(Refusal::BodyTimeout { timeout }),
    }
}

impl From<Busy> for Refusal {
    fn from(busy: Busy) -> Refusal {
        Refusal::AtCapacity { slots: busy.slots }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Full, StreamBody};
    use hyper::body::Frame;

    fn request<B>(body: B) -> Request<B> {
        Request::new(body)
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole() {
        let req = read_body(request(Full::new(Bytes::from_static(b"hello"))), 5, Duration::from_secs(1)).await;
        let body = req.map(|r| r.into_body().to_bytes());
        assert_eq!(body, Ok(Bytes::from_static(b"hello")));
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_by_its_length_or_as_it_grows() {
        let known = read_body(request(Full::new(Bytes::from(vec![0; 6]))), 5, Duration::from_secs(1)).await;
        assert_eq!(known.err(), Some(Refusal::BodyTooLarge { limit: 5 }));
        let chunks = futures::stream::iter([b"abc", b"def"].map(|c| Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(c)))));
        let streamed = read_body(request(StreamBody::new(chunks)), 5, Duration::from_secs(1)).await;
        assert_eq!(streamed.err(), Some(Refusal::BodyTooLarge { limit: 5 }));
    }

    #[tokio::test]
    async fn a_body_that_does_not_arrive_times_out() {
        let never = futures::stream::pending::<Result<Frame<Bytes>, std::io::Error>>();
        let timeout = Duration::from_millis(50);
        let stalled = read_body(request(StreamBody::new(never)), 5, timeout).await;
        assert_eq!(stalled.err(), Some(Refusal::BodyTimeout { timeout }));
    }
}
