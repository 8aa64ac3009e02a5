//! Card numbers as the vault accepts them: the rules, apart from the database.

/// A card number that passed the checks, with what may be shown of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    /// Digits only. Never leaves the vault except towards the provider.
    pub number: String,
    pub brand: &'static str,
    pub last4: String,
}

/// Reads a card number as a customer types it: spaces and dashes are ignored; what is
/// left must be 12–19 digits passing the Luhn check. The error says what is wrong,
/// for the `card_number` field error; it never repeats the number.
pub fn parse(input: &str) -> Result<Card, &'static str> {
    let number: String = input.chars().filter(|c| *c != ' ' && *c != '-').collect();
    if number.is_empty() {
        return Err("is required");
    }
    if !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err("must contain only digits, spaces and dashes");
    }
    if !(12..=19).contains(&number.len()) {
        return Err("must have 12 to 19 digits");
    }
    if !luhn_ok(&number) {
        return Err("is not a valid card number (check digit)");
    }
    let last4 = number[number.len() - 4..].to_owned();
    Ok(Card { brand: brand(&number), last4, number })
}

/// The Luhn (mod 10) check over ASCII digits: every second digit from the right is
/// doubled, and the digits' sum must end in 0.
pub fn luhn_ok(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        let Some(d) = char::from(b).to_digit(10) else {
            return false;
        };
        let d = if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d };
        sum += d;
    }
    !digits.is_empty() && sum % 10 == 0
}

/// The brand from the issuer identification number (the leading digits).
pub fn brand(digits: &str) -> &'static str {
    let prefix = |n: usize| digits.get(..n).and_then(|p| p.parse::<u32>().ok());
    match (prefix(1), prefix(2), prefix(4)) {
        (Some(4), _, _) => "visa",
        (_, Some(51..=55), _) | (_, _, Some(2221..=2720)) => "mastercard",
        (_, Some(34 | 37), _) => "amex",
        _ => "card",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_test_cards_with_separators() {
        let card = parse("4242 4242-4242 4242").expect("valid");
        assert_eq!(card, Card { number: "4242424242424242".into(), brand: "visa", last4: "4242".into() });
        assert_eq!(parse("5555555555554444").map(|c| c.brand), Ok("mastercard"));
        assert_eq!(parse("2223003122003222").map(|c| c.brand), Ok("mastercard"));
        assert_eq!(parse("378282246310005").map(|c| c.brand), Ok("amex"));
        assert_eq!(parse("6011111111111117").map(|c| c.brand), Ok("card"));
        assert_eq!(parse("4000000000000002").map(|c| c.last4), Ok("0002".to_owned()));
    }

    #[test]
    fn refuses_malformed_numbers_without_repeating_them() {
        assert_eq!(parse(" - "), Err("is required"));
        assert_eq!(parse("4242x4242424242424"), Err("must contain only digits, spaces and dashes"));
        assert_eq!(parse("42424242424"), Err("must have 12 to 19 digits"));
        assert_eq!(parse("42424242424242424242"), Err("must have 12 to 19 digits"));
        assert_eq!(parse("4242424242424241"), Err("is not a valid card number (check digit)"));
        assert_eq!(parse("４２４２４２４２４２４２４２４２"), Err("must contain only digits, spaces and dashes"));
    }

    #[test]
    fn luhn_and_brand_edges() {
        assert!(luhn_ok("79927398713"));
        assert!(!luhn_ok("79927398710"));
        assert!(!luhn_ok(""));
        assert_eq!(brand("2221000000000009"), "mastercard");
        assert_eq!(brand("2720990000000007"), "mastercard");
        assert_eq!(brand("2721000000000004"), "card");
        assert_eq!(brand("5000000000000009"), "card");
        assert_eq!(brand("3400000000000009"), "amex");
        assert_eq!(brand("3500000000000009"), "card");
    }
}
