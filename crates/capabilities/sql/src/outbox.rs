//! The transactional outbox and the handled-message record, both kept in the
//! component's own database so they commit or roll back with its data (the tables are
//! the host's: see [`super::tables`]).
//!
//! - `_estore_outbox`: a message published while a transaction is open is inserted
//!   here in that transaction, signed by the host ([`super::signing`]); the relay sends
//!   it to the bus once it is committed and deletes it after the bus has it. A
//!   rolled-back transaction leaves nothing to send, and a crash between commit and
//!   send leaves the row for the next relay pass. The relay may send a row twice (a
//!   crash after the send, before the delete), so consumers deduplicate by message id.
//! - The relay sends only what the host staged for a topic the component may publish
//!   to: a row without the host's signature (written by the component itself, or
//!   changed after staging) or whose topic is no longer granted is deleted, never
//!   sent, with an error naming the component, the database and why, and counted in
//!   `estore_outbox_dropped_total`. Rows an earlier version of the host left unsigned
//!   are signed once, when the signature column is added, if their topic is granted.
//! - `_estore_handled`: the ids of messages a consumer group has handled, inserted in
//!   the handler's transaction, so a message redelivered after its effects committed
//!   is recognised and not handled again.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::backend::{Backend, Caller, Transaction};
use super::tables::{HANDLED, OUTBOX};
use super::{Database, SqlLimits};
use crate::bindings::sql::{Error, Value};
use estore_bus::{Bus, BusError, Outgoing};

/// Rows the relay sends per pass; the next pass follows at once while rows remain.
const RELAY_BATCH: i64 = 100;
/// How often the relay looks for rows without being told (rows left by a crash, or by
/// a send that failed).
const RELAY_SWEEP: Duration = Duration::from_secs(2);

/// Writes `message` into the open transaction `tx` of `database`, signed.
pub async fn stage(database: &Database, tx: &mut Transaction, message: &Outgoing) -> Result<(), Error> {
    let headers = serde_json::to_string(
        &message.headers.iter().map(|(name, value)| (name.as_str(), hex::encode(value))).collect::<Vec<_>>(),
    )
    .map_err(|e| Error::Other(format!("cannot encode headers: {e}")))?;
    let signature = database.signer.sign(&database.component, &database.label, message);
    let params = vec![
        Value::Text(message.topic.clone()),
        message.key.clone().map(Value::Blob).unwrap_or(Value::Null),
        Value::Blob(message.payload.clone()),
        Value::Text(headers),
        Value::Int64(now_ms()),
        Value::Blob(signature),
    ];
    let backend = &database.backend;
    let insert = format!(
        "INSERT INTO {} (topic, message_key, payload, headers, created_at_ms, signature) VALUES (?, ?, ?, ?, ?, ?)",
        backend.host_table(OUTBOX)
    );
    backend.execute(Caller::Host, Some(tx), &insert, params, database.limits).await.map(drop)
}

/// Signs the rows an earlier version of the host left in the outbox, in `tx`, the
/// transaction that gave the outbox its signature column: once, before any component
/// runs on this version. Only rows whose topic the component may publish to are
/// signed; the relay drops the rest.
pub async fn sign_earlier_rows(database: &Database, tx: &mut Transaction) -> Result<(), Error> {
    let (backend, limits) = (&database.backend, database.limits);
    let select = format!("SELECT seq, topic, message_key, payload, headers, signature FROM {}", backend.host_table(OUTBOX));
    let rows = backend.query(Caller::Host, Some(&mut *tx), &select, Vec::new(), limits).await?.rows;
    let update = format!("UPDATE {} SET signature = ? WHERE seq = ?", backend.host_table(OUTBOX));
    let (mut signed, mut left) = (0, 0);
    for row in rows {
        match decode_row(row) {
            Ok(row) if database.allowed_topics.contains(&row.message.topic) => {
                let signature = database.signer.sign(&database.component, &database.label, &row.message);
                let params = vec![Value::Blob(signature), Value::Int64(row.seq)];
                backend.execute(Caller::Host, Some(&mut *tx), &update, params, limits).await?;
                signed += 1;
            }
            _ => left += 1,
        }
    }
    if signed + left > 0 {
        tracing::info!(
            component = %database.component,
            database = %database.label,
            "outbox: signed {signed} message(s) staged by an earlier version; {left} with a topic not granted or unreadable \
             will be dropped"
        );
    }
    Ok(())
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
        "INSERT INTO {} (consumer_group, message_id, handled_at_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        backend.host_table(HANDLED)
    );
    let params = vec![Value::Text(group.to_owned()), Value::Text(message_id.to_owned()), Value::Int64(now_ms())];
    backend.execute(Caller::Host, tx, &insert, params, limits).await.map(drop)
}

/// Forgets handled-message ids recorded before `before_ms` (Unix milliseconds).
pub async fn forget_handled(backend: &Backend, before_ms: i64, limits: SqlLimits) -> Result<u64, Error> {
    let delete = format!("DELETE FROM {} WHERE handled_at_ms < ?", backend.host_table(HANDLED));
    backend.execute(Caller::Host, None, &delete, vec![Value::Int64(before_ms)], limits).await
}

/// Forgets that `group` handled `message_id`: the handler asked to run it again.
pub async fn forget_message(backend: &Backend, group: &str, message_id: &str, limits: SqlLimits) -> Result<u64, Error> {
    let delete = format!("DELETE FROM {} WHERE consumer_group = ? AND message_id = ?", backend.host_table(HANDLED));
    let params = vec![Value::Text(group.to_owned()), Value::Text(message_id.to_owned())];
    backend.execute(Caller::Host, None, &delete, params, limits).await
}

/// How many committed messages wait for the relay.
pub async fn backlog(backend: &Backend, limits: SqlLimits) -> Result<i64, Error> {
    let count = format!("SELECT count(*) FROM {}", backend.host_table(OUTBOX));
    let rows = backend.query(Caller::Host, None, &count, Vec::new(), limits).await?.rows;
    match rows.first().and_then(|row| row.first()) {
        Some(Value::Int64(count)) => Ok(*count),
        _ => Err(Error::Other(format!("no count from {OUTBOX}"))),
    }
}

pub async fn was_handled(backend: &Backend, group: &str, message_id: &str, limits: SqlLimits) -> Result<bool, Error> {
    let select = format!("SELECT 1 FROM {} WHERE consumer_group = ? AND message_id = ?", backend.host_table(HANDLED));
    let params = vec![Value::Text(group.to_owned()), Value::Text(message_id.to_owned())];
    Ok(!backend.query(Caller::Host, None, &select, params, limits).await?.rows.is_empty())
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
/// rows go out in the order they were committed. A SQLite database has one host. The
/// key is the schema's name followed by [`RELAY_LOCK_SUFFIX`], as earlier versions
/// computed it from `current_schema()`.
const RELAY_LOCK: &str = "SELECT pg_try_advisory_xact_lock(hashtext(?))";
const RELAY_LOCK_SUFFIX: &str = "._estore_outbox relay";
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
        Backend::Postgres(pools) => {
            let mut tx = backend.begin(Caller::Host, limits).await.map_err(describe)?;
            let key = vec![Value::Text(format!("{}{RELAY_LOCK_SUFFIX}", pools.schema))];
            let locked = backend.query(Caller::Host, Some(&mut tx), RELAY_LOCK, key, limits).await.map_err(describe)?;
            if !matches!(locked.rows.first().and_then(|row| row.first()), Some(Value::Boolean(true))) {
                tx.rollback(limits).await.map_err(describe)?;
                return Ok(Pass::OtherHost);
            }
            Some(tx)
        }
        Backend::Sqlite(_) => None,
    };
    let select = format!(
        "SELECT seq, topic, message_key, payload, headers, signature FROM {} ORDER BY seq LIMIT {RELAY_BATCH}",
        backend.host_table(OUTBOX)
    );
    let rows = backend.query(Caller::Host, tx.as_mut(), &select, Vec::new(), limits).await.map_err(describe)?.rows;
    let full = rows.len() as i64 == RELAY_BATCH;
    let delete = format!("DELETE FROM {} WHERE seq = ?", backend.host_table(OUTBOX));
    let mut outcome = Ok(());
    for row in rows {
        let seq = match decode_row(row) {
            Ok(staged) => {
                let seq = staged.seq;
                match refusal(database, &staged) {
                    Some((reason, why)) => dropped(database, seq, reason, &why),
                    None => match bus.publish(staged.message, publish_timeout).await {
                        Ok(_) => {}
                        // Nothing will ever make the bus take it: keep it out of the
                        // way of the rows behind it, and say so.
                        Err(BusError::Invalid(why)) => dropped(database, seq, "refused_by_bus", &why),
                        Err(e) => {
                            outcome = Err(e.to_string());
                            break;
                        }
                    },
                }
                seq
            }
            Err((Some(seq), why)) => {
                dropped(database, seq, "unreadable", &why);
                seq
            }
            Err((None, why)) => return Err(why),
        };
        backend.execute(Caller::Host, tx.as_mut(), &delete, vec![Value::Int64(seq)], limits).await.map_err(describe)?;
    }
    // What went out is deleted even when a later row failed to.
    if let Some(tx) = tx {
        tx.commit(limits).await.map_err(describe)?;
    }
    outcome.map(|()| if full { Pass::Full } else { Pass::Done })
}

/// Why the relay must not send `staged`, if it must not: the reason's metric label,
/// and the reason.
fn refusal(database: &Database, staged: &Staged) -> Option<(&'static str, String)> {
    let topic = &staged.message.topic;
    let signed = staged
        .signature
        .as_deref()
        .is_some_and(|signature| database.signer.verify(&database.component, &database.label, &staged.message, signature));
    if !signed {
        return Some((
            "forged",
            format!(
                "the host did not stage it (no valid signature: written into {OUTBOX} by the component, or changed \
                 there); topic `{topic}`"
            ),
        ));
    }
    if !database.allowed_topics.contains(topic) {
        return Some(("not_granted", format!("topic `{topic}` is not in the component's allowed_publish_topics")));
    }
    None
}

/// Says that the row `seq` is deleted without being sent, and why.
fn dropped(database: &Database, seq: i64, reason: &'static str, why: &str) {
    tracing::error!(
        component = %database.component,
        database = %database.label,
        "outbox message {seq} dropped, never published: {why}"
    );
    let labels = estore_engine::metrics::DropLabels { component: database.component.clone(), database: database.label.clone(), reason };
    estore_engine::metrics::global().outbox_dropped.get_or_create(&labels).inc();
}

/// An outbox row as the relay reads it.
struct Staged {
    seq: i64,
    message: Outgoing,
    signature: Option<Vec<u8>>,
}

/// A row of `SELECT seq, topic, message_key, payload, headers, signature`; or its seq
/// (if it has one) and why it cannot be read.
fn decode_row(row: Vec<Value>) -> Result<Staged, (Option<i64>, String)> {
    let mut values = row.into_iter();
    let Some(Value::Int64(seq)) = values.next() else {
        return Err((None, format!("a row of {OUTBOX} without its seq")));
    };
    let malformed = |what: &str| (Some(seq), format!("its {what} cannot be read"));
    let (Some(Value::Text(topic)), Some(key), Some(Value::Blob(payload)), Some(Value::Text(headers)), Some(signature)) =
        (values.next(), values.next(), values.next(), values.next(), values.next())
    else {
        return Err(malformed("columns"));
    };
    let key = match key {
        Value::Blob(key) => Some(key),
        _ => None,
    };
    let signature = match signature {
        Value::Blob(signature) => Some(signature),
        _ => None,
    };
    let headers: Vec<(String, String)> = serde_json::from_str(&headers).map_err(|_| malformed("headers"))?;
    let headers = headers
        .into_iter()
        .map(|(name, value)| hex::decode(value).map(|value| (name, value)).map_err(|_| malformed("headers")))
        .collect::<Result<_, _>>()?;
    Ok(Staged { seq, message: Outgoing { topic, key, payload, headers }, signature })
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn handled_ids_are_remembered_until_forgotten() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = testing::sqlite_database(dir.path(), &[]).await;
        let (backend, limits) = (&database.backend, database.limits);
        record_handled(backend, None, "group", "m-1", limits).await.expect("record");
        record_handled(backend, None, "group", "m-1", limits).await.expect("recording twice is harmless");
        assert!(was_handled(backend, "group", "m-1", limits).await.expect("check"));
        assert!(!was_handled(backend, "other-group", "m-1", limits).await.expect("check"));
        assert_eq!(forget_message(backend, "other-group", "m-1", limits).await.expect("forget"), 0);

        assert_eq!(forget_handled(backend, now_ms() - 60_000, limits).await.expect("forget"), 0, "recent ids stay");
        assert_eq!(forget_handled(backend, now_ms() + 1, limits).await.expect("forget"), 1);
        assert!(!was_handled(backend, "group", "m-1", limits).await.expect("check"));
    }

    fn message(topic: &str) -> Outgoing {
        let headers = vec![("message-id".into(), b"m-1".to_vec())];
        Outgoing { topic: topic.into(), key: None, payload: b"{}".to_vec(), headers }
    }

    /// The rows in the outbox, as the relay would judge them.
    async fn judged(database: &Database) -> Vec<Option<&'static str>> {
        let select = format!("SELECT seq, topic, message_key, payload, headers, signature FROM {OUTBOX} ORDER BY seq");
        let rows = database.backend.query(Caller::Host, None, &select, Vec::new(), database.limits).await.expect("rows").rows;
        rows.into_iter()
            .map(|row| decode_row(row).unwrap_or_else(|(_, why)| panic!("unreadable row: {why}")))
            .map(|staged| refusal(database, &staged).map(|(reason, _)| reason))
            .collect()
    }

    #[tokio::test]
    async fn the_relay_sends_only_what_the_host_staged_for_a_granted_topic() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = testing::sqlite_database(dir.path(), &["granted"]).await;
        let (backend, limits) = (&database.backend, database.limits);
        let mut tx = backend.begin(Caller::Host, limits).await.expect("begin");
        stage(&database, &mut tx, &message("granted")).await.expect("staged");
        tx.commit(limits).await.expect("commit");
        // What a component would write, were the authorizer not there.
        let forge = format!(
            "INSERT INTO {OUTBOX} (topic, payload, headers, created_at_ms, signature) VALUES ('granted', X'7B7D', '[]', 0, ?)"
        );
        backend.execute(Caller::Host, None, &forge, vec![Value::Null], limits).await.expect("unsigned row");
        backend.execute(Caller::Host, None, &forge, vec![Value::Blob(vec![0; 32])], limits).await.expect("bad signature");
        let copy = format!(
            "INSERT INTO {OUTBOX} (topic, payload, headers, created_at_ms, signature) \
             SELECT 'elsewhere', payload, headers, 0, signature FROM {OUTBOX} WHERE seq = 1"
        );
        backend.execute(Caller::Host, None, &copy, Vec::new(), limits).await.expect("another topic, same signature");
        assert_eq!(judged(&database).await, [None, Some("forged"), Some("forged"), Some("forged")]);

        // Signed, then no longer granted (a manifest that changed meanwhile).
        let narrower = testing::sqlite_database(dir.path(), &["other"]).await;
        assert_eq!(judged(&narrower).await[0], Some("not_granted"));
    }

    #[tokio::test]
    async fn rows_an_earlier_version_left_are_signed_once_if_their_topic_is_granted() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let (backend, _) = crate::backend::sqlite(dir.path(), "c", "default", 1, None).await.expect("open");
            let Backend::Sqlite(pool) = backend else { unreachable!("a SQLite backend") };
            // The outbox as the previous version created and filled it.
            sqlx::raw_sql(
                "CREATE TABLE _estore_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, message_key BLOB, \
                 payload BLOB NOT NULL, headers TEXT NOT NULL, created_at_ms BIGINT NOT NULL);
                 INSERT INTO _estore_outbox (topic, payload, headers, created_at_ms)
                     VALUES ('granted', X'7B7D', '[]', 0), ('payment.completed', X'7B7D', '[]', 0);",
            )
            .execute(&pool)
            .await
            .expect("an earlier version's outbox");
        }
        let database = testing::sqlite_database(dir.path(), &["granted"]).await;
        assert_eq!(judged(&database).await, [None, Some("forged")]);
        let forge = format!("INSERT INTO {OUTBOX} (topic, payload, headers, created_at_ms) VALUES ('granted', X'7B7D', '[]', 0)");
        database.backend.execute(Caller::Host, None, &forge, Vec::new(), database.limits).await.expect("a later row");
        let again = testing::sqlite_database(dir.path(), &["granted"]).await;
        assert_eq!(judged(&again).await, [None, Some("forged"), Some("forged")], "signed once, at the upgrade only");
    }
}
