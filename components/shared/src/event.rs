//! The one envelope every event travels in (domain.md, "Events"), so that any
//! consumer can read any event's id, type and saga without knowing its `data`.
//!
//! ```no_run
//! use estore_shared::event::{Envelope, publish_event};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct OrderPlaced {
//!     order_id: String,
//! }
//!
//! // The order id correlates the whole saga, and keys it, so that everything about one
//! // order is handled in order. The topic is the event type.
//! let placed = Envelope::new("order.placed", "order-42", OrderPlaced { order_id: "order-42".into() });
//! publish_event(&placed, "order-42")?;
//! # Ok::<(), estore_shared::event::PublishEventError>(())
//! ```
//!
//! A handler (feature `handler`) reads the envelope with
//! `message.envelope::<OrderPlaced>()?`, which rejects a payload that is not one as
//! poison; an event caused by it is made with [`Envelope::caused_by`].

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::clock;
use crate::messaging::{PublishError, publish};

/// The `version` of a new envelope. A producer that changes the shape of an event
/// type's `data` incompatibly sets a higher one, so consumers can tell the shapes apart.
pub const FIRST_VERSION: u32 = 1;

/// An event: what happened (`event_type`, `data`), when, and what it belongs to.
///
/// Unknown fields are ignored when parsing, here and in `data` (unless `T` says
/// otherwise), so producers can add fields without breaking consumers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// A UUID v4, unique per event: what consumers deduplicate on.
    pub id: String,
    /// `order.placed`, `payment.completed`, ...; also the topic it is published to.
    #[serde(rename = "type")]
    pub event_type: String,
    /// RFC 3339 in UTC, whole seconds: `2026-11-26T02:40:00Z`.
    pub occurred_at: String,
    /// What the event belongs to across services: the order id through a whole saga.
    pub correlation_id: String,
    /// The id of the event that caused this one; `None` for one caused by a request.
    pub causation_id: Option<String>,
    pub version: u32,
    pub data: T,
}

impl<T> Envelope<T> {
    /// A new event, as caused by a request (no causation), happening now.
    pub fn new(event_type: impl Into<String>, correlation_id: impl Into<String>, data: T) -> Self {
        Envelope {
            id: uuid::Uuid::new_v4().to_string(),
            event_type: event_type.into(),
            occurred_at: clock::now_rfc3339(),
            correlation_id: correlation_id.into(),
            causation_id: None,
            version: FIRST_VERSION,
            data,
        }
    }

    /// A new event caused by `previous`: same saga (correlation id), with
    /// `previous.id` as its cause.
    pub fn caused_by<P>(previous: &Envelope<P>, event_type: impl Into<String>, data: T) -> Self {
        Envelope {
            causation_id: Some(previous.id.clone()),
            ..Envelope::new(event_type, previous.correlation_id.clone(), data)
        }
    }
}

impl<T: Serialize> Envelope<T> {
    /// The envelope as the JSON that goes on the bus.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

impl<T: DeserializeOwned> Envelope<T> {
    /// Parses an envelope whose `data` is a `T`, ignoring unknown fields.
    pub fn from_json(json: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(json)
    }
}

/// Why [`publish_event`] failed.
#[derive(Debug)]
pub enum PublishEventError {
    /// `data` did not serialise (a map with non-string keys, a failing `Serialize`).
    Encode(serde_json::Error),
    /// The publisher's error; `Unavailable` is worth a retry.
    Publish(PublishError),
}

impl fmt::Display for PublishEventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishEventError::Encode(e) => write!(f, "the event does not serialise: {e}"),
            PublishEventError::Publish(e) => write!(f, "the event was not published: {e:?}"),
        }
    }
}

impl std::error::Error for PublishEventError {}

/// Publishes `envelope` as JSON to the topic named by its type, keyed by `key` (the
/// aggregate's id: order, user or product), and returns the message id.
///
/// Inside a `Database::transaction` it leaves only if the transaction commits.
pub fn publish_event<T: Serialize>(envelope: &Envelope<T>, key: &str) -> Result<String, PublishEventError> {
    let payload = envelope.to_json().map_err(PublishEventError::Encode)?;
    publish(&envelope.event_type, Some(key.as_bytes()), &payload, &[]).map_err(PublishEventError::Publish)
}

#[cfg(feature = "handler")]
mod handler {
    use serde::de::DeserializeOwned;

    use super::Envelope;
    use crate::messaging::handler::{HandleError, Message};

    impl Message {
        /// The payload as an envelope with `data: T`. A payload that is not one is
        /// poison: retrying cannot fix it, so it is rejected (dead-lettered at once)
        /// with a reason that says where it was and what is wrong.
        pub fn envelope<T: DeserializeOwned>(&self) -> Result<Envelope<T>, HandleError> {
            Envelope::from_json(&self.payload).map_err(|e| {
                HandleError::Reject(format!(
                    "the message at {} partition {} offset {} is not a valid event envelope: {e}",
                    self.topic, self.partition, self.offset
                ))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct OrderPlaced {
        order_id: String,
        total: i64,
    }

    fn placed() -> Envelope<OrderPlaced> {
        Envelope::new("order.placed", "order-42", OrderPlaced { order_id: "order-42".into(), total: 129900 })
    }

    #[test]
    fn new_envelope_has_a_v4_id_a_utc_time_and_no_cause() {
        let event = placed();
        let id = uuid::Uuid::parse_str(&event.id).expect("a UUID");
        assert_eq!(id.get_version_num(), 4);
        assert_ne!(event.id, placed().id);
        assert!(event.occurred_at.ends_with('Z') && event.occurred_at.len() == "2026-11-26T02:40:00Z".len());
        assert_eq!(event.causation_id, None);
        assert_eq!(event.version, FIRST_VERSION);
    }

    #[test]
    fn caused_by_keeps_the_saga_and_names_the_cause() {
        let placed = placed();
        let reserved = Envelope::caused_by(&placed, "inventory.reserved", json!({"items": 1}));
        assert_eq!(reserved.correlation_id, "order-42");
        assert_eq!(reserved.causation_id.as_deref(), Some(placed.id.as_str()));
        assert_eq!(reserved.event_type, "inventory.reserved");
        assert_ne!(reserved.id, placed.id);
    }

    #[test]
    fn serialises_with_the_contract_field_names() {
        let event = placed();
        let json: Value = serde_json::from_slice(&event.to_json().expect("serialises")).expect("JSON");
        assert_eq!(
            json,
            json!({
                "id": event.id,
                "type": "order.placed",
                "occurred_at": event.occurred_at,
                "correlation_id": "order-42",
                "causation_id": null,
                "version": 1,
                "data": {"order_id": "order-42", "total": 129900},
            })
        );
        assert_eq!(Envelope::<OrderPlaced>::from_json(&event.to_json().expect("serialises")).expect("parses"), event);
    }

    #[test]
    fn parsing_ignores_unknown_fields_and_a_missing_cause() {
        let json = br#"{"id": "e1", "type": "order.placed", "occurred_at": "2026-11-26T02:40:00Z",
            "correlation_id": "order-42", "version": 2, "producer": "orders",
            "data": {"order_id": "order-42", "total": 5, "currency": "EUR"}}"#;
        let event = Envelope::<OrderPlaced>::from_json(json).expect("tolerant");
        assert_eq!(event.causation_id, None);
        assert_eq!(event.version, 2);
        assert_eq!(event.data, OrderPlaced { order_id: "order-42".into(), total: 5 });
    }

    #[test]
    fn parsing_names_what_is_missing() {
        let error = Envelope::<Value>::from_json(br#"{"id": "e1", "type": "x"}"#).expect_err("incomplete");
        assert!(error.to_string().contains("missing field `occurred_at`"), "{error}");
    }

    #[cfg(feature = "handler")]
    #[test]
    fn a_message_that_is_no_envelope_is_rejected_with_the_reason() {
        use crate::messaging::handler::{HandleError, Message};

        let message = |payload: &[u8]| Message {
            topic: "order.placed".into(),
            partition: 3,
            offset: 17,
            key: Some(b"order-42".to_vec()),
            payload: payload.to_vec(),
            headers: Vec::new(),
            timestamp_ms: 0,
            attempt: 1,
        };
        let good = message(&placed().to_json().expect("serialises"));
        assert_eq!(good.envelope::<OrderPlaced>().expect("an envelope").data.total, 129900);

        match message(b"not json").envelope::<OrderPlaced>() {
            Err(HandleError::Reject(reason)) => {
                assert!(reason.starts_with("the message at order.placed partition 3 offset 17 is not"), "{reason}");
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
}
