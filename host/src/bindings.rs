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

pub use estore::platform::{message_types, publisher, sql};
pub use fermyon::spin::{key_value, variables};
