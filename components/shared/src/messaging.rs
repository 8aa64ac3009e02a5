//! Publishing events, and (with the `handler` feature) handling them.
//!
//! ```no_run
//! use estore_shared::messaging::publish;
//!
//! // Inside a `Database::transaction`, this goes out only if the transaction commits.
//! let id = publish("orders", Some(b"order-42"), br#"{"type":"OrderPlaced"}"#, &[]);
//! ```
//!
//! A component that handles messages enables the `handler` feature and exports its
//! handler:
//!
//! ```ignore
//! use estore_shared::messaging::handler::{HandleError, Message, MessageHandler};
//!
//! struct Events;
//! impl MessageHandler for Events {
//!     fn handle(message: Message) -> Result<(), HandleError> { Ok(()) }
//! }
//! estore_shared::messaging::handler::export_message_handler!(Events);
//! ```

use crate::bindings::estore::platform::message_types::Header;
pub use crate::bindings::estore::platform::publisher::Error as PublishError;

/// Publishes `payload` to `topic` (which must be in the component's
/// `allowed_publish_topics`); returns the message id. Messages with the same key are
/// handled in the order they were published.
pub fn publish(topic: &str, key: Option<&[u8]>, payload: &[u8], headers: &[(&str, &[u8])]) -> Result<String, PublishError> {
    let headers: Vec<Header> =
        headers.iter().map(|(name, value)| Header { name: (*name).to_owned(), value: value.to_vec() }).collect();
    crate::bindings::estore::platform::publisher::publish(topic, key, payload, &headers)
}

/// The export a `[[trigger.kafka]]` calls, generated for world
/// `estore:platform/message-service`. Behind a feature because a component that
/// generates it must export it.
#[cfg(feature = "handler")]
pub mod handler {
    wit_bindgen::generate!({
        world: "estore:platform/message-service",
        path: "../../wit",
        with: {
            "estore:platform/sql@0.1.0": crate::bindings::estore::platform::sql,
            "estore:platform/publisher@0.1.0": crate::bindings::estore::platform::publisher,
            "estore:platform/message-types@0.1.0": crate::bindings::estore::platform::message_types,
            "estore:platform/mailer@0.1.0": crate::bindings::estore::platform::mailer,
        },
        pub_export_macro: true,
        export_macro_name: "export_message_handler",
        default_bindings_module: "estore_shared::messaging::handler",
    });

    pub use exports::estore::platform::message_handler::{Error as HandleError, Guest as MessageHandler, Message};

    /// A database error while handling is worth a retry (the database may be back by
    /// then); a handler that knows better maps it to `reject` itself.
    impl From<crate::sql::Error> for HandleError {
        fn from(e: crate::sql::Error) -> Self {
            HandleError::Retry(e.to_string())
        }
    }

    /// An event that could not be published (the bus is away, or it does not
    /// serialise) is worth a retry: the handler's transaction rolls back with it.
    impl From<crate::event::PublishEventError> for HandleError {
        fn from(e: crate::event::PublishEventError) -> Self {
            HandleError::Retry(e.to_string())
        }
    }

    impl Message {
        /// The value of header `name` (case-insensitive), if present.
        pub fn header(&self, name: &str) -> Option<&[u8]> {
            self.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_slice())
        }
    }
}
