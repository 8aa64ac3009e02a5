//! The transactional outbox and the handled-message record, both kept in the
//! component's own database so they commit or roll back with its data.
//!
//! - `_estore_outbox`: a message published while a transaction is open is inserted
//!   here in that transaction; the relay sends it to the bus once it is committed and
//!   deletes it after the bus has it. A rolled-back transaction leaves nothing to send,
//!   and a crash between commit and send leaves the row for the next relay pass.
//!   The relay may send a row twice (a crash after the send, before the delete), so
//!   consumers deduplicate by message id.
//! - `_estore_handled`: the ids of messages a consumer group has handled, inserted in
//!   the handler's transaction, so a message redelivered after its effects committed
//!   is recognised and not handled again.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::backend::{Backend, Transaction};
use super::{Database, SqlLimits};
use crate::bindings::sql::{Error, Value};
use crate::bus::{Bus, BusError, Outgoing};

const OUTBOX: &str = "_estore_outbox";
const HANDLED: &str = "_estore_handled";
/// Rows the relay sends per pass; the next pass follows at once while rows remain.
const RELAY_BATCH: i64 = 100;
/// How often the relay looks for rows without being told (rows left by a crash, or by
/// a send that failed).
const RELAY_SWEEP: Duration = Duration::from_secs(2);

/// Creates both tables if they do not exist yet; part of a database's set-up.
pub async fn create_tables(backend: &Backend) -> Result<(), Error> {
    let (sequence, bytes) = match backend {
        Backend::Sqlite(_) => ("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB"),
        Backend::Postgres(_) => ("BIGSERIAL PRIMARY KEY", "BYTEA"),
    };
    let outbox = format!(
        "CREATE TABLE IF NOT EXISTS {OUTBOX} (seq {sequence}, topic TEXT NOT NULL, message_key {bytes}, \
         payload {bytes} NOT NULL, headers TEXT NOT NULL, created_at_ms BIGINT NOT NULL)"
    );
    let handled = format!(
        "CREATE TABLE IF NOT EXISTS {HANDLED} (consumer_group TEXT NOT NULL, message_id TEXT NOT NULL, \
         handled_at_ms BIGINT NOT NULL, PRIMARY KEY (consumer_group, message_id))"
    );
    backend.run_script(&[&outbox, &handled]).await.map_err(|(_, e)| e)
}

/// Writes `message` into the open transaction `tx`.
pub async fn stage(backend: &Backend, tx: &mut Transaction, message: &Outgoing, limits: SqlLimits) -> Result<(), Error> {
    let headers = serde_json::to_string(
        &message.headers.iter().map(|(name, value)| (name.as_str(), hex::encode(value))).collect::<Vec<_>>(),
    )
    .map_err(|e| Error::Other(format!("cannot encode headers: {e}")))?;
    let params = vec![
        Value::Text(message.topic.clone()),
        message.key.clone().map(Value::Blob).unwrap_or(Value::Null),
        Value::Blob(message.payload.clone()),
        Value::Text(headers),
        Value::Int64(now_ms()),
    ];
    let insert = format!(
        "INSERT INTO {OUTBOX} (topic, message_key, payload, headers, created_at_ms) VALUES (?, ?, ?, ?, ?)"
    );
    backend.execute(Some(tx), &insert, params, limits).await.map(drop)
}

/// Records that `group` handled `message_id`, in `tx` when given. Recording twice is
/// harmless.
pub async fn record_handled(
    backend: &Backend,
    tx: Option<&mut Transaction>,
    group: &str,
    message_id: &str,
    limits: SqlLimits,
) -> Result<(), Error> {
    let insert = format!(
        "INSERT INTO {HANDLED} (consumer_group, message_id, handled_at_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
    );
    let params = vec![Value::Text(group.to_owned()), Value::Text(message_id.to_owned()), Value::Int64(now_ms())];
    backend.execute(tx, &insert, params, limits).await.map(drop)
}

/// Forgets handled-message ids recorded before `before_ms` (Unix milliseconds).
pub async fn forget_handled(backend: &Backend, before_ms: i64, limits: SqlLimits) -> Result<u64, Error> {
    let delete = format!("DELETE FROM {HANDLED} WHERE handled_at_ms < ?");
    backend.execute(None, &delete, vec![Value::Int64(before_ms)], limits).await
}

/// Forgets that `group` handled `message_id`: the handler asked to run it again.
pub async fn forget_message(backend: &Backend, group: &str, message_id: &str, limits: SqlLimits) -> Result<u64, Error> {
    let delete = format!("DELETE FROM {HANDLED} WHERE consumer_group = ? AND message_id = ?");
    let params = vec![Value::Text(group.to_owned()), Value::Text(message_id.to_owned())];
    backend.execute(None, &delete, params, limits).await
}

/// How many committed messages wait for the relay.
pub async fn backlog(backend: &Backend, limits: SqlLimits) -> Result<i64, Error> {
    let rows = backend.query(None, &format!("SELECT count(*) FROM {OUTBOX}"), Vec::new(), limits).await?.rows;
    match rows.first().and_then(|row| row.first()) {
        Some(Value::Int64(count)) => Ok(*count),
        _ => Err(Error::Other(format!("no count from {OUTBOX}"))),
    }
}

pub async fn was_handled(backend: &Backend, group: &str, message_id: &str, limits: SqlLimits) -> Result<bool, Error> {
    let select = format!("SELECT 1 FROM {HANDLED} WHERE consumer_group = ? AND message_id = ?");
    let params = vec![Value::Text(group.to_owned()), Value::Text(message_id.to_owned())];
    Ok(!backend.query(None, &select, params, limits).await?.rows.is_empty())
}

/// Sends a database's committed outbox rows to the bus, oldest first, for as long as
/// the host runs. Woken by every commit that staged messages, and every
/// [`RELAY_SWEEP`] regardless.
pub async fn relay(database: Arc<Database>, bus: Bus, publish_timeout: Duration) {
    let mut failing = false;
    loop {
        let woken = database.relay_signal.notified();
        match relay_pass(&database, &bus, publish_timeout).await {
            Ok(pass) => {
                if failing {
                    tracing::info!(component = %database.component, "outbox relay resumed");
                    failing = false;
                }
                match pass {
                    Pass::Full => continue,
                    Pass::Done => {}
                    Pass::OtherHost => {
                        tokio::time::sleep(OTHER_HOST_RETRY).await;
                        continue;
                    }
                }
            }
            Err(e) => {
                // Logged once per outage, not every sweep.
                if !failing {
                    tracing::warn!(component = %database.component, database = %database.label, "outbox relay paused: {e}");
                    failing = true;
                }
            }
        }
        let _ = tokio::time::timeout(RELAY_SWEEP, woken).await;
    }
}

enum Pass {
    /// A full batch went out: more may be waiting.
    Full,
    Done,
    /// Another host is relaying this database's outbox right now.
    OtherHost,
}

/// Several hosts share a PostgreSQL database, and each runs a relay for it: one pass
/// at a time holds this transaction-scoped lock, so no row is sent by two hosts and
/// rows go out in the order they were committed. A SQLite database has one host.
const RELAY_LOCK: &str = "SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '._estore_outbox relay'))";
/// How soon to look again when another host held the relay lock: it may have read
/// its batch before this host's latest commit.
const OTHER_HOST_RETRY: Duration = Duration::from_millis(50);

/// Sends one batch, oldest first. On PostgreSQL the whole pass is one transaction
/// under [`RELAY_LOCK`], and a row is deleted in it once the bus has it.
async fn relay_pass(database: &Database, bus: &Bus, publish_timeout: Duration) -> Result<Pass, String> {
    let describe = |e: Error| super::errors::describe(&e);
    database.ensure_ready().await.map_err(describe)?;
    let (backend, limits) = (&database.backend, database.limits);
    let mut tx = match backend {
        Backend::Postgres(_) => {
            let mut tx = backend.begin(limits).await.map_err(describe)?;
            let locked = backend.query(Some(&mut tx), RELAY_LOCK, Vec::new(), limits).await.map_err(describe)?;
            if !matches!(locked.rows.first().and_then(|row| row.first()), Some(Value::Boolean(true))) {
                tx.rollback(limits).await.map_err(describe)?;
                return Ok(Pass::OtherHost);
            }
            Some(tx)
        }
        Backend::Sqlite(_) => None,
    };
    let select = format!(
        "SELECT seq, topic, message_key, payload, headers FROM {OUTBOX} ORDER BY seq LIMIT {RELAY_BATCH}"
    );
    let rows = backend.query(tx.as_mut(), &select, Vec::new(), limits).await.map_err(describe)?.rows;
    let full = rows.len() as i64 == RELAY_BATCH;
    let mut outcome = Ok(());
    for row in rows {
        let (seq, message) = decode_row(row)?;
        match bus.publish(message, publish_timeout).await {
            Ok(_) => {}
            Err(BusError::Invalid(why)) => {
                // Nothing will ever make the bus take it: keep it out of the way of
                // the rows behind it, and say so.
                tracing::error!(component = %database.component, "outbox message {seq} dropped: {why}");
            }
            Err(e) => {
                outcome = Err(e.to_string());
                break;
            }
        }
        let delete = format!("DELETE FROM {OUTBOX} WHERE seq = ?");
        backend.execute(tx.as_mut(), &delete, vec![Value::Int64(seq)], limits).await.map_err(describe)?;
    }
    // What went out is deleted even when a later row failed to.
    if let Some(tx) = tx {
        tx.commit(limits).await.map_err(describe)?;
    }
    outcome.map(|()| if full { Pass::Full } else { Pass::Done })
}

fn decode_row(row: Vec<Value>) -> Result<(i64, Outgoing), String> {
    let mut values = row.into_iter();
    let malformed = || format!("malformed row in {OUTBOX}");
    let (Some(Value::Int64(seq)), Some(Value::Text(topic)), Some(key), Some(Value::Blob(payload)), Some(Value::Text(headers))) =
        (values.next(), values.next(), values.next(), values.next(), values.next())
    else {
        return Err(malformed());
    };
    let key = match key {
        Value::Blob(key) => Some(key),
        _ => None,
    };
    let headers: Vec<(String, String)> = serde_json::from_str(&headers).map_err(|_| malformed())?;
    let headers = headers
        .into_iter()
        .map(|(name, value)| hex::decode(value).map(|value| (name, value)).map_err(|_| malformed()))
        .collect::<Result<_, _>>()?;
    Ok((seq, Outgoing { topic, key, payload, headers }))
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: SqlLimits =
        SqlLimits { statement_timeout: Duration::from_secs(5), max_rows: 1000, max_result_bytes: 1 << 20 };

    #[tokio::test]
    async fn handled_ids_are_remembered_until_forgotten() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (backend, _) = super::super::backend::sqlite(dir.path(), "c", "default", 1, None).await.expect("open");
        create_tables(&backend).await.expect("tables");
        record_handled(&backend, None, "group", "m-1", LIMITS).await.expect("record");
        record_handled(&backend, None, "group", "m-1", LIMITS).await.expect("recording twice is harmless");
        assert!(was_handled(&backend, "group", "m-1", LIMITS).await.expect("check"));
        assert!(!was_handled(&backend, "other-group", "m-1", LIMITS).await.expect("check"));
        assert_eq!(forget_message(&backend, "other-group", "m-1", LIMITS).await.expect("forget"), 0);

        assert_eq!(forget_handled(&backend, now_ms() - 60_000, LIMITS).await.expect("forget"), 0, "recent ids stay");
        assert_eq!(forget_handled(&backend, now_ms() + 1, LIMITS).await.expect("forget"), 1);
        assert!(!was_handled(&backend, "group", "m-1", LIMITS).await.expect("check"));
    }
}
