//! Errors as the store answers them: RFC 9457 problem details
//! (`application/problem+json`), with the field errors of a failed validation.
//!
//! A handler returns `Result<Response, Problem>`; spin-sdk turns either side into
//! the response, so `?` works on anything that converts into a `Problem`:
//!
//! ```no_run
//! use estore_shared::problem::Problem;
//! use spin_sdk::http::{Request, Response};
//! use spin_sdk::http_component;
//!
//! #[http_component]
//! fn handle(req: Request) -> Result<Response, Problem> {
//!     Err(Problem::not_found(format!("no such path: {}", req.path())))
//! }
//! # fn main() {}
//! ```
//!
//! Every problem has `type` `about:blank`: the status says what kind of problem it
//! is, `title` is the status's name and `detail` says what went wrong this time.

use serde::{Deserialize, Serialize};
use spin_sdk::http::{IntoResponse, Response};

use crate::sql;

/// An RFC 9457 problem: the body of every error response.
///
/// `type` (`about:blank`) and `title` follow from `status`, so they are written
/// when serialising rather than stored: that keeps a `Problem` small enough to be
/// the error of every handler's `Result`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Problem {
    pub status: u16,
    pub detail: String,
    /// What is wrong with which field of the request; only for validation (400).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Response headers that belong to the problem (`Retry-After`,
    /// `WWW-Authenticate`, `Allow`), names lowercase; not part of the body.
    #[serde(skip)]
    headers: Vec<(String, String)>,
}

/// One invalid field: `{"field": "email", "message": "must be an e-mail address"}`.
/// Nested fields are paths: `shipping_address.city`, `items[0].quantity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), message: message.into() }
    }
}

impl Problem {
    /// A problem with `status`, titled by the status's name.
    pub fn new(status: u16, detail: impl Into<String>) -> Problem {
        Problem { status, detail: detail.into(), errors: Vec::new(), headers: Vec::new() }
    }

    /// 400: the request is malformed (not JSON, a bad query parameter).
    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(400, detail)
    }

    /// 400 listing every invalid field, so a form can show them all at once.
    pub fn invalid(errors: Vec<FieldError>) -> Problem {
        let detail = match errors.as_slice() {
            [one] => format!("{} {}", one.field, one.message),
            _ => format!("{} fields are invalid", errors.len()),
        };
        Problem { errors, ..Problem::bad_request(detail) }
    }

    /// 401: not logged in, or the token is not valid. Carries the
    /// `WWW-Authenticate: Bearer` challenge a 401 must have.
    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        Problem::new(401, detail).with_header("www-authenticate", "Bearer")
    }

    /// 403: logged in, but not allowed (a customer on an admin endpoint). Another
    /// user's resource is a 404 instead, so that its existence does not leak.
    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(403, detail)
    }

    /// 404: no such resource, or one the caller may not see.
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(404, detail)
    }

    /// 405 with the `Allow` header, e.g. `method_not_allowed("GET, POST")`.
    pub fn method_not_allowed(allow: &str) -> Problem {
        Problem::new(405, format!("allowed methods: {allow}")).with_header("allow", allow)
    }

    /// 409: a duplicate (e-mail, username), or a state change no longer possible.
    pub fn conflict(detail: impl Into<String>) -> Problem {
        Problem::new(409, detail)
    }

    /// 422: well formed, but it cannot be done (checkout of an empty cart).
    pub fn unprocessable(detail: impl Into<String>) -> Problem {
        Problem::new(422, detail)
    }

    /// 429 with `Retry-After` (e.g. after repeated failed logins).
    pub fn too_many_requests(retry_after_secs: u64) -> Problem {
        Problem::new(429, format!("too many attempts; try again in {retry_after_secs} seconds"))
            .with_header("retry-after", retry_after_secs.to_string())
    }

    /// 503 with `Retry-After`: the service is loaded or its database is out of reach
    /// for now, and the same request may well succeed later.
    pub fn unavailable(retry_after_secs: u64) -> Problem {
        Problem::new(503, format!("the service is busy; try again in {retry_after_secs} seconds"))
            .with_header("retry-after", retry_after_secs.to_string())
    }

    /// 500 that says nothing about the cause: log that, do not send it.
    pub fn internal() -> Problem {
        Problem::new(500, "the request could not be completed; try again later")
    }

    /// The status's name (RFC 9110): `Not Found`.
    pub fn title(&self) -> &'static str {
        title(self.status)
    }

    /// The problem with response header `name` set to `value` (replacing one of the
    /// same name).
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Problem {
        let name = name.to_ascii_lowercase();
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.into()));
        self
    }
}

/// The status's name (RFC 9110), for `title`.
fn title(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ if (400..500).contains(&status) => "Client Error",
        _ => "Server Error",
    }
}

/// The body as RFC 9457 has it: `type`, `title`, `status`, `detail` and, for
/// validation, `errors`.
impl Serialize for Problem {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(rename = "type")]
            problem_type: &'static str,
            title: &'static str,
            status: u16,
            detail: &'a str,
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            errors: &'a [FieldError],
        }
        Body {
            problem_type: "about:blank",
            title: self.title(),
            status: self.status,
            detail: &self.detail,
            errors: &self.errors,
        }
        .serialize(serializer)
    }
}

/// A unique violation is the caller's conflict (409). A database that is busy (a
/// wait for a connection or a lock that outlasted the request's patience) or out of
/// reach is passing: 503 with `Retry-After`, so a burst beyond capacity is answered
/// later, not failed. Anything else is the server's (500). Both are logged to stderr
/// for the operator and never sent: SQL, table and constraint names stay inside.
impl From<sql::Error> for Problem {
    fn from(error: sql::Error) -> Self {
        if error.is_unique_violation() {
            return Problem::conflict("a resource with the same unique value already exists");
        }
        eprintln!("database error: {error}");
        if error.is_passing() {
            return Problem::unavailable(1);
        }
        Problem::internal()
    }
}

/// An event that could not be published fails the write it belongs to: the
/// transaction rolls back, and the caller may try again.
impl From<crate::event::PublishEventError> for Problem {
    fn from(error: crate::event::PublishEventError) -> Self {
        eprintln!("{error}");
        Problem::internal()
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        // Strings, numbers and a list of string pairs: serialising cannot fail.
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = Response::builder();
        response.status(self.status).header("content-type", "application/problem+json");
        for (name, value) in self.headers {
            response.header(name, value);
        }
        response.body(body).build()
    }
}

impl From<Problem> for Response {
    fn from(problem: Problem) -> Self {
        problem.into_response()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::bindings::sql::{ConstraintKind, ConstraintViolation, Error as RawError};

    fn header<'r>(response: &'r Response, name: &str) -> Option<&'r str> {
        response.header(name).and_then(|v| v.as_str())
    }

    fn body(response: &Response) -> Value {
        serde_json::from_slice(response.body()).expect("a JSON body")
    }

    #[test]
    fn answers_problem_json_without_empty_errors() {
        let response = Response::from(Problem::not_found("no order order-42"));
        assert_eq!(*response.status(), 404);
        assert_eq!(header(&response, "content-type"), Some("application/problem+json"));
        assert_eq!(
            body(&response),
            json!({"type": "about:blank", "title": "Not Found", "status": 404, "detail": "no order order-42"})
        );
    }

    #[test]
    fn validation_lists_every_field() {
        let problem = Problem::invalid(vec![
            FieldError::new("email", "must be an e-mail address"),
            FieldError::new("password", "must be at least 8 characters"),
        ]);
        assert_eq!(problem.detail, "2 fields are invalid");
        let response = problem.into_response();
        assert_eq!(*response.status(), 400);
        assert_eq!(
            body(&response)["errors"],
            json!([
                {"field": "email", "message": "must be an e-mail address"},
                {"field": "password", "message": "must be at least 8 characters"},
            ])
        );
        assert_eq!(
            Problem::invalid(vec![FieldError::new("size", "must be at most 100")]).detail,
            "size must be at most 100"
        );
    }

    #[test]
    fn statuses_and_titles() {
        let cases = [
            (Problem::bad_request("x"), 400, "Bad Request"),
            (Problem::unauthorized("x"), 401, "Unauthorized"),
            (Problem::forbidden("x"), 403, "Forbidden"),
            (Problem::not_found("x"), 404, "Not Found"),
            (Problem::method_not_allowed("GET"), 405, "Method Not Allowed"),
            (Problem::conflict("x"), 409, "Conflict"),
            (Problem::unprocessable("x"), 422, "Unprocessable Content"),
            (Problem::too_many_requests(30), 429, "Too Many Requests"),
            (Problem::internal(), 500, "Internal Server Error"),
            (Problem::new(418, "x"), 418, "Client Error"),
        ];
        for (problem, status, title) in cases {
            assert_eq!((problem.status, problem.title()), (status, title));
        }
    }

    #[test]
    fn headers_that_belong_to_the_problem() {
        let response = Problem::too_many_requests(42).into_response();
        assert_eq!(header(&response, "retry-after"), Some("42"));
        assert_eq!(body(&response)["detail"], "too many attempts; try again in 42 seconds");

        let response = Problem::unauthorized("missing token").into_response();
        assert_eq!(header(&response, "www-authenticate"), Some("Bearer"));
        let replaced =
            Problem::unauthorized("expired").with_header("WWW-Authenticate", r#"Bearer error="invalid_token""#);
        assert_eq!(header(&replaced.into_response(), "www-authenticate"), Some(r#"Bearer error="invalid_token""#));

        assert_eq!(header(&Problem::method_not_allowed("GET, POST").into_response(), "allow"), Some("GET, POST"));
    }

    #[test]
    fn sql_errors_become_409_503_or_an_opaque_500() {
        let violation = |kind| {
            sql::Error::Sql(RawError::ConstraintViolation(ConstraintViolation {
                kind,
                name: Some("users_email_key".into()),
                message: "UNIQUE constraint failed: users.email".into(),
            }))
        };
        let conflict = Problem::from(violation(ConstraintKind::Unique));
        assert_eq!(conflict.status, 409);
        assert!(!conflict.detail.contains("users"), "{}", conflict.detail);

        for error in [RawError::Timeout("all 5 connections busy".into()), RawError::Connection("refused".into())] {
            let problem = Problem::from(sql::Error::Sql(error));
            assert_eq!(problem.status, 503);
            assert_eq!(header(&problem.into_response(), "retry-after"), Some("1"));
        }

        for error in [
            violation(ConstraintKind::ForeignKey),
            sql::Error::Sql(RawError::InvalidQuery("near \"SELEC\": syntax error in SELEC * FROM users".into())),
            sql::Error::NoRows,
        ] {
            let problem = Problem::from(error);
            assert_eq!(problem.status, 500);
            assert!(!problem.detail.contains("users") && !problem.detail.contains("SELEC"), "{}", problem.detail);
        }
    }

    #[test]
    fn parses_back_for_service_to_service_calls() {
        let json =
            br#"{"type": "about:blank", "title": "Conflict", "status": 409, "detail": "taken", "instance": "/x"}"#;
        let problem: Problem = serde_json::from_slice(json).expect("parses");
        assert_eq!(problem, Problem::conflict("taken"));
    }
}
