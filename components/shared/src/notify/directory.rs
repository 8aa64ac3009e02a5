//! The users a notification service can address, kept from users' events:
//! `user.registered` and `user.updated` (the whole profile) and `user.deleted`.
//!
//! The events come on three topics, which the platform does not order against each
//! other, so a row remembers the `occurred_at` of the event that wrote it and an older
//! event never overwrites a newer one. A deleted user's row is removed; a late
//! `user.updated` for them (published before the deletion, handled after it) would
//! bring it back, which costs a row, not a message: nothing sends without an event
//! about that user.
//!
//! Table `contacts` (the same in each service's migrations):
//! `user_id, username, email, first_name, last_name, phone, sms_opt_in,
//! marketing_opt_in, as_of`.

use serde::Deserialize;

use crate::params;
use crate::sql::{Database, Error, FromRow, Row};

/// `data` of `user.registered` and `user.updated` (components/README.md), and a row
/// of the directory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Contact {
    pub user_id: String,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    #[serde(default)]
    pub phone: Option<String>,
    pub sms_opt_in: bool,
    pub marketing_opt_in: bool,
}

/// `data` of `user.deleted`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Deleted {
    pub user_id: String,
}

impl Contact {
    /// How a message greets them: the first name, or the username when it is blank.
    pub fn greeting_name(&self) -> &str {
        if self.first_name.trim().is_empty() { &self.username } else { &self.first_name }
    }

    /// Their phone number, if they gave one (blank counts as none).
    pub fn phone(&self) -> Option<&str> {
        self.phone.as_deref().map(str::trim).filter(|phone| !phone.is_empty())
    }
}

const COLUMNS: &str = "user_id, username, email, first_name, last_name, phone, sms_opt_in, marketing_opt_in";

impl FromRow for Contact {
    fn from_row(row: &Row<'_>) -> Result<Self, Error> {
        Ok(Contact {
            user_id: row.get("user_id")?,
            username: row.get("username")?,
            email: row.get("email")?,
            first_name: row.get("first_name")?,
            last_name: row.get("last_name")?,
            phone: row.get("phone")?,
            sms_opt_in: row.get("sms_opt_in")?,
            marketing_opt_in: row.get("marketing_opt_in")?,
        })
    }
}

/// Remembers `contact` as of `occurred_at` (the event's RFC 3339 UTC time, which sorts
/// as text), unless the directory already holds a newer word on them.
pub fn remember(db: &Database, contact: &Contact, occurred_at: &str) -> Result<(), Error> {
    db.execute(
        &format!(
            "INSERT INTO contacts ({COLUMNS}, as_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (user_id) DO UPDATE SET username = excluded.username, email = excluded.email, \
             first_name = excluded.first_name, last_name = excluded.last_name, phone = excluded.phone, \
             sms_opt_in = excluded.sms_opt_in, marketing_opt_in = excluded.marketing_opt_in, as_of = excluded.as_of \
             WHERE contacts.as_of <= excluded.as_of"
        ),
        params![
            contact.user_id.as_str(),
            contact.username.as_str(),
            contact.email.as_str(),
            contact.first_name.as_str(),
            contact.last_name.as_str(),
            contact.phone(),
            contact.sms_opt_in,
            contact.marketing_opt_in,
            occurred_at
        ],
    )?;
    Ok(())
}

pub fn forget(db: &Database, user_id: &str) -> Result<(), Error> {
    db.execute("DELETE FROM contacts WHERE user_id = ?", params![user_id])?;
    Ok(())
}

pub fn find(db: &Database, user_id: &str) -> Result<Option<Contact>, Error> {
    db.query_optional_as(&format!("SELECT {COLUMNS} FROM contacts WHERE user_id = ?"), params![user_id])
}

/// Everyone who asked for the store's promotions.
pub fn marketing_audience(db: &Database) -> Result<Vec<Contact>, Error> {
    // TRUE, not 1: PostgreSQL's BOOLEAN does not compare with an integer; SQLite
    // reads TRUE as 1.
    db.query_as(&format!("SELECT {COLUMNS} FROM contacts WHERE marketing_opt_in = TRUE ORDER BY user_id"), params![])
}

/// What a `user.*` event meant to the directory, once applied.
#[cfg(feature = "handler")]
pub enum UserEvent {
    /// A new user: greet them.
    Registered(Contact),
    Updated,
    Deleted,
}

/// Applies `message` to the directory if it is a `user.*` event; `None` for any other
/// topic, which is the service's to handle.
#[cfg(feature = "handler")]
pub fn follow(
    db: &Database,
    message: &crate::messaging::handler::Message,
) -> Result<Option<UserEvent>, crate::messaging::handler::HandleError> {
    match message.topic.as_str() {
        "user.registered" | "user.updated" => {
            let event: crate::event::Envelope<Contact> = message.envelope()?;
            remember(db, &event.data, &event.occurred_at)?;
            Ok(Some(if message.topic == "user.registered" {
                UserEvent::Registered(event.data)
            } else {
                UserEvent::Updated
            }))
        }
        "user.deleted" => {
            let event: crate::event::Envelope<Deleted> = message.envelope()?;
            forget(db, &event.data.user_id)?;
            Ok(Some(UserEvent::Deleted))
        }
        _ => Ok(None),
    }
}

/// How many deliveries of an event about a user the directory does not know yet are
/// retried before the notification is given up as `SKIPPED`: users' events travel
/// on other topics than orders', so the directory may be behind, by seconds when a
/// host died with their partition (Kafka moves it after its 10 s session timeout).
/// With the store's delivery policy (spin.toml: 8 deliveries, backoff 0.2 s doubling)
/// the 7th delivery comes about 12.6 s after the first.
pub const UNKNOWN_USER_ATTEMPTS: u32 = 7;

/// The contact for an event about `user_id`: `Ok(None)` once they are still unknown
/// after [`UNKNOWN_USER_ATTEMPTS`] deliveries (deleted, or never registered), a retry
/// before that.
#[cfg(feature = "handler")]
pub fn addressee(
    db: &Database,
    user_id: &str,
    message: &crate::messaging::handler::Message,
) -> Result<Option<Contact>, crate::messaging::handler::HandleError> {
    match find(db, user_id)? {
        Some(contact) => Ok(Some(contact)),
        None if message.attempt < UNKNOWN_USER_ATTEMPTS => Err(crate::messaging::handler::HandleError::Retry(
            format!("user {user_id} is not in the directory yet"),
        )),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_users_events_data_whatever_else_it_carries() {
        let data = r#"{"user_id": "u1", "username": "ada", "email": "ada@example.com", "first_name": "",
            "last_name": "Lovelace", "phone": null, "sms_opt_in": false, "marketing_opt_in": true, "role": "customer"}"#;
        let contact: Contact = serde_json::from_str(data).expect("a contact");
        assert_eq!(contact.phone(), None);
        assert_eq!(contact.greeting_name(), "ada", "a blank first name falls back to the username");
        let with_phone = Contact { phone: Some(" +43 660 1234567 ".into()), first_name: "Ada".into(), ..contact };
        assert_eq!(with_phone.phone(), Some("+43 660 1234567"));
        assert_eq!(with_phone.greeting_name(), "Ada");
    }
}
