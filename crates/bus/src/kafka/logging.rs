//! librdkafka's log lines and errors, into `tracing`.
//!
//! While a broker is down, every client reports the same failure again on every
//! reconnect attempt, and twice each time (a `FAIL` log line and an error event). So
//! each client keeps a window per kind of trouble: the first report in a window is
//! logged at its level, the repeats only at debug, and the next window's line says how
//! many there were. An hour-long outage is a few hundred lines, not thousands.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// How long repeats of one kind of trouble stay at debug level after it was logged.
const REPEAT_WINDOW: Duration = Duration::from_secs(30);

/// The tracing target of everything librdkafka says. rdkafka sets librdkafka's own
/// log level from this target's (`RUST_LOG=librdkafka=debug`, plus the `debug`
/// property, shows librdkafka's debug contexts).
const TARGET: &str = "librdkafka";

/// The logging side of one librdkafka client (producer, consumer or admin). Clones
/// share their state, so the bus can ask the producer's for its last error.
#[derive(Clone)]
pub struct ClientLog {
    /// Which client a line is about, e.g. `producer` or `consumer group orders`.
    client: Arc<str>,
    windows: Arc<Mutex<HashMap<String, Window>>>,
    last_error: Arc<Mutex<Option<(String, Instant)>>>,
}

struct Window {
    opened: Instant,
    repeats: u64,
}

impl ClientLog {
    pub fn new(client: impl Into<String>) -> ClientLog {
        ClientLog { client: client.into().into(), windows: Arc::default(), last_error: Arc::default() }
    }

    /// The last error librdkafka reported and how long ago, to say why a broker did
    /// not answer in time.
    pub fn last_error(&self) -> Option<String> {
        let last = self.last_error.lock().unwrap_or_else(PoisonError::into_inner);
        last.as_ref().map(|(reason, at)| format!("{reason} ({} s ago)", at.elapsed().as_secs()))
    }

    /// Whether `kind` of trouble is logged now, and if so how many repeats went to
    /// debug level since its last line.
    fn admit(&self, kind: &str) -> Option<u64> {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        match windows.get_mut(kind) {
            Some(window) if now.duration_since(window.opened) < REPEAT_WINDOW => {
                window.repeats += 1;
                None
            }
            Some(window) => {
                let repeats = window.repeats;
                *window = Window { opened: now, repeats: 0 };
                Some(repeats)
            }
            None => {
                windows.insert(kind.to_owned(), Window { opened: now, repeats: 0 });
                Some(0)
            }
        }
    }
}

/// Reading a topic for an operator ([`super::reader`]) needs nothing from rebalances.
impl rdkafka::consumer::ConsumerContext for ClientLog {}

impl ClientContext for ClientLog {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let client = &*self.client;
        match level {
            // A broker connection failing: librdkafka raises it as an error event too,
            // which `error` logs (rate-limited).
            _ if facility == "FAIL" => tracing::debug!(target: TARGET, client, "{facility}: {message}"),
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                match self.admit(facility) {
                    Some(repeats) => tracing::error!(target: TARGET, client, "{facility}: {message}{}", repeated(repeats)),
                    None => tracing::debug!(target: TARGET, client, "{facility}: {message}"),
                }
            }
            RDKafkaLogLevel::Warning => match self.admit(facility) {
                Some(repeats) => tracing::warn!(target: TARGET, client, "{facility}: {message}{}", repeated(repeats)),
                None => tracing::debug!(target: TARGET, client, "{facility}: {message}"),
            },
            RDKafkaLogLevel::Notice => tracing::info!(target: TARGET, client, "{facility}: {message}"),
            // librdkafka's informational lines are routine (an idle connection closed).
            RDKafkaLogLevel::Info | RDKafkaLogLevel::Debug => tracing::debug!(target: TARGET, client, "{facility}: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        *self.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some((reason.to_owned(), Instant::now()));
        let client = &*self.client;
        let code = error.rdkafka_error_code();
        let kind = code.map_or_else(|| error.to_string(), |code| format!("{code:?}"));
        match (self.admit(&kind), code) {
            // The client cannot go on (e.g. the idempotent producer lost track of its
            // sequence): what it does next fails, so say why at error level.
            (Some(repeats), Some(RDKafkaErrorCode::Fatal)) => {
                tracing::error!(target: TARGET, client, "{error}: {reason}{}", repeated(repeats))
            }
            (Some(repeats), _) => tracing::warn!(target: TARGET, client, "{reason}{}", repeated(repeats)),
            (None, _) => tracing::debug!(target: TARGET, client, "{reason}"),
        }
    }
}

/// The tail of a line logged again after `repeats` debug-level repeats.
fn repeated(repeats: u64) -> String {
    match repeats {
        0 => String::new(),
        n => format!(" ({n} more like it since the last such line)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_of_a_kind_of_trouble_are_counted_not_logged() {
        let log = ClientLog::new("producer");
        assert_eq!(log.admit("AllBrokersDown"), Some(0));
        assert_eq!(log.admit("AllBrokersDown"), None);
        assert_eq!(log.admit("AllBrokersDown"), None);
        assert_eq!(log.admit("BrokerTransportFailure"), Some(0), "each kind has its own window");
        let window = &log.windows.lock().unwrap()["AllBrokersDown"];
        assert_eq!(window.repeats, 2);
        assert_eq!(repeated(2), " (2 more like it since the last such line)");
    }
}
