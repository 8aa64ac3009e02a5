//! Dead letters: where the Kafka trigger puts a message it gave up on, and what it
//! adds to say why. The operations capability reads and replays them.

/// Headers a dead-lettered message gains.
pub const DLQ_ERROR: &str = "x-estore-error";
pub const DLQ_COMPONENT: &str = "x-estore-component";
pub const DLQ_ATTEMPTS: &str = "x-estore-attempts";
pub const DLQ_ORIGIN: &str = "x-estore-origin";

/// The topic the dead letters of `topic` go to.
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}
