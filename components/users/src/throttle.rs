//! Slowing down password guessing: after [`MAX_FAILURES`] failed logins for one
//! account within [`WINDOW_SECS`], further attempts get a 429 until the oldest of
//! them is a window old. The failures are rows in the database, so every instance
//! counts the same ones.

use estore_shared::params;
use estore_shared::sql::{Database, Error};

pub const MAX_FAILURES: i64 = 5;
pub const WINDOW_SECS: i64 = 60;

/// How many seconds `user_id` must wait before trying again, if they must.
///
/// While an account is locked its attempts are refused before the password is
/// checked, and not recorded, so the window never holds more than
/// [`MAX_FAILURES`] rows and the oldest one says when it opens again.
pub fn locked_for(db: &Database, user_id: &str, now: i64) -> Result<Option<u64>, Error> {
    let rows = db.query(
        "SELECT COUNT(*) AS failures, MIN(failed_at) AS oldest FROM login_failures \
         WHERE user_id = ? AND failed_at > ?",
        params![user_id, now - WINDOW_SECS],
    )?;
    let Some(row) = rows.get(0) else {
        return Ok(None);
    };
    let failures: i64 = row.get("failures")?;
    let oldest: Option<i64> = row.get("oldest")?;
    Ok(match oldest {
        Some(oldest) if failures >= MAX_FAILURES => Some((oldest + WINDOW_SECS - now).max(1).unsigned_abs()),
        _ => None,
    })
}

/// Records a failed login, forgetting the account's failures older than the window.
pub fn record_failure(db: &Database, user_id: &str, now: i64) -> Result<(), Error> {
    db.transaction(|tx| {
        tx.execute(
            "DELETE FROM login_failures WHERE user_id = ? AND failed_at <= ?",
            params![user_id, now - WINDOW_SECS],
        )?;
        tx.execute(
            "INSERT INTO login_failures (id, user_id, failed_at) VALUES (?, ?, ?)",
            params![uuid::Uuid::new_v4().to_string(), user_id, now],
        )?;
        Ok(())
    })
}

/// Forgets the account's failures: a successful login starts the count afresh.
pub fn clear(db: &Database, user_id: &str) -> Result<(), Error> {
    db.execute("DELETE FROM login_failures WHERE user_id = ?", params![user_id])?;
    Ok(())
}
