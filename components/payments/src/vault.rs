//! The card vault (table `payment_methods`): card numbers sealed at rest, and kept
//! only for the refund window of the order they were saved for.
//!
//! - **Sealed.** AES-256-GCM (RustCrypto `aes-gcm`) under the SHA-256 of variable
//!   `card_vault_key` (a secret of at least 32 bytes), a fresh random 96-bit nonce
//!   per number, and the payment-method token as associated data, so a sealed number
//!   copied into another token's row does not open. Stored in `card_number` as
//!   `sealed:v1:<base64 of nonce and ciphertext>`. Lose or change the key and the
//!   saved numbers are unreadable: their charges fail as an unknown payment method.
//! - **Upgraded.** A migration cannot encrypt, so numbers saved in clear text by
//!   earlier versions are sealed by the first use of the vault after the upgrade
//!   (migration 0002 leaves a marker that this clears); a clear number read later
//!   anyway (written by hand, say) is sealed as it is read.
//! - **Kept for the refund window.** Variable `refund_window_secs` (default 30
//!   days): every use of the vault deletes the numbers saved longer ago. The number
//!   is only needed to charge the order; the window covers a charge retried or
//!   disputed and a cancellation refunded, all of which the payment's own record
//!   (token, brand, last four digits, the provider's charge id) carries after that.
//!   Deletion happens when the vault is next used: a store that takes no orders keeps
//!   its last numbers (sealed) until it takes one.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use estore_shared::clock;
use estore_shared::params;
use estore_shared::sql::{Database, FromRow, Row};

use crate::card::Card;

const SEALED: &str = "sealed:v1:";
const NONCE_BYTES: usize = 12;

/// Why the vault could not do what was asked: the deployment's (a variable) or the
/// database's; either way worth a retry once fixed, and never a customer's fault.
#[derive(Debug)]
pub struct VaultError(pub String);

impl From<estore_shared::sql::Error> for VaultError {
    fn from(e: estore_shared::sql::Error) -> Self {
        VaultError(format!("the vault's database: {e}"))
    }
}

/// Keeps `card` under `token`, sealed.
pub fn save(db: &Database, token: &str, card: &Card) -> Result<(), VaultError> {
    let key = Key::configured()?;
    tidy(db, &key)?;
    db.execute(
        "INSERT INTO payment_methods (token, card_number, brand, last4, created_at) VALUES (?, ?, ?, ?, ?)",
        params![token, key.seal(token, &card.number)?.as_str(), card.brand, card.last4.as_str(), clock::now_unix()],
    )?;
    Ok(())
}

/// The card number saved under `token`; `None` for a token the vault does not know
/// (never saved, or past its refund window).
pub fn number(db: &Database, token: &str) -> Result<Option<String>, VaultError> {
    let key = Key::configured()?;
    tidy(db, &key)?;
    let Some(stored) = stored(db, token)? else {
        return Ok(None);
    };
    match stored.strip_prefix(SEALED) {
        Some(sealed) => key.open(token, sealed).map(Some),
        None => {
            seal_in_place(db, &key, token, &stored)?;
            Ok(Some(stored))
        }
    }
}

/// What every use of the vault does first: seal what an earlier version left in
/// clear text (once), and delete the numbers past their refund window.
fn tidy(db: &Database, key: &Key) -> Result<(), VaultError> {
    let upgraded = db.query("SELECT 1 AS done FROM vault_upgrade WHERE clear_numbers_sealed", params![])?;
    if upgraded.is_empty() {
        let clear: Vec<StoredCard> =
            db.query_as("SELECT token, card_number FROM payment_methods WHERE card_number NOT LIKE 'sealed:%'", params![])?;
        for card in &clear {
            seal_in_place(db, key, &card.token, &card.number)?;
        }
        db.execute("UPDATE vault_upgrade SET clear_numbers_sealed = TRUE", params![])?;
        if !clear.is_empty() {
            eprintln!("the card vault sealed {} card numbers stored in clear text by an earlier version", clear.len());
        }
    }
    let window: i64 = variable("refund_window_secs")?
        .trim()
        .parse()
        .map_err(|_| VaultError("refund_window_secs is not a whole number of seconds".into()))?;
    db.execute("DELETE FROM payment_methods WHERE created_at < ?", params![clock::now_unix() - window])?;
    Ok(())
}

/// Seals a clear-text number where it is, unless another instance did meanwhile.
fn seal_in_place(db: &Database, key: &Key, token: &str, clear: &str) -> Result<(), VaultError> {
    db.execute(
        "UPDATE payment_methods SET card_number = ? WHERE token = ? AND card_number = ?",
        params![key.seal(token, clear)?.as_str(), token, clear],
    )?;
    Ok(())
}

struct StoredCard {
    token: String,
    number: String,
}

impl FromRow for StoredCard {
    fn from_row(row: &Row<'_>) -> Result<Self, estore_shared::sql::Error> {
        Ok(StoredCard { token: row.get("token")?, number: row.get("card_number")? })
    }
}

fn stored(db: &Database, token: &str) -> Result<Option<String>, VaultError> {
    Ok(db.query_optional_as::<StoredCard>("SELECT token, card_number FROM payment_methods WHERE token = ?", params![token])?
        .map(|card| card.number))
}

/// The vault's cipher, keyed from variable `card_vault_key`.
struct Key(Aes256Gcm);

impl Key {
    fn configured() -> Result<Key, VaultError> {
        let secret = variable("card_vault_key")?;
        if secret.is_empty() {
            return Err(VaultError("card_vault_key is empty: the vault has no key".into()));
        }
        Ok(Key::from_secret(&secret))
    }

    fn from_secret(secret: &str) -> Key {
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        Key(Aes256Gcm::new(&digest.into()))
    }

    /// `sealed:v1:` and the base64 of a fresh nonce followed by the ciphertext.
    fn seal(&self, token: &str, number: &str) -> Result<String, VaultError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|e| VaultError(format!("no random nonce: {e}")))?;
        let sealed = self
            .0
            .encrypt(&Nonce::from(nonce), Payload { msg: number.as_bytes(), aad: token.as_bytes() })
            .map_err(|_| VaultError("a card number could not be sealed".into()))?;
        Ok(format!("{SEALED}{}", STANDARD.encode([&nonce[..], &sealed].concat())))
    }

    /// The number sealed as `sealed` (without the prefix) under `token`.
    fn open(&self, token: &str, sealed: &str) -> Result<String, VaultError> {
        let unreadable = || VaultError(format!("the card of {token} does not open with card_vault_key"));
        let bytes = STANDARD.decode(sealed).map_err(|_| unreadable())?;
        let (nonce, ciphertext) = bytes.split_first_chunk::<NONCE_BYTES>().ok_or_else(unreadable)?;
        let clear = self
            .0
            .decrypt(&Nonce::from(*nonce), Payload { msg: ciphertext, aad: token.as_bytes() })
            .map_err(|_| unreadable())?;
        String::from_utf8(clear).map_err(|_| unreadable())
    }
}

fn variable(name: &str) -> Result<String, VaultError> {
    spin_sdk::variables::get(name).map_err(|e| VaultError(format!("the variable {name} is not available: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NUMBER: &str = "4242424242424242";

    #[test]
    fn a_sealed_number_opens_only_with_its_key_and_token() {
        let key = Key::from_secret("card-vault-key-of-the-unit-tests-0123456789");
        let sealed = key.seal("pm_1", NUMBER).expect("sealed");
        assert!(sealed.starts_with(SEALED) && !sealed.contains(NUMBER), "{sealed}");
        let body = &sealed[SEALED.len()..];
        assert_eq!(key.open("pm_1", body).ok().as_deref(), Some(NUMBER));
        assert!(key.open("pm_2", body).is_err(), "moved to another token");
        assert!(Key::from_secret("another key, just as long as the first").open("pm_1", body).is_err());
        assert!(key.open("pm_1", "not base64!").is_err());
        assert!(key.open("pm_1", &STANDARD.encode([1u8; 8])).is_err(), "shorter than a nonce");
    }

    #[test]
    fn each_seal_has_its_own_nonce() {
        let key = Key::from_secret("card-vault-key-of-the-unit-tests-0123456789");
        assert_ne!(key.seal("pm_1", NUMBER).ok(), key.seal("pm_1", NUMBER).ok());
    }
}
