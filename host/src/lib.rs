//! `estore`: a WebAssembly component host for Spin-format applications.
//!
//! A library so the integration tests can drive parts (the event bus backends)
//! directly; `src/main.rs` is the command line.
//!
//! The layout follows the architecture: [`manifest`] and [`runtime_config`] say what
//! to run and with what; [`engine`] compiles and caches components; [`registry`] holds
//! them linked and ready; [`trigger`] turns outside events into calls; [`capability`]
//! is everything a component may reach, each granted by the manifest alone;
//! [`admin`] and [`deployments`] replace one component's version while the host runs,
//! and [`cluster`] carries a deploy to every host sharing the PostgreSQL database.
//! [`state_dir`] keeps a second host off this one's embedded state.

pub mod admin;
pub mod app;
pub mod bindings;
pub mod builder;
pub mod bus;
pub mod capability;
pub mod cluster;
pub mod deployments;
pub mod engine;
pub use estore_manifest as manifest;
pub mod metrics;
pub mod redact;
pub mod registry;
pub mod runtime_config;
pub mod state_dir;
pub mod store;
pub mod telemetry;
pub mod trace;
pub mod trigger;
pub mod watch;
