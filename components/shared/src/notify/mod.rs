//! What the notification services (`email`, `sms`) share: the [`directory`] of users
//! they keep from users' events (order events carry only a user id), the [`events`]
//! they send about, and the
//! [`record`] of every notification, which makes each one go out once however often
//! its event arrives.
//!
//! How a notification goes out ([`record::deliver`]):
//!
//! 1. **Claim:** one `INSERT ... ON CONFLICT DO NOTHING` on the natural key
//!    (template, reference, user): the order id or promotion id, or the user id for a
//!    welcome. The same event published twice, under two message ids, meets the first
//!    one's record. A record already `SENT`, `FAILED` or `SKIPPED` is done with: the
//!    event is acknowledged.
//! 2. **Send** through the channel (SMTP, the SMS provider).
//! 3. **Record the outcome:** `SENT` (with the provider's id), `FAILED` with the reason
//!    when the provider refused for good (SMTP 5xx, HTTP 4xx), or, for a failure worth
//!    another try (SMTP 4xx, HTTP 5xx, a transport error), the attempt and its reason,
//!    status still `PENDING`, and a retry asked of the platform. The redelivery finds
//!    the record `PENDING` and sends again.
//!
//! No step needs an SQL transaction: each is one statement, atomic on its own, and
//! the e-mail or text goes out between them, where no transaction should be held
//! open. The platform records the message as handled when the handler returns `Ok`.
//!
//! **A crash between sending and recording** (the instance is killed, the database
//! is away for the update) leaves the record `PENDING`: the message is redelivered and
//! the notification sent again. Delivery to the provider is at least once, never at
//! most once: a duplicate welcome is better than a lost order confirmation. The same
//! holds for an SMTP server whose answer to an accepted message is lost (wit/email.wit).

pub mod directory;
pub mod events;
pub mod record;

pub use directory::Contact;
pub use record::{DeliverError, Draft, Notification, SendError, Status};

/// Runs `notify` for the user an event is about, found in the [`directory`]. One the
/// directory still does not know after [`directory::UNKNOWN_USER_ATTEMPTS`] deliveries
/// (deleted, or never registered) gets a `SKIPPED` record saying so, and nothing else.
#[cfg(feature = "handler")]
pub fn for_user(
    db: &crate::sql::Database,
    message: &crate::messaging::handler::Message,
    channel: &str,
    user_id: &str,
    template: &'static str,
    reference: &str,
    notify: impl FnOnce(&Contact) -> Result<(), DeliverError>,
) -> Result<(), crate::messaging::handler::HandleError> {
    match directory::addressee(db, user_id, message)? {
        Some(contact) => Ok(notify(&contact)?),
        None => {
            let draft = Draft {
                user_id: user_id.to_owned(),
                template,
                reference: reference.to_owned(),
                recipient: String::new(),
                subject: None,
                body: String::new(),
            };
            Ok(record::skip(db, channel, &draft, "unknown user")?)
        }
    }
}
