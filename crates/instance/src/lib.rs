//! One instance of a component: the capabilities composed into its state, the linker
//! that serves them, and the registry of the versions that serve.
//!
//! `capabilities.rs` is the one file where the host lists its capabilities, each once
//! in each of these:
//! - [`Capabilities`] opens each at start, from the manifest and the runtime config;
//! - [`ComponentContext`] holds what each grants one component;
//! - [`HostState`] holds each one's per-instance state;
//! - [`linker`] adds each one's interface, served by a view of its own state;
//! - [`ComponentContext::missing_grants`] names the grant a deployed version lacks.
//!
//! Every message, and every request to a WASI 0.2 component, gets a fresh
//! `Store<HostState>` built from the component's [`ComponentContext`], so nothing one
//! request leaves behind (memory, open resources, globals) is seen by the next. A WASI
//! 0.3 component's instances serve several requests, as Spin 4's do (the HTTP
//! trigger's `reuse`); [`HostState::continue_work`] points one at each request it
//! takes. The context holds only what the manifest granted.

mod capabilities;
pub mod exports;
pub mod registry;

use std::time::Duration;

use estore_engine::trace::TraceContext;

pub use capabilities::{Capabilities, ComponentContext, HostState, linker};

/// What one instance is made for, beyond its component's grants.
pub struct Work {
    /// The request or message this instance works for.
    pub trace: TraceContext,
    /// How many chained calls led to it: 0 for a request from the network or a
    /// message. Counted by the host, whatever headers the callers sent.
    pub chain_depth: u32,
    /// Its wall-clock deadline: its route's, else its component's.
    pub timeout: Duration,
}
