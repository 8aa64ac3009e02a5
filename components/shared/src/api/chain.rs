//! Calls to another service of the store through the platform's service chaining
//! (`http://<component>.spin.internal/...`), made as the caller of the request
//! being handled: its `Authorization` goes along, so the callee applies its own
//! access rules to the same customer.

use serde::Serialize;
use serde::de::DeserializeOwned;
use spin_sdk::http::{Method, Request, Response};

use crate::problem::Problem;

/// What a chained call answered: its status and body, for the caller to judge.
pub struct Answer {
    pub status: u16,
    response: Response,
    service: &'static str,
}

impl Answer {
    /// The body as a `T`. A body that is not one is the callee's bug: logged, 500.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Problem> {
        serde_json::from_slice(self.response.body()).map_err(|e| {
            eprintln!("{} answered {} with a body that does not fit: {e}", self.service, self.status);
            Problem::internal()
        })
    }

    /// The problem the callee answered with (its `detail`), for answers that are not
    /// a success.
    pub fn problem(&self) -> Problem {
        serde_json::from_slice(self.response.body())
            .unwrap_or_else(|_| Problem::new(self.status, format!("{} answered {}", self.service, self.status)))
    }

    /// A 503 for an answer the caller did not expect from `service`: logged with
    /// the status, so the shopper sees "try again" and the operator sees why.
    pub fn unavailable(&self) -> Problem {
        eprintln!("{} answered {} unexpectedly: {}", self.service, self.status, self.problem().detail);
        unavailable(self.service)
    }
}

/// `method url` as the caller of `on_behalf_of`, with an optional JSON body.
/// `service` names the callee in messages. A callee that cannot be reached is a 503.
pub fn call<B: Serialize>(
    on_behalf_of: &Request,
    service: &'static str,
    method: Method,
    url: &str,
    body: Option<&B>,
) -> Result<Answer, Problem> {
    let mut request = Request::builder();
    request.method(method).uri(url);
    if let Some(authorization) = on_behalf_of.header("authorization").and_then(|v| v.as_str()) {
        request.header("authorization", authorization);
    }
    if let Some(body) = body {
        let json = serde_json::to_vec(body).map_err(|e| {
            eprintln!("the request to {service} does not serialise: {e}");
            Problem::internal()
        })?;
        request.header("content-type", "application/json").body(json);
    }
    let response: Response = spin_sdk::http::run(spin_sdk::http::send(request.build())).map_err(|e| {
        eprintln!("{service} did not answer {url}: {e}");
        unavailable(service)
    })?;
    Ok(Answer { status: *response.status(), response, service })
}

fn unavailable(service: &str) -> Problem {
    Problem::new(503, format!("the {service} service cannot be reached; try again"))
}
