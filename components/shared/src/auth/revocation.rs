//! Revoking every token of a user at once, although each service checks tokens on
//! its own, from the signature alone.
//!
//! users writes, when a password changes, a role changes or an account is deleted,
//! the time of that change under `auth:revoked-before:<user id>` in the key-value
//! store `default`, which every component that checks tokens is granted (a store is
//! shared by its label among the components granted it). Every check
//! ([`super::caller`]) reads that one key after the signature: a token issued before
//! the time (its `iat_ms`) is refused. The cost is one key-value read per request
//! (a primary-key lookup in the host's SQLite file), and nothing for users who never
//! revoked anything beyond that read.
//!
//! The store is the host's: on several hosts, each has its own, so a revocation is
//! seen by the host that served the change (README, "what the store guarantees").
//! A check that cannot read the store refuses the request (503) rather than let a
//! revoked token through.

use spin_sdk::key_value::Store;

use super::Claims;
use crate::problem::Problem;

const PREFIX: &str = "auth:revoked-before:";

/// Revokes every token of `user_id` issued before `at_ms` (Unix milliseconds). Call
/// it inside the transaction that makes the change, before it commits: if the
/// change then fails, the user only has to log in again, and no change is ever
/// left with its old tokens valid.
pub fn revoke_all(user_id: &str, at_ms: i64) -> Result<(), Problem> {
    let key = format!("{PREFIX}{user_id}");
    Store::open_default().and_then(|store| store.set(&key, at_ms.to_string().as_bytes())).map_err(|e| {
        eprintln!("the tokens of user {user_id} could not be revoked: {e}");
        Problem::new(503, "the change cannot be made now: signing out your other sessions failed; try again")
    })
}

/// 401 if the caller's token was issued before their tokens were last revoked.
pub fn check(claims: &Claims) -> Result<(), Problem> {
    let key = format!("{PREFIX}{}", claims.sub);
    let stored = Store::open_default().and_then(|store| store.get(&key)).map_err(|e| {
        eprintln!("revoked tokens cannot be checked: {e}");
        Problem::new(503, "signing in cannot be checked now; try again")
    })?;
    let revoked_before = stored.and_then(|bytes| String::from_utf8(bytes).ok()?.parse().ok());
    if is_revoked(claims, revoked_before) {
        let challenge = r#"Bearer error="invalid_token", error_description="the token was revoked""#;
        return Err(Problem::unauthorized(
            "the token was revoked (a new password, a new role or a deleted account): log in again",
        )
        .with_header("www-authenticate", challenge));
    }
    Ok(())
}

fn is_revoked(claims: &Claims, revoked_before_ms: Option<i64>) -> bool {
    revoked_before_ms.is_some_and(|before| claims.iat_ms < before)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn issued_at(iat_ms: i64) -> Claims {
        Claims { sub: "user-7".into(), role: Role::Customer, exp: i64::MAX, iat_ms }
    }

    #[test]
    fn tokens_issued_before_the_revocation_are_revoked() {
        assert!(!is_revoked(&issued_at(1_000), None), "nothing revoked");
        assert!(is_revoked(&issued_at(999), Some(1_000)));
        assert!(!is_revoked(&issued_at(1_000), Some(1_000)), "issued at the change: after it");
        assert!(!is_revoked(&issued_at(1_001), Some(1_000)));
        // Tokens from before issue times were carried: revoked by any revocation.
        assert!(is_revoked(&issued_at(0), Some(1)));
    }
}
