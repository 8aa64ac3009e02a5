//! Publishing to the event bus (`estore:platform/publisher`).
//!
//! A component publishes only to the topics in its `allowed_publish_topics`. Every
//! message gets the trace headers of the work that published it (see
//! [`estore_engine::trace`]). With an SQL transaction open, the message goes into that
//! transaction's outbox and is sent after the commit; otherwise `publish` returns once
//! the bus has stored it.

use std::collections::BTreeSet;
use std::time::Duration;

use estore_bus::{Bus, BusError, Outgoing, validate_topic};
use estore_engine::trace::{self, TraceContext};
use estore_sql::SqlView;
use tracing::Instrument;
use wasmtime::component::{HasData, Linker};

pub use bindings::estore::platform::{message_types, publisher};
use publisher::{Error, Header, Host};

/// The interface's bindings, generated here so this crate alone implements them; the
/// Kafka trigger's message handler shares their `message-types`.
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../../wit",
        inline: "package estore:messaging-host; world host { import estore:platform/publisher@0.1.0; }",
        imports: { default: async | trappable },
    });
}

/// The interface this capability serves, and the manifest key that grants it.
pub const INTERFACE: &str = "estore:platform/publisher";
pub const GRANT: &str = "allowed_publish_topics";

/// What one component may publish, and where to.
pub struct PublishGrant {
    pub allowed_topics: BTreeSet<String>,
    /// `None` when the application publishes nothing and triggers on nothing, so no
    /// bus was opened.
    pub bus: Option<Bus>,
    pub timeout: Duration,
}

/// Header names the host sets itself; a component's own values for them are replaced.
const HOST_HEADERS: [&str; 3] = [trace::MESSAGE_ID, trace::CORRELATION_ID, trace::TRACEPARENT];
/// Headers the host adds where it says something about a message (the dead-letter
/// topic's `x-estore-error`, `x-estore-component`…): a component sets none of them.
const HOST_HEADER_PREFIX: &str = "x-estore-";

/// What the interface's calls reach of an instance: its grant, the work it does (for
/// the trace headers), and its SQL, whose open transaction takes what it publishes.
pub struct PublisherView<'a> {
    pub component: &'a str,
    pub grant: &'a PublishGrant,
    pub trace: &'a TraceContext,
    pub sql: SqlView<'a>,
}

struct HasPublisher;

impl HasData for HasPublisher {
    type Data<'a> = PublisherView<'a>;
}

/// Adds `estore:platform/publisher` (and the types it shares) to `linker`, served by
/// the view `view` gives of the embedder's state.
pub fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, view: fn(&mut T) -> PublisherView<'_>) -> wasmtime::Result<()> {
    message_types::add_to_linker::<T, HasPublisher>(linker, view)?;
    publisher::add_to_linker::<T, HasPublisher>(linker, view)
}

impl message_types::Host for PublisherView<'_> {}

impl Host for PublisherView<'_> {
    async fn publish(
        &mut self,
        topic: String,
        key: Option<Vec<u8>>,
        payload: Vec<u8>,
        headers: Vec<Header>,
    ) -> wasmtime::Result<Result<String, Error>> {
        if !self.grant.allowed_topics.contains(&topic) {
            tracing::warn!(component = %self.component, "denied publishing to `{topic}`: not in allowed_publish_topics");
            return Ok(Err(Error::NotAllowed(format!(
                "component `{}` may not publish to `{topic}` (allow it with allowed_publish_topics)",
                self.component
            ))));
        }
        if let Err(e) = validate_topic(&topic) {
            return Ok(Err(Error::Invalid(e.to_string())));
        }
        let span = tracing::debug_span!(
            "publish",
            otel.name = format!("publish {topic}"),
            otel.kind = "producer",
            messaging.system = "kafka",
            messaging.destination.name = %topic,
        );
        let message_id = trace::new_message_id();
        let traceparent = self.trace.traceparent_in(&span);
        let headers = with_trace_headers(headers, &message_id, &self.trace.correlation_id(), &traceparent);
        let message = Outgoing { topic, key, payload, headers };
        self.publish_message(message, message_id).instrument(span).await
    }
}

impl PublisherView<'_> {
    /// Stages `message` in the open SQL transaction if there is one (the outbox sends
    /// it after the commit), else hands it to the bus.
    async fn publish_message(&mut self, message: Outgoing, message_id: String) -> wasmtime::Result<Result<String, Error>> {
        if let Some(staged) = self.sql.stage_in_open_transaction(&message).await {
            return Ok(staged.map(|()| message_id).map_err(|e| Error::Other(estore_sql::describe_error(&e))));
        }
        let Some(bus) = self.grant.bus.clone() else {
            return Ok(Err(Error::Unavailable("this host runs no event bus".into())));
        };
        Ok(match bus.publish(message, self.grant.timeout).await {
            Ok(_) => Ok(message_id),
            Err(BusError::Unavailable(why)) => Err(Error::Unavailable(why)),
            Err(BusError::Invalid(why)) => Err(Error::Invalid(why)),
            Err(BusError::Other(why)) => Err(Error::Other(why)),
        })
    }
}

/// Whether the host alone sets header `name` (in any case).
fn is_host_header(name: &str) -> bool {
    HOST_HEADERS.iter().any(|own| name.eq_ignore_ascii_case(own))
        || name.get(..HOST_HEADER_PREFIX.len()).is_some_and(|prefix| prefix.eq_ignore_ascii_case(HOST_HEADER_PREFIX))
}

/// The component's headers, less any it set for the host's own names, plus the
/// message id and the trace context of the current work.
fn with_trace_headers(headers: Vec<Header>, message_id: &str, correlation_id: &str, traceparent: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = headers
        .into_iter()
        .filter(|h| !is_host_header(&h.name))
        .map(|h| (h.name, h.value))
        .collect();
    out.push((trace::MESSAGE_ID.into(), message_id.as_bytes().to_vec()));
    out.push((trace::CORRELATION_ID.into(), correlation_id.as_bytes().to_vec()));
    out.push((trace::TRACEPARENT.into(), traceparent.as_bytes().to_vec()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_alone_sets_its_headers() {
        let header = |name: &str, value: &str| Header { name: name.into(), value: value.as_bytes().to_vec() };
        let given = vec![
            header("Message-ID", "forged"),
            header("correlation-id", "forged"),
            header("TRACEPARENT", "forged"),
            header("x-estore-component", "payments"),
            header("X-Estore-Origin", "forged/0/0"),
            header("x-estore", "a name of the component's own"),
            header("content-type", "application/json"),
        ];
        let headers = with_trace_headers(given, "m-1", "c-1", "00-t-s-01");
        let names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["x-estore", "content-type", "message-id", "correlation-id", "traceparent"]);
        assert_eq!(headers[2].1, b"m-1");
    }
}
