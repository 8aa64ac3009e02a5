//! Money as the store counts it: an integer number of minor units with a currency,
//! `{"amount": 129900, "currency": "EUR"}` for €1,299.00. Never a float (the
//! original store's prices were `Double`s), and never silently wrong: arithmetic
//! that overflows or mixes currencies is an error, not a panic or a wrapped value.
//!
//! ```
//! use estore_shared::money::{Currency, Money};
//!
//! let price = Money::new(129900, Currency::EUR);
//! let lines = [price.times(2)?, Money::new(1999, Currency::EUR)];
//! assert_eq!(Money::sum(Currency::EUR, lines)?, Money::new(261799, Currency::EUR));
//! # Ok::<(), estore_shared::money::MoneyError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An ISO 4217-style currency code: three uppercase ASCII letters (`EUR`), checked
/// when it is made or deserialised, so a `Currency` is always well formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    /// The store's own currency.
    pub const EUR: Currency = Currency(*b"EUR");

    /// `code` as a currency, if it is three uppercase ASCII letters.
    pub fn new(code: &str) -> Result<Currency, MoneyError> {
        match <[u8; 3]>::try_from(code.as_bytes()) {
            Ok(letters) if letters.iter().all(u8::is_ascii_uppercase) => Ok(Currency(letters)),
            _ => Err(MoneyError::InvalidCurrency(code.to_owned())),
        }
    }

    /// The code, e.g. to store it in a `TEXT` column.
    pub fn as_str(&self) -> &str {
        // ASCII by construction, so this never falls back.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Currency::new(code)
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;

    fn try_from(code: String) -> Result<Self, Self::Error> {
        Currency::new(&code)
    }
}

impl From<Currency> for String {
    fn from(currency: Currency) -> Self {
        currency.as_str().to_owned()
    }
}

/// A currency stored as its code, read straight out of a row.
impl crate::sql::FromValue for Currency {
    fn from_value(value: &crate::sql::Value) -> Result<Self, crate::sql::DecodeError> {
        let code = String::from_value(value)?;
        Currency::new(&code).map_err(|_| crate::sql::DecodeError::WrongType { expected: "a currency code", found: "text" })
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount in minor units (cents for EUR) of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub amount: i64,
    pub currency: Currency,
}

impl Money {
    pub const fn new(amount: i64, currency: Currency) -> Money {
        Money { amount, currency }
    }

    /// Nothing, in `currency`: where a total starts.
    pub const fn zero(currency: Currency) -> Money {
        Money::new(0, currency)
    }

    /// `self + other`; an error if the currencies differ or the sum overflows.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch { expected: self.currency, found: other.currency });
        }
        let amount = self.amount.checked_add(other.amount).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    /// A line total: `self` times `quantity`; an error if it overflows.
    pub fn times(self, quantity: u32) -> Result<Money, MoneyError> {
        let amount = self.amount.checked_mul(i64::from(quantity)).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    /// The sum of `items`, all in `currency` (zero when there are none, so an empty
    /// cart still has a total); an error on another currency or on overflow.
    pub fn sum(currency: Currency, items: impl IntoIterator<Item = Money>) -> Result<Money, MoneyError> {
        items.into_iter().try_fold(Money::zero(currency), Money::checked_add)
    }
}

/// For people, not machines: `€1,299.00`, `-€5.00`, `1,299.00 CHF` — thousands
/// grouped with commas, two decimals (every currency the store takes has cents), the
/// symbol of EUR, USD and GBP in front, other codes behind. What e-mails and texts
/// show; APIs keep the `{amount, currency}` object.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.amount < 0 { "-" } else { "" };
        let minor = self.amount.unsigned_abs();
        let whole = (minor / 100).to_string();
        let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
        for (i, digit) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        let number = format!("{grouped}.{:02}", minor % 100);
        match self.currency.as_str() {
            "EUR" => write!(f, "{sign}€{number}"),
            "USD" => write!(f, "{sign}${number}"),
            "GBP" => write!(f, "{sign}£{number}"),
            code => write!(f, "{sign}{number} {code}"),
        }
    }
}

/// Why money could not be made or computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoneyError {
    /// Not three uppercase ASCII letters.
    InvalidCurrency(String),
    /// Amounts in two currencies were combined.
    CurrencyMismatch { expected: Currency, found: Currency },
    /// The result does not fit in an `i64` of minor units.
    Overflow,
}

impl fmt::Display for MoneyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MoneyError::InvalidCurrency(code) => {
                write!(f, "invalid currency code {code:?}: expected three uppercase letters such as \"EUR\"")
            }
            MoneyError::CurrencyMismatch { expected, found } => {
                write!(f, "cannot combine {found} with {expected}")
            }
            MoneyError::Overflow => f.write_str("the amount is too large"),
        }
    }
}

impl std::error::Error for MoneyError {}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn shows_amounts_as_people_read_them() {
        let eur = |amount| Money::new(amount, Currency::EUR).to_string();
        assert_eq!(eur(129900), "€1,299.00");
        assert_eq!(eur(5), "€0.05");
        assert_eq!(eur(0), "€0.00");
        assert_eq!(eur(-500), "-€5.00");
        assert_eq!(eur(123456789012), "€1,234,567,890.12");
        assert_eq!(eur(i64::MIN), "-€92,233,720,368,547,758.08");
        assert_eq!(Money::new(100000, Currency::new("CHF").expect("a code")).to_string(), "1,000.00 CHF");
        assert_eq!(Money::new(1999, Currency::new("USD").expect("a code")).to_string(), "$19.99");
    }

    #[test]
    fn a_currency_reads_from_a_text_column() {
        use crate::sql::{FromValue, Value};
        assert_eq!(Currency::from_value(&Value::Text("EUR".into())), Ok(Currency::EUR));
        assert!(Currency::from_value(&Value::Text("euro".into())).is_err());
        assert!(Currency::from_value(&Value::Int64(978)).is_err());
    }

    fn eur(amount: i64) -> Money {
        Money::new(amount, Currency::EUR)
    }

    fn usd(amount: i64) -> Money {
        Money::new(amount, Currency::new("USD").expect("valid"))
    }

    #[test]
    fn serialises_as_minor_units_and_a_code() {
        assert_eq!(
            serde_json::to_value(eur(129900)).expect("serialises"),
            json!({"amount": 129900, "currency": "EUR"})
        );
        let parsed: Money = serde_json::from_value(json!({"amount": -5, "currency": "USD"})).expect("parses");
        assert_eq!(parsed, usd(-5));
    }

    #[test]
    fn deserialising_checks_the_currency_and_refuses_floats() {
        for code in ["eur", "EURO", "EU", "", "E1R", "ÉUR"] {
            let error = serde_json::from_value::<Money>(json!({"amount": 1, "currency": code})).expect_err(code);
            assert!(error.to_string().contains("invalid currency code"), "{code}: {error}");
        }
        let error = serde_json::from_value::<Money>(json!({"amount": 12.5, "currency": "EUR"})).expect_err("a float");
        assert!(error.to_string().contains("floating point"), "{error}");
    }

    #[test]
    fn currency_round_trips_through_text() {
        let currency: Currency = "GBP".parse().expect("valid");
        assert_eq!(currency.as_str(), "GBP");
        assert_eq!(currency.to_string(), "GBP");
        assert_eq!(String::from(currency), "GBP");
        assert_eq!("gbp".parse::<Currency>(), Err(MoneyError::InvalidCurrency("gbp".into())));
    }

    #[test]
    fn addition_is_checked() {
        assert_eq!(eur(100).checked_add(eur(250)), Ok(eur(350)));
        assert_eq!(
            eur(100).checked_add(usd(1)),
            Err(MoneyError::CurrencyMismatch { expected: Currency::EUR, found: usd(1).currency })
        );
        assert_eq!(eur(i64::MAX).checked_add(eur(1)), Err(MoneyError::Overflow));
    }

    #[test]
    fn multiplication_is_checked() {
        assert_eq!(eur(1999).times(3), Ok(eur(5997)));
        assert_eq!(eur(1999).times(0), Ok(eur(0)));
        assert_eq!(eur(i64::MAX / 2).times(3), Err(MoneyError::Overflow));
    }

    #[test]
    fn sums_one_currency_only() {
        assert_eq!(Money::sum(Currency::EUR, []), Ok(Money::zero(Currency::EUR)));
        assert_eq!(Money::sum(Currency::EUR, [eur(1), eur(2), eur(3)]), Ok(eur(6)));
        assert!(matches!(Money::sum(Currency::EUR, [eur(1), usd(2)]), Err(MoneyError::CurrencyMismatch { .. })));
        assert!(matches!(Money::sum(Currency::EUR, [usd(2)]), Err(MoneyError::CurrencyMismatch { .. })));
        assert_eq!(Money::sum(Currency::EUR, [eur(i64::MAX), eur(1)]), Err(MoneyError::Overflow));
    }

    #[test]
    fn errors_read_well() {
        assert_eq!(
            MoneyError::CurrencyMismatch { expected: Currency::EUR, found: usd(0).currency }.to_string(),
            "cannot combine USD with EUR"
        );
    }
}
