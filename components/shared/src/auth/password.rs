//! Passwords, stored only as argon2id hashes (PHC strings:
//! `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`), each with its own random salt.
//!
//! The parameters are the argon2 crate's defaults, OWASP's minimum for argon2id:
//! 19 MiB of memory and 2 passes, one lane. That is the point: each guess costs an
//! attacker as much. For the store it means each hash or check allocates 19 MiB in
//! the component and takes a noticeable fraction of a second, once per
//! registration or login. The parameters are stored in each hash, so raising them
//! later leaves existing hashes verifiable.
//!
//! Neither the password nor its hash belongs in a log, an event or a response.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// The argon2id hash of `password` with a fresh random salt (from the OS:
/// `wasi:random` in a component), as a PHC string to store.
///
/// # Panics
/// Only if the system's random source fails, which `wasi:random` cannot, or the
/// password is over 4 GiB; neither is input a request can carry.
pub fn hash_password(password: &str) -> String {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .unwrap_or_else(|e| panic!("argon2 could not hash a password: {e}"))
}

/// Whether `password` matches `hash` (a PHC string from [`hash_password`]), compared
/// in constant time. A hash that is not a PHC string matches nothing.
///
/// When no account matches a login, check the password against some stored hash
/// anyway, so the response time does not tell which accounts exist.
pub fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), hash).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_password() {
        let hash = hash_password("correct horse battery staple");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(verify_password("correct horse battery staple", &hash));
        assert!(!verify_password("correct horse battery stapler", &hash));
        assert!(!verify_password("", &hash));
    }

    #[test]
    fn each_hash_has_its_own_salt() {
        assert_ne!(hash_password("same"), hash_password("same"));
    }

    #[test]
    fn anything_but_a_phc_string_matches_nothing() {
        for hash in ["", "plain text", "$argon2id$v=19$m=19456,t=2,p=1$", "$2b$12$abcdefghijklmnopqrstuv"] {
            assert!(!verify_password("plain text", hash), "{hash:?}");
        }
    }
}
