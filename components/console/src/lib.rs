//! console: what the store's operators see of the platform under it, for the console
//! pages of the storefront. Administrators only; the platform grants this component
//! its controls (`allow_operations = true`) and trusts it to check.
//!
//! - `GET /api/platform/components`: every component with the version serving, its
//!   triggers, what it served and its deploy history.
//! - `POST /api/platform/components/{id}/rollback`: back to the version before, on
//!   every host.
//! - `GET /api/platform/dead-letters?topic=&limit=`: the messages a consumer gave up on,
//!   with the error they carried; without `topic`, how many each of the store's topics
//!   has.
//! - `POST /api/platform/dead-letters/{topic}/{partition}/{offset}/replay`: publishes
//!   one again to its topic, after a fix.

use serde::Serialize;
use serde_json::json;
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

use estore_shared::api::{self, match_path, query_param};
use estore_shared::auth;
use estore_shared::bindings::operations::{self, Component, DeadLetter, Version};
use estore_shared::problem::Problem;

/// The topics the store's services consume: where dead letters can be.
const TOPICS: [&str; 17] = [
    "user.registered",
    "user.updated",
    "user.deleted",
    "product.updated",
    "product.deleted",
    "inventory.changed",
    "inventory.reserved",
    "inventory.rejected",
    "order.placed",
    "order.confirmed",
    "order.cancelled",
    "order.shipped",
    "order.delivered",
    "payment.completed",
    "payment.failed",
    "payment.refunded",
    "promotion.published",
];
/// Dead letters listed at once, unless `limit` says otherwise.
const DEFAULT_LIMIT: u32 = 50;

#[http_component]
fn handle(req: Request) -> Result<Response, Problem> {
    auth::caller(&req)?.require_admin()?;
    let path = req.path();
    let method = req.method();
    if match_path("/api/platform/components", path).is_some() {
        return match method {
            Method::Get => list_components(),
            _ => Err(Problem::method_not_allowed("GET")),
        };
    }
    if let Some(params) = match_path("/api/platform/components/:id/rollback", path) {
        return match method {
            Method::Post => roll_back(&params["id"]),
            _ => Err(Problem::method_not_allowed("POST")),
        };
    }
    if match_path("/api/platform/dead-letters", path).is_some() {
        return match method {
            Method::Get => match query_param(req.query(), "topic") {
                Some(topic) => list_dead_letters(&topic, limit(req.query())?),
                None => count_dead_letters(),
            },
            _ => Err(Problem::method_not_allowed("GET")),
        };
    }
    if let Some(params) = match_path("/api/platform/dead-letters/:topic/:partition/:offset/replay", path) {
        let place = params["partition"].parse::<u32>().ok().zip(params["offset"].parse::<u64>().ok());
        let Some((partition, offset)) = place else {
            return Err(Problem::not_found(format!("no dead letter at {path}")));
        };
        return match method {
            Method::Post => replay(&params["topic"], partition, offset),
            _ => Err(Problem::method_not_allowed("POST")),
        };
    }
    Err(Problem::not_found(format!("no such path: {path}")))
}

fn list_components() -> Result<Response, Problem> {
    let components = operations::components().map_err(problem)?;
    Ok(api::json(200, &components.iter().map(ComponentView::from).collect::<Vec<_>>()))
}

fn roll_back(id: &str) -> Result<Response, Problem> {
    let version = operations::rollback(id).map_err(problem)?;
    Ok(api::json(200, &json!({"component": id, "version": VersionView::from(&version)})))
}

fn list_dead_letters(topic: &str, limit: u32) -> Result<Response, Problem> {
    let letters = operations::dead_letters(topic, limit).map_err(problem)?;
    let items: Vec<DeadLetterView> = letters.iter().map(DeadLetterView::from).collect();
    Ok(api::json(200, &json!({"topic": topic, "items": items})))
}

/// Each of the store's topics with how many dead letters it has (up to the limit).
fn count_dead_letters() -> Result<Response, Problem> {
    let mut topics = Vec::new();
    for topic in TOPICS {
        let count = operations::dead_letters(topic, DEFAULT_LIMIT).map_err(problem)?.len();
        topics.push(json!({"topic": topic, "dead_letters": count}));
    }
    Ok(api::json(200, &json!({"topics": topics})))
}

fn replay(topic: &str, partition: u32, offset: u64) -> Result<Response, Problem> {
    let replayed = operations::replay(topic, partition, offset).map_err(problem)?;
    Ok(api::json(202, &json!({"topic": topic, "replayed_from": {"partition": partition, "offset": offset}, "offset": replayed})))
}

fn limit(query: &str) -> Result<u32, Problem> {
    match query_param(query, "limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| Problem::bad_request(format!("limit must be a number from 1 to 500, not `{text}`"))),
    }
}

fn problem(error: operations::Error) -> Problem {
    match error {
        operations::Error::NotAllowed(why) => Problem::forbidden(why),
        operations::Error::NotFound(why) => Problem::not_found(why),
        operations::Error::Conflict(why) => Problem::conflict(why),
        operations::Error::Unavailable(why) => Problem::new(503, why),
        operations::Error::Other(why) => Problem::new(500, why),
    }
}

// ---- What the API answers ---------------------------------------------------------

#[derive(Serialize)]
struct ComponentView<'a> {
    id: &'a str,
    version: &'a str,
    deployed_at: &'a str,
    triggers: &'a [String],
    requests: u64,
    messages: u64,
    history: Vec<VersionView<'a>>,
}

impl<'a> From<&'a Component> for ComponentView<'a> {
    fn from(component: &'a Component) -> Self {
        ComponentView {
            id: &component.id,
            version: &component.version,
            deployed_at: &component.deployed_at,
            triggers: &component.triggers,
            requests: component.requests,
            messages: component.messages,
            history: component.history.iter().map(VersionView::from).collect(),
        }
    }
}

#[derive(Serialize)]
struct VersionView<'a> {
    version: &'a str,
    deployed_at: &'a str,
    source: &'a str,
    serving: bool,
}

impl<'a> From<&'a Version> for VersionView<'a> {
    fn from(version: &'a Version) -> Self {
        VersionView { version: &version.digest, deployed_at: &version.deployed_at, source: &version.source, serving: version.serving }
    }
}

#[derive(Serialize)]
struct DeadLetterView<'a> {
    topic: &'a str,
    partition: u32,
    offset: u64,
    key: Option<String>,
    /// The payload as JSON when it is, else as text.
    payload: serde_json::Value,
    error: &'a str,
    component: &'a str,
    attempts: u32,
    dead_lettered_at: String,
}

impl<'a> From<&'a DeadLetter> for DeadLetterView<'a> {
    fn from(letter: &'a DeadLetter) -> Self {
        let payload = serde_json::from_slice(&letter.payload)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&letter.payload).into_owned()));
        DeadLetterView {
            topic: &letter.topic,
            partition: letter.partition,
            offset: letter.offset,
            key: letter.key.as_ref().map(|key| String::from_utf8_lossy(key).into_owned()),
            payload,
            error: &letter.error,
            component: &letter.component,
            attempts: letter.attempts,
            dead_lettered_at: estore_shared::clock::rfc3339(i64::try_from(letter.timestamp_ms / 1000).unwrap_or(i64::MAX)),
        }
    }
}
