//! Catalog reads cached in the key-value store, as JSON bodies, in a bounded space.
//!
//! **Bounded.** The cache is [`SLOTS`] entries, each a key `catalog:slot:<n>` that a
//! read's canonical description (path and parameters) hashes to, holding at most
//! [`MAX_BODY_BYTES`] of body: never more than about 32 MiB and 257 keys, however
//! many distinct searches clients make (a loop over random `min_price` values only
//! overwrites slots). Two reads sharing a slot take turns in it; a larger body is
//! served but not cached. The host's key-value quota is the backstop behind this.
//!
//! **Invalidation.** A generation number, kept in the store, is written into every
//! slot with its body. A write bumps it once it has committed, so every body cached
//! before is never served again: a product's change shows in its own page, every list
//! it appears in and every search, with no need to know which of those were cached. A
//! reader that loaded from the database before the commit can only store its stale
//! body under the old generation, which nobody serves. Old generations take no room
//! of their own: they sit in the slots until a read overwrites them.
//!
//! The cache is an optimisation: when the key-value store fails (or is full), reads
//! go to the database and the failure is logged.

use serde::Serialize;
use spin_sdk::http::Response;
use spin_sdk::key_value::Store;

use estore_shared::problem::Problem;

const GENERATION: &str = "catalog:generation";
const SLOT_PREFIX: &str = "catalog:slot:";

/// How many bodies are cached at most: the hot reads of a shop (categories, product
/// pages, the first pages of common searches) fit many times over.
pub const SLOTS: u64 = 256;
/// The largest body cached: a full page of 100 products is about 40 KiB.
pub const MAX_BODY_BYTES: usize = 128 * 1024;

/// The cached body for `key` (a read's canonical description: path and parameters),
/// or `load`'s value, stored for the next reader. Always a 200 JSON response: errors
/// are not cached.
pub fn read_through<T: Serialize>(
    key: &str,
    load: impl FnOnce() -> Result<T, Problem>,
) -> Result<Response, Problem> {
    let store = open();
    let cached = store
        .as_ref()
        .and_then(|store| Some((store, generation(store)?, slot_of(key))));
    if let Some((store, generation, slot)) = &cached {
        match store.get(slot) {
            Ok(Some(entry)) => {
                if let Some(body) = Entry::read(&entry, *generation, key) {
                    return Ok(ok(body.to_vec()));
                }
            }
            Ok(None) => {}
            Err(e) => eprintln!("cache read of {slot} failed: {e}"),
        }
    }
    let body = serde_json::to_vec(&load()?).map_err(|e| {
        eprintln!("a catalog read does not serialise: {e}");
        Problem::internal()
    })?;
    if let Some((store, generation, slot)) = &cached
        && body.len() <= MAX_BODY_BYTES
        && let Err(e) = store.set(slot, &Entry::write(*generation, key, &body))
    {
        eprintln!("cache write of {slot} failed: {e}");
    }
    Ok(ok(body))
}

/// Forgets every cached read; called after each committed write. Also drops the
/// keys earlier versions of this cache left (one per read and generation, never
/// deleted), so a store they filled empties with the first write.
pub fn invalidate() {
    let Some(store) = open() else { return };
    let Some(current) = generation(&store) else {
        return;
    };
    if let Err(e) = store.set(GENERATION, current.wrapping_add(1).to_string().as_bytes()) {
        eprintln!("cache invalidation failed, reads may be stale until the next write: {e}");
    }
    let keys = match store.get_keys() {
        Ok(keys) => keys,
        Err(e) => return eprintln!("the cache's keys are unreadable: {e}"),
    };
    for key in keys.iter().filter(|key| {
        key.starts_with("catalog:") && *key != GENERATION && !key.starts_with(SLOT_PREFIX)
    }) {
        if let Err(e) = store.delete(key) {
            eprintln!("the old cache entry {key} was not deleted: {e}");
        }
    }
}

fn open() -> Option<Store> {
    Store::open_default()
        .inspect_err(|e| eprintln!("the key-value store is unavailable: {e}"))
        .ok()
}

/// The current generation (0 before the first write); `None` when it cannot be read,
/// and then nothing is cached or invalidated.
fn generation(store: &Store) -> Option<u64> {
    match store.get(GENERATION) {
        Ok(value) => Some(
            value
                .and_then(|bytes| String::from_utf8(bytes).ok()?.parse().ok())
                .unwrap_or(0),
        ),
        Err(e) => {
            eprintln!("the cache generation is unreadable: {e}");
            None
        }
    }
}

/// The slot `key` is cached in: FNV-1a, stable across builds and instances (std's
/// hasher is seeded per process).
fn slot_of(key: &str) -> String {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{SLOT_PREFIX}{}", hash % SLOTS)
}

/// A slot's value: the generation (8 bytes, little-endian), the key's length (4
/// bytes, little-endian), the key, the body. The key tells which of the reads that
/// share the slot it holds.
struct Entry;

impl Entry {
    fn write(generation: u64, key: &str, body: &[u8]) -> Vec<u8> {
        let key_len = u32::try_from(key.len()).unwrap_or(u32::MAX);
        [
            &generation.to_le_bytes()[..],
            &key_len.to_le_bytes(),
            key.as_bytes(),
            body,
        ]
        .concat()
    }

    /// The body, if `entry` holds `key` cached in `generation`.
    fn read<'a>(entry: &'a [u8], generation: u64, key: &str) -> Option<&'a [u8]> {
        let (stored_generation, rest) = entry.split_first_chunk::<8>()?;
        let (key_len, rest) = rest.split_first_chunk::<4>()?;
        let (stored_key, body) =
            rest.split_at_checked(usize::try_from(u32::from_le_bytes(*key_len)).ok()?)?;
        (u64::from_le_bytes(*stored_generation) == generation && stored_key == key.as_bytes())
            .then_some(body)
    }
}

fn ok(body: Vec<u8>) -> Response {
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(body)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_serves_only_its_key_in_its_generation() {
        let entry = Entry::write(7, "product:1", br#"{"id":1}"#);
        assert_eq!(
            Entry::read(&entry, 7, "product:1"),
            Some(&br#"{"id":1}"#[..])
        );
        assert_eq!(
            Entry::read(&entry, 8, "product:1"),
            None,
            "an old generation"
        );
        assert_eq!(
            Entry::read(&entry, 7, "product:2"),
            None,
            "another read in the same slot"
        );
        assert_eq!(Entry::read(&entry[..10], 7, "product:1"), None, "cut short");
        assert_eq!(Entry::read(b"", 7, "product:1"), None);
    }

    #[test]
    fn reads_spread_over_a_fixed_number_of_slots() {
        let slots: std::collections::BTreeSet<String> = (0..10_000)
            .map(|price| slot_of(&format!("products:Search {{ min_price: {price} }}")))
            .collect();
        assert_eq!(slots.len() as u64, SLOTS, "every slot used, and no more");
        assert_eq!(slot_of("categories"), slot_of("categories"));
    }
}
