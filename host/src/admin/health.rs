//! Liveness and readiness, for orchestrators and load balancers.
//!
//! Both answer without the admin token: probes carry none, and they tell only whether
//! the host is up and which of its dependencies is not.
//!
//! - `GET /health/live`: the process answers (200). Restart it when this fails.
//! - `GET /health/ready`: 200 when every component of the manifest is loaded, every
//!   component's databases answer, and the bus answers; otherwise 503, naming each
//!   check that failed. Send it traffic only while this is 200.

use std::time::Duration;

use serde_json::{Value, json};

use estore_bus::Bus;
use estore_manifest::Manifest;
use estore_instance::registry::Registry;

/// How long each dependency has to answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn liveness() -> Value {
    json!({"status": "live"})
}

/// Whether the host is ready, and what each check found.
pub async fn readiness(registry: &Registry, manifest: &Manifest, bus: Option<&Bus>) -> (bool, Value) {
    let mut failures = serde_json::Map::new();
    for id in manifest.components.keys() {
        let checked = match registry.get(id) {
            None => Err(registry.failure(id).unwrap_or("not loaded").to_owned()),
            Some(component) => within(component.context.sql.check(), "its database").await,
        };
        if let Err(why) = checked {
            failures.insert(format!("component {id}"), json!(why));
        }
    }
    if let Some(bus) = bus {
        let answered = async { bus.check(CHECK_TIMEOUT).await.map_err(|e| e.to_string()) };
        if let Err(why) = within(answered, &bus.describe()).await {
            failures.insert("bus".into(), json!(why));
        }
    }
    let ready = failures.is_empty();
    let status = if ready { "ready" } else { "not ready" };
    (ready, json!({"status": status, "failing": failures}))
}

/// `check`'s outcome, or a timeout naming `what` did not answer.
async fn within(check: impl Future<Output = Result<(), String>>, what: &str) -> Result<(), String> {
    tokio::time::timeout(CHECK_TIMEOUT, check)
        .await
        .unwrap_or_else(|_| Err(format!("{what} did not answer within {} s", CHECK_TIMEOUT.as_secs())))
}
