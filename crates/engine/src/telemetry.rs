//! Where the host's logs and traces go.
//!
//! Logs go to stderr, filtered by `RUST_LOG` (default `info`), human-readable or as
//! JSON lines; each line inside a request or message carries its span's fields
//! (component, trace id and, for a message, topic, partition and offset).
//!
//! Traces go over OTLP/HTTP (JSON bodies) when an endpoint is configured the standard
//! OpenTelemetry way, `OTEL_EXPORTER_OTLP_ENDPOINT` (the exporter appends `/v1/traces`)
//! or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as it is); `OTEL_SERVICE_NAME`,
//! `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_BSP_*` are read as usual. What is exported
//! is the host's own spans: requests, messages, SQL calls, outbound calls and
//! publishes ([`crate::trace`] links them across HTTP and Kafka), whatever `RUST_LOG`
//! says.
//!
//! A warning that an attack repeats thousands of times a second (a component turning
//! requests away, the server at its connection cap) goes through a [`Throttle`], so
//! the log says it happened, and how often, without drowning in it.

use std::io::IsTerminal;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::layer::{self, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

const ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
const TRACES_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
const SERVICE_NAME_ENV: &str = "OTEL_SERVICE_NAME";

#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Human,
    /// One JSON object per line, the span's fields flattened into it, for log
    /// collectors.
    Json,
}

/// The trace exporter, flushed when dropped so the last spans are not lost at exit.
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

/// Sets up logging, and trace export when `traces` and an endpoint is configured.
pub fn init(format: LogFormat, traces: bool) -> Result<Telemetry> {
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Human => logs.with_ansi(std::io::stderr().is_terminal()).boxed(),
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(true).with_span_list(false).boxed(),
    };
    let exporting = traces && (std::env::var_os(ENDPOINT_ENV).is_some() || std::env::var_os(TRACES_ENDPOINT_ENV).is_some());
    let provider = exporting.then(tracer_provider).transpose()?;
    let spans = provider.as_ref().map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("estore")));
    let gate = Gate {
        logs: EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        exporting,
    };
    tracing_subscriber::registry().with(gate).with(logs).with(spans).try_init()?;
    Ok(Telemetry { traces: provider })
}

/// Lets a repeated warning through at most once per interval.
pub struct Throttle {
    interval: Duration,
    /// When it last let one through, and how many were held back since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttle {
    pub const fn new(interval: Duration) -> Throttle {
        Throttle { interval, state: Mutex::new((None, 0)) }
    }

    /// Counts one occurrence; `Some(n)` when it is time to log, `n` the occurrences
    /// since the last line (this one included).
    pub fn hit(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (last, held) = &mut *state;
        *held += 1;
        if last.is_some_and(|at| at.elapsed() < self.interval) {
            return None;
        }
        *last = Some(Instant::now());
        Some(std::mem::take(held))
    }
}

/// The one filter in front of logs and traces: what `RUST_LOG` lets through, and the
/// host's own spans when they are exported. One global filter rather than one per
/// layer: tracing-subscriber's per-layer filters keep a per-thread verdict that a
/// `log_enabled!`-style check with no event after it leaves stale (sqlx does that on
/// the runtime's threads), and the next span then went unexported at random.
struct Gate {
    logs: EnvFilter,
    exporting: bool,
}

impl Gate {
    fn exports(&self, metadata: &Metadata<'_>) -> bool {
        // The platform's crates are all named `estore` or `estore-*`.
        let target = metadata.target();
        let ours = target == "estore" || target.starts_with("estore::") || target.starts_with("estore_");
        self.exporting && ours && metadata.is_span() && *metadata.level() <= Level::DEBUG
    }
}

impl<S> Layer<S> for Gate
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.exports(metadata) { Interest::always() } else { Layer::<S>::register_callsite(&self.logs, metadata) }
    }

    fn enabled(&self, metadata: &Metadata<'_>, context: layer::Context<'_, S>) -> bool {
        self.exports(metadata) || Layer::<S>::enabled(&self.logs, metadata, context)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        let logs = Layer::<S>::max_level_hint(&self.logs);
        if self.exporting { logs.map(|level| level.max(LevelFilter::DEBUG)) } else { logs }
    }

    // EnvFilter follows spans for its span-scoped directives (`[request]=debug`).
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: layer::Context<'_, S>) {
        self.logs.on_new_span(attributes, id, context);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, context: layer::Context<'_, S>) {
        self.logs.on_record(id, values, context);
    }

    fn on_enter(&self, id: &Id, context: layer::Context<'_, S>) {
        self.logs.on_enter(id, context);
    }

    fn on_exit(&self, id: &Id, context: layer::Context<'_, S>) {
        self.logs.on_exit(id, context);
    }

    fn on_close(&self, id: Id, context: layer::Context<'_, S>) {
        self.logs.on_close(id, context);
    }
}

fn tracer_provider() -> Result<SdkTracerProvider> {
    // JSON whatever OTEL_EXPORTER_OTLP_PROTOCOL says: the only encoding built in.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .build()
        .with_context(|| format!("cannot set up trace export to {ENDPOINT_ENV}"))?;
    let mut resource = Resource::builder();
    if std::env::var_os(SERVICE_NAME_ENV).is_none() {
        resource = resource.with_service_name("estore");
    }
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.build()).build())
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.traces.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("warning: the last spans may not have been exported: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttle_lets_the_first_through_then_counts() {
        let throttle = Throttle::new(Duration::from_secs(3600));
        assert_eq!(throttle.hit(), Some(1));
        assert_eq!((throttle.hit(), throttle.hit()), (None, None));
        let now = Throttle::new(Duration::ZERO);
        assert_eq!((now.hit(), now.hit()), (Some(1), Some(1)));
    }
}
