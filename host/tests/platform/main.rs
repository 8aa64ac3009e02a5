//! Integration tests: the real `estore` serving real components over real HTTP on an
//! ephemeral loopback port.

mod harness;

mod bench;
mod bench_http;
mod capabilities;
mod compose;
mod email;
mod events;
mod hostile_clients;
mod hostile_data;
mod hot_swap;
mod kafka;
mod kafka_bus;
mod limits;
mod loadgen;
mod manifest_errors;
mod observability;
mod outbound;
mod postgres;
mod routing;
mod secrets;
mod shutdown;
mod smtp;
mod sql;
mod watched;
