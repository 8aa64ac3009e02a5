//! Publishing to the event bus (`estore:platform/publisher`) (stub: being written).

use crate::bindings::message_types;
use crate::bindings::publisher::{Error, Header, Host};
use crate::store::HostState;

impl message_types::Host for HostState {}

impl Host for HostState {
    async fn publish(
        &mut self,
        _topic: String,
        _key: Option<Vec<u8>>,
        _payload: Vec<u8>,
        _headers: Vec<Header>,
    ) -> wasmtime::Result<Result<String, Error>> {
        Ok(Err(Error::Other("not written yet".into())))
    }
}
