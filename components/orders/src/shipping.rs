//! What orders asks of shipping before it calls off an order shipping may already be
//! acting on (CONFIRMED): to stop its parcel. shipping owns the parcel and decides in
//! one transaction of its own between handing it over and stopping it, so its answer
//! holds: a stopped parcel never leaves, and a parcel that has left is never refunded.

use estore_shared::api::chain;
use estore_shared::problem::Problem;
use serde::Serialize;
use spin_sdk::http::{Method, Request};

/// What shipping answered.
pub enum Stop {
    /// No parcel will leave for the order (none was made, or it stays home).
    Stopped,
    /// The parcel is with the carrier; shipping's words for it.
    Left(String),
}

#[derive(Serialize)]
struct StopRequest<'a> {
    reason: &'a str,
}

/// Asks shipping (`POST /internal/shipments/{order_id}/stop`, a private path) to stop
/// the order's parcel; `reason` is the cancellation's, for shipment.stopped.
pub fn stop_parcel(req: &Request, order_id: &str, reason: &str) -> Result<Stop, Problem> {
    let url = format!("http://shipping.spin.internal/internal/shipments/{order_id}/stop");
    let answer = chain::call(req, "shipping", Method::Post, &url, Some(&StopRequest { reason }))?;
    match answer.status {
        200 => Ok(Stop::Stopped),
        409 => Ok(Stop::Left(answer.problem().detail)),
        _ => Err(answer.unavailable()),
    }
}
