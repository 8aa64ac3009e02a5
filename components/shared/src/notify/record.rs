//! The record of every notification a service sent, skipped or failed to send, and
//! the once-only way to send one ([`deliver`]); see [the module](super) for why.
//!
//! Table `notifications` (the same in each service's migrations), one row per
//! (template, reference, user): `id, user_id, channel, template, reference, recipient,
//! subject, body, status, reason, attempts, provider_id, created_at_ms, sent_at_ms`.

use serde::{Serialize, Serializer};
use spin_sdk::http::{Request, Response};

use crate::api::{self, Page, PageRequest};
use crate::problem::Problem;
use crate::sql::{Database, Error, FromRow, Row};
use crate::{auth, clock, params};

/// Where a notification is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Claimed and not sent yet: being sent, or waiting for the platform's retry (or,
    /// after a crash between sending and recording, sent but not known to be).
    Pending,
    Sent,
    /// Refused for good by the provider; `reason` says why. Not retried.
    Failed,
    /// Deliberately not sent (no phone number, opted out, no provider); `reason`.
    Skipped,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Sent => "SENT",
            Status::Failed => "FAILED",
            Status::Skipped => "SKIPPED",
        }
    }

    fn parse(text: &str) -> Result<Status, Error> {
        match text {
            "PENDING" => Ok(Status::Pending),
            "SENT" => Ok(Status::Sent),
            "FAILED" => Ok(Status::Failed),
            "SKIPPED" => Ok(Status::Skipped),
            _ => Err(Error::Decode {
                column: "status".into(),
                error: crate::sql::DecodeError::WrongType { expected: "a notification status", found: "text" },
            }),
        }
    }
}

/// A notification as `GET /api/notifications/{channel}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    pub id: String,
    pub user_id: String,
    pub channel: String,
    pub template: String,
    /// What it is about: the order id, the promotion id, or the user id (welcome).
    pub reference: String,
    /// The e-mail address or phone number; empty for a user the service never knew.
    pub recipient: String,
    pub subject: Option<String>,
    pub body: String,
    pub status: Status,
    pub reason: Option<String>,
    /// How many times sending was tried.
    pub attempts: i64,
    /// The provider's id for what it took: the e-mail's Message-ID, the SMS's sid.
    pub provider_id: Option<String>,
    #[serde(rename = "created_at", serialize_with = "as_rfc3339")]
    pub created_at_ms: i64,
    #[serde(rename = "sent_at", serialize_with = "as_optional_rfc3339")]
    pub sent_at_ms: Option<i64>,
}

fn as_rfc3339<S: Serializer>(ms: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&clock::rfc3339(ms.div_euclid(1000)))
}

fn as_optional_rfc3339<S: Serializer>(ms: &Option<i64>, serializer: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => as_rfc3339(ms, serializer),
        None => serializer.serialize_none(),
    }
}

const COLUMNS: &str = "id, user_id, channel, template, reference, recipient, subject, body, status, reason, \
                       attempts, provider_id, created_at_ms, sent_at_ms";

impl FromRow for Notification {
    fn from_row(row: &Row<'_>) -> Result<Self, Error> {
        Ok(Notification {
            id: row.get("id")?,
            user_id: row.get("user_id")?,
            channel: row.get("channel")?,
            template: row.get("template")?,
            reference: row.get("reference")?,
            recipient: row.get("recipient")?,
            subject: row.get("subject")?,
            body: row.get("body")?,
            status: Status::parse(&row.get::<String>("status")?)?,
            reason: row.get("reason")?,
            attempts: row.get("attempts")?,
            provider_id: row.get("provider_id")?,
            created_at_ms: row.get("created_at_ms")?,
            sent_at_ms: row.get("sent_at_ms")?,
        })
    }
}

/// A notification to send: who, which template about what, and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub user_id: String,
    /// `welcome`, `order_confirmed`, `order_shipped`, `order_delivered`,
    /// `order_cancelled`, `payment_refunded`, `promotion`.
    pub template: &'static str,
    pub reference: String,
    pub recipient: String,
    pub subject: Option<String>,
    /// The plain text (an e-mail's HTML alternative is not recorded).
    pub body: String,
}

/// Why a channel did not send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Worth another try later: SMTP 4xx, HTTP 5xx or 429, a transport error.
    Transient(String),
    /// Refused for good: SMTP 5xx, HTTP 4xx, a malformed address. Not retried.
    Permanent(String),
}

/// Why [`deliver`] did not finish: either way the handler asks for a retry.
#[derive(Debug)]
pub enum DeliverError {
    /// The channel failed for now; the attempt is recorded.
    Retry(String),
    Database(Error),
}

impl From<Error> for DeliverError {
    fn from(e: Error) -> Self {
        DeliverError::Database(e)
    }
}

impl std::fmt::Display for DeliverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeliverError::Retry(reason) => write!(f, "not sent yet, will retry: {reason}"),
            DeliverError::Database(e) => write!(f, "the notification record: {e}"),
        }
    }
}

#[cfg(feature = "handler")]
impl From<DeliverError> for crate::messaging::handler::HandleError {
    fn from(e: DeliverError) -> Self {
        crate::messaging::handler::HandleError::Retry(e.to_string())
    }
}

/// Sends `draft` through `send` once (it returns the provider's id), unless its
/// record says it was already dealt with; returns the record's final status. A
/// transient failure is recorded as an attempt and returned as [`DeliverError::Retry`].
pub fn deliver(
    db: &Database,
    channel: &str,
    draft: &Draft,
    send: impl FnOnce() -> Result<String, SendError>,
) -> Result<Status, DeliverError> {
    let record = claim(db, channel, draft, Status::Pending, None)?;
    if record.status != Status::Pending {
        return Ok(record.status);
    }
    // The same event can reach two handlers at once (a redelivery while the first is
    // still at work, on another host). Each attempt is taken by moving `attempts` on
    // from the count it read: one handler wins and sends; the other retries later and
    // then finds the outcome, or, if the winner died before sending, takes the next
    // attempt itself.
    let taken = db.execute(
        "UPDATE notifications SET attempts = attempts + 1 WHERE id = ? AND status = 'PENDING' AND attempts = ?",
        params![record.id.as_str(), record.attempts],
    )?;
    if taken == 0 {
        return Err(DeliverError::Retry(format!("{} {} is being sent by another handler", draft.template, draft.reference)));
    }
    match send() {
        Ok(provider_id) => {
            db.execute(
                "UPDATE notifications SET status = 'SENT', reason = NULL, provider_id = ?, sent_at_ms = ? WHERE id = ?",
                params![provider_id, clock::now_unix_ms(), record.id.as_str()],
            )?;
            Ok(Status::Sent)
        }
        Err(SendError::Permanent(reason)) => {
            db.execute("UPDATE notifications SET status = 'FAILED', reason = ? WHERE id = ?", params![reason, record.id.as_str()])?;
            Ok(Status::Failed)
        }
        Err(SendError::Transient(reason)) => {
            db.execute("UPDATE notifications SET reason = ? WHERE id = ?", params![reason.as_str(), record.id.as_str()])?;
            Err(DeliverError::Retry(reason))
        }
    }
}

/// Records `draft` as not sent, with `reason`, unless it already has a record.
pub fn skip(db: &Database, channel: &str, draft: &Draft, reason: &str) -> Result<(), Error> {
    claim(db, channel, draft, Status::Skipped, Some(reason)).map(drop)
}

/// Inserts the record unless its natural key has one; returns the record that is.
fn claim(db: &Database, channel: &str, draft: &Draft, status: Status, reason: Option<&str>) -> Result<Notification, Error> {
    db.execute(
        &format!(
            "INSERT INTO notifications ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, ?, NULL) \
             ON CONFLICT (template, reference, user_id) DO NOTHING"
        ),
        params![
            uuid::Uuid::new_v4().to_string(),
            draft.user_id.as_str(),
            channel,
            draft.template,
            draft.reference.as_str(),
            draft.recipient.as_str(),
            draft.subject.as_deref(),
            draft.body.as_str(),
            status.as_str(),
            reason,
            clock::now_unix_ms()
        ],
    )?;
    db.query_one_as(
        &format!("SELECT {COLUMNS} FROM notifications WHERE template = ? AND reference = ? AND user_id = ?"),
        params![draft.template, draft.reference.as_str(), draft.user_id.as_str()],
    )
}

/// `GET /api/notifications/{channel}?page=&size=`: the caller's own notifications,
/// every one for an admin, newest first.
pub fn list(req: &Request, db: &Database) -> Result<Response, Problem> {
    let caller = auth::caller(req)?;
    let request = PageRequest::from_query(req.query(), &["created_at"], "-created_at")?;
    // The only sort key is created_at, stored in milliseconds; the id breaks ties so
    // that pages do not overlap.
    let order = format!("created_at_ms {dir}, id {dir}", dir = request.sort.direction());
    let (filter, owner): (&str, Vec<crate::sql::Value>) =
        if caller.is_admin() { ("", Vec::new()) } else { ("WHERE user_id = ?", vec![caller.sub.as_str().into()]) };
    let mut values = owner.clone();
    values.extend([i64::from(request.size).into(), request.offset().into()]);
    let items: Vec<Notification> =
        db.query_as(&format!("SELECT {COLUMNS} FROM notifications {filter} ORDER BY {order} LIMIT ? OFFSET ?"), &values)?;
    let rows = db.query(&format!("SELECT COUNT(*) AS total FROM notifications {filter}"), &owner)?;
    let total: i64 = match rows.get(0) {
        Some(row) => row.get("total")?,
        None => 0,
    };
    Ok(api::json(200, &Page::new(items, &request, u64::try_from(total).unwrap_or(0))))
}
