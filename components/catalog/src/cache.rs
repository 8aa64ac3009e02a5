//! Catalog reads cached in the key-value store, as JSON bodies.
//!
//! Every cache key starts with a generation number kept in the store itself. A write
//! bumps it once it has committed, so every entry cached before is never read again:
//! a product's change shows in its own page, every list it appears in and every
//! search, with no need to know which of those were cached. A reader that loaded from
//! the database before the commit can only store its stale body under the old
//! generation, which nobody reads any more.
//!
//! The cache is an optimisation: when the key-value store fails, reads go to the
//! database and the failure is logged.

use serde::Serialize;
use spin_sdk::http::Response;
use spin_sdk::key_value::Store;

use estore_shared::problem::Problem;

const GENERATION: &str = "catalog:generation";

/// The cached body under `key` (a read's canonical description: path and parameters),
/// or `load`'s value, stored for the next reader. Always a 200 JSON response: errors
/// are not cached.
pub fn read_through<T: Serialize>(key: &str, load: impl FnOnce() -> Result<T, Problem>) -> Result<Response, Problem> {
    let store = open();
    let key = store.as_ref().and_then(generation).map(|generation| format!("catalog:{generation}:{key}"));
    if let (Some(store), Some(key)) = (&store, &key) {
        match store.get(key) {
            Ok(Some(body)) => return Ok(ok(body)),
            Ok(None) => {}
            Err(e) => eprintln!("cache read of {key} failed: {e}"),
        }
    }
    let body = serde_json::to_vec(&load()?).map_err(|e| {
        eprintln!("a catalog read does not serialise: {e}");
        Problem::internal()
    })?;
    if let (Some(store), Some(key)) = (&store, &key)
        && let Err(e) = store.set(key, &body)
    {
        eprintln!("cache write of {key} failed: {e}");
    }
    Ok(ok(body))
}

/// Forgets every cached read; called after each committed write.
pub fn invalidate() {
    let Some(store) = open() else { return };
    let Some(current) = generation(&store) else { return };
    if let Err(e) = store.set(GENERATION, current.wrapping_add(1).to_string().as_bytes()) {
        eprintln!("cache invalidation failed, reads may be stale until the next write: {e}");
    }
}

fn open() -> Option<Store> {
    Store::open_default().inspect_err(|e| eprintln!("the key-value store is unavailable: {e}")).ok()
}

/// The current generation (0 before the first write); `None` when it cannot be read,
/// and then nothing is cached or invalidated.
fn generation(store: &Store) -> Option<u64> {
    match store.get(GENERATION) {
        Ok(value) => Some(value.and_then(|bytes| String::from_utf8(bytes).ok()?.parse().ok()).unwrap_or(0)),
        Err(e) => {
            eprintln!("the cache generation is unreadable: {e}");
            None
        }
    }
}

fn ok(body: Vec<u8>) -> Response {
    Response::builder().status(200).header("content-type", "application/json").body(body).build()
}
