//! The store's text messages: a welcome when a user registers, and word when their
//! order is confirmed, shipped and delivered, sent through a Twilio-compatible
//! Messages API.
//!
//! - Only to users with a phone number who kept `sms_opt_in` (users sets it when a
//!   number is given, unless told otherwise; `PATCH /api/users/me` changes it). The
//!   others get a `SKIPPED` record with the reason (`no phone number`, `opted out`),
//!   so that they and the administrators can see why no text came.
//! - With no provider configured (`sms_base_url` empty, the default), every message is
//!   recorded `SKIPPED` with `no SMS provider configured`: development needs no
//!   account, and nothing pretends to have been sent.
//! - `GET /api/notifications/sms`: the caller's texts (an admin's: everyone's), newest
//!   first, paged.
//! - Events: `user.*` keep the directory of numbers (order events carry only the user
//!   id); each text goes out once per template, order and user however often its
//!   event arrives (estore-shared `notify`); a provider's 5xx, 429 or an unreachable
//!   provider is retried by the platform, a 4xx recorded as `FAILED`.

mod provider;
mod templates;

use estore_shared::api::match_path;
use estore_shared::messaging::handler::{HandleError, Message, MessageHandler};
use estore_shared::notify::directory::{self, UserEvent};
use estore_shared::notify::events::{OrderConfirmed, OrderDelivered, OrderShipped};
use estore_shared::notify::{self, Contact, DeliverError, Draft, record};
use estore_shared::problem::Problem;
use estore_shared::sql::Database;
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

use crate::provider::Provider;

/// The `channel` of every record this service keeps.
const CHANNEL: &str = "sms";

// ---- HTTP -----------------------------------------------------------------------------

#[http_component]
fn handle(req: Request) -> Result<Response, Problem> {
    let path = req.path();
    if match_path("/api/notifications/sms", path).is_some() {
        return match req.method() {
            Method::Get => record::list(&req, &Database::open("default")?),
            _ => Err(Problem::method_not_allowed("GET")),
        };
    }
    Err(Problem::not_found(format!("no such path: {path}")))
}

// ---- Events ---------------------------------------------------------------------------

struct Events;

impl MessageHandler for Events {
    fn handle(message: Message) -> Result<(), HandleError> {
        let db = Database::open("default")?;
        if let Some(event) = directory::follow(&db, &message)? {
            if let UserEvent::Registered(contact) = event {
                text(&db, &contact, "welcome", &contact.user_id, &templates::welcome(&contact))?;
            }
            return Ok(());
        }
        match message.topic.as_str() {
            "order.confirmed" => {
                let order: OrderConfirmed = message.envelope()?.data;
                notify::for_user(&db, &message, CHANNEL, &order.user_id, "order_confirmed", &order.order_id, |to| {
                    text(&db, to, "order_confirmed", &order.order_id, &templates::order_confirmed(&order))
                })
            }
            "order.shipped" => {
                let order: OrderShipped = message.envelope()?.data;
                notify::for_user(&db, &message, CHANNEL, &order.user_id, "order_shipped", &order.order_id, |to| {
                    text(&db, to, "order_shipped", &order.order_id, &templates::order_shipped(&order))
                })
            }
            "order.delivered" => {
                let order: OrderDelivered = message.envelope()?.data;
                notify::for_user(&db, &message, CHANNEL, &order.user_id, "order_delivered", &order.order_id, |to| {
                    text(&db, to, "order_delivered", &order.order_id, &templates::order_delivered(&order.order_id))
                })
            }
            other => Err(HandleError::Reject(format!("sms does not handle {other}"))),
        }
    }
}

estore_shared::messaging::handler::export_message_handler!(Events);

/// Texts `body` to the contact once, or records why not.
fn text(db: &Database, to: &Contact, template: &'static str, reference: &str, body: &str) -> Result<(), DeliverError> {
    let draft = Draft {
        user_id: to.user_id.clone(),
        template,
        reference: reference.to_owned(),
        recipient: to.phone().unwrap_or_default().to_owned(),
        subject: None,
        body: body.to_owned(),
    };
    let Some(phone) = to.phone() else {
        return Ok(record::skip(db, CHANNEL, &draft, "no phone number")?);
    };
    if !to.sms_opt_in {
        return Ok(record::skip(db, CHANNEL, &draft, "opted out")?);
    }
    let Some(provider) = Provider::configured().map_err(DeliverError::Retry)? else {
        return Ok(record::skip(db, CHANNEL, &draft, "no SMS provider configured")?);
    };
    record::deliver(db, CHANNEL, &draft, || provider.send(phone, body))?;
    Ok(())
}
