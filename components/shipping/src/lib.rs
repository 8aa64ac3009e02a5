//! shipping: a shipment per confirmed order, and its tracking. shipping owns the
//! parcel, so it alone decides whether a parcel leaves or stays: each decision is one
//! transaction that takes the order's turn first (see `take_turn`), so a stop and a
//! dispatch of the same order never both happen.
//!
//! - order.confirmed: the order's items are handed to a carrier chosen by the
//!   destination country, with a new tracking number (order.shipped), once per order,
//!   unless its parcel was stopped first. With variable `shipping_dispatch =
//!   "on_pickup"` the parcel waits for the carrier's `PICKED_UP` instead, so a paid
//!   order can still be cancelled meanwhile.
//! - `POST /internal/shipments/{order_id}/stop` (private: reached only by chaining,
//!   from orders cancelling an order from CONFIRMED on): a parcel not made yet never
//!   will be, one waiting for pickup stays home (200, and shipment.stopped once); one
//!   with the carrier has left (409 saying how). Asked again, it answers the same.
//! - `GET /api/shipments/{order_id}`: the shipment and its tracking history, for the
//!   order's customer or an admin.
//! - `POST /api/shipments/{order_id}/events`: the carrier's webhook, signed by the
//!   carrier that carries the parcel (webhook: HMAC-SHA256, five minutes, no
//!   replays), reporting PICKED_UP, OUT_FOR_DELIVERY and DELIVERED; the first report
//!   after a wait for pickup publishes order.shipped, DELIVERED publishes
//!   order.delivered. A status only moves forward: a repeat of the current one (a
//!   carrier retrying) answers 200 and changes nothing, an older one 409, and a
//!   stopped parcel is never picked up (409).

mod tracking;
mod webhook;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

use estore_shared::api::{self, Validator, match_path};
use estore_shared::auth;
use estore_shared::clock;
use estore_shared::event::{Envelope, publish_event};
use estore_shared::messaging::handler::{HandleError, Message, MessageHandler};
use estore_shared::params;
use estore_shared::problem::Problem;
use estore_shared::sql::{Database, Error, FromRow, Row};

use tracking::{Dispatch, Status, Step};

/// The longest description a carrier may give a tracking event.
const MAX_DESCRIPTION: usize = 200;

// ---- HTTP -----------------------------------------------------------------------

#[http_component]
fn handle(req: Request) -> Result<Response, Problem> {
    let path = req.path();
    if let Some(params) = match_path("/api/shipments/:order_id", path) {
        return match req.method() {
            Method::Get => get_shipment(&req, &params["order_id"]),
            _ => Err(Problem::method_not_allowed("GET")),
        };
    }
    if let Some(params) = match_path("/api/shipments/:order_id/events", path) {
        return match req.method() {
            Method::Post => carrier_report(&req, &params["order_id"]),
            _ => Err(Problem::method_not_allowed("POST")),
        };
    }
    // Only chaining reaches this path: no public route of the manifest leads here.
    if let Some(params) = match_path("/internal/shipments/:order_id/stop", path) {
        return match req.method() {
            Method::Post => stop_parcel(&req, &params["order_id"]),
            _ => Err(Problem::method_not_allowed("POST")),
        };
    }
    Err(Problem::not_found(format!("no such path: {path}")))
}

/// A shipment as recorded, and (with its address and tracking events added by
/// [`ShipmentView`]) as the API answers it.
#[derive(Serialize)]
struct Shipment {
    id: String,
    order_id: String,
    user_id: String,
    carrier: String,
    tracking_number: String,
    status: String,
    /// The order's address as JSON text.
    #[serde(skip)]
    shipping_address: String,
    /// RFC 3339.
    created_at: String,
}

impl FromRow for Shipment {
    fn from_row(row: &Row<'_>) -> Result<Self, Error> {
        Ok(Shipment {
            id: row.get("id")?,
            order_id: row.get("order_id")?,
            user_id: row.get("user_id")?,
            carrier: row.get("carrier")?,
            tracking_number: row.get("tracking_number")?,
            status: row.get("status")?,
            shipping_address: row.get("shipping_address")?,
            created_at: clock::rfc3339(row.get("created_at")?),
        })
    }
}

#[derive(Serialize)]
struct ShipmentView {
    #[serde(flatten)]
    shipment: Shipment,
    shipping_address: Json,
    events: Vec<TrackingEvent>,
}

#[derive(Serialize)]
struct TrackingEvent {
    status: String,
    at: String,
    description: String,
}

impl FromRow for TrackingEvent {
    fn from_row(row: &Row<'_>) -> Result<Self, Error> {
        Ok(TrackingEvent {
            status: row.get("status")?,
            at: clock::rfc3339(row.get("at")?),
            description: row.get("description")?,
        })
    }
}

fn find_shipment(db: &Database, order_id: &str) -> Result<Option<Shipment>, Error> {
    db.query_optional_as("SELECT * FROM shipments WHERE order_id = ?", params![order_id])
}

fn view(db: &Database, shipment: Shipment) -> Result<ShipmentView, Problem> {
    let events = db.query_as(
        "SELECT status, description, at FROM tracking_events WHERE shipment_id = ? ORDER BY seq",
        params![shipment.id.as_str()],
    )?;
    let shipping_address = serde_json::from_str(&shipment.shipping_address).map_err(|e| {
        eprintln!("the address of shipment {} is not JSON: {e}", shipment.id);
        Problem::internal()
    })?;
    Ok(ShipmentView { shipment, shipping_address, events })
}

/// `GET /api/shipments/{order_id}`: someone else's shipment is as missing as none.
fn get_shipment(req: &Request, order_id: &str) -> Result<Response, Problem> {
    let caller = auth::caller(req)?;
    let db = Database::open("default")?;
    let shipment = find_shipment(&db, order_id)?
        .filter(|shipment| caller.may_access(&shipment.user_id))
        .ok_or_else(|| Problem::not_found(format!("no shipment for order {order_id}")))?;
    Ok(api::json(200, &view(&db, shipment)?))
}

#[derive(Deserialize)]
struct Report {
    status: String,
    description: Option<String>,
}

/// `data` of order.delivered.
#[derive(Serialize)]
struct Delivered<'a> {
    order_id: &'a str,
    user_id: &'a str,
}

/// `POST /api/shipments/{order_id}/events {status, description?}`, from the carrier.
fn carrier_report(req: &Request, order_id: &str) -> Result<Response, Problem> {
    let now = clock::now_unix();
    let signed = webhook::verify(req, order_id, now)?;
    let report: Report = api::parse_json(req)?;
    let reported = Status::reportable(&report.status);
    let description = report.description.as_deref().map(str::trim).filter(|d| !d.is_empty());
    Validator::new()
        .check("status", reported.is_some(), "must be PICKED_UP, OUT_FOR_DELIVERY or DELIVERED")
        .max_len("description", description.unwrap_or_default(), MAX_DESCRIPTION)
        .finish()?;
    let reported = reported.ok_or_else(Problem::internal)?; // checked just above
    let description = description.unwrap_or(reported.default_description());
    let db = Database::open("default")?;
    db.transaction(|tx| {
        webhook::record(tx, &signed, now)?;
        // Another carrier's parcel is none of this one's business.
        let shipment = find_shipment(tx, order_id)?
            .filter(|shipment| shipment.carrier == signed.carrier)
            .ok_or_else(|| Problem::not_found(format!("no shipment for order {order_id}")))?;
        let current = Status::parse(&shipment.status).ok_or_else(|| {
            eprintln!("shipment {} has an unknown status {:?}", shipment.id, shipment.status);
            Problem::internal()
        })?;
        match tracking::step(current, reported) {
            Step::Repeat => return Ok(()),
            Step::Backwards => {
                return Err(Problem::conflict(format!(
                    "the shipment is {} already; it cannot go back to {}",
                    current.as_str(),
                    reported.as_str()
                )));
            }
            Step::Cancelled => {
                return Err(Problem::conflict("the shipment was cancelled with its order"));
            }
            Step::Advance => {}
        }
        // Guarded by the status read, so two reports at once cannot both advance it.
        let moved = tx.execute(
            "UPDATE shipments SET status = ? WHERE id = ? AND status = ?",
            params![reported.as_str(), shipment.id.as_str(), current.as_str()],
        )?;
        if moved == 0 {
            return Err(Problem::conflict("the shipment changed meanwhile; report again"));
        }
        add_tracking_event(tx, &shipment.id, reported, description)?;
        if current == Status::AwaitingPickup {
            let items: String = tx
                .query_one_as::<ItemsColumn>("SELECT items FROM shipments WHERE id = ?", params![shipment.id.as_str()])?
                .0;
            let items: Vec<Json> = serde_json::from_str(&items).map_err(|e| {
                eprintln!("the items of shipment {} are not JSON: {e}", shipment.id);
                Problem::internal()
            })?;
            publish_shipped(&shipment, &items, None::<&Envelope<()>>).map_err(|e| {
                eprintln!("order.shipped for order {order_id} was not published: {e}");
                Problem::new(503, "the pickup cannot be recorded now; report again")
            })?;
        }
        if reported == Status::Delivered {
            let delivered = Delivered { order_id, user_id: &shipment.user_id };
            publish_event(&Envelope::new("order.delivered", order_id, delivered), order_id).map_err(|e| {
                eprintln!("order.delivered for order {order_id} was not published: {e}");
                Problem::new(503, "the delivery cannot be recorded now; report again")
            })?;
        }
        Ok(())
    })?;
    let shipment = find_shipment(&db, order_id)?.ok_or_else(Problem::internal)?;
    Ok(api::json(200, &view(&db, shipment)?))
}

fn add_tracking_event(tx: &Database, shipment_id: &str, status: Status, description: &str) -> Result<(), Error> {
    tx.execute(
        "INSERT INTO tracking_events (shipment_id, seq, status, description, at) \
         SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ? FROM tracking_events WHERE shipment_id = ?",
        params![shipment_id, status.as_str(), description, clock::now_unix(), shipment_id],
    )?;
    Ok(())
}

// ---- Stopping a parcel ----------------------------------------------------------

/// What orders sends when its customer (or the store) cancels an order.
#[derive(Deserialize)]
struct StopRequest {
    reason: String,
}

/// The answer to a stop that holds: no parcel leaves for the order.
#[derive(Serialize)]
struct StopAnswer<'a> {
    order_id: &'a str,
    status: &'static str,
}

/// `data` of shipment.stopped.
#[derive(Serialize)]
struct Stopped<'a> {
    order_id: &'a str,
    reason: &'a str,
}

/// `POST /internal/shipments/{order_id}/stop {reason}`: 200 once no parcel will leave
/// for the order, 409 if one has. The first stop that holds publishes shipment.stopped
/// (through the outbox, with the decision), so orders cancels the order even if the
/// caller never hears this answer.
fn stop_parcel(req: &Request, order_id: &str) -> Result<Response, Problem> {
    let input: StopRequest = api::parse_json(req)?;
    let db = Database::open("default")?;
    db.transaction(|tx| {
        if stop(tx, order_id)? {
            let stopped = Stopped { order_id, reason: &input.reason };
            publish_event(&Envelope::new("shipment.stopped", order_id, stopped), order_id)?;
        }
        Ok::<_, Problem>(())
    })?;
    Ok(api::json(200, &StopAnswer { order_id, status: "STOPPED" }))
}

/// Stops the order's parcel in `tx`: `true` if this stopped it, `false` if it was
/// stopped already, a 409 if it has left.
fn stop(tx: &Database, order_id: &str) -> Result<bool, Problem> {
    let stopped_before = take_turn(tx, order_id)?;
    // The carrier's webhook does not take the order's turn: a pickup can land between
    // reading the shipment and stopping it. The stop is guarded by the status read, and
    // a shipment only moves forward, so looking again ends.
    loop {
        let Some(shipment) = find_shipment(tx, order_id)? else {
            if !stopped_before {
                tx.execute("UPDATE orders SET stopped_at = ? WHERE order_id = ?", params![clock::now_unix(), order_id])?;
            }
            return Ok(!stopped_before);
        };
        match Status::parse(&shipment.status) {
            Some(Status::Cancelled) => return Ok(false),
            Some(Status::AwaitingPickup) => {
                let stopped = tx.execute(
                    "UPDATE shipments SET status = ? WHERE id = ? AND status = ?",
                    params![Status::Cancelled.as_str(), shipment.id.as_str(), Status::AwaitingPickup.as_str()],
                )?;
                if stopped == 1 {
                    add_tracking_event(tx, &shipment.id, Status::Cancelled, Status::Cancelled.default_description())?;
                    return Ok(true);
                }
            }
            _ => {
                return Err(Problem::conflict(format!(
                    "the parcel has left: {} with {}, tracking number {}",
                    shipment.status, shipment.carrier, shipment.tracking_number
                )));
            }
        }
    }
}

/// Takes the order's turn: writes its row first in the transaction, so that on
/// PostgreSQL a second decision about the same order (its order.confirmed and a stop,
/// at once) waits for this one to end and then sees what it did. Answers whether the
/// parcel was stopped before shipping made it.
fn take_turn(tx: &Database, order_id: &str) -> Result<bool, Error> {
    tx.execute(
        "INSERT INTO orders (order_id) VALUES (?) ON CONFLICT (order_id) DO UPDATE SET order_id = excluded.order_id",
        params![order_id],
    )?;
    let rows = tx.query("SELECT stopped_at FROM orders WHERE order_id = ?", params![order_id])?;
    let row = rows.get(0).ok_or(Error::NoRows)?;
    Ok(row.get::<Option<i64>>("stopped_at")?.is_some())
}

// ---- Events ---------------------------------------------------------------------

/// An order's address (components/README.md): the country chooses the carrier; the
/// rest is kept as given.
#[derive(Deserialize)]
struct Address {
    country: String,
    #[serde(flatten)]
    rest: serde_json::Map<String, Json>,
}

/// What shipping reads of order.confirmed.
#[derive(Deserialize)]
struct Confirmed {
    order_id: String,
    user_id: String,
    items: Vec<Json>,
    shipping_address: Address,
}

/// `data` of order.shipped.
#[derive(Serialize)]
struct Shipped<'a> {
    order_id: &'a str,
    user_id: &'a str,
    carrier: &'a str,
    tracking_number: &'a str,
    items: &'a [Json],
}

struct ItemsColumn(String);

impl FromRow for ItemsColumn {
    fn from_row(row: &Row<'_>) -> Result<Self, Error> {
        Ok(ItemsColumn(row.get("items")?))
    }
}

struct Events;

impl MessageHandler for Events {
    fn handle(message: Message) -> Result<(), HandleError> {
        let db = Database::open("default")?;
        match message.topic.as_str() {
            "order.confirmed" => db.transaction(|tx| ship(tx, &message.envelope()?)),
            topic => Err(HandleError::Reject(format!("shipping does not handle {topic}"))),
        }
    }
}

estore_shared::messaging::handler::export_message_handler!(Events);

/// When parcels leave (variable `shipping_dispatch`). A value that is not one is the
/// deployment's bug: every order.confirmed waits (retried) until it is fixed.
fn dispatch() -> Result<Dispatch, HandleError> {
    let text = spin_sdk::variables::get("shipping_dispatch")
        .map_err(|e| HandleError::Retry(format!("the variable shipping_dispatch is not available: {e}")))?;
    Dispatch::parse(&text).ok_or_else(|| {
        HandleError::Retry(format!("shipping_dispatch is `{text}`; it must be on_confirmation or on_pickup"))
    })
}

/// order.confirmed: a shipment, once, unless the parcel was stopped first; handed to
/// its carrier now or at pickup.
fn ship(tx: &Database, confirmed: &Envelope<Confirmed>) -> Result<(), HandleError> {
    let order = &confirmed.data;
    if take_turn(tx, &order.order_id)? || find_shipment(tx, &order.order_id)?.is_some() {
        return Ok(());
    }
    let status = dispatch()?.first_status();
    let (carrier, prefix) = tracking::carrier_for(&order.shipping_address.country);
    let tracking_number = tracking::tracking_number(prefix, uuid::Uuid::new_v4().as_u128());
    let id = uuid::Uuid::new_v4().to_string();
    let mut address = order.shipping_address.rest.clone();
    address.insert("country".into(), Json::String(order.shipping_address.country.clone()));
    let address = Json::Object(address).to_string();
    let items = Json::Array(order.items.clone()).to_string();
    tx.execute(
        "INSERT INTO shipments (id, order_id, user_id, carrier, tracking_number, status, shipping_address, items, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            id.as_str(),
            order.order_id.as_str(),
            order.user_id.as_str(),
            carrier,
            tracking_number.as_str(),
            status.as_str(),
            address.as_str(),
            items,
            clock::now_unix()
        ],
    )
    // A tracking number drawn twice: the retry draws another.
    .map_err(|e| HandleError::Retry(e.to_string()))?;
    let description = match status {
        Status::Shipped => format!("handed to {carrier}"),
        _ => status.default_description().to_owned(),
    };
    add_tracking_event(tx, &id, status, &description)?;
    if status == Status::Shipped {
        let shipment = find_shipment(tx, &order.order_id)?.ok_or(Error::NoRows)?;
        publish_shipped(&shipment, &order.items, Some(confirmed))?;
    }
    Ok(())
}

/// order.shipped for `shipment` (inside the transaction that shipped it, so through
/// the outbox): caused by `cause` when an event shipped it.
fn publish_shipped<C>(
    shipment: &Shipment,
    items: &[Json],
    cause: Option<&Envelope<C>>,
) -> Result<(), estore_shared::event::PublishEventError> {
    let shipped = Shipped {
        order_id: &shipment.order_id,
        user_id: &shipment.user_id,
        carrier: &shipment.carrier,
        tracking_number: &shipment.tracking_number,
        items,
    };
    let event = match cause {
        Some(cause) => Envelope::caused_by(cause, "order.shipped", shipped),
        None => Envelope::new("order.shipped", shipment.order_id.as_str(), shipped),
    };
    publish_event(&Envelope { correlation_id: shipment.order_id.clone(), ..event }, &shipment.order_id)?;
    Ok(())
}
