//! A path matcher small enough to read at a glance: `/api/orders/:id/cancel`.

use std::ops::Index;

/// The values of a matched pattern's `:name` segments, as they appear in the path
/// (not percent-decoded: ids are plain).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Params<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Params<'a> {
    /// The value of `:name`, if the pattern has it.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.pairs.iter().find(|(key, _)| *key == name).map(|(_, value)| *value)
    }
}

/// `params["id"]`: the value of `:id`. Panics if the pattern has no `:id`, which is a
/// typo in the routing table, not bad input.
impl Index<&str> for Params<'_> {
    type Output = str;

    fn index(&self, name: &str) -> &str {
        match self.get(name) {
            Some(value) => value,
            None => panic!("the route's pattern has no parameter `:{name}`"),
        }
    }
}

/// Matches `path` against `pattern`, segment by segment: a literal segment must be
/// equal, a `:name` segment takes any non-empty value. One trailing slash is
/// ignored on either side. `None` when it does not match.
///
/// ```
/// use estore_shared::api::match_path;
///
/// let params = match_path("/api/orders/:id/cancel", "/api/orders/o-42/cancel").expect("matches");
/// assert_eq!(&params["id"], "o-42");
/// assert!(match_path("/api/orders/:id", "/api/orders/o-42/cancel").is_none());
/// ```
pub fn match_path<'a>(pattern: &'a str, path: &'a str) -> Option<Params<'a>> {
    let mut patterns = segments(pattern);
    let mut values = segments(path);
    let mut params = Params::default();
    loop {
        match (patterns.next(), values.next()) {
            (None, None) => return Some(params),
            (Some(pattern), Some(value)) => match pattern.strip_prefix(':') {
                Some(name) if !value.is_empty() => params.pairs.push((name, value)),
                None if pattern == value => {}
                _ => return None,
            },
            _ => return None,
        }
    }
}

fn segments(path: &str) -> std::str::Split<'_, char> {
    let path = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
    path.split('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_paths() {
        assert_eq!(match_path("/api/orders", "/api/orders"), Some(Params::default()));
        assert!(match_path("/api/orders", "/api/orders/").is_some());
        assert!(match_path("/api/orders/", "/api/orders").is_some());
        assert!(match_path("/", "/").is_some());
        assert!(match_path("/api/orders", "/api/order").is_none());
        assert!(match_path("/api/orders", "/api/orders/x").is_none());
        assert!(match_path("/api/orders/x", "/api/orders").is_none());
        assert!(match_path("/api/orders", "/api//orders").is_none());
    }

    #[test]
    fn parameters() {
        let params = match_path("/api/cart/items/:product_id", "/api/cart/items/p-7").expect("matches");
        assert_eq!(params.get("product_id"), Some("p-7"));
        assert_eq!(params.get("id"), None);

        let params = match_path("/api/:kind/:id/events", "/api/shipments/o-1/events").expect("matches");
        assert_eq!((&params["kind"], &params["id"]), ("shipments", "o-1"));

        // A parameter is never empty.
        assert!(match_path("/api/orders/:id/cancel", "/api/orders//cancel").is_none());
        assert!(match_path("/api/orders/:id", "/api/orders/").is_none());
    }

    #[test]
    #[should_panic(expected = "no parameter `:id`")]
    fn indexing_a_name_the_pattern_lacks_is_a_bug() {
        let params = match_path("/api/orders/:order_id", "/api/orders/o-1").expect("matches");
        let _ = &params["id"];
    }
}
