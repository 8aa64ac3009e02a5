//! Sending e-mail, for a component whose manifest entry says `allow_email = true`.
//!
//! ```no_run
//! use estore_shared::email::send_email;
//!
//! let message_id = send_email(&["Ann <ann@example.com>"], "Your order", "Thank you!", None);
//! ```
//!
//! The sender is the host's (`[email] from` in its runtime config). For a `Reply-To`,
//! call [`crate::bindings::mailer::send`] with a full [`Message`].

pub use crate::bindings::estore::platform::mailer::{Error as EmailError, Message};

/// Sends a message to `to` (addresses, or `Name <address>`), with `html` as an
/// alternative to the plain `text` when given; returns its Message-ID (`<id@domain>`).
/// `EmailError::Unavailable` is worth a retry; `Invalid` is not.
pub fn send_email(to: &[&str], subject: &str, text: &str, html: Option<&str>) -> Result<String, EmailError> {
    let message = Message {
        to: to.iter().map(|address| (*address).to_owned()).collect(),
        subject: subject.to_owned(),
        text: text.to_owned(),
        html: html.map(str::to_owned),
        reply_to: None,
    };
    crate::bindings::estore::platform::mailer::send(&message)
}
