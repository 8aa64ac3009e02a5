//! The store's e-mails: a welcome when a user registers, word of every step of their
//! orders (confirmed with items and total, shipped with the tracking number,
//! delivered, cancelled with the reason, refunded with the amount), and the
//! administrators' promotions to everyone who asked for them.
//!
//! - `POST /api/promotions` (admin): records a promotion and publishes
//!   `promotion.published` from the same transaction; answered 202, since the e-mails
//!   go out as that event is handled.
//! - `GET /api/notifications/email`: the caller's e-mails (an admin's: everyone's),
//!   newest first, paged.
//! - Events: `user.*` keep the directory of addresses (order events carry only the
//!   user id); the rest each send one e-mail (estore-shared `notify`): once per
//!   template, order or promotion, and user, however often the event arrives; a
//!   temporary SMTP failure (4xx, unreachable) is retried by the platform, a refusal
//!   (5xx) recorded as `FAILED`.
//! - A promotion goes to users with `marketing_opt_in` only; the others get no record
//!   at all (a promotion is not about them, and a row per customer per promotion would
//!   say nothing).

mod templates;

use estore_shared::api::{self, Validator, match_path};
use estore_shared::auth::{self, Claims};
use estore_shared::clock;
use estore_shared::email::{EmailError, send_email};
use estore_shared::event::{Envelope, publish_event};
use estore_shared::messaging::handler::{HandleError, Message, MessageHandler};
use estore_shared::notify::directory::{self, UserEvent};
use estore_shared::notify::events::{OrderCancelled, OrderConfirmed, OrderDelivered, OrderShipped, PaymentRefunded};
use estore_shared::notify::{self, Contact, DeliverError, Draft, SendError, record};
use estore_shared::params;
use estore_shared::problem::Problem;
use estore_shared::sql::Database;
use serde::{Deserialize, Serialize};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

use crate::templates::Mail;

/// The `channel` of every record this service keeps.
const CHANNEL: &str = "email";

const MAX_SUBJECT: usize = 200;
const MAX_BODY: usize = 20_000;

// ---- HTTP -----------------------------------------------------------------------------

#[http_component]
fn handle(req: Request) -> Result<Response, Problem> {
    let db = Database::open("default")?;
    let path = req.path();
    let method = req.method();
    if match_path("/api/notifications/email", path).is_some() {
        return match method {
            Method::Get => record::list(&req, &db),
            _ => Err(Problem::method_not_allowed("GET")),
        };
    }
    if match_path("/api/promotions", path).is_some() {
        return match method {
            Method::Post => publish_promotion(&req, &db, &auth::caller(&req)?),
            _ => Err(Problem::method_not_allowed("POST")),
        };
    }
    Err(Problem::not_found(format!("no such path: {path}")))
}

/// `POST /api/promotions` `{subject, body}`. Fields default to empty, so that both
/// missing ones are named in the same 400.
#[derive(Deserialize)]
struct NewPromotion {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body: String,
}

/// `data` of promotion.published, and the 202's body with `published_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Promotion {
    pub promotion_id: String,
    pub subject: String,
    pub body: String,
}

#[derive(Serialize)]
struct Published<'a> {
    #[serde(flatten)]
    promotion: &'a Promotion,
    published_at: String,
    published_by: &'a str,
}

fn publish_promotion(req: &Request, db: &Database, caller: &Claims) -> Result<Response, Problem> {
    caller.require_admin()?;
    let new: NewPromotion = api::parse_json(req)?;
    let (subject, body) = (new.subject.trim(), new.body.trim());
    Validator::new()
        .required("subject", subject)
        .max_len("subject", subject, MAX_SUBJECT)
        // A subject is one header line.
        .check("subject", !subject.contains(['\r', '\n']), "must be one line")
        .required("body", body)
        .max_len("body", body, MAX_BODY)
        .finish()?;

    let promotion =
        Promotion { promotion_id: uuid::Uuid::new_v4().to_string(), subject: subject.to_owned(), body: body.to_owned() };
    let now = clock::now_unix();
    db.transaction(|tx| {
        tx.execute(
            "INSERT INTO promotions (id, subject, body, published_by, published_at) VALUES (?, ?, ?, ?, ?)",
            params![promotion.promotion_id.as_str(), subject, body, caller.sub.as_str(), now],
        )?;
        let event = Envelope::new("promotion.published", promotion.promotion_id.as_str(), &promotion);
        publish_event(&event, &promotion.promotion_id).map(drop).map_err(|e| {
            eprintln!("promotion.published for {}: {e}", promotion.promotion_id);
            Problem::internal()
        })
    })?;
    let published = Published { promotion: &promotion, published_at: clock::rfc3339(now), published_by: &caller.sub };
    Ok(api::json(202, &published))
}

// ---- Events ---------------------------------------------------------------------------

struct Events;

impl MessageHandler for Events {
    fn handle(message: Message) -> Result<(), HandleError> {
        let db = Database::open("default")?;
        if let Some(event) = directory::follow(&db, &message)? {
            if let UserEvent::Registered(contact) = event {
                let mail = templates::welcome(&contact);
                mail_to(&db, &contact, "welcome", &contact.user_id, &mail)?;
            }
            return Ok(());
        }
        match message.topic.as_str() {
            "order.confirmed" => {
                let order: OrderConfirmed = message.envelope()?.data;
                about_order(&db, &message, &order.user_id, "order_confirmed", &order.order_id, |to| {
                    templates::order_confirmed(to, &order)
                })
            }
            "order.shipped" => {
                let order: OrderShipped = message.envelope()?.data;
                about_order(&db, &message, &order.user_id, "order_shipped", &order.order_id, |to| {
                    templates::order_shipped(to, &order)
                })
            }
            "order.delivered" => {
                let order: OrderDelivered = message.envelope()?.data;
                about_order(&db, &message, &order.user_id, "order_delivered", &order.order_id, |to| {
                    templates::order_delivered(to, &order.order_id)
                })
            }
            "order.cancelled" => {
                let order: OrderCancelled = message.envelope()?.data;
                about_order(&db, &message, &order.user_id, "order_cancelled", &order.order_id, |to| {
                    templates::order_cancelled(to, &order)
                })
            }
            "payment.refunded" => {
                let refund: PaymentRefunded = message.envelope()?.data;
                about_order(&db, &message, &refund.user_id, "payment_refunded", &refund.order_id, |to| {
                    templates::payment_refunded(to, &refund)
                })
            }
            "promotion.published" => {
                let promotion: Promotion = message.envelope()?.data;
                send_promotion(&db, &promotion)
            }
            other => Err(HandleError::Reject(format!("email does not handle {other}"))),
        }
    }
}

estore_shared::messaging::handler::export_message_handler!(Events);

/// An e-mail about an order to the user it belongs to.
fn about_order(
    db: &Database,
    message: &Message,
    user_id: &str,
    template: &'static str,
    order_id: &str,
    render: impl FnOnce(&Contact) -> Mail,
) -> Result<(), HandleError> {
    notify::for_user(db, message, CHANNEL, user_id, template, order_id, |to| mail_to(db, to, template, order_id, &render(to)))
}

/// One e-mail per user who asked for promotions. Everyone is tried before a retry is
/// asked for, and the retry sends only to those not reached yet.
fn send_promotion(db: &Database, promotion: &Promotion) -> Result<(), HandleError> {
    let mut postponed = 0;
    let audience = directory::marketing_audience(db)?;
    for contact in &audience {
        let mail = templates::promotion(contact, promotion);
        match mail_to(db, contact, "promotion", &promotion.promotion_id, &mail) {
            Ok(()) => {}
            Err(DeliverError::Retry(reason)) => {
                eprintln!("promotion {} to {}: {reason}", promotion.promotion_id, contact.user_id);
                postponed += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    if postponed > 0 {
        return Err(HandleError::Retry(format!(
            "promotion {}: {postponed} of {} e-mails not sent yet",
            promotion.promotion_id,
            audience.len()
        )));
    }
    Ok(())
}

/// Sends `mail` to the contact once (see estore-shared `notify::record`).
fn mail_to(db: &Database, to: &Contact, template: &'static str, reference: &str, mail: &Mail) -> Result<(), DeliverError> {
    let draft = Draft {
        user_id: to.user_id.clone(),
        template,
        reference: reference.to_owned(),
        recipient: to.email.clone(),
        subject: Some(mail.subject.clone()),
        body: mail.text.clone(),
    };
    record::deliver(db, CHANNEL, &draft, || {
        send_email(&[to.email.as_str()], &mail.subject, &mail.text, Some(&mail.html)).map_err(|e| match e {
            // The server refused this message or address for good (5xx, malformed).
            EmailError::Invalid(reason) => SendError::Permanent(reason),
            EmailError::Unavailable(reason) => SendError::Transient(reason),
            // The deployment's to fix (the grant, the SMTP login): retried, and then
            // dead-lettered, so the event can be replayed once it is fixed.
            EmailError::NotAllowed(reason) | EmailError::Other(reason) => SendError::Transient(reason),
        })
    })?;
    Ok(())
}
