//! Outbound HTTP (`wasi:http/outgoing-handler`), checked against
//! `allowed_outbound_hosts`, and local service chaining.
//!
//! Every outgoing request passes [`OutboundPolicy::allows`]; a denied one fails inside
//! the component with `HTTP-request-denied` and a warning in the host log. A request to
//! `http://<component-id>.spin.internal/...` never touches a socket: it is handed to
//! that component in process, as Spin does, so services can call each other at the
//! cost of an instantiation rather than a TCP round trip. Both decisions read the host
//! name once, as DNS does ([`canonical_host`]: any case, one trailing dot), so no
//! spelling of an internal name can pass the grant and then leave for the network.
//!
//! How deep a chain of such calls runs is the host's count, not the guest's: each
//! instance knows the depth of the request it serves, and its chained calls are one
//! deeper (the HTTP trigger's [`Chaining`] refuses past the limit).
//!
//! Each call runs in a client span and carries the `traceparent` of the work making
//! it, so a chained component's request, or a traced service outside, continues the
//! caller's trace ([`estore_engine::trace`]).

use std::pin::Pin;
use std::sync::Arc;

use http::uri::Scheme;
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use tracing::Instrument;

use estore_engine::trace::{self, TraceContext};

use estore_manifest::allowed_hosts::{AllowedHost, HostPattern, parse_allowed_host};

/// Suffix of the host names that address a component of this application.
pub const CHAINING_SUFFIX: &str = ".spin.internal";

/// Whether `entry` grants calls to `component` by service chaining. Chaining is never
/// implied by a wildcard host: the entry must name `*.spin.internal` or the id.
fn allows_chaining_to(entry: &AllowedHost, component: &str) -> bool {
    match &entry.host {
        HostPattern::Exact(host) => host
            .to_ascii_lowercase()
            .strip_suffix(CHAINING_SUFFIX)
            .is_some_and(|id| id == component),
        HostPattern::AnySubdomain(suffix) => suffix.eq_ignore_ascii_case(CHAINING_SUFFIX),
        HostPattern::Any | HostPattern::Ip { .. } => false,
    }
}

/// A URI's host as name resolution reads it: ASCII case folded, and without the one
/// trailing dot of a fully qualified name (`CATALOG.SPIN.INTERNAL.` is
/// `catalog.spin.internal`).
fn canonical_host(uri: &http::Uri) -> Option<String> {
    let host = uri.host()?.to_ascii_lowercase();
    Some(match host.strip_suffix('.') {
        Some(bare) => bare.to_owned(),
        None => host,
    })
}

/// The component a host name addresses by service chaining, if it is an internal name.
fn chaining_target(host: &str) -> Option<&str> {
    host.strip_suffix(CHAINING_SUFFIX)
}

/// A chained request's answer, or why there is none.
pub type Chained = Pin<Box<dyn Future<Output = Result<http::Response<WasiBody>, Error>> + Send>>;

/// The way back into the application for a request to `http://<id>.spin.internal`:
/// the HTTP trigger implements it, so this capability needs nothing of the trigger.
pub trait Chaining: Send + Sync {
    /// Serves `request` by component `target` in process. `depth` is the caller's own
    /// depth plus one, as the host counted it.
    fn chain(self: Arc<Self>, target: String, request: http::Request<WasiBody>, depth: u32) -> Chained;
}

/// A component's outbound grants.
#[derive(Debug, Default)]
pub struct OutboundPolicy {
    allowed: Vec<AllowedHost>,
}

impl OutboundPolicy {
    pub fn new(entries: &[String]) -> Result<OutboundPolicy, String> {
        let allowed = entries
            .iter()
            .map(|e| parse_allowed_host(e).map_err(|why| format!("invalid outbound host `{e}`: {why}")))
            .collect::<Result<_, _>>()?;
        Ok(OutboundPolicy { allowed })
    }

    /// Whether a request to `uri`, whose host reads as `host` ([`canonical_host`]), may
    /// go out.
    fn allows_request(&self, uri: &http::Uri, host: &str) -> bool {
        self.allows(uri.scheme_str().unwrap_or("https"), host, uri.port_u16())
    }

    /// Whether a connection to `scheme://host:port` may be opened (a missing port is the
    /// scheme's default): what other outbound capabilities (PostgreSQL) ask.
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        self.allowed.iter().any(|a| a.allows(scheme, host, port))
    }

    fn allows_chaining_to(&self, component: &str) -> bool {
        self.allowed.iter().any(|a| allows_chaining_to(a, component))
    }
}

/// The `wasi:http` hooks of one instance: its policy, and the way back into the
/// application for chained requests.
pub struct OutboundHttp {
    component: Arc<str>,
    policy: Arc<OutboundPolicy>,
    chaining: Arc<dyn Chaining>,
    /// The work the calls are made for.
    trace: TraceContext,
    /// How many chained calls led to the work this instance does (0: a request from
    /// the network, or a message).
    chain_depth: u32,
}

impl OutboundHttp {
    /// The component's outbound grants.
    pub fn policy(&self) -> &OutboundPolicy {
        &self.policy
    }

    pub fn new(
        component: Arc<str>,
        policy: Arc<OutboundPolicy>,
        chaining: Arc<dyn Chaining>,
        trace: TraceContext,
        chain_depth: u32,
    ) -> OutboundHttp {
        OutboundHttp { component, policy, chaining, trace, chain_depth }
    }

    /// The work the next calls are made for, on an instance that serves several.
    pub fn continue_work(&mut self, trace: TraceContext, chain_depth: u32) {
        self.trace = trace;
        self.chain_depth = chain_depth;
    }

    fn deny(&self, uri: &http::Uri) -> Error {
        tracing::warn!(
            component = %self.component,
            "denied outbound request to {}: not in allowed_outbound_hosts",
            estore_engine::redact::uri(uri)
        );
        Error::HttpRequestDenied
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
type SendFuture = Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send>;

impl WasiHttpHooks for OutboundHttp {
    fn is_supported_scheme(&mut self, scheme: &Scheme) -> bool {
        *scheme == Scheme::HTTP || *scheme == Scheme::HTTPS
    }

    fn send_request(&mut self, mut request: http::Request<WasiBody>, options: Option<RequestOptions>, _: IoFuture) -> SendFuture {
        let uri = request.uri().clone();
        // Called while the guest runs, inside the request's or message's span.
        let span = tracing::debug_span!(
            "outbound",
            otel.name = format!("{} {}{}", request.method(), uri.host().unwrap_or_default(), uri.path()),
            otel.kind = "client",
            http.request.method = %request.method(),
            url.full = %estore_engine::redact::uri(&uri),
            http.response.status_code = tracing::field::Empty,
        );
        if let Ok(traceparent) = http::HeaderValue::from_str(&self.trace.traceparent_in(&span)) {
            request.headers_mut().insert(trace::TRACEPARENT, traceparent);
        }
        let recorded = span.clone();
        let record_status = move |result: Result<(http::Response<WasiBody>, IoFuture), Error>| {
            if let Ok((response, _)) = &result {
                recorded.record("http.response.status_code", response.status().as_u16());
            }
            result
        };
        let Some(host) = canonical_host(&uri) else {
            let denied = self.deny(&uri);
            return Box::new(async move { Err(denied) });
        };
        if let Some(target) = chaining_target(&host).map(str::to_owned) {
            if !self.policy.allows_chaining_to(&target) {
                let denied = self.deny(&uri);
                return Box::new(async move { Err(denied) });
            }
            if let Ok(correlation_id) = http::HeaderValue::from_str(&self.trace.correlation_id()) {
                request.headers_mut().entry(trace::CORRELATION_REQUEST_HEADER).or_insert(correlation_id);
            }
            let chained = self.chaining.clone().chain(target, request, self.chain_depth + 1);
            return Box::new(
                async move {
                    let response = chained.await;
                    record_status(response.map(|response| (response, Box::new(async { Ok(()) }) as IoFuture)))
                }
                .instrument(span),
            );
        }
        if !self.policy.allows_request(&uri, &host) {
            let denied = self.deny(&uri);
            return Box::new(async move { Err(denied) });
        }
        Box::new(
            async move {
                let sent = wasmtime_wasi_http::default_send_request(request, options).await;
                record_status(sent.map(|(response, io)| (response.map(BodyExt::boxed_unsync), Box::new(io) as IoFuture)))
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(entries: &[&str], url: &str) -> bool {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        let uri: http::Uri = url.parse().unwrap();
        let host = canonical_host(&uri).unwrap();
        OutboundPolicy::new(&entries).unwrap().allows_request(&uri, &host)
    }

    fn chained_to(url: &str) -> Option<String> {
        let uri: http::Uri = url.parse().unwrap();
        canonical_host(&uri).as_deref().and_then(chaining_target).map(str::to_owned)
    }

    #[test]
    fn exact_host_uses_the_scheme_default_port() {
        assert!(allows(&["https://example.com"], "https://example.com/x"));
        assert!(!allows(&["https://example.com"], "https://example.com:8443/x"));
        assert!(!allows(&["https://example.com"], "http://example.com/x"));
        assert!(!allows(&["https://example.com"], "https://evil.com/x"));
    }

    #[test]
    fn wildcards_and_ranges() {
        assert!(allows(&["http://127.0.0.1:*"], "http://127.0.0.1:4567/"));
        assert!(allows(&["*://*:*"], "https://anything.org:1/"));
        assert!(allows(&["https://*.example.com"], "https://api.example.com/"));
        assert!(!allows(&["https://*.example.com"], "https://example.com/"));
        assert!(allows(&["http://localhost:3000..3010"], "http://localhost:3005/"));
        assert!(!allows(&["http://localhost:3000..3010"], "http://localhost:3010/"));
    }

    #[test]
    fn chaining_needs_an_explicit_grant() {
        let any = OutboundPolicy::new(&["*://*:*".into()]).unwrap();
        assert!(!any.allows_chaining_to("users"));
        let one = OutboundPolicy::new(&["http://users.spin.internal".into()]).unwrap();
        assert!(one.allows_chaining_to("users"));
        assert!(!one.allows_chaining_to("orders"));
        let all = OutboundPolicy::new(&["http://*.spin.internal".into()]).unwrap();
        assert!(all.allows_chaining_to("orders"));
    }

    #[test]
    fn every_spelling_of_an_internal_name_is_chained() {
        for url in [
            "http://catalog.spin.internal/x",
            "http://CATALOG.SPIN.INTERNAL/x",
            "http://Catalog.Spin.Internal./x",
            "https://catalog.spin.internal:8443/x",
        ] {
            assert_eq!(chained_to(url).as_deref(), Some("catalog"), "{url}");
        }
        assert_eq!(chained_to("http://spin.internal/"), None);
        assert_eq!(chained_to("http://catalog.spin.internal.example.com/"), None);
    }

    #[test]
    fn the_grant_reads_the_host_as_the_chaining_test_does() {
        assert!(allows(&["https://api.example.com"], "https://API.Example.COM./x"));
        assert!(!allows(&["https://api.example.com"], "https://api.example.com../x"));
    }
}
