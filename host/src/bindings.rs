//! Host-side bindings for the interfaces in the top-level `wit/` folder.
//!
//! Generated once here so every capability module implements the same types; WASI and
//! wasi:http come from wasmtime-wasi and wasmtime-wasi-http instead.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "estore:platform/platform",
    imports: { default: async | trappable },
    with: {
        "fermyon:spin/key-value.store": crate::capability::key_value::OpenStore,
        "estore:platform/sql.connection": crate::capability::sql::Connection,
    },
});

pub use self::estore::platform::{mailer, message_types, operations, publisher, sql};
pub use self::fermyon::spin::{key_value, variables};

/// The export a `[[trigger.kafka]]` calls: `estore:platform/message-handler`.
pub mod message_trigger {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "estore:platform/message-trigger",
        exports: { default: async },
        with: { "estore:platform/message-types": crate::bindings::message_types },
    });

    pub use exports::estore::platform::message_handler::{Error, Message};
}
