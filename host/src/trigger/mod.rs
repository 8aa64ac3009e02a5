//! Triggers: the ways work reaches a component. Each trigger turns an outside event
//! into a call of a component export on a fresh instance.

pub mod http;
pub mod kafka;
