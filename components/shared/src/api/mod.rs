//! What every service's HTTP side needs, so that a component's `lib.rs` reads as
//! its routing table and each handler as its business:
//!
//! - [`json`] answers, [`parse_json`] reads a body (a 400 that names the field
//!   otherwise), and [`query_param`] reads the query string;
//! - [`Validator`] collects every invalid field into one 400;
//! - [`PageRequest`] and [`Page`]: `?page=&size=&sort=` in, `items`, `page`, `size`,
//!   `total` out;
//! - [`match_path`] matches `/api/orders/:id/cancel`;
//! - [`chain::call`] asks another service, as the same caller.
//!
//! ```no_run
//! use estore_shared::api::{self, Page, PageRequest, Validator, match_path};
//! use estore_shared::problem::Problem;
//! use serde::{Deserialize, Serialize};
//! use spin_sdk::http::{Method, Request, Response};
//!
//! #[derive(Deserialize)]
//! struct NewCategory {
//!     name: String,
//! }
//!
//! #[derive(Serialize)]
//! struct Category {
//!     id: String,
//!     name: String,
//! }
//!
//! fn route(req: &Request) -> Result<Response, Problem> {
//!     let path = req.path();
//!     match req.method() {
//!         Method::Get if let Some(_) = match_path("/api/categories", path) => list(req),
//!         Method::Post if let Some(_) = match_path("/api/categories", path) => create(req),
//!         Method::Delete if let Some(p) = match_path("/api/categories/:id", path) => delete(&p["id"]),
//!         _ => Err(Problem::not_found(format!("no such path: {path}"))),
//!     }
//! }
//!
//! fn list(req: &Request) -> Result<Response, Problem> {
//!     let request = PageRequest::from_query(req.query(), &["name", "newest"], "name")?;
//!     let items: Vec<Category> = Vec::new(); // SELECT ... ORDER BY ... LIMIT ? OFFSET ?
//!     Ok(api::json(200, &Page::new(items, &request, 0)))
//! }
//!
//! fn create(req: &Request) -> Result<Response, Problem> {
//!     let new: NewCategory = api::parse_json(req)?;
//!     Validator::new().required("name", &new.name).max_len("name", &new.name, 100).finish()?;
//!     Ok(api::json(201, &Category { id: "c1".into(), name: new.name }))
//! }
//! # fn delete(id: &str) -> Result<Response, Problem> { unimplemented!() }
//! ```

pub mod chain;
mod page;
mod path;
mod validate;

pub use page::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page, PageRequest, Sort};
pub use path::{Params, match_path};
pub use validate::Validator;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::error::Category;
use spin_sdk::http::{IntoResponse, Request, Response};

use crate::problem::{FieldError, Problem};

/// A JSON response. A value that does not serialise (a map with non-string keys)
/// is the service's bug: logged, and answered with an opaque 500.
pub fn json<T: Serialize + ?Sized>(status: u16, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(body) => Response::builder().status(status).header("content-type", "application/json").body(body).build(),
        Err(e) => {
            eprintln!("response body does not serialise: {e}");
            Problem::internal().into_response()
        }
    }
}

/// The request body as a `T`, or a 400 saying what is wrong: not JSON at all
/// (with the position), or which field is missing or has the wrong type (as a
/// field error, `items[0].quantity`). Fields `T` does not know are ignored.
pub fn parse_json<T: DeserializeOwned>(req: &Request) -> Result<T, Problem> {
    let body = req.body();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::bad_request("the request body is empty; expected JSON"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(body_problem)?;
    deserializer.end().map_err(|e| Problem::bad_request(format!("the request body is not valid JSON: {e}")))?;
    Ok(value)
}

fn body_problem(error: serde_path_to_error::Error<serde_json::Error>) -> Problem {
    let inner = error.inner();
    if inner.classify() != Category::Data {
        return Problem::bad_request(format!("the request body is not valid JSON: {inner}"));
    }
    // serde_json appends the position; for a named field it is noise.
    let text = inner.to_string();
    let message = text.rsplit_once(" at line ").map_or(text.as_str(), |(message, _)| message);
    let path = error.path();
    let at_root = path.iter().next().is_none();
    let field_error = match message.strip_prefix("missing field `").and_then(|rest| rest.strip_suffix('`')) {
        Some(name) if at_root => FieldError::new(name, "is required"),
        Some(name) => FieldError::new(format!("{path}.{name}"), "is required"),
        None if at_root => return Problem::bad_request(format!("the request body has the wrong shape: {message}")),
        None => FieldError::new(path.to_string(), message),
    };
    Problem::invalid(vec![field_error])
}

/// The first value of `name` in a query string (`a=1&q=red+shoes`), decoded
/// (`red shoes`); `None` when absent.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes()).find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::{Value, json};
    use spin_sdk::http::Method;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Item {
        product_id: String,
        quantity: u32,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Address {
        city: String,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Checkout {
        items: Vec<Item>,
        shipping_address: Address,
    }

    fn post(body: &str) -> Request {
        Request::builder().method(Method::Post).uri("/api/orders").body(body.to_owned()).build()
    }

    fn problem(body: &str) -> Problem {
        parse_json::<Checkout>(&post(body)).expect_err("a problem")
    }

    #[test]
    fn json_answers_with_the_status_and_content_type() {
        let response = json(201, &json!({"id": "c1"}));
        assert_eq!(*response.status(), 201);
        assert_eq!(response.header("content-type").and_then(|v| v.as_str()), Some("application/json"));
        assert_eq!(serde_json::from_slice::<Value>(response.body()).expect("JSON"), json!({"id": "c1"}));
    }

    #[test]
    fn parses_a_good_body_ignoring_unknown_fields() {
        let body =
            r#"{"items": [{"product_id": "p1", "quantity": 2, "note": "x"}], "shipping_address": {"city": "Graz"}}"#;
        let checkout: Checkout = parse_json(&post(body)).expect("parses");
        assert_eq!(checkout.items[0], Item { product_id: "p1".into(), quantity: 2 });
    }

    #[test]
    fn an_empty_or_broken_body_is_a_bad_request() {
        assert_eq!(problem("  ").detail, "the request body is empty; expected JSON");
        let broken = problem(r#"{"items": ["#);
        assert_eq!(broken.status, 400);
        assert!(broken.detail.starts_with("the request body is not valid JSON: EOF"), "{}", broken.detail);
        let trailing = problem(r#"{"items": [], "shipping_address": {"city": "Graz"}} x"#);
        assert!(trailing.detail.contains("trailing characters"), "{}", trailing.detail);
        assert_eq!(
            problem("5").detail,
            "the request body has the wrong shape: invalid type: integer `5`, expected struct Checkout"
        );
    }

    #[test]
    fn a_wrong_or_missing_field_is_named() {
        let errors = |body: &str| problem(body).errors;
        assert_eq!(errors(r#"{"items": []}"#), [FieldError::new("shipping_address", "is required")]);
        assert_eq!(
            errors(r#"{"items": [], "shipping_address": {}}"#),
            [FieldError::new("shipping_address.city", "is required")]
        );
        assert_eq!(
            errors(r#"{"items": [{"product_id": "p1", "quantity": -1}], "shipping_address": {"city": "Graz"}}"#),
            [FieldError::new("items[0].quantity", "invalid value: integer `-1`, expected u32")]
        );
    }

    #[test]
    fn query_params_are_decoded() {
        assert_eq!(query_param("q=red+shoes&page=2", "q").as_deref(), Some("red shoes"));
        assert_eq!(query_param("q=caf%C3%A9&q=second", "q").as_deref(), Some("café"));
        assert_eq!(query_param("q=x", "page"), None);
        assert_eq!(query_param("", "page"), None);
    }
}
