//! The carrier's webhook is the carrier's: every report is signed, fresh and new.
//!
//! A carrier signs each request with its own secret (variable
//! `<carrier>_webhook_secret`: `dhl_webhook_secret`, `ups_webhook_secret`,
//! `dpd_webhook_secret`):
//!
//! - `x-carrier`: who signs, `DHL`, `UPS` or `DPD`;
//! - `x-carrier-timestamp`: when it was sent, Unix seconds;
//! - `x-carrier-signature`: `sha256=` and the lowercase hex HMAC-SHA256, under that
//!   secret, of the timestamp, a `.`, the order id the report is about (as in the
//!   path), a `.`, and the body exactly as sent.
//!
//! Refused with 401, before the body is read: an unknown carrier, a signature that
//! does not match (checked in constant time), a timestamp more than [`WINDOW_SECS`]
//! from now either way, and a signature accepted before (a replay). Accepted
//! signatures are recorded ([`record`], in the report's transaction) until their
//! timestamp has left the window, after which the timestamp alone refuses them; so a
//! captured request can be neither repeated nor aimed at another order (whose id it
//! does not sign), and two orders' identical reports in one second are two requests.
//! A carrier retrying a report signs it anew. A carrier may report only its own parcels: the
//! caller answers another carrier's shipment as missing.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use spin_sdk::http::Request;

use estore_shared::params;
use estore_shared::problem::Problem;
use estore_shared::sql::Database;

/// How far a request's timestamp may be from the store's clock, either way.
pub const WINDOW_SECS: i64 = 5 * 60;

/// The carriers shipping uses (tracking::carrier_for) and so may sign.
const CARRIERS: [&str; 3] = ["DHL", "UPS", "DPD"];

/// A request whose signature checked out, to be recorded with its report.
pub struct Signed {
    pub carrier: &'static str,
    signature: String,
    timestamp: i64,
}

/// Checks the signature and timestamp of `req`, a report on `order_id`, at `now`
/// (Unix seconds).
pub fn verify(req: &Request, order_id: &str, now: i64) -> Result<Signed, Problem> {
    let header = |name: &str| req.header(name).and_then(|value| value.as_str()).unwrap_or_default();
    let signed = Signed::message(header("x-carrier-timestamp"), order_id, req.body());
    check(header("x-carrier"), header("x-carrier-timestamp"), header("x-carrier-signature"), &signed, secret_of, now)
}

impl Signed {
    /// What a carrier signs: `<timestamp>.<order id>.<body>`.
    fn message(timestamp: &str, order_id: &str, body: &[u8]) -> Vec<u8> {
        [timestamp.as_bytes(), b".", order_id.as_bytes(), b".", body].concat()
    }
}

/// Records `signed` in the report's transaction: a 401 if it was seen before. Also
/// forgets signatures whose timestamp has left the window.
pub fn record(tx: &Database, signed: &Signed, now: i64) -> Result<(), Problem> {
    tx.execute("DELETE FROM carrier_signatures WHERE signed_at < ?", params![now - WINDOW_SECS])?;
    let new = tx.execute(
        "INSERT INTO carrier_signatures (signature, signed_at) VALUES (?, ?) ON CONFLICT (signature) DO NOTHING",
        params![signed.signature.as_str(), signed.timestamp],
    )?;
    if new == 0 {
        return Err(refused("this signed request was received before; sign each request anew"));
    }
    Ok(())
}

fn check(
    carrier: &str,
    timestamp: &str,
    signature: &str,
    message: &[u8],
    secret_of: impl Fn(&str) -> Result<String, Problem>,
    now: i64,
) -> Result<Signed, Problem> {
    let carrier = CARRIERS
        .into_iter()
        .find(|known| *known == carrier)
        .ok_or_else(|| refused("header x-carrier must name the carrier: DHL, UPS or DPD"))?;
    let sent: i64 = timestamp.parse().map_err(|_| refused("header x-carrier-timestamp must be Unix seconds"))?;
    let given = signature
        .strip_prefix("sha256=")
        .and_then(|text| hex::decode(text).ok())
        .ok_or_else(|| refused("header x-carrier-signature must be sha256=<hex HMAC-SHA256>"))?;
    let secret = secret_of(carrier)?;
    if secret.is_empty() || mac(&secret, message).verify_slice(&given).is_err() {
        return Err(refused(
            "the signature does not match: HMAC-SHA256 of `<timestamp>.<order id>.<body>` under the carrier's secret",
        ));
    }
    // After the signature, so a stranger learns nothing about the window.
    if (now - sent).abs() > WINDOW_SECS {
        return Err(refused("the request's timestamp is more than five minutes from now"));
    }
    Ok(Signed { carrier, signature: hex::encode(given), timestamp: sent })
}

fn mac(secret: &str, message: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac
}

/// The carrier's secret; a missing variable is the deployment's bug.
fn secret_of(carrier: &str) -> Result<String, Problem> {
    let name = format!("{}_webhook_secret", carrier.to_ascii_lowercase());
    spin_sdk::variables::get(&name).map_err(|e| {
        eprintln!("the variable {name} is not available: {e}");
        Problem::internal()
    })
}

fn refused(detail: &str) -> Problem {
    Problem::unauthorized(detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "dhl-secret-of-the-unit-tests-0123456789";
    const NOW: i64 = 1_795_660_800;
    const BODY: &[u8] = br#"{"status":"DELIVERED"}"#;
    const ORDER: &str = "order-1";

    fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
        let message = Signed::message(timestamp, ORDER, body);
        format!("sha256={}", hex::encode(mac(secret, &message).finalize().into_bytes()))
    }

    /// `check` of a report on [`ORDER`].
    fn checked(carrier: &str, ts: &str, signature: &str, body: &[u8], now: i64) -> Result<Signed, Problem> {
        check(carrier, ts, signature, &Signed::message(ts, ORDER, body), secrets, now)
    }

    fn secrets(carrier: &str) -> Result<String, Problem> {
        Ok(if carrier == "DHL" { SECRET.to_owned() } else { String::new() })
    }

    fn detail(result: Result<Signed, Problem>) -> String {
        match result {
            Ok(signed) => panic!("accepted, from {}", signed.carrier),
            Err(problem) => {
                assert_eq!(problem.status, 401);
                problem.detail
            }
        }
    }

    #[test]
    fn a_signed_fresh_request_is_the_carriers() {
        let ts = NOW.to_string();
        let signed = checked("DHL", &ts, &signature(SECRET, &ts, BODY), BODY, NOW + 299).expect("accepted");
        assert_eq!((signed.carrier, signed.timestamp), ("DHL", NOW));
        assert_eq!(format!("sha256={}", signed.signature), signature(SECRET, &ts, BODY));
        // A clock a little ahead of ours is fine too.
        assert!(checked("DHL", &ts, &signature(SECRET, &ts, BODY), BODY, NOW - 300).is_ok());
    }

    #[test]
    fn anything_else_is_refused() {
        let ts = NOW.to_string();
        let good = signature(SECRET, &ts, BODY);
        assert!(detail(checked("FedEx", &ts, &good, BODY, NOW)).contains("x-carrier must name"));
        assert!(detail(checked("", &ts, &good, BODY, NOW)).contains("x-carrier must name"));
        assert!(detail(checked("DHL", "yesterday", &good, BODY, NOW)).contains("Unix seconds"));
        assert!(detail(checked("DHL", &ts, "deadbeef", BODY, NOW)).contains("sha256=<hex"));
        // Another body, another time, another key, another carrier (no secret set).
        let tampered = br#"{"status":"OUT_FOR_DELIVERY"}"#;
        assert!(detail(checked("DHL", &ts, &good, tampered, NOW)).contains("does not match"));
        let later = (NOW + 1).to_string();
        assert!(detail(checked("DHL", &later, &good, BODY, NOW)).contains("does not match"));
        let forged = signature("a guess at the secret, just as long", &ts, BODY);
        assert!(detail(checked("DHL", &ts, &forged, BODY, NOW)).contains("does not match"));
        assert!(detail(checked("UPS", &ts, &good, BODY, NOW)).contains("does not match"));
        // Signed for another order: a report cannot be aimed elsewhere.
        let elsewhere = Signed::message(&ts, "order-2", BODY);
        assert!(detail(check("DHL", &ts, &good, &elsewhere, secrets, NOW)).contains("does not match"));
        // Signed, but stale or from too far ahead.
        assert!(detail(checked("DHL", &ts, &good, BODY, NOW + 301)).contains("five minutes"));
        assert!(detail(checked("DHL", &ts, &good, BODY, NOW - 301)).contains("five minutes"));
    }
}
