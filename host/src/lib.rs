//! `estore`: a WebAssembly component host for Spin-format applications.
//!
//! This crate is the binary and what only the binary does: [`app`] assembles an
//! application from the platform's crates (the manifest, the runtime config, the
//! engine, the bus, the capabilities composed by `estore-instance`, the HTTP and
//! Kafka triggers) and serves it; [`admin`] and [`deployments`] replace one
//! component's version while the host runs, and [`cluster`] carries a deploy to every
//! host sharing the PostgreSQL database; [`builder`] and [`watch`] are `estore build`
//! and `estore watch`; [`state_dir`] keeps a second host off this one's embedded
//! state. `src/main.rs` is the command line; a library so the integration tests can
//! drive the admin client directly.

pub mod admin;
pub mod app;
pub mod builder;
pub mod cluster;
pub mod deployments;
pub mod state_dir;
pub mod watch;
