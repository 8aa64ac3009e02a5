//! What the integration tests share: the real `estore` started on real components
//! ([`harness`]), and the real servers the tests start on loopback with throwaway data
//! ([`postgres`], [`kafka`], [`smtp`], each under the [`watched`] watchdog so none
//! outlives its test), plus an open-loop load generator ([`loadgen`]) for the
//! benchmarks.

pub mod harness;
pub mod kafka;
pub mod loadgen;
pub mod postgres;
pub mod smtp;
pub mod watched;
