//! `GET /api/orders/{id}/events`: the order's status as server-sent events, so a
//! shopper's page follows the order without polling.
//!
//! The stream starts with the current status, then sends each change as it is
//! recorded. The history is read 50 ms after the last change, then less and less
//! often, at most a second apart: the saga moves a new order through several statuses
//! within a fraction of a second, and an order that waits for its carrier costs one
//! query a second. Each event's `id` is its position in the order's history:
//! a client that reconnects with `Last-Event-ID` (browsers do so by themselves)
//! gets every change after it, none twice. The stream ends after DELIVERED or
//! CANCELLED, and after [`STREAM_LIMIT`], which stays under the component's
//! request timeout so that the client reconnects instead of being cut off.
//!
//! Browsers' `EventSource` cannot send an `Authorization` header, so the token may
//! also come as `?access_token=`.

use std::time::{Duration, Instant};

use estore_shared::api::query_param;
use estore_shared::auth;
use estore_shared::problem::Problem;
use estore_shared::sql::Database;
use futures::SinkExt;
use serde::Serialize;
use spin_sdk::http::{Fields, OutgoingResponse, Request, ResponseOutparam};

use crate::order::{self, Change};

/// How soon the history is read again after a change; each quiet read doubles it.
const FIRST_POLL: Duration = Duration::from_millis(50);
/// The longest wait between two reads of the history.
const LONGEST_POLL: Duration = Duration::from_secs(1);
/// A comment line this often keeps proxies from closing a quiet stream.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// How long one stream lasts; `request_timeout_ms` of orders in spin.toml is longer.
const STREAM_LIMIT: Duration = Duration::from_secs(280);
/// How long a browser waits before reconnecting after the stream ends.
const RECONNECT_AFTER_MS: u32 = 1000;

/// One event's `data`.
#[derive(Serialize)]
struct StatusEvent<'a> {
    order_id: &'a str,
    #[serde(flatten)]
    change: &'a Change,
}

/// Answers the request with the order's status stream, or with a problem (401,
/// 404) before any of it is sent.
pub async fn serve(mut req: Request, order_id: &str, out: ResponseOutparam) {
    if req.header("authorization").is_none()
        && let Some(token) = query_param(req.query(), "access_token")
    {
        req.set_header("authorization", format!("Bearer {token}"));
    }
    let (db, first) = match open(&req, order_id) {
        Ok(opened) => opened,
        Err(problem) => return crate::respond(out, Err(problem)).await,
    };
    let headers = Fields::new();
    for (name, value) in [("content-type", "text/event-stream"), ("cache-control", "no-cache")] {
        if headers.append(&name.to_owned(), &value.as_bytes().to_vec()).is_err() {
            eprintln!("cannot set the stream's {name} header");
        }
    }
    let response = OutgoingResponse::new(headers);
    let mut body = response.take_body();
    out.set(response);

    let started = Instant::now();
    let mut last_write = started;
    let mut sent = format!("retry: {RECONNECT_AFTER_MS}\n\n").into_bytes();
    let mut last_position = 0;
    let mut changes = first;
    let mut poll = FIRST_POLL;
    loop {
        poll = if changes.is_empty() { (poll * 2).min(LONGEST_POLL) } else { FIRST_POLL };
        for change in &changes {
            sent.extend(event(order_id, change));
            last_position = change.position;
        }
        if !sent.is_empty() {
            if body.send(std::mem::take(&mut sent)).await.is_err() {
                return; // the client went away
            }
            last_write = Instant::now();
        }
        if changes.last().is_some_and(|change| change.status.is_final()) || started.elapsed() >= STREAM_LIMIT {
            return;
        }
        if last_write.elapsed() >= KEEPALIVE_INTERVAL {
            sent.extend(b": keep-alive\n\n");
        }
        std::thread::sleep(poll);
        changes = match order::history_after(&db, order_id, last_position) {
            Ok(changes) => changes,
            Err(e) => {
                eprintln!("the status stream of order {order_id} stops: {e}");
                return;
            }
        };
    }
}

/// Checks the caller may see the order, and finds what to send first: every
/// change after the client's `Last-Event-ID`, or else the current status.
fn open(req: &Request, order_id: &str) -> Result<(Database, Vec<Change>), Problem> {
    let caller = auth::caller(req)?;
    let db = Database::open("default")?;
    let order = order::find(&db, order_id)?
        .filter(|order| caller.may_access(&order.user_id))
        .ok_or_else(|| Problem::not_found(format!("no order {order_id}")))?;
    let resume_after = req.header("last-event-id").and_then(|v| v.as_str()).and_then(|v| v.trim().parse::<i64>().ok());
    let first = match resume_after {
        Some(position) => order::history_after(&db, order_id, position)?,
        None => order.history.last().cloned().into_iter().collect(),
    };
    Ok((db, first))
}

/// One change as a server-sent event.
fn event(order_id: &str, change: &Change) -> Vec<u8> {
    let data = serde_json::to_string(&StatusEvent { order_id, change })
        .unwrap_or_else(|_| format!(r#"{{"order_id":"{order_id}","status":"{}"}}"#, change.status.as_str()));
    format!("id: {}\nevent: status\ndata: {data}\n\n", change.position).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::Status;

    #[test]
    fn an_event_carries_its_position_as_id_and_the_change_as_data() {
        let change = Change { position: 3, status: Status::Cancelled, reason: Some("card declined".into()), at: "2026-11-26T02:40:00Z".into() };
        let text = String::from_utf8(event("o-1", &change)).unwrap_or_default();
        assert_eq!(
            text,
            "id: 3\nevent: status\ndata: {\"order_id\":\"o-1\",\"status\":\"CANCELLED\",\"reason\":\"card declined\",\"at\":\"2026-11-26T02:40:00Z\"}\n\n"
        );
    }
}
