//! End-to-end tests of the Electronic Store: the real `estore` serving the real root
//! `spin.toml`, with every store component built once per run by the real
//! `estore build`, driven over HTTP on loopback as a client would.

use estore_test_support::{harness, kafka, loadgen, postgres, smtp};

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
