//! Validation that reports every invalid field at once, so that a form can show
//! them all after one round trip.

use crate::problem::{FieldError, Problem};

/// Collects field errors; [`finish`](Validator::finish) turns them into one 400.
///
/// Only a field's first failure is kept: chain a field's checks from the most basic
/// (`required`) to the most specific, and an empty e-mail is reported as missing,
/// not also as malformed.
///
/// ```
/// use estore_shared::api::Validator;
///
/// let (email, password) = ("ada@example", "short");
/// let problem = Validator::new()
///     .required("email", email)
///     .email("email", email)
///     .min_len("password", password, 8)
///     .finish()
///     .expect_err("two invalid fields");
/// assert_eq!(problem.errors.len(), 2);
/// ```
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Validator::default()
    }

    /// Records `message` for `field` unless `ok`: the check behind all others, for
    /// rules of a service's own.
    pub fn check(&mut self, field: &str, ok: bool, message: impl Into<String>) -> &mut Self {
        if !ok && !self.errors.iter().any(|e| e.field == field) {
            self.errors.push(FieldError::new(field, message));
        }
        self
    }

    /// Not empty, nor only whitespace.
    pub fn required(&mut self, field: &str, value: &str) -> &mut Self {
        self.check(field, !value.trim().is_empty(), "is required")
    }

    /// At least `min` characters (not bytes).
    pub fn min_len(&mut self, field: &str, value: &str, min: usize) -> &mut Self {
        self.check(field, value.chars().count() >= min, format!("must be at least {min} characters"))
    }

    /// At most `max` characters (not bytes).
    pub fn max_len(&mut self, field: &str, value: &str, max: usize) -> &mut Self {
        self.check(field, value.chars().count() <= max, format!("must be at most {max} characters"))
    }

    /// Looks like an e-mail address (`local@domain.tld`, at most 254 characters).
    /// Only sending to it proves it; this catches typos and other fields' values.
    pub fn email(&mut self, field: &str, value: &str) -> &mut Self {
        self.check(field, looks_like_email(value), "must be an e-mail address")
    }

    /// Greater than zero (a quantity, a price).
    pub fn positive(&mut self, field: &str, value: i64) -> &mut Self {
        self.check(field, value > 0, "must be greater than 0")
    }

    /// Within `min..=max`.
    pub fn in_range(&mut self, field: &str, value: i64, min: i64, max: i64) -> &mut Self {
        self.check(field, (min..=max).contains(&value), format!("must be between {min} and {max}"))
    }

    /// `Ok` when every check passed; otherwise a 400 listing the invalid fields.
    /// Takes the errors, so the validator can be a temporary in a chain.
    pub fn finish(&mut self) -> Result<(), Problem> {
        if self.errors.is_empty() { Ok(()) } else { Err(Problem::invalid(std::mem::take(&mut self.errors))) }
    }
}

fn looks_like_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    let labels_ok =
        domain.split('.').all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
    value.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && labels_ok
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(validator: &mut Validator) -> Vec<FieldError> {
        validator.finish().err().map(|p| p.errors).unwrap_or_default()
    }

    #[test]
    fn passes_when_everything_holds() {
        let result = Validator::new()
            .required("username", "ada")
            .min_len("password", "correct horse", 8)
            .max_len("name", "Åsa", 3)
            .email("email", "ada.lovelace+store@example.co.uk")
            .positive("quantity", 1)
            .in_range("size", 100, 1, 100)
            .finish();
        assert_eq!(result, Ok(()));
    }

    #[test]
    fn collects_every_field_but_only_its_first_failure() {
        let mut validator = Validator::new();
        validator.required("email", " ").email("email", " ").min_len("password", "short", 8).positive("quantity", 0);
        assert_eq!(
            errors(&mut validator),
            [
                FieldError::new("email", "is required"),
                FieldError::new("password", "must be at least 8 characters"),
                FieldError::new("quantity", "must be greater than 0"),
            ]
        );
        // finish took them: the validator is empty again.
        assert_eq!(validator.finish(), Ok(()));
    }

    #[test]
    fn lengths_count_characters() {
        assert!(errors(Validator::new().max_len("name", "Ünïcødé", 7)).is_empty());
        assert_eq!(errors(Validator::new().max_len("name", "Ünïcødé!", 7))[0].message, "must be at most 7 characters");
        assert_eq!(errors(Validator::new().in_range("size", 0, 1, 100))[0].message, "must be between 1 and 100");
        assert_eq!(
            errors(Validator::new().check("card", false, "fails the Luhn check"))[0].message,
            "fails the Luhn check"
        );
    }

    #[test]
    fn email_shapes() {
        for good in ["a@b.co", "first.last@sub.example.org", "x+tag@example.com"] {
            assert!(looks_like_email(good), "{good}");
        }
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "ada@@example.com",
            "ada@exa mple.com",
            "ada@.example.com",
            "ada@example..com",
            "ada@-example.com",
            "a@b@c.com",
        ] {
            assert!(!looks_like_email(bad), "{bad}");
        }
        assert!(!looks_like_email(&format!("{}@example.com", "a".repeat(250))));
    }
}
