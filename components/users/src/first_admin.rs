//! The store's first administrator, from the variables `admin_email` and
//! `admin_password`: created when no account has that e-mail, so a fresh store can
//! be run at once, and an admin who deleted their own account gets it back.

use std::sync::atomic::{AtomicBool, Ordering};

use estore_shared::auth::{Role, hash_password};
use estore_shared::problem::Problem;
use estore_shared::sql::Database;

use crate::account::{self, Account, Profile};
use crate::{publish_user_registered, variable};

/// Whether this instance has seen the admin account. Checked at an instance's first
/// request; an instance that handles many requests checks once.
static SEEN: AtomicBool = AtomicBool::new(false);

/// Creates the first admin unless it exists. A cheap SELECT first: the argon2 hash
/// is computed only when the account is missing.
pub fn ensure(db: &Database) -> Result<(), Problem> {
    if SEEN.load(Ordering::Relaxed) {
        return Ok(());
    }
    let email = variable("admin_email")?.trim().to_lowercase();
    if email.is_empty() || account::email_exists(db, &email)? {
        SEEN.store(true, Ordering::Relaxed);
        return Ok(());
    }
    let profile = Profile {
        // Registered usernames cannot contain `@`, so the e-mail as username never
        // clashes with a customer's (which would leave the admin uncreated).
        username: email.clone(),
        email,
        first_name: "Store".into(),
        last_name: "Administrator".into(),
        phone: None,
        sms_opt_in: false,
        marketing_opt_in: false,
    };
    let admin = Account::new(profile, hash_password(&variable("admin_password")?), Role::Admin);
    db.transaction(|tx| {
        // Another instance may have created it meanwhile: then nothing is inserted,
        // and nothing is announced.
        if account::insert(tx, &admin)? {
            publish_user_registered(&admin.user)?;
        }
        Ok::<_, Problem>(())
    })?;
    SEEN.store(true, Ordering::Relaxed);
    Ok(())
}
