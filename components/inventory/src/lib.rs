//! inventory: stock per product, and the reservations of the order saga.
//!
//! `available` is what can be sold now; `reserved` is what is held for orders placed
//! but neither shipped nor cancelled (see migrations/0001_inventory.sql).
//!
//! - Anyone reads a product's stock; administrators set what is available.
//! - order.placed: every item reserved in one transaction, or none
//!   (inventory.reserved, or inventory.rejected naming the shortages).
//! - order.cancelled: a reservation's units go back to available.
//! - order.shipped: a reservation's units are sold: reserved goes down, available
//!   stays as it is (the units left it when they were reserved).
//!
//! Each of these changes publishes inventory.changed per product, in the transaction
//! that made it. Each order is recorded with its state, so every step happens once
//! whatever order the events arrive in and however often.

mod reservation;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

use estore_shared::api::{self, Validator, match_path};
use estore_shared::auth;
use estore_shared::event::{Envelope, publish_event};
use estore_shared::messaging::handler::{HandleError, Message, MessageHandler};
use estore_shared::params;
use estore_shared::problem::Problem;
use estore_shared::sql::{Database, Error, FromRow, Row};

use reservation::{Line, Shortage};

/// A product's stock, as answered and as published in inventory.changed.
#[derive(Debug, Serialize)]
struct Stock {
    product_id: i64,
    available: i64,
    reserved: i64,
}

impl FromRow for Stock {
    fn from_row(row: &Row<'_>) -> Result<Self, Error> {
        Ok(Stock {
            product_id: row.get("product_id")?,
            available: row.get("available")?,
            reserved: row.get("reserved")?,
        })
    }
}

// ---- HTTP -----------------------------------------------------------------------

#[http_component]
fn handle(req: Request) -> Result<Response, Problem> {
    let path = req.path();
    let Some(params) = match_path("/api/inventory/:product_id", path) else {
        return Err(Problem::not_found(format!("no such path: {path}")));
    };
    let text = &params["product_id"];
    let Some(product_id) = text.parse::<i64>().ok().filter(|id| *id > 0) else {
        return Err(Problem::not_found(format!("no stock for product {text}")));
    };
    match req.method() {
        Method::Get => get_stock(product_id),
        Method::Put => set_stock(&req, product_id),
        _ => Err(Problem::method_not_allowed("GET, PUT")),
    }
}

fn get_stock(product_id: i64) -> Result<Response, Problem> {
    let stock = find_stock(&Database::open("default")?, product_id)?
        .ok_or_else(|| Problem::not_found(format!("no stock for product {product_id}")))?;
    Ok(api::json(200, &stock))
}

#[derive(Deserialize)]
struct SetStock {
    available: i64,
}

/// Sets what can be sold now (a delivery arrived, a count was corrected); what is
/// reserved for orders stays held. A product without stock yet gets its first.
fn set_stock(req: &Request, product_id: i64) -> Result<Response, Problem> {
    auth::caller(req)?.require_admin()?;
    let input: SetStock = api::parse_json(req)?;
    Validator::new().check("available", input.available >= 0, "must be 0 or more").finish()?;
    let db = Database::open("default")?;
    let stock = db.transaction(|tx| {
        tx.execute(
            "INSERT INTO stock (product_id, available, reserved) VALUES (?, ?, 0) \
             ON CONFLICT (product_id) DO UPDATE SET available = excluded.available",
            params![product_id, input.available],
        )?;
        let stock = find_stock(tx, product_id)?.ok_or(Error::NoRows)?;
        publish_event(&Envelope::new("inventory.changed", product_id.to_string(), &stock), &product_id.to_string())?;
        Ok::<_, Problem>(stock)
    })?;
    Ok(api::json(200, &stock))
}

fn find_stock(db: &Database, product_id: i64) -> Result<Option<Stock>, Error> {
    db.query_optional_as("SELECT product_id, available, reserved FROM stock WHERE product_id = ?", params![product_id])
}

// ---- Events ---------------------------------------------------------------------

/// An item of an order; its other fields (`name`, `unit_price`) pass through.
#[derive(Debug, Serialize, Deserialize)]
struct Item {
    product_id: i64,
    quantity: u32,
    #[serde(flatten)]
    other: Map<String, Json>,
}

/// What inventory reads of order.placed, and passes on as inventory.reserved so that
/// payments needs nothing else (components/README.md).
#[derive(Debug, Serialize, Deserialize)]
struct Order {
    order_id: String,
    user_id: String,
    items: Vec<Item>,
    total: Json,
    payment_method: Json,
}

/// `data` of inventory.rejected.
#[derive(Debug, Serialize)]
struct Rejected {
    order_id: String,
    user_id: String,
    shortages: Vec<Shortage>,
}

/// What inventory needs of order.cancelled and order.shipped: the order's own
/// reservation says which units.
#[derive(Debug, Deserialize)]
struct OrderRef {
    order_id: String,
}

struct Events;

impl MessageHandler for Events {
    fn handle(message: Message) -> Result<(), HandleError> {
        let db = Database::open("default")?;
        match message.topic.as_str() {
            "order.placed" => db.transaction(|tx| reserve(tx, &message.envelope()?)),
            "order.cancelled" => db.transaction(|tx| release(tx, &message.envelope()?)),
            "order.shipped" => db.transaction(|tx| sell(tx, &message.envelope()?)),
            topic => Err(HandleError::Reject(format!("inventory does not handle {topic}"))),
        }
    }
}

estore_shared::messaging::handler::export_message_handler!(Events);

/// order.placed: hold every item, or nothing.
fn reserve(tx: &Database, placed: &Envelope<Order>) -> Result<(), HandleError> {
    let order = &placed.data;
    if status(tx, &order.order_id)?.is_some() {
        // Seen before: reserved or rejected already, or cancelled before it arrived.
        return Ok(());
    }
    let mut available = BTreeMap::new();
    for item in &order.items {
        if let Some(stock) = find_stock(tx, item.product_id)? {
            available.insert(stock.product_id, stock.available);
        }
    }
    match reservation::plan(order.items.iter().map(|item| (item.product_id, item.quantity)), &available) {
        Ok(lines) => {
            record(tx, &order.order_id, "RESERVED")?;
            for line in &lines {
                // Guarded, for PostgreSQL, where another transaction may have taken
                // the stock since it was read: then retry with fresh numbers.
                let taken = tx.execute(
                    "UPDATE stock SET available = available - ?, reserved = reserved + ? \
                     WHERE product_id = ? AND available >= ?",
                    params![line.quantity, line.quantity, line.product_id, line.quantity],
                )?;
                if taken == 0 {
                    return Err(HandleError::Retry(format!(
                        "the stock of product {} changed meanwhile",
                        line.product_id
                    )));
                }
                tx.execute(
                    "INSERT INTO reservation_items (order_id, product_id, quantity) VALUES (?, ?, ?)",
                    params![order.order_id.as_str(), line.product_id, line.quantity],
                )?;
                publish_changed(tx, placed, line.product_id)?;
            }
            publish_event(&Envelope::caused_by(placed, "inventory.reserved", order), &order.order_id)?;
        }
        Err(shortages) => {
            record(tx, &order.order_id, "REJECTED")?;
            let rejected = Rejected { order_id: order.order_id.clone(), user_id: order.user_id.clone(), shortages };
            publish_event(&Envelope::caused_by(placed, "inventory.rejected", rejected), &order.order_id)?;
        }
    }
    Ok(())
}

/// order.cancelled: a held reservation's units become available again. An order not
/// seen yet is recorded as cancelled, so its order.placed, if it comes later, holds
/// nothing.
fn release(tx: &Database, cancelled: &Envelope<OrderRef>) -> Result<(), HandleError> {
    let order_id = cancelled.data.order_id.as_str();
    match status(tx, order_id)?.as_deref() {
        None => record(tx, order_id, "CANCELLED"),
        Some("RESERVED") => {
            for line in reserved_lines(tx, order_id)? {
                tx.execute(
                    "UPDATE stock SET available = available + ?, reserved = reserved - ? WHERE product_id = ?",
                    params![line.quantity, line.quantity, line.product_id],
                )?;
                publish_changed(tx, cancelled, line.product_id)?;
            }
            set_status(tx, order_id, "RELEASED")
        }
        // Rejected (nothing held), or released or sold already.
        Some(_) => Ok(()),
    }
}

/// order.shipped: a held reservation's units leave the store.
fn sell(tx: &Database, shipped: &Envelope<OrderRef>) -> Result<(), HandleError> {
    let order_id = shipped.data.order_id.as_str();
    if status(tx, order_id)?.as_deref() != Some("RESERVED") {
        // Sold already; anything else cannot ship (the saga ships only reserved orders).
        return Ok(());
    }
    for line in reserved_lines(tx, order_id)? {
        tx.execute(
            "UPDATE stock SET reserved = reserved - ? WHERE product_id = ?",
            params![line.quantity, line.product_id],
        )?;
        publish_changed(tx, shipped, line.product_id)?;
    }
    set_status(tx, order_id, "SOLD")
}

fn status(tx: &Database, order_id: &str) -> Result<Option<String>, Error> {
    let rows = tx.query("SELECT status FROM reservations WHERE order_id = ?", params![order_id])?;
    rows.get(0).map(|row| row.get("status")).transpose()
}

fn record(tx: &Database, order_id: &str, status: &str) -> Result<(), HandleError> {
    tx.execute("INSERT INTO reservations (order_id, status) VALUES (?, ?)", params![order_id, status])?;
    Ok(())
}

fn set_status(tx: &Database, order_id: &str, status: &str) -> Result<(), HandleError> {
    tx.execute("UPDATE reservations SET status = ? WHERE order_id = ?", params![status, order_id])?;
    Ok(())
}

fn reserved_lines(tx: &Database, order_id: &str) -> Result<Vec<Line>, Error> {
    let rows = tx.query("SELECT product_id, quantity FROM reservation_items WHERE order_id = ?", params![order_id])?;
    rows.iter().map(|row| Ok(Line { product_id: row.get("product_id")?, quantity: row.get("quantity")? })).collect()
}

/// inventory.changed for a product whose stock `cause` changed, keyed by the product.
fn publish_changed<T>(tx: &Database, cause: &Envelope<T>, product_id: i64) -> Result<(), HandleError> {
    let stock = find_stock(tx, product_id)?.ok_or(Error::NoRows)?;
    publish_event(&Envelope::caused_by(cause, "inventory.changed", stock), &product_id.to_string())?;
    Ok(())
}
