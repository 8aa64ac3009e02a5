//! Trace context: what ties a request to the events it caused, and those events to
//! theirs.
//!
//! Every published message carries a `message-id`, a `correlation-id` and a W3C
//! `traceparent`, and every outbound request (chained ones included) a `traceparent`.
//! They come from the work being done when the message was published: the incoming
//! request's headers (`traceparent`, `x-correlation-id`), or the headers of the message
//! being handled. Work that arrives without them starts a new trace, and its
//! correlation id is its trace id. When spans are exported ([`crate::telemetry`]), the
//! ids are those of the exported spans, so the spans of one checkout form one tree
//! across components, HTTP and Kafka.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;
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
    /// This unit of work's span: the parent of whatever it publishes or calls.
    span_id: [u8; 8],
    /// The span of the work that caused this one, when it said so.
    parent_span_id: Option<[u8; 8]>,
    sampled: bool,
    /// The correlation id the work came with, if any.
    given_correlation_id: Option<String>,
}

impl TraceContext {
    /// Continues the trace in `traceparent` (when valid) as a new span, keeping
    /// `correlation_id` (when given); anything missing or malformed starts afresh.
    pub fn continue_from(traceparent: Option<&[u8]>, correlation_id: Option<&[u8]>) -> TraceContext {
        let parent = traceparent.and_then(parse_traceparent);
        let given_correlation_id = correlation_id
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .map(str::to_owned);
        TraceContext {
            trace_id: parent.map_or_else(random_trace_id, |p| p.trace_id),
            span_id: random_span_id(),
            parent_span_id: parent.map(|p| p.span_id),
            sampled: parent.is_none_or(|p| p.sampled),
            given_correlation_id,
        }
    }

    pub fn trace_id(&self) -> String {
        hex::encode(self.trace_id)
    }

    /// The correlation id the work came with, else its trace id.
    pub fn correlation_id(&self) -> String {
        self.given_correlation_id.clone().unwrap_or_else(|| self.trace_id())
    }

    /// Makes `span` this unit of work's span: a child of the span the work came from,
    /// and, when spans are exported, the source of this work's ids, so what it
    /// publishes or calls names the exported span as its parent. Records the trace id
    /// in the span's `trace_id` field for the log lines.
    pub fn attach(&mut self, span: &tracing::Span) {
        if let Some(parent) = self.parent_span_id {
            let flags = if self.sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
            let remote =
                SpanContext::new(TraceId::from_bytes(self.trace_id), SpanId::from_bytes(parent), flags, true, TraceState::default());
            // Fails only when no spans are exported: the ids then stay this context's.
            let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
        }
        if let Some((trace_id, span_id)) = exported_ids(span) {
            self.trace_id = trace_id;
            self.span_id = span_id;
        }
        span.record("trace_id", tracing::field::display(self.trace_id()));
    }

    /// The `traceparent` for what is sent from inside `span` (a publish, an outbound
    /// call): that span as the parent when it is exported, this work's span otherwise.
    pub fn traceparent_in(&self, span: &tracing::Span) -> String {
        let span_id = exported_ids(span).map_or(self.span_id, |(_, span_id)| span_id);
        format!("00-{}-{}-{}", hex::encode(self.trace_id), hex::encode(span_id), if self.sampled { "01" } else { "00" })
    }
}

/// The ids OpenTelemetry gave `span`, if spans are exported.
fn exported_ids(span: &tracing::Span) -> Option<([u8; 16], [u8; 8])> {
    let context = span.context();
    let exported = context.span();
    let ids = exported.span_context();
    ids.is_valid().then(|| (ids.trace_id().to_bytes(), ids.span_id().to_bytes()))
}

/// A fresh, unique message id.
pub fn new_message_id() -> String {
    Uuid::new_v4().to_string()
}

/// A valid `traceparent`'s parts.
#[derive(Clone, Copy)]
struct Parent {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    sampled: bool,
}

/// `version-traceid-parentid-flags`; all-zero ids are invalid per the W3C spec.
fn parse_traceparent(value: &[u8]) -> Option<Parent> {
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
    Some(Parent { trace_id, span_id, sampled: flag[0] & 1 == 1 })
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
        assert_eq!(context.correlation_id(), "order-42");
        let own = context.traceparent_in(&tracing::Span::none());
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
            assert_eq!(context.correlation_id(), context.trace_id(), "a new trace correlates by its own id");
        }
        let fresh = TraceContext::continue_from(None, Some(b"  "));
        assert_eq!(fresh.correlation_id(), fresh.trace_id());
    }

    #[test]
    fn unsampled_flag_is_kept() {
        let context = TraceContext::continue_from(Some(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"), None);
        assert!(context.traceparent_in(&tracing::Span::none()).ends_with("-00"));
    }
}
