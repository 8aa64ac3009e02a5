//! The engine core: what every instance of every component shares, whatever it may
//! reach.
//!
//! - [`compile`]: the wasmtime engine, and compiled components cached on disk;
//! - [`limits`]: an instance's deadline and memory cap, and how a stop is explained;
//! - [`trace`], [`telemetry`], [`metrics`] and [`redact`]: what the host tells its
//!   operator about the work it does, and what it keeps out of that.
//!
//! Nothing here knows a capability or a trigger: they build on this crate.

pub mod compile;
pub mod limits;
pub mod metrics;
pub mod redact;
pub mod telemetry;
pub mod trace;

pub use compile::{Engine, EngineSettings, LoadedWasm};
