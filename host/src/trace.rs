//! Trace context: what ties a request to the events it caused, and those events to
//! theirs.
//!
//! Every published message carries a `message-id`, a `correlation-id` and a W3C
//! `traceparent`. They come from the work being done when the message was published:
//! the incoming request's headers (`traceparent`, `x-correlation-id`), or the headers
//! of the message being handled. Work that arrives without them starts a new trace,
//! and its correlation id is its trace id.

use uuid::Uuid;

pub const MESSAGE_ID: &str = "message-id";
pub const CORRELATION_ID: &str = "correlation-id";
pub const TRACEPARENT: &str = "traceparent";
/// The request header carrying a correlation id from a client.
pub const CORRELATION_REQUEST_HEADER: &str = "x-correlation-id";

/// The trace a unit of work (a request, a message) belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    /// This unit of work's span: the parent of whatever it publishes.
    span_id: [u8; 8],
    sampled: bool,
    pub correlation_id: String,
}

impl TraceContext {
    /// Continues the trace in `traceparent` (when valid) as a new span, keeping
    /// `correlation_id` (when given); anything missing or malformed starts afresh.
    pub fn continue_from(traceparent: Option<&[u8]>, correlation_id: Option<&[u8]>) -> TraceContext {
        let parent = traceparent.and_then(parse_traceparent);
        let (trace_id, sampled) = parent.unwrap_or_else(|| (random_trace_id(), true));
        let correlation_id = correlation_id
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .map(str::to_owned)
            .unwrap_or_else(|| hex::encode(trace_id));
        TraceContext { trace_id, span_id: random_span_id(), sampled, correlation_id }
    }

    pub fn trace_id(&self) -> String {
        hex::encode(self.trace_id)
    }

    /// The `traceparent` for a message published from this unit of work: same trace,
    /// this work's span as parent.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{}",
            hex::encode(self.trace_id),
            hex::encode(self.span_id),
            if self.sampled { "01" } else { "00" }
        )
    }
}

/// A fresh, unique message id.
pub fn new_message_id() -> String {
    Uuid::new_v4().to_string()
}

/// `version-traceid-parentid-flags`; all-zero ids are invalid per the W3C spec.
fn parse_traceparent(value: &[u8]) -> Option<([u8; 16], bool)> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let mut parts = text.split('-');
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    let mut trace_id = [0u8; 16];
    let mut span_id = [0u8; 8];
    let mut flag = [0u8; 1];
    hex::decode_to_slice(trace, &mut trace_id).ok()?;
    hex::decode_to_slice(span, &mut span_id).ok()?;
    hex::decode_to_slice(flags, &mut flag).ok()?;
    if trace_id == [0; 16] || span_id == [0; 8] || trace.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    Some((trace_id, flag[0] & 1 == 1))
}

fn random_trace_id() -> [u8; 16] {
    *Uuid::new_v4().as_bytes()
}

fn random_span_id() -> [u8; 8] {
    let bytes = Uuid::new_v4().into_bytes();
    let mut span = [0u8; 8];
    span.copy_from_slice(&bytes[..8]);
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continues_a_valid_trace_with_a_new_span() {
        let parent = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = TraceContext::continue_from(Some(parent), Some(b"order-42"));
        assert_eq!(context.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(context.correlation_id, "order-42");
        let own = context.traceparent();
        assert!(own.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{own}");
        assert!(own.ends_with("-01"));
        assert_ne!(&own[36..52], "00f067aa0ba902b7", "a new span, not the parent's");
        assert!(parse_traceparent(own.as_bytes()).is_some());
    }

    #[test]
    fn malformed_or_missing_context_starts_a_new_trace() {
        for bad in [
            &b"garbage"[..],
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            let context = TraceContext::continue_from(Some(bad), None);
            assert_ne!(context.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736", "{}", String::from_utf8_lossy(bad));
            assert_eq!(context.correlation_id, context.trace_id(), "a new trace correlates by its own id");
        }
        let fresh = TraceContext::continue_from(None, Some(b"  "));
        assert_eq!(fresh.correlation_id, fresh.trace_id());
    }

    #[test]
    fn unsampled_flag_is_kept() {
        let context = TraceContext::continue_from(Some(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"), None);
        assert!(context.traceparent().ends_with("-00"));
    }
}
