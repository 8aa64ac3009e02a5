//! Slowing down password guessing without handing attackers a lock-out button.
//!
//! Every login attempt is counted, before its password is checked, in two scopes:
//! the account (or, for an e-mail no account has, what was typed) *from this client
//! address*, at most [`MAX_PER_ACCOUNT`] per window, and the client address across
//! all accounts, at most [`MAX_PER_ADDRESS`]. Past either, the attempt gets a 429
//! with `Retry-After` and no password check. A success starts its account's count
//! afresh and does not count against its address. So guesses from one place stop
//! after five a minute, and a user logging in from their own address is not locked
//! out by someone guessing elsewhere.
//!
//! Each count is one atomic statement (`INSERT ... ON CONFLICT DO UPDATE ...
//! RETURNING`), so parallel attempts each see their own number and no more than the
//! limit get through. The counts are rows in the database, so every instance and
//! every host counts the same ones. A window starts with its scope's first attempt
//! and lasts [`WINDOW_SECS`].

use estore_shared::params;
use estore_shared::problem::Problem;
use estore_shared::sql::{Database, Error, FromRow, Row};

pub const MAX_PER_ACCOUNT: i64 = 5;
pub const MAX_PER_ADDRESS: i64 = 20;
pub const WINDOW_SECS: i64 = 60;

/// An attempt let through to the password check, for [`succeeded`].
pub struct Attempt {
    account_scope: String,
    address_scope: String,
}

struct Count {
    attempts: i64,
    window_start: i64,
}

impl FromRow for Count {
    fn from_row(row: &Row<'_>) -> Result<Self, Error> {
        Ok(Count { attempts: row.get("attempts")?, window_start: row.get("window_start")? })
    }
}

/// Counts an attempt on `account` (a user id, or the login an unknown account was
/// tried with) from `address`; a 429 once either scope is past its limit.
pub fn attempt(db: &Database, account: &str, address: &str, now: i64) -> Result<Attempt, Problem> {
    db.execute("DELETE FROM login_throttle WHERE window_start <= ?", params![now - WINDOW_SECS])?;
    let attempt = Attempt { account_scope: format!("account:{account}|{address}"), address_scope: format!("address:{address}") };
    let waits = [(&attempt.account_scope, MAX_PER_ACCOUNT), (&attempt.address_scope, MAX_PER_ADDRESS)]
        .into_iter()
        .map(|(scope, max)| Ok(wait(&count(db, scope, now)?, max, now)))
        .collect::<Result<Vec<_>, Error>>()?;
    match waits.into_iter().flatten().max() {
        Some(wait) => Err(Problem::too_many_requests(wait)),
        None => Ok(attempt),
    }
}

/// The password was right: the account's count starts afresh, and the attempt is
/// taken back from its address's (a shop's customers may share one).
pub fn succeeded(db: &Database, attempt: &Attempt) -> Result<(), Error> {
    db.execute("DELETE FROM login_throttle WHERE scope = ?", params![attempt.account_scope.as_str()])?;
    db.execute(
        "UPDATE login_throttle SET attempts = attempts - 1 WHERE scope = ? AND attempts > 0",
        params![attempt.address_scope.as_str()],
    )?;
    Ok(())
}

/// Adds one to `scope`'s count in its window (a new window if the last one ended),
/// in one statement; answers the count with this attempt.
fn count(db: &Database, scope: &str, now: i64) -> Result<Count, Error> {
    let ended = now - WINDOW_SECS;
    db.query_one_as(
        "INSERT INTO login_throttle (scope, window_start, attempts) VALUES (?, ?, 1) \
         ON CONFLICT (scope) DO UPDATE SET \
           attempts = CASE WHEN login_throttle.window_start <= ? THEN 1 ELSE login_throttle.attempts + 1 END, \
           window_start = CASE WHEN login_throttle.window_start <= ? THEN excluded.window_start \
                          ELSE login_throttle.window_start END \
         RETURNING attempts, window_start",
        params![scope, now, ended, ended],
    )
}

/// Seconds until the window of a count past `max` ends; `None` within the limit.
fn wait(count: &Count, max: i64, now: i64) -> Option<u64> {
    (count.attempts > max).then(|| (count.window_start + WINDOW_SECS - now).max(1).unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_limit_waits_for_the_window_to_end() {
        let count = |attempts| Count { attempts, window_start: 1_000 };
        assert_eq!(wait(&count(5), 5, 1_010), None, "the fifth attempt is let through");
        assert_eq!(wait(&count(6), 5, 1_010), Some(50));
        assert_eq!(wait(&count(6), 5, 1_059), Some(1));
        assert_eq!(wait(&count(60), 5, 1_100), Some(1), "never less than a second");
    }
}
