//! Capabilities: what a component can reach beyond its own memory.
//!
//! Each module is one capability with one way in: it resolves its part of the
//! manifest and runtime config at start (failing there, with the key at fault, rather
//! than at the first request) and implements the component-facing interface on
//! [`HostState`](crate::store::HostState), refusing anything the grant does not cover.

pub mod email;
pub mod key_value;
pub mod messaging;
pub mod operations;
pub mod outbound_http;
pub mod sql;
pub mod variables;
pub mod wasi;

use wasmtime::component::{HasSelf, Linker};

use crate::store::HostState;

/// Every interface the host implements, in one linker shared by all components.
/// Linking is not the grant: a component may import key-value and still be refused
/// every store it was not given.
pub fn linker(engine: &wasmtime::Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    crate::bindings::Platform::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)?;
    Ok(linker)
}
