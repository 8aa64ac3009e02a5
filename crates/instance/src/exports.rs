//! The exports the triggers call, checked when a version is loaded (see
//! [`crate::registry`]): `wasi:http/incoming-handler` comes from wasmtime-wasi-http,
//! and the Kafka trigger's `estore:platform/message-handler` is bound here.

/// The export a `[[trigger.kafka]]` calls: `estore:platform/message-handler`.
pub mod message_trigger {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "estore:platform/message-trigger",
        exports: { default: async },
        with: { "estore:platform/message-types": estore_messaging::message_types },
    });

    pub use estore_messaging::message_types::Header;
    pub use exports::estore::platform::message_handler::{Error, Message};
}
