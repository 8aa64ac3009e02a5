//! An order, its statuses and how it is kept: the rules of the saga that are
//! orders' own (which status may follow which), and the SQL that records them.

use estore_shared::clock;
use estore_shared::money::{Currency, Money};
use estore_shared::params;
use estore_shared::sql::{Database, Error, FromRow, Row};
use serde::{Deserialize, Serialize};

/// Where an order stands: `PENDING → RESERVED → CONFIRMED → SHIPPED → DELIVERED`,
/// or `CANCELLED` from any state before `SHIPPED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Pending,
    Reserved,
    Confirmed,
    Shipped,
    Delivered,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 6] =
        [Status::Pending, Status::Reserved, Status::Confirmed, Status::Shipped, Status::Delivered, Status::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Reserved => "RESERVED",
            Status::Confirmed => "CONFIRMED",
            Status::Shipped => "SHIPPED",
            Status::Delivered => "DELIVERED",
            Status::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// Until it is shipped, an order can be called off (from CONFIRMED on, only once
    /// shipping has stopped its parcel).
    pub fn may_cancel(self) -> bool {
        matches!(self, Status::Pending | Status::Reserved | Status::Confirmed)
    }

    /// Nothing follows: the status stream ends here.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Delivered | Status::Cancelled)
    }

    /// Whether inventory holds stock for an order in this status (it reserved it).
    pub fn holds_stock(self) -> bool {
        matches!(self, Status::Reserved | Status::Confirmed)
    }
}

/// What payments told orders about the order's money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    Pending,
    Paid,
    Declined,
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "PENDING",
            PaymentStatus::Paid => "PAID",
            PaymentStatus::Declined => "DECLINED",
            PaymentStatus::Refunded => "REFUNDED",
        }
    }
}

/// A postal address, as checkout takes it and events carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub name: String,
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    pub country: String,
}

/// One line of an order, priced when it was placed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub product_id: i64,
    pub name: String,
    pub quantity: u32,
    pub unit_price: Money,
}

/// The card as orders knows it: payments' token, and what a customer recognises.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentMethod {
    pub token: String,
    pub brand: String,
    pub last4: String,
}

/// One status the order went through.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// Counts from 1 per order: the status stream's event id.
    #[serde(skip)]
    pub position: i64,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub at: String,
}

/// An order as stored, with its items and history.
#[derive(Debug, Clone)]
pub struct Order {
    pub id: String,
    pub user_id: String,
    pub status: Status,
    pub reason: Option<String>,
    pub items: Vec<Item>,
    pub total: Money,
    pub shipping_address: Address,
    pub payment_method: PaymentMethod,
    pub payment_status: PaymentStatus,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub history: Vec<Change>,
}

/// The order as the API shows it: the payment token stays inside.
#[derive(Serialize)]
pub struct OrderView<'a> {
    id: &'a str,
    user_id: &'a str,
    status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    items: Vec<ItemView<'a>>,
    total: Money,
    shipping_address: &'a Address,
    payment: PaymentView<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shipment: Option<ShipmentView<'a>>,
    history: &'a [Change],
    created_at: String,
    updated_at: String,
}

#[derive(Serialize)]
struct ItemView<'a> {
    product_id: i64,
    name: &'a str,
    quantity: u32,
    unit_price: Money,
    line_total: Money,
}

#[derive(Serialize)]
struct PaymentView<'a> {
    brand: &'a str,
    last4: &'a str,
    status: &'static str,
}

#[derive(Serialize)]
struct ShipmentView<'a> {
    carrier: &'a str,
    tracking_number: &'a str,
}

impl Order {
    pub fn view(&self) -> OrderView<'_> {
        OrderView {
            id: &self.id,
            user_id: &self.user_id,
            status: self.status,
            reason: self.reason.as_deref(),
            items: self
                .items
                .iter()
                .map(|item| ItemView {
                    product_id: item.product_id,
                    name: &item.name,
                    quantity: item.quantity,
                    unit_price: item.unit_price,
                    // Checked when the order was placed: the total is their sum.
                    line_total: item.unit_price.times(item.quantity).unwrap_or(item.unit_price),
                })
                .collect(),
            total: self.total,
            shipping_address: &self.shipping_address,
            payment: PaymentView {
                brand: &self.payment_method.brand,
                last4: &self.payment_method.last4,
                status: self.payment_status.as_str(),
            },
            shipment: self
                .carrier
                .as_deref()
                .zip(self.tracking_number.as_deref())
                .map(|(carrier, tracking_number)| ShipmentView { carrier, tracking_number }),
            history: &self.history,
            created_at: clock::rfc3339(self.created_at),
            updated_at: clock::rfc3339(self.updated_at),
        }
    }
}

// ---- Keeping it -----------------------------------------------------------------

/// Records a new order as PENDING, with its items and the first history entry.
pub fn insert(db: &Database, order: &Order) -> Result<(), Error> {
    let address = serde_json::to_string(&order.shipping_address)
        .map_err(|e| Error::malformed("shipping_address", e.to_string()))?;
    db.execute(
        "INSERT INTO orders (id, user_id, status, total_amount, currency, shipping_address, payment_token, \
         payment_brand, payment_last4, payment_status, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            order.id.as_str(),
            order.user_id.as_str(),
            order.status.as_str(),
            order.total.amount,
            order.total.currency.as_str(),
            address,
            order.payment_method.token.as_str(),
            order.payment_method.brand.as_str(),
            order.payment_method.last4.as_str(),
            order.payment_status.as_str(),
            order.created_at,
            order.updated_at
        ],
    )?;
    for (line, item) in order.items.iter().enumerate() {
        db.execute(
            "INSERT INTO order_items (order_id, line, product_id, name, quantity, unit_amount) VALUES (?, ?, ?, ?, ?, ?)",
            params![
                order.id.as_str(),
                line as i64 + 1,
                item.product_id,
                item.name.as_str(),
                i64::from(item.quantity),
                item.unit_price.amount
            ],
        )?;
    }
    append_history(db, &order.id, order.status, None, order.created_at)
}

/// The order with `id`, items and history included.
pub fn find(db: &Database, id: &str) -> Result<Option<Order>, Error> {
    let Some(stored) = db.query_optional_as::<StoredOrder>("SELECT * FROM orders WHERE id = ?", params![id])? else {
        return Ok(None);
    };
    let currency = stored.total.currency;
    let items = db
        .query("SELECT product_id, name, quantity, unit_amount FROM order_items WHERE order_id = ? ORDER BY line", params![id])?
        .iter()
        .map(|row| {
            Ok(Item {
                product_id: row.get("product_id")?,
                name: row.get("name")?,
                quantity: row.get("quantity")?,
                unit_price: Money::new(row.get("unit_amount")?, currency),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let history = history_after(db, id, 0)?;
    Ok(Some(stored.into_order(items, history)))
}

/// The history entries of order `id` after `position`, oldest first.
pub fn history_after(db: &Database, id: &str, position: i64) -> Result<Vec<Change>, Error> {
    db.query_as(
        "SELECT position, status, reason, at FROM order_history WHERE order_id = ? AND position > ? ORDER BY position",
        params![id, position],
    )
}

/// Moves the order from `from` to `to`, recording why: guarded by `from`, so a
/// concurrent change (a customer's cancel racing an event) is never overwritten.
/// `false` when the order was no longer in `from`.
pub fn change_status(db: &Database, order: &Order, to: Status, reason: Option<&str>) -> Result<bool, Error> {
    let now = clock::now_unix();
    let changed = db.execute(
        "UPDATE orders SET status = ?, reason = ?, updated_at = ? WHERE id = ? AND status = ?",
        params![to.as_str(), reason, now, order.id.as_str(), order.status.as_str()],
    )?;
    if changed == 0 {
        return Ok(false);
    }
    append_history(db, &order.id, to, reason, now)?;
    Ok(true)
}

pub fn set_payment_status(db: &Database, order_id: &str, status: PaymentStatus) -> Result<(), Error> {
    db.execute(
        "UPDATE orders SET payment_status = ?, updated_at = ? WHERE id = ?",
        params![status.as_str(), clock::now_unix(), order_id],
    )?;
    Ok(())
}

pub fn set_shipment(db: &Database, order_id: &str, carrier: &str, tracking_number: &str) -> Result<(), Error> {
    db.execute("UPDATE orders SET carrier = ?, tracking_number = ? WHERE id = ?", params![carrier, tracking_number, order_id])?;
    Ok(())
}

fn append_history(db: &Database, id: &str, status: Status, reason: Option<&str>, at: i64) -> Result<(), Error> {
    db.execute(
        "INSERT INTO order_history (order_id, position, status, reason, at) \
         SELECT ?, COALESCE(MAX(position), 0) + 1, ?, ?, ? FROM order_history WHERE order_id = ?",
        params![id, status.as_str(), reason, at, id],
    )?;
    Ok(())
}

/// One row of `orders`.
struct StoredOrder {
    id: String,
    user_id: String,
    status: Status,
    reason: Option<String>,
    total: Money,
    shipping_address: Address,
    payment_method: PaymentMethod,
    payment_status: PaymentStatus,
    carrier: Option<String>,
    tracking_number: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl StoredOrder {
    fn into_order(self, items: Vec<Item>, history: Vec<Change>) -> Order {
        Order {
            id: self.id,
            user_id: self.user_id,
            status: self.status,
            reason: self.reason,
            items,
            total: self.total,
            shipping_address: self.shipping_address,
            payment_method: self.payment_method,
            payment_status: self.payment_status,
            carrier: self.carrier,
            tracking_number: self.tracking_number,
            created_at: self.created_at,
            updated_at: self.updated_at,
            history,
        }
    }
}

impl FromRow for StoredOrder {
    fn from_row(row: &Row<'_>) -> Result<Self, Error> {
        let address: String = row.get("shipping_address")?;
        Ok(StoredOrder {
            id: row.get("id")?,
            user_id: row.get("user_id")?,
            status: status_column(row, "status")?,
            reason: row.get("reason")?,
            total: Money::new(row.get("total_amount")?, row.get::<Currency>("currency")?),
            shipping_address: serde_json::from_str(&address)
                .map_err(|e| Error::malformed("shipping_address", e.to_string()))?,
            payment_method: PaymentMethod {
                token: row.get("payment_token")?,
                brand: row.get("payment_brand")?,
                last4: row.get("payment_last4")?,
            },
            payment_status: match row.get::<String>("payment_status")?.as_str() {
                "PAID" => PaymentStatus::Paid,
                "DECLINED" => PaymentStatus::Declined,
                "REFUNDED" => PaymentStatus::Refunded,
                _ => PaymentStatus::Pending,
            },
            carrier: row.get("carrier")?,
            tracking_number: row.get("tracking_number")?,
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
        })
    }
}

impl FromRow for Change {
    fn from_row(row: &Row<'_>) -> Result<Self, Error> {
        Ok(Change {
            position: row.get("position")?,
            status: status_column(row, "status")?,
            reason: row.get("reason")?,
            at: clock::rfc3339(row.get("at")?),
        })
    }
}

fn status_column(row: &Row<'_>, column: &str) -> Result<Status, Error> {
    let text: String = row.get(column)?;
    Status::parse(&text).ok_or_else(|| Error::malformed(column, format!("`{text}` is not an order status")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_can_be_cancelled_only_until_it_ships() {
        let cancellable: Vec<_> = Status::ALL.into_iter().filter(|s| s.may_cancel()).collect();
        assert_eq!(cancellable, [Status::Pending, Status::Reserved, Status::Confirmed]);
    }

    #[test]
    fn the_stream_ends_at_delivered_or_cancelled() {
        let last: Vec<_> = Status::ALL.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(last, [Status::Delivered, Status::Cancelled]);
    }

    #[test]
    fn statuses_read_back_as_written() {
        for status in Status::ALL {
            assert_eq!(Status::parse(status.as_str()), Some(status));
            assert_eq!(serde_json::to_value(status).ok(), Some(serde_json::json!(status.as_str())));
        }
        assert_eq!(Status::parse("PAID"), None);
    }
}
