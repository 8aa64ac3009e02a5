//! End-to-end tests of the Electronic Store: the real `estore` serving the real root
//! `spin.toml`, with every store component built once per run by the real
//! `estore build`, driven over HTTP on loopback as a client would.

#[path = "../platform/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "../platform/kafka.rs"]
mod kafka;
#[path = "../platform/loadgen.rs"]
mod loadgen;
#[path = "../platform/postgres.rs"]
#[allow(dead_code)]
mod postgres;
#[path = "../platform/smtp.rs"]
#[allow(dead_code)]
mod smtp;
#[path = "../platform/watched.rs"]
#[allow(dead_code)]
mod watched;

mod support;

mod bench;
mod browser;
mod cart;
mod catalog;
mod cluster;
mod console;
mod guarantees;
mod inventory;
mod notifications;
mod orders;
mod payments;
mod shipping;
mod traces;
mod users;
