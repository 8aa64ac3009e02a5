//! Paged lists: `?page=&size=&sort=` in, `{items, page, size, total}` out.

use serde::{Deserialize, Serialize};

use super::{Validator, query_param};
use crate::problem::Problem;

/// `size` when the query gives none.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// The largest `size` a client may ask for, so one request cannot read a whole table.
pub const MAX_PAGE_SIZE: u32 = 100;

/// Which page of a list, how large, in which order. `page` counts from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub size: u32,
    pub sort: Sort,
}

/// An order from the service's allow-list: `price`, or `-price` for descending.
///
/// `key` is one of the allow-list's own strings, never the client's text: map it
/// to a column with a `match`, and splice only that into the SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub key: &'static str,
    pub descending: bool,
}

impl Sort {
    /// `ASC` or `DESC`, for `ORDER BY`.
    pub fn direction(&self) -> &'static str {
        if self.descending { "DESC" } else { "ASC" }
    }

    /// `spec` (`name` or `-name`) if its key is in `allowed`.
    fn parse(spec: &str, allowed: &[&'static str]) -> Option<Sort> {
        let (name, descending) = spec.strip_prefix('-').map_or((spec, false), |name| (name, true));
        allowed.iter().find(|key| **key == name).map(|key| Sort { key, descending })
    }
}

impl PageRequest {
    /// Reads `page` (≥ 1, default 1), `size` (1 to [`MAX_PAGE_SIZE`], default
    /// [`DEFAULT_PAGE_SIZE`]) and `sort` (a key of `allowed_sorts`, `-` first for
    /// descending; default `default_sort`, written the same way) from a query
    /// string. Every invalid parameter is named in one 400.
    pub fn from_query(
        query: &str,
        allowed_sorts: &[&'static str],
        default_sort: &'static str,
    ) -> Result<PageRequest, Problem> {
        let mut validator = Validator::new();
        let page = whole_number(&mut validator, query, "page", 1, u32::MAX);
        let size = whole_number(&mut validator, query, "size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
        let default = Sort {
            key: default_sort.strip_prefix('-').unwrap_or(default_sort),
            descending: default_sort.starts_with('-'),
        };
        let sort = match query_param(query, "sort") {
            None => default,
            Some(spec) => Sort::parse(&spec, allowed_sorts).unwrap_or_else(|| {
                let choices: Vec<String> =
                    allowed_sorts.iter().flat_map(|key| [key.to_string(), format!("-{key}")]).collect();
                validator.check("sort", false, format!("must be one of {}", choices.join(", ")));
                default
            }),
        };
        validator.finish()?;
        Ok(PageRequest { page, size, sort })
    }

    /// How many rows come before this page, for `OFFSET` (with `size` as `LIMIT`).
    pub fn offset(&self) -> i64 {
        (i64::from(self.page) - 1) * i64::from(self.size)
    }
}

/// Query parameter `name` as a number in `1..=max`; `default` when it is absent, and
/// when it is invalid (after telling `validator`).
fn whole_number(validator: &mut Validator, query: &str, name: &str, default: u32, max: u32) -> u32 {
    let Some(text) = query_param(query, name) else {
        return default;
    };
    match text.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => n,
        _ => {
            let rule = if max == u32::MAX { "of at least 1".to_owned() } else { format!("from 1 to {max}") };
            validator.check(name, false, format!("must be a whole number {rule}"));
            default
        }
    }
}

/// One page of a list, as every list endpoint answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: u32,
    pub size: u32,
    /// How many items the whole list has (`SELECT COUNT(*)` with the same filters).
    pub total: u64,
}

impl<T> Page<T> {
    pub fn new(items: Vec<T>, request: &PageRequest, total: u64) -> Self {
        Page { items, page: request.page, size: request.size, total }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::problem::FieldError;

    const SORTS: &[&str] = &["price", "name", "newest"];

    fn request(query: &str) -> Result<PageRequest, Problem> {
        PageRequest::from_query(query, SORTS, "-newest")
    }

    #[test]
    fn defaults() {
        let request = request("q=shoes").expect("valid");
        assert_eq!(request, PageRequest { page: 1, size: 20, sort: Sort { key: "newest", descending: true } });
        assert_eq!(request.offset(), 0);
        assert_eq!(request.sort.direction(), "DESC");
    }

    #[test]
    fn reads_page_size_and_sort() {
        let request = request("page=3&size=100&sort=-price").expect("valid");
        assert_eq!(request, PageRequest { page: 3, size: 100, sort: Sort { key: "price", descending: true } });
        assert_eq!(request.offset(), 200);
        let by_name = self::request("sort=name").expect("valid").sort;
        assert_eq!((by_name.key, by_name.direction()), ("name", "ASC"));
        let last = PageRequest { page: u32::MAX, size: MAX_PAGE_SIZE, sort: by_name };
        assert_eq!(last.offset(), (i64::from(u32::MAX) - 1) * 100);
    }

    #[test]
    fn names_every_bad_parameter() {
        let problem = request("page=0&size=500&sort=price;DROP").expect_err("invalid");
        assert_eq!(
            problem.errors,
            [
                FieldError::new("page", "must be a whole number of at least 1"),
                FieldError::new("size", "must be a whole number from 1 to 100"),
                FieldError::new("sort", "must be one of price, -price, name, -name, newest, -newest"),
            ]
        );
        let problem = request("page=two&size=-1").expect_err("invalid");
        assert_eq!(
            problem.errors,
            [
                FieldError::new("page", "must be a whole number of at least 1"),
                FieldError::new("size", "must be a whole number from 1 to 100"),
            ]
        );
    }

    #[test]
    fn page_serialises_as_the_api_lists_do() {
        let request = request("page=2&size=2").expect("valid");
        assert_eq!(
            serde_json::to_value(Page::new(vec!["c", "d"], &request, 5)).expect("serialises"),
            json!({"items": ["c", "d"], "page": 2, "size": 2, "total": 5})
        );
    }
}
