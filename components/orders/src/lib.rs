//! The store's orders: checkout, and the order's side of the saga.
//!
//! Routes (a customer sees only their own orders; an admin sees all):
//! - `POST /api/orders` checks out the caller's cart: prices from catalog now, the
//!   card turned into payments' token, the order stored as PENDING and
//!   `order.placed` published in one transaction, then the cart emptied. 202. With an
//!   `Idempotency-Key`, a repeat gets the first answer and places nothing
//!   ([`idempotency`]).
//! - `GET /api/orders` (paged, newest first, `?status=`), `GET /api/orders/{id}`.
//! - `POST /api/orders/{id}/cancel` until the parcel has left. From CONFIRMED on,
//!   shipping may be acting on the order: it is asked to stop the parcel first
//!   ([`shipping`]), and only a stopped parcel lets the order be cancelled; one that
//!   has left is a 409 saying so, with nothing refunded or released.
//! - `GET /api/orders/{id}/events`: the live status stream ([`stream`]).
//!
//! Events, keyed by the order id, each moving the order on and recording the
//! change in its history (components/README.md has the whole saga):
//! - inventory.reserved → RESERVED; inventory.rejected → CANCELLED (order.cancelled);
//! - payment.completed → CONFIRMED (order.confirmed); payment.failed → CANCELLED
//!   (order.cancelled, which releases the stock); payment.refunded is noted;
//! - shipment.stopped → CANCELLED (order.cancelled), if the cancel that stopped the
//!   parcel did not get to record it;
//! - order.shipped → SHIPPED with carrier and tracking; order.delivered → DELIVERED.
//!
//! An event that no longer applies (payment.completed for an order the customer
//! cancelled meanwhile) is acknowledged: payments refunds what it charged for a
//! cancelled order, and inventory releases what it held.

mod checkout;
mod idempotency;
mod order;
mod shipping;
mod stream;

use estore_shared::api::{self, Page, PageRequest, chain, match_path, query_param};
use estore_shared::auth::{self, Claims};
use estore_shared::clock;
use estore_shared::event::{Envelope, PublishEventError, publish_event};
use estore_shared::messaging::handler::{HandleError, Message, MessageHandler};
use estore_shared::money::Money;
use estore_shared::params;
use estore_shared::problem::{FieldError, Problem};
use estore_shared::sql::{Database, Value};
use serde::{Deserialize, Serialize};
use spin_sdk::http::{IntoResponse, Method, OutgoingResponse, Request, Response, ResponseOutparam};
use spin_sdk::http_component;

use crate::checkout::CheckoutRequest;
use crate::order::{Address, Item, Order, PaymentMethod, PaymentStatus, Status};
use crate::shipping::Stop;

/// The one handler that may stream its answer (the status stream); every other
/// route answers at once.
#[http_component]
async fn handle(req: Request, out: ResponseOutparam) {
    if *req.method() == Method::Get
        && let Some(params) = match_path("/api/orders/:id/events", req.path())
    {
        let id = params["id"].to_owned();
        return stream::serve(req, &id, out).await;
    }
    respond(out, route(&req)).await
}

fn route(req: &Request) -> Result<Response, Problem> {
    let caller = auth::caller(req)?;
    let db = Database::open("default")?;
    let path = req.path();
    let method = req.method();
    if match_path("/api/orders", path).is_some() {
        return match method {
            Method::Post => place(req, &db, &caller),
            Method::Get => list(req, &db, &caller),
            _ => Err(Problem::method_not_allowed("GET, POST")),
        };
    }
    if let Some(params) = match_path("/api/orders/:id", path) {
        return match method {
            Method::Get => Ok(api::json(200, &visible(&db, &caller, &params["id"])?.view())),
            _ => Err(Problem::method_not_allowed("GET")),
        };
    }
    if let Some(params) = match_path("/api/orders/:id/cancel", path) {
        return match method {
            Method::Post => cancel(req, &db, &caller, &params["id"]),
            _ => Err(Problem::method_not_allowed("POST")),
        };
    }
    if match_path("/api/orders/:id/events", path).is_some() {
        return Err(Problem::method_not_allowed("GET"));
    }
    Err(Problem::not_found(format!("no such path: {path}")))
}

/// Sends a whole answer through the streaming interface this component exports.
pub(crate) async fn respond(out: ResponseOutparam, answer: Result<Response, Problem>) {
    let response = answer.into_response();
    let body = response.body().to_vec();
    match OutgoingResponse::try_from(response) {
        Ok(head) => {
            if let Err(e) = out.set_with_body(head, body).await {
                eprintln!("the answer could not be sent: {e:?}");
            }
        }
        Err(e) => eprintln!("the answer could not be sent: {e}"),
    }
}

/// The order `id` if the caller may see it; another customer's order is a 404,
/// as if it did not exist.
fn visible(db: &Database, caller: &Claims, id: &str) -> Result<Order, Problem> {
    order::find(db, id)?
        .filter(|order| caller.may_access(&order.user_id))
        .ok_or_else(|| Problem::not_found(format!("no order {id}")))
}

// ---- Checkout -------------------------------------------------------------------

/// `data` of order.placed.
#[derive(Serialize)]
struct Placed<'a> {
    order_id: &'a str,
    user_id: &'a str,
    items: &'a [Item],
    total: Money,
    payment_method: &'a PaymentMethod,
    shipping_address: &'a Address,
}

/// `POST /api/orders`. A request whose `Idempotency-Key` placed an order already gets
/// that order's answer; so does one that failed because a twin request with the same
/// key placed it meanwhile (took the key first, or emptied the cart under it).
fn place(req: &Request, db: &Database, caller: &Claims) -> Result<Response, Problem> {
    let checkout: CheckoutRequest = api::parse_json(req)?;
    checkout.validate()?;
    let key = idempotency::key(req)?;
    let replay = |key: &str| idempotency::replay(db, &caller.sub, key, &checkout);
    if let Some(key) = &key
        && let Some((order_id, answer)) = replay(key)?
    {
        return Ok(accepted(&order_id, answer));
    }
    match (place_new(req, db, caller, &checkout, key.as_deref()), key) {
        (Err(problem), Some(key)) => match replay(&key)? {
            Some((order_id, answer)) => Ok(accepted(&order_id, answer)),
            None => Err(problem),
        },
        (placed, _) => placed,
    }
}

/// Places a new order for `checkout`, recording `key` with it.
fn place_new(
    req: &Request,
    db: &Database,
    caller: &Claims,
    checkout: &CheckoutRequest,
    key: Option<&str>,
) -> Result<Response, Problem> {
    let priced = checkout::price_cart(req)?;
    let payment_method = checkout::tokenize_card(req, &checkout.payment.card_number)?;
    let now = clock::now_unix();
    let order = Order {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: caller.sub.clone(),
        status: Status::Pending,
        reason: None,
        items: priced.items,
        total: priced.total,
        shipping_address: checkout.shipping_address.clone(),
        payment_method,
        payment_status: PaymentStatus::Pending,
        carrier: None,
        tracking_number: None,
        created_at: now,
        updated_at: now,
        history: Vec::new(),
    };
    let answer = db.transaction(|tx| {
        order::insert(tx, &order)?;
        let placed = Placed {
            order_id: &order.id,
            user_id: &order.user_id,
            items: &order.items,
            total: order.total,
            payment_method: &order.payment_method,
            shipping_address: &order.shipping_address,
        };
        publish_event(&Envelope::new("order.placed", order.id.as_str(), placed), &order.id)?;
        let stored = order::find(tx, &order.id)?.ok_or(estore_shared::sql::Error::NoRows)?;
        let answer = serde_json::to_string(&stored.view()).map_err(|e| {
            eprintln!("order {} does not serialise: {e}", order.id);
            Problem::internal()
        })?;
        if let Some(key) = key {
            idempotency::remember(tx, &order.user_id, key, &order.id, &answer)?;
        }
        Ok::<_, Problem>(answer)
    })?;
    // The order stands whatever happens to the cart now; a cart left full is the
    // lesser harm, and the customer sees it.
    if let Err(problem) = chain::call(req, "cart", Method::Delete, "http://cart.spin.internal/api/cart", None::<&()>)
        .and_then(|answer| if answer.status == 200 { Ok(()) } else { Err(answer.unavailable()) })
    {
        eprintln!("order {} is placed, but the cart was not emptied: {}", order.id, problem.detail);
    }
    Ok(accepted(&order.id, answer))
}

/// 202 with the order as placed (`answer`, JSON) and where to follow it.
fn accepted(order_id: &str, answer: String) -> Response {
    Response::builder()
        .status(202)
        .header("content-type", "application/json")
        .header("location", format!("/api/orders/{order_id}"))
        .body(answer)
        .build()
}

// ---- Reading --------------------------------------------------------------------

/// `GET /api/orders?status=&page=&size=&sort=`: the caller's orders, or everyone's
/// for an admin; newest first unless `sort=created_at`.
fn list(req: &Request, db: &Database, caller: &Claims) -> Result<Response, Problem> {
    let request = PageRequest::from_query(req.query(), &["created_at"], "-created_at")?;
    let mut conditions = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    if !caller.is_admin() {
        conditions.push("user_id = ?");
        values.push(caller.sub.as_str().into());
    }
    if let Some(status) = query_param(req.query(), "status") {
        let status = Status::parse(&status.to_uppercase()).ok_or_else(|| {
            Problem::invalid(vec![FieldError::new("status", format!("`{status}` is not an order status"))])
        })?;
        conditions.push("status = ?");
        values.push(status.as_str().into());
    }
    let filter = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
    let total: i64 =
        db.query(&format!("SELECT COUNT(*) AS n FROM orders{filter}"), &values)?.get(0).map_or(Ok(0), |row| row.get("n"))?;
    let mut page_values = values.clone();
    page_values.extend(params![i64::from(request.size), request.offset()].iter().cloned());
    let ids = db.query(
        &format!(
            "SELECT id FROM orders{filter} ORDER BY created_at {direction}, id {direction} LIMIT ? OFFSET ?",
            direction = request.sort.direction()
        ),
        &page_values,
    )?;
    let orders = ids
        .iter()
        .map(|row| {
            let id: String = row.get("id")?;
            order::find(db, &id)?.ok_or_else(|| Problem::not_found(format!("no order {id}")))
        })
        .collect::<Result<Vec<_>, Problem>>()?;
    let views: Vec<_> = orders.iter().map(Order::view).collect();
    Ok(api::json(200, &Page::new(views, &request, u64::try_from(total).unwrap_or(0))))
}

// ---- Cancelling -----------------------------------------------------------------

/// `data` of order.cancelled.
#[derive(Serialize)]
struct Cancelled<'a> {
    order_id: &'a str,
    user_id: &'a str,
    reason: &'a str,
    items: &'a [Item],
    was_reserved: bool,
    was_paid: bool,
}

/// `POST /api/orders/{id}/cancel`: by its customer or an admin, until its parcel has
/// left. From CONFIRMED on, shipping is asked to stop the parcel before anything is
/// given back; order.cancelled then refunds and releases.
fn cancel(req: &Request, db: &Database, caller: &Claims, id: &str) -> Result<Response, Problem> {
    let mut stopped = false;
    // A pass ends, or finds that the order moved on since it was read (the saga's
    // events); statuses only move forward, so the passes end.
    loop {
        let order = visible(db, caller, id)?;
        let reason = if caller.sub == order.user_id { "cancelled by the customer" } else { "cancelled by the store" };
        match order.status {
            // This request stopped the parcel, and shipment.stopped or a twin request
            // recorded the cancellation first.
            Status::Cancelled if stopped => return Ok(api::json(200, &order.view())),
            status if !status.may_cancel() => return Err(not_cancellable(&order)),
            Status::Confirmed if !stopped => {
                if let Stop::Left(why) = shipping::stop_parcel(req, id, reason)? {
                    return Err(Problem::conflict(format!("order {id} can no longer be cancelled: {why}")));
                }
                stopped = true;
            }
            _ => {}
        }
        if db.transaction(|tx| cancel_order::<(), Problem>(tx, &order, reason, None))? {
            return Ok(api::json(200, &visible(db, caller, id)?.view()));
        }
    }
}

/// The 409 for an order past cancelling, saying why.
fn not_cancellable(order: &Order) -> Problem {
    let why = match (&order.carrier, &order.tracking_number) {
        (Some(carrier), Some(tracking_number)) => {
            format!("its parcel has left with {carrier}, tracking number {tracking_number}")
        }
        _ => "it can no longer be cancelled".to_owned(),
    };
    Problem::conflict(format!("order {} is {}: {why}", order.id, order.status.as_str()))
}

/// Cancels `order` and publishes order.cancelled, caused by `cause` when an event
/// cancelled it. `false` if the order changed meanwhile (nothing done).
fn cancel_order<C, E>(tx: &Database, order: &Order, reason: &str, cause: Option<&Envelope<C>>) -> Result<bool, E>
where
    E: From<estore_shared::sql::Error> + From<PublishEventError>,
{
    if !order::change_status(tx, order, Status::Cancelled, Some(reason))? {
        return Ok(false);
    }
    let cancelled = Cancelled {
        order_id: &order.id,
        user_id: &order.user_id,
        reason,
        items: &order.items,
        was_reserved: order.status.holds_stock(),
        was_paid: order.payment_status == PaymentStatus::Paid,
    };
    publish_event(&next_event(cause, &order.id, "order.cancelled", cancelled), &order.id)?;
    Ok(true)
}

/// A new event in the order's saga: caused by `cause` if an event led to it.
fn next_event<C, T>(cause: Option<&Envelope<C>>, order_id: &str, event_type: &str, data: T) -> Envelope<T> {
    match cause {
        Some(cause) => Envelope::caused_by(cause, event_type, data),
        None => Envelope::new(event_type, order_id, data),
    }
}

// ---- The saga's events ----------------------------------------------------------

/// What orders reads of every event it consumes: the order it is about.
#[derive(Deserialize)]
struct About {
    order_id: String,
}

/// `data` of inventory.rejected.
#[derive(Deserialize)]
struct Rejected {
    order_id: String,
    shortages: Vec<Shortage>,
}

#[derive(Deserialize)]
struct Shortage {
    product_id: i64,
    requested: i64,
    available: i64,
}

/// `data` of payment.failed.
#[derive(Deserialize)]
struct PaymentFailed {
    order_id: String,
    reason: String,
}

/// `data` of shipment.stopped.
#[derive(Deserialize)]
struct Stopped {
    order_id: String,
    reason: String,
}

/// `data` of order.shipped.
#[derive(Deserialize)]
struct Shipped {
    order_id: String,
    carrier: String,
    tracking_number: String,
}

/// `data` of order.confirmed.
#[derive(Serialize)]
struct Confirmed<'a> {
    order_id: &'a str,
    user_id: &'a str,
    items: &'a [Item],
    total: Money,
    shipping_address: &'a Address,
}

struct Events;

impl MessageHandler for Events {
    fn handle(message: Message) -> Result<(), HandleError> {
        let db = Database::open("default")?;
        db.transaction(|tx| match message.topic.as_str() {
            "inventory.reserved" => on_reserved(tx, &message.envelope()?),
            "inventory.rejected" => on_rejected(tx, &message.envelope()?),
            "payment.completed" => on_paid(tx, &message.envelope()?),
            "payment.failed" => on_payment_failed(tx, &message.envelope()?),
            "payment.refunded" => on_refunded(tx, &message.envelope()?),
            "shipment.stopped" => on_stopped(tx, &message.envelope()?),
            "order.shipped" => on_shipped(tx, &message.envelope()?),
            "order.delivered" => on_delivered(tx, &message.envelope()?),
            topic => Err(HandleError::Reject(format!("orders does not handle {topic}"))),
        })
    }
}

estore_shared::messaging::handler::export_message_handler!(Events);

/// The order an event is about. One orders never placed is acknowledged and logged:
/// retrying cannot make it appear.
fn order_of<T>(tx: &Database, event: &Envelope<T>, order_id: &str) -> Result<Option<Order>, HandleError> {
    let order = order::find(tx, order_id)?;
    if order.is_none() {
        eprintln!("{} {} is about order {order_id}, which orders does not know: ignored", event.event_type, event.id);
    }
    Ok(order)
}

/// Moves the order on to `to`; a concurrent change (a customer's cancel) makes the
/// event run again, against the order as it is then.
fn advance(tx: &Database, order: &mut Order, to: Status) -> Result<(), HandleError> {
    if !order::change_status(tx, order, to, None)? {
        return Err(HandleError::Retry(format!("order {} changed while moving it to {}", order.id, to.as_str())));
    }
    order.status = to;
    Ok(())
}

fn on_reserved(tx: &Database, event: &Envelope<About>) -> Result<(), HandleError> {
    match order_of(tx, event, &event.data.order_id)? {
        Some(mut order) if order.status == Status::Pending => advance(tx, &mut order, Status::Reserved),
        _ => Ok(()),
    }
}

fn on_rejected(tx: &Database, event: &Envelope<Rejected>) -> Result<(), HandleError> {
    let Some(order) = order_of(tx, event, &event.data.order_id)? else { return Ok(()) };
    if order.status != Status::Pending {
        return Ok(());
    }
    let short: Vec<String> = event
        .data
        .shortages
        .iter()
        .map(|shortage| {
            let name = order.items.iter().find(|item| item.product_id == shortage.product_id).map_or_else(
                || format!("product {}", shortage.product_id),
                |item| item.name.clone(),
            );
            format!("{name} ({} wanted, {} available)", shortage.requested, shortage.available)
        })
        .collect();
    let reason = format!("not enough stock: {}", short.join(", "));
    cancelled_by_event(tx, &order, &reason, event)
}

/// payment.completed: confirmed, and shipping hears of it. A reservation's event
/// may still be on its way (another topic): the payment implies it.
fn on_paid(tx: &Database, event: &Envelope<About>) -> Result<(), HandleError> {
    let Some(mut order) = order_of(tx, event, &event.data.order_id)? else { return Ok(()) };
    order::set_payment_status(tx, &order.id, PaymentStatus::Paid)?;
    if order.status == Status::Pending {
        advance(tx, &mut order, Status::Reserved)?;
    }
    if order.status != Status::Reserved {
        // Cancelled meanwhile: payments refunds it when it hears order.cancelled.
        return Ok(());
    }
    advance(tx, &mut order, Status::Confirmed)?;
    let confirmed = Confirmed {
        order_id: &order.id,
        user_id: &order.user_id,
        items: &order.items,
        total: order.total,
        shipping_address: &order.shipping_address,
    };
    publish_event(&Envelope::caused_by(event, "order.confirmed", confirmed), &order.id)?;
    Ok(())
}

fn on_payment_failed(tx: &Database, event: &Envelope<PaymentFailed>) -> Result<(), HandleError> {
    let Some(order) = order_of(tx, event, &event.data.order_id)? else { return Ok(()) };
    order::set_payment_status(tx, &order.id, PaymentStatus::Declined)?;
    if !matches!(order.status, Status::Pending | Status::Reserved) {
        return Ok(());
    }
    cancelled_by_event(tx, &order, &format!("payment failed: {}", event.data.reason), event)
}

fn on_refunded(tx: &Database, event: &Envelope<About>) -> Result<(), HandleError> {
    if let Some(order) = order_of(tx, event, &event.data.order_id)? {
        order::set_payment_status(tx, &order.id, PaymentStatus::Refunded)?;
    }
    Ok(())
}

/// shipment.stopped: the parcel of an order being cancelled will not leave. The cancel
/// that stopped it records the cancellation itself; this does it should that request
/// have ended between shipping's answer and its own commit.
fn on_stopped(tx: &Database, event: &Envelope<Stopped>) -> Result<(), HandleError> {
    match order_of(tx, event, &event.data.order_id)? {
        Some(order) if order.status == Status::Confirmed => cancelled_by_event(tx, &order, &event.data.reason, event),
        _ => Ok(()),
    }
}

fn on_shipped(tx: &Database, event: &Envelope<Shipped>) -> Result<(), HandleError> {
    let Some(mut order) = order_of(tx, event, &event.data.order_id)? else { return Ok(()) };
    order::set_shipment(tx, &order.id, &event.data.carrier, &event.data.tracking_number)?;
    match order.status {
        Status::Confirmed => advance(tx, &mut order, Status::Shipped),
        Status::Cancelled => {
            // shipping ships no order whose parcel it stopped, and orders cancels a
            // confirmed order only once it is stopped: this is a bug somewhere.
            eprintln!("order {} was shipped after it was cancelled; the shipment needs stopping", order.id);
            Ok(())
        }
        _ => Ok(()),
    }
}

fn on_delivered(tx: &Database, event: &Envelope<About>) -> Result<(), HandleError> {
    match order_of(tx, event, &event.data.order_id)? {
        Some(mut order) if order.status == Status::Shipped => advance(tx, &mut order, Status::Delivered),
        _ => Ok(()),
    }
}

fn cancelled_by_event<C>(tx: &Database, order: &Order, reason: &str, cause: &Envelope<C>) -> Result<(), HandleError> {
    if cancel_order::<C, HandleError>(tx, order, reason, Some(cause))? {
        Ok(())
    } else {
        Err(HandleError::Retry(format!("order {} changed while cancelling it", order.id)))
    }
}
