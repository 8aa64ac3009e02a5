//! payments: the card vault, and the charges and refunds of the order saga.
//!
//! - `POST /internal/payment-methods` (private: reached only by chaining, from orders
//!   at checkout) keeps a card number in the [`vault`] (sealed, and only for the
//!   refund window) and answers its token; nothing but the vault ever holds the number.
//! - `GET /api/payments/{order_id}`: an order's payment, for its customer or an admin.
//! - inventory.reserved: charges the order's total through the [`provider`], once per
//!   order: payment.completed, or payment.failed with the reason.
//! - order.cancelled: an order charged is refunded (payment.refunded), once; an order
//!   cancelled before its inventory.reserved arrives is never charged.
//!
//! The money moves outside any transaction (the provider is another system); what
//! payments records of it, and the event that says so, commit together (the outbox).
//! Both ends are idempotent per order, so a retry after a crash in between charges or
//! refunds nothing twice.

mod card;
mod provider;
mod vault;

use serde::{Deserialize, Serialize};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

use estore_shared::api::{self, match_path};
use estore_shared::auth;
use estore_shared::clock;
use estore_shared::event::{Envelope, publish_event};
use estore_shared::messaging::handler::{HandleError, Message, MessageHandler};
use estore_shared::money::Money;
use estore_shared::params;
use estore_shared::problem::{FieldError, Problem};
use estore_shared::sql::{Database, Error, FromRow, Row};

use provider::{Charge, Outcome, Provider, Refund};

// ---- HTTP -----------------------------------------------------------------------

#[http_component]
fn handle(req: Request) -> Result<Response, Problem> {
    let path = req.path();
    // Only chaining reaches this path: no public route of the manifest leads here.
    if match_path("/internal/payment-methods", path).is_some() {
        return match req.method() {
            Method::Post => add_payment_method(&req),
            _ => Err(Problem::method_not_allowed("POST")),
        };
    }
    if let Some(params) = match_path("/api/payments/:order_id", path) {
        return match req.method() {
            Method::Get => get_payment(&req, &params["order_id"]),
            _ => Err(Problem::method_not_allowed("GET")),
        };
    }
    Err(Problem::not_found(format!("no such path: {path}")))
}

#[derive(Deserialize)]
struct NewPaymentMethod {
    card_number: String,
}

/// A payment method as events and answers show it: never the number.
#[derive(Debug, Serialize, Deserialize)]
struct PaymentMethod {
    token: String,
    brand: String,
    last4: String,
}

/// `POST /internal/payment-methods {card_number}` → 201 `{token, brand, last4}`.
fn add_payment_method(req: &Request) -> Result<Response, Problem> {
    let input: NewPaymentMethod = api::parse_json(req)?;
    let card = card::parse(&input.card_number)
        .map_err(|message| Problem::invalid(vec![FieldError::new("card_number", message)]))?;
    let method = PaymentMethod {
        token: format!("pm_{}", uuid::Uuid::new_v4().simple()),
        brand: card.brand.to_owned(),
        last4: card.last4.clone(),
    };
    vault::save(&Database::open("default")?, &method.token, &card).map_err(|e| {
        eprintln!("a card could not be saved: {}", e.0);
        Problem::internal()
    })?;
    Ok(api::json(201, &method))
}

/// A payment as recorded, and as `GET /api/payments/{order_id}` answers it.
#[derive(Serialize)]
struct Payment {
    id: String,
    order_id: String,
    user_id: String,
    amount: Money,
    /// COMPLETED, FAILED or REFUNDED.
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    payment_method: Card,
    /// The provider's id of the charge: for the refund, not for customers.
    #[serde(skip)]
    provider_reference: Option<String>,
    /// RFC 3339.
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refunded_at: Option<String>,
}

/// The card paid with, as far as it may be shown.
#[derive(Serialize)]
struct Card {
    brand: String,
    last4: String,
}

impl FromRow for Payment {
    fn from_row(row: &Row<'_>) -> Result<Self, Error> {
        Ok(Payment {
            id: row.get("id")?,
            order_id: row.get("order_id")?,
            user_id: row.get("user_id")?,
            amount: Money::new(row.get("amount")?, row.get("currency")?),
            status: row.get("status")?,
            reason: row.get("reason")?,
            payment_method: Card { brand: row.get("brand")?, last4: row.get("last4")? },
            provider_reference: row.get("provider_reference")?,
            created_at: clock::rfc3339(row.get("created_at")?),
            refunded_at: row.get::<Option<i64>>("refunded_at")?.map(clock::rfc3339),
        })
    }
}

/// `GET /api/payments/{order_id}`: someone else's payment is as missing as none.
fn get_payment(req: &Request, order_id: &str) -> Result<Response, Problem> {
    let caller = auth::caller(req)?;
    let payment = find_payment(&Database::open("default")?, order_id)?
        .filter(|payment| caller.may_access(&payment.user_id))
        .ok_or_else(|| Problem::not_found(format!("no payment for order {order_id}")))?;
    Ok(api::json(200, &payment))
}

fn find_payment(db: &Database, order_id: &str) -> Result<Option<Payment>, Error> {
    db.query_optional_as("SELECT * FROM payments WHERE order_id = ?", params![order_id])
}

// ---- Events ---------------------------------------------------------------------

/// What payments reads of inventory.reserved.
#[derive(Deserialize)]
struct Reserved {
    order_id: String,
    user_id: String,
    total: Money,
    payment_method: PaymentMethod,
}

/// What payments reads of order.cancelled: its own records say the rest.
#[derive(Deserialize)]
struct Cancelled {
    order_id: String,
}

/// `data` of payment.completed and payment.refunded.
#[derive(Serialize)]
struct Paid<'a> {
    order_id: &'a str,
    user_id: &'a str,
    payment_id: &'a str,
    amount: Money,
}

/// `data` of payment.failed.
#[derive(Serialize)]
struct Failed<'a> {
    order_id: &'a str,
    user_id: &'a str,
    reason: &'a str,
}

struct Events;

impl MessageHandler for Events {
    fn handle(message: Message) -> Result<(), HandleError> {
        let db = Database::open("default")?;
        let provider = provider::configured()?;
        match message.topic.as_str() {
            "inventory.reserved" => charge(&db, provider.as_ref(), &message.envelope()?),
            "order.cancelled" => cancel(&db, provider.as_ref(), &message.envelope()?),
            topic => Err(HandleError::Reject(format!("payments does not handle {topic}"))),
        }
    }
}

estore_shared::messaging::handler::export_message_handler!(Events);

/// inventory.reserved: charge the order's total, unless the order is paid for (or
/// failed) already or cancelled.
fn charge(db: &Database, provider: &dyn Provider, reserved: &Envelope<Reserved>) -> Result<(), HandleError> {
    let order = &reserved.data;
    if find_payment(db, &order.order_id)?.is_some() {
        // A repeat: nothing to charge, but a refund may still be owed (a crash after
        // charging a cancelled order).
        return settle(db, provider, reserved, &order.order_id);
    }
    if is_cancelled(db, &order.order_id)? {
        return Ok(());
    }
    let card = vault::number(db, &order.payment_method.token).map_err(|e| HandleError::Retry(e.0))?;
    let outcome = match card {
        None => Outcome::Declined { reason: "unknown payment method".to_owned() },
        Some(card_number) => provider.charge(&Charge {
            order_id: &order.order_id,
            amount: order.total,
            payment_method_token: &order.payment_method.token,
            card_number: &card_number,
        })?,
    };
    db.transaction(|tx| {
        lock_order(tx, &order.order_id)?;
        if find_payment(tx, &order.order_id)?.is_some() {
            // A repeat handled meanwhile recorded it (and the provider, asked twice for
            // the same order, charged once).
            return Ok(());
        }
        let payment_id = uuid::Uuid::new_v4().to_string();
        let (status, reason, reference) = match &outcome {
            Outcome::Approved { reference } => ("COMPLETED", None, Some(reference.as_str())),
            Outcome::Declined { reason } => ("FAILED", Some(reason.as_str()), None),
        };
        tx.execute(
            "INSERT INTO payments (id, order_id, user_id, amount, currency, status, reason, payment_method_token, \
             brand, last4, provider_reference, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            params![
                payment_id.as_str(),
                order.order_id.as_str(),
                order.user_id.as_str(),
                order.total.amount,
                order.total.currency.as_str(),
                status,
                reason,
                order.payment_method.token.as_str(),
                order.payment_method.brand.as_str(),
                order.payment_method.last4.as_str(),
                reference,
                clock::now_unix()
            ],
        )?;
        match reason {
            None => {
                let paid = Paid {
                    order_id: &order.order_id,
                    user_id: &order.user_id,
                    payment_id: &payment_id,
                    amount: order.total,
                };
                publish(reserved, "payment.completed", &order.order_id, paid)
            }
            Some(reason) => {
                let failed = Failed { order_id: &order.order_id, user_id: &order.user_id, reason };
                publish(reserved, "payment.failed", &order.order_id, failed)
            }
        }
    })?;
    // Cancelled while the provider was charging: refund at once.
    settle(db, provider, reserved, &order.order_id)
}

/// order.cancelled: remember it, so the order is never charged, and refund what was.
fn cancel(db: &Database, provider: &dyn Provider, cancelled: &Envelope<Cancelled>) -> Result<(), HandleError> {
    let order_id = &cancelled.data.order_id;
    db.execute(
        "INSERT INTO orders (order_id, cancelled_at) VALUES (?, ?) \
         ON CONFLICT (order_id) DO UPDATE SET cancelled_at = COALESCE(orders.cancelled_at, excluded.cancelled_at)",
        params![order_id.as_str(), clock::now_unix()],
    )?;
    settle(db, provider, cancelled, order_id)
}

/// Refunds the order's payment if the order is cancelled and the payment completed;
/// otherwise nothing. Whoever gets here first (order.cancelled, or an
/// inventory.reserved that charged meanwhile) refunds; the other finds it done.
fn settle<T>(db: &Database, provider: &dyn Provider, cause: &Envelope<T>, order_id: &str) -> Result<(), HandleError> {
    let Some(payment) = find_payment(db, order_id)? else {
        return Ok(());
    };
    if payment.status != "COMPLETED" || !is_cancelled(db, order_id)? {
        return Ok(());
    }
    let reference = provider.refund(&Refund {
        payment_id: &payment.id,
        order_id,
        charge_id: payment.provider_reference.as_deref().unwrap_or_default(),
        amount: payment.amount,
    })?;
    db.transaction(|tx| {
        lock_order(tx, order_id)?;
        let refunded = tx.execute(
            "UPDATE payments SET status = 'REFUNDED', refund_reference = ?, refunded_at = ? \
             WHERE order_id = ? AND status = 'COMPLETED'",
            params![reference.as_str(), clock::now_unix(), order_id],
        )?;
        if refunded == 0 {
            return Ok(());
        }
        let paid = Paid { order_id, user_id: &payment.user_id, payment_id: &payment.id, amount: payment.amount };
        publish(cause, "payment.refunded", order_id, paid)
    })
}

fn is_cancelled(db: &Database, order_id: &str) -> Result<bool, Error> {
    let rows = db.query("SELECT cancelled_at FROM orders WHERE order_id = ?", params![order_id])?;
    Ok(rows.get(0).map(|row| row.get::<Option<i64>>("cancelled_at")).transpose()?.flatten().is_some())
}

/// Writes the order's row first in a transaction, so that on PostgreSQL a second
/// handler of the same order waits for this one and then sees what it did.
fn lock_order(tx: &Database, order_id: &str) -> Result<(), Error> {
    tx.execute(
        "INSERT INTO orders (order_id) VALUES (?) ON CONFLICT (order_id) DO UPDATE SET order_id = excluded.order_id",
        params![order_id],
    )?;
    Ok(())
}

/// Publishes `data` as `event_type`, caused by `cause`, in the saga of `order_id`
/// (its correlation id and key).
fn publish<T, D: Serialize>(cause: &Envelope<T>, event_type: &str, order_id: &str, data: D) -> Result<(), HandleError> {
    let event = Envelope { correlation_id: order_id.to_owned(), ..Envelope::caused_by(cause, event_type, data) };
    publish_event(&event, order_id)?;
    Ok(())
}
