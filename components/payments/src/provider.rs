//! Who moves the money: a [`Provider`] charges a card and refunds a charge.
//!
//! - [`TestCards`] (the default) decides by the card, as payment providers' test modes
//!   do, so the store runs and is tested without one.
//! - [`HttpProvider`] speaks the small JSON contract of components/README.md
//!   ("Payment provider") to a real one, when `payment_provider_url` is set.
//!
//! Both are idempotent per order (charges) and per payment (refunds): the saga may ask
//! twice after a crash or a lost answer, and must not move money twice. Each request
//! carries an `Idempotency-Key` derived from what it is for ([`Charge::idempotency_key`],
//! [`Refund::idempotency_key`]), so a retry carries the key of the first try and the
//! provider answers it with the first charge or refund instead of making another.

use serde::{Deserialize, Serialize};
use spin_sdk::http::{Method, Request, Response};

use estore_shared::messaging::handler::HandleError;
use estore_shared::money::Money;

/// A test card that every charge declines.
pub const DECLINED_CARD: &str = "4000000000000002";

/// What to charge: an order's total, to a card from the vault.
#[derive(Debug, Serialize)]
pub struct Charge<'a> {
    pub order_id: &'a str,
    pub amount: Money,
    pub payment_method_token: &'a str,
    pub card_number: &'a str,
}

impl Charge<'_> {
    /// One charge per order, however often it is asked for.
    pub fn idempotency_key(&self) -> String {
        format!("charge-{}", self.order_id)
    }
}

/// What to refund: a completed payment, in full.
#[derive(Debug, Serialize)]
pub struct Refund<'a> {
    pub payment_id: &'a str,
    pub order_id: &'a str,
    /// The provider's id of the charge.
    pub charge_id: &'a str,
    pub amount: Money,
}

impl Refund<'_> {
    /// One refund per payment, however often it is asked for.
    pub fn idempotency_key(&self) -> String {
        format!("refund-{}", self.payment_id)
    }
}

/// The provider's answer to a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Charged; the provider's reference for the charge.
    Approved { reference: String },
    /// Not charged, and asking again will not change that.
    Declined { reason: String },
}

/// The provider could not be asked, or did not answer sensibly: worth a retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

/// An outage is worth a retry: the event comes again after a backoff.
impl From<Unavailable> for HandleError {
    fn from(e: Unavailable) -> Self {
        HandleError::Retry(e.0)
    }
}

pub trait Provider {
    fn charge(&self, charge: &Charge<'_>) -> Result<Outcome, Unavailable>;
    /// Refunds in full; the provider's reference for the refund.
    fn refund(&self, refund: &Refund<'_>) -> Result<String, Unavailable>;
}

/// The provider the variables choose: HTTP when `payment_provider_url` is set,
/// otherwise the test-card rules with `payment_max_amount` as the limit.
pub fn configured() -> Result<Box<dyn Provider>, Unavailable> {
    let variable = |name: &str| {
        spin_sdk::variables::get(name).map_err(|e| Unavailable(format!("the variable {name} is not available: {e}")))
    };
    let url = variable("payment_provider_url")?;
    if !url.trim().is_empty() {
        return Ok(Box::new(HttpProvider { base_url: url.trim().trim_end_matches('/').to_owned() }));
    }
    // Components have no start hook, and each message runs in a fresh instance: this
    // is said by the first charge or refund after start, and by every one after it.
    eprintln!(
        "payments: no payment_provider_url: the test-card rules approve every valid card number \
         (only {DECLINED_CARD} and totals above payment_max_amount are declined); no money moves. \
         Set payment_provider_url before taking real orders"
    );
    let max = variable("payment_max_amount")?;
    let max_amount = max
        .trim()
        .parse::<i64>()
        .map_err(|_| Unavailable(format!("payment_max_amount is not a whole number of minor units: {max:?}")))?;
    Ok(Box::new(TestCards { max_amount }))
}

/// Test mode: [`DECLINED_CARD`] is declined (4242424242424242 is the usual approving one), totals above `max_amount` (minor units)
/// are declined, every other card is approved.
pub struct TestCards {
    pub max_amount: i64,
}

impl Provider for TestCards {
    fn charge(&self, charge: &Charge<'_>) -> Result<Outcome, Unavailable> {
        let declined = |reason: &str| Ok(Outcome::Declined { reason: reason.to_owned() });
        if charge.card_number == DECLINED_CARD {
            return declined("card declined");
        }
        if charge.amount.amount > self.max_amount {
            return declined("amount exceeds the limit");
        }
        // Derived from the order, so asking twice answers the same charge.
        Ok(Outcome::Approved { reference: format!("test_ch_{}", charge.order_id) })
    }

    fn refund(&self, refund: &Refund<'_>) -> Result<String, Unavailable> {
        Ok(format!("test_re_{}", refund.payment_id))
    }
}

/// A provider reached over HTTP (components/README.md, "Payment provider").
pub struct HttpProvider {
    /// `payment_provider_url` without a trailing slash.
    pub base_url: String,
}

/// The provider's answer to `POST /charges`.
#[derive(Deserialize)]
struct ChargeAnswer {
    id: String,
    status: String,
    reason: Option<String>,
}

/// The provider's answer to `POST /refunds`.
#[derive(Deserialize)]
struct RefundAnswer {
    id: String,
}

impl HttpProvider {
    fn post<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        idempotency_key: &str,
        body: &impl Serialize,
    ) -> Result<T, Unavailable> {
        let url = format!("{}{path}", self.base_url);
        let body = serde_json::to_vec(body).map_err(|e| Unavailable(format!("the request does not serialise: {e}")))?;
        let request = Request::builder()
            .method(Method::Post)
            .uri(&url)
            .header("content-type", "application/json")
            .header("idempotency-key", idempotency_key)
            .body(body)
            .build();
        // The error and the answer are logged by status only: a request carries a
        // card number, and an answer might echo it.
        let response: Response = spin_sdk::http::run(spin_sdk::http::send(request))
            .map_err(|e| Unavailable(format!("the payment provider at {url} did not answer: {e}")))?;
        match *response.status() {
            200..=299 => serde_json::from_slice(response.body())
                .map_err(|e| Unavailable(format!("the payment provider's answer to {path} is not understood: {e}"))),
            status => Err(Unavailable(format!("the payment provider answered {status} to {path}"))),
        }
    }
}

impl Provider for HttpProvider {
    fn charge(&self, charge: &Charge<'_>) -> Result<Outcome, Unavailable> {
        let answer: ChargeAnswer = self.post("/charges", &charge.idempotency_key(), charge)?;
        match answer.status.as_str() {
            "approved" => Ok(Outcome::Approved { reference: answer.id }),
            "declined" => Ok(Outcome::Declined { reason: answer.reason.unwrap_or_else(|| "card declined".to_owned()) }),
            other => Err(Unavailable(format!("the payment provider answered status {other:?} to a charge"))),
        }
    }

    fn refund(&self, refund: &Refund<'_>) -> Result<String, Unavailable> {
        let answer: RefundAnswer = self.post("/refunds", &refund.idempotency_key(), refund)?;
        Ok(answer.id)
    }
}

#[cfg(test)]
mod tests {
    use estore_shared::money::Currency;

    use super::*;

    /// The test card approved by every provider's test mode (any other valid card is too).
    const APPROVING_CARD: &str = "4242424242424242";

    fn charge(card_number: &str, amount: i64) -> Outcome {
        let charge = Charge {
            order_id: "o-1",
            amount: Money::new(amount, Currency::EUR),
            payment_method_token: "pm",
            card_number,
        };
        TestCards { max_amount: 10_000 }.charge(&charge).expect("test cards always answer")
    }

    #[test]
    fn test_cards_follow_the_card_and_the_limit() {
        assert_eq!(charge(APPROVING_CARD, 10_000), Outcome::Approved { reference: "test_ch_o-1".into() });
        assert_eq!(charge("5555555555554444", 1), Outcome::Approved { reference: "test_ch_o-1".into() });
        assert_eq!(charge(DECLINED_CARD, 1), Outcome::Declined { reason: "card declined".into() });
        assert_eq!(charge(APPROVING_CARD, 10_001), Outcome::Declined { reason: "amount exceeds the limit".into() });
    }

    #[test]
    fn test_refunds_are_named_after_the_payment() {
        let refund =
            Refund { payment_id: "p-1", order_id: "o-1", charge_id: "c", amount: Money::new(5, Currency::EUR) };
        assert_eq!(TestCards { max_amount: 0 }.refund(&refund), Ok("test_re_p-1".into()));
    }

    #[test]
    fn a_retry_carries_the_first_trys_idempotency_key() {
        let charge = |order_id| Charge {
            order_id,
            amount: Money::new(1, Currency::EUR),
            payment_method_token: "pm",
            card_number: APPROVING_CARD,
        };
        assert_eq!(charge("o-1").idempotency_key(), charge("o-1").idempotency_key());
        assert_ne!(charge("o-1").idempotency_key(), charge("o-2").idempotency_key());
        let refund = |payment_id| Refund { payment_id, order_id: "o-1", charge_id: "c", amount: Money::new(1, Currency::EUR) };
        assert_eq!(refund("p-1").idempotency_key(), "refund-p-1");
        assert_ne!(refund("p-1").idempotency_key(), charge("p-1").idempotency_key());
    }

    #[test]
    fn charges_serialise_as_the_documented_contract() {
        let charge = Charge {
            order_id: "o-1",
            amount: Money::new(1999, Currency::EUR),
            payment_method_token: "pm_1",
            card_number: APPROVING_CARD,
        };
        assert_eq!(
            serde_json::to_value(&charge).expect("serialises"),
            serde_json::json!({"order_id": "o-1", "amount": {"amount": 1999, "currency": "EUR"},
                               "payment_method_token": "pm_1", "card_number": APPROVING_CARD})
        );
    }
}
