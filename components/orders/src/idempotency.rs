//! `Idempotency-Key` on checkout (`POST /api/orders`): a customer's repeat of a
//! checkout (a double click, a request sent again after its answer was lost) gets the
//! first request's answer, 202 with the same `Location` and body, and places no second
//! order, so the card is charged once.
//!
//! The key, per customer, is recorded with the order it placed, in the transaction that
//! places it. Two requests with one key at the same moment both try; the table's
//! primary key lets one commit, and the other answers with what that one recorded.
//! The same key with another request (another address or card) is a 422: a key stands
//! for one checkout, and answering for a different one would hide the difference.
//! A request that failed (an empty cart, a card refused) recorded nothing, so its key
//! may be used again.

use estore_shared::params;
use estore_shared::problem::Problem;
use estore_shared::sql::{Database, Error};
use spin_sdk::http::Request;

use crate::checkout::CheckoutRequest;
use crate::order::{self, Address};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The longest key accepted; a UUID (what clients usually send) has 36 characters.
const MAX_LEN: usize = 255;

/// The request's key, if it has one: 1 to 255 visible ASCII characters, else a 400.
pub fn key(req: &Request) -> Result<Option<String>, Problem> {
    let Some(value) = req.header(HEADER) else { return Ok(None) };
    let key = value.as_str().filter(|key| is_valid(key)).ok_or_else(|| {
        Problem::bad_request(format!("Idempotency-Key must be 1 to {MAX_LEN} visible ASCII characters"))
    })?;
    Ok(Some(key.to_owned()))
}

fn is_valid(key: &str) -> bool {
    (1..=MAX_LEN).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

/// What an earlier request of `user_id` with `key` placed: the order's id and the body
/// it was answered with. `None` if no request with the key has placed an order; a 422
/// if one did but `checkout` is not that request.
pub fn replay(db: &Database, user_id: &str, key: &str, checkout: &CheckoutRequest) -> Result<Option<(String, String)>, Problem> {
    let rows = db.query(
        "SELECT order_id, answer FROM idempotency_keys WHERE user_id = ? AND idempotency_key = ?",
        params![user_id, key],
    )?;
    let Some(row) = rows.get(0) else { return Ok(None) };
    let (order_id, answer): (String, String) = (row.get("order_id")?, row.get("answer")?);
    let placed = order::find(db, &order_id)?.ok_or(Error::NoRows)?;
    if !same_checkout(&placed.shipping_address, &placed.payment_method.last4, checkout) {
        return Err(Problem::unprocessable(format!(
            "Idempotency-Key {key} was used for another checkout (order {order_id}, to another address or with \
             another card); send a new key for a new checkout"
        )));
    }
    Ok(Some((order_id, answer)))
}

/// Records that `user_id`'s request with `key` placed `order_id` and was answered
/// `answer`; inside the transaction that placed it. A unique violation means a twin
/// request recorded the key first.
pub fn remember(tx: &Database, user_id: &str, key: &str, order_id: &str, answer: &str) -> Result<(), Error> {
    tx.execute(
        "INSERT INTO idempotency_keys (user_id, idempotency_key, order_id, answer) VALUES (?, ?, ?, ?)",
        params![user_id, key, order_id, answer],
    )?;
    Ok(())
}

/// Whether `checkout` asks for what the order to `address`, paid with the card
/// ending in `last4`, was placed with. The card number itself is kept nowhere here:
/// its last four digits stand for it.
fn same_checkout(address: &Address, last4: &str, checkout: &CheckoutRequest) -> bool {
    let digits: Vec<char> = checkout.payment.card_number.chars().filter(char::is_ascii_digit).collect();
    let given_last4: String = digits[digits.len().saturating_sub(4)..].iter().collect();
    *address == checkout.shipping_address && given_last4 == last4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkout(country: &str, card_number: &str) -> CheckoutRequest {
        serde_json::from_value(serde_json::json!({
            "shipping_address": {"name": "Ada", "line1": "1 Main St", "city": "Graz", "postal_code": "8010",
                                 "country": country},
            "payment": {"card_number": card_number},
        }))
        .expect("a checkout request")
    }

    #[test]
    fn a_key_is_a_short_run_of_visible_ascii() {
        assert!(is_valid("8e0f7a12-4c3b-4f0e-9a57-2d1c6b9e0a11"));
        assert!(is_valid("x"));
        assert!(is_valid(&"k".repeat(MAX_LEN)));
        for refused in ["", "two words", "tab\tbed", "ключ", &"k".repeat(MAX_LEN + 1)] {
            assert!(!is_valid(refused), "{refused:?}");
        }
    }

    #[test]
    fn a_repeat_is_the_same_address_and_card_however_the_number_is_spaced() {
        let first = checkout("AT", "4242 4242 4242 4242");
        let address = first.shipping_address.clone();
        assert!(same_checkout(&address, "4242", &first));
        assert!(same_checkout(&address, "4242", &checkout("AT", "4242-4242-4242-4242")));
        assert!(!same_checkout(&address, "4242", &checkout("DE", "4242 4242 4242 4242")));
        assert!(!same_checkout(&address, "4242", &checkout("AT", "4000 0000 0000 0002")));
    }
}
