//! Integration tests: the real `estore` serving real components over real HTTP on an
//! ephemeral loopback port.

use estore_test_support::{harness, kafka, loadgen, postgres, smtp, watched};


mod bench;
mod bench_http;
mod capabilities;
mod compose;
mod email;
mod events;
mod hostile_clients;
mod hostile_data;
mod hot_swap;
mod kafka_bus;
mod limits;
mod manifest_errors;
mod observability;
mod outbound;
mod routing;
mod secrets;
mod shutdown;
mod sql;
mod wasi_p3;
