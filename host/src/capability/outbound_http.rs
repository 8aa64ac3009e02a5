//! Outbound HTTP (`wasi:http/outgoing-handler`), checked against
//! `allowed_outbound_hosts`, and local service chaining.
//!
//! Every outgoing request passes [`OutboundPolicy::allows`]; a denied one fails inside
//! the component with `HTTP-request-denied` and a warning in the host log. A request to
//! `http://<component-id>.spin.internal/...` never touches a socket: it is handed to
//! that component in process, as Spin does, so services can call each other at the
//! cost of an instantiation rather than a TCP round trip.

use std::sync::Arc;

use http::uri::Scheme;
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::trigger::http::HttpDispatcher;

/// Suffix of the host names that address a component of this application.
pub const CHAINING_SUFFIX: &str = ".spin.internal";

/// One `allowed_outbound_hosts` entry: `scheme://host[:port]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AllowedHost {
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, PartialEq)]
enum HostPattern {
    Any,
    Exact(String),
    /// `*.example.com`: any subdomain (not the bare domain).
    Subdomain(String),
}

#[derive(Debug, Clone, PartialEq)]
enum PortPattern {
    Any,
    /// No port written: the scheme's default port.
    SchemeDefault,
    Range(u16, u16),
}

impl AllowedHost {
    /// Parses Spin's syntax; the error says what is wrong with the entry.
    pub fn parse(entry: &str) -> Result<AllowedHost, String> {
        let (scheme, rest) = entry
            .split_once("://")
            .ok_or_else(|| format!("`{entry}` has no scheme: write it as `https://{entry}`"))?;
        let scheme = match scheme {
            "*" => None,
            "http" | "https" => Some(scheme.to_owned()),
            other => return Err(format!("`{entry}`: unsupported scheme `{other}` (use http, https or *)")),
        };
        if rest.contains('/') && !rest.ends_with('/') {
            return Err(format!("`{entry}`: a path is not allowed, only scheme://host[:port]"));
        }
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || !port.is_empty() => (host, Some(port)),
            _ => (rest, None),
        };
        let host = match host {
            "" => return Err(format!("`{entry}`: no host")),
            "*" => HostPattern::Any,
            h if h.starts_with("*.") && h.len() > 2 && !h[2..].contains('*') => {
                HostPattern::Subdomain(h[1..].to_ascii_lowercase())
            }
            h if h.contains('*') => {
                return Err(format!("`{entry}`: `*` may only stand for the whole host or a leading `*.`"));
            }
            h => HostPattern::Exact(h.to_ascii_lowercase()),
        };
        let port = match port {
            None => PortPattern::SchemeDefault,
            Some("*") => PortPattern::Any,
            Some(p) => match p.split_once("..") {
                Some((lo, hi)) => {
                    let (lo, hi) = (parse_port(entry, lo)?, parse_port(entry, hi)?);
                    if lo > hi {
                        return Err(format!("`{entry}`: empty port range"));
                    }
                    PortPattern::Range(lo, hi)
                }
                None => {
                    let p = parse_port(entry, p)?;
                    PortPattern::Range(p, p)
                }
            },
        };
        if scheme.is_none() && port == PortPattern::SchemeDefault && host != HostPattern::Any {
            return Err(format!("`{entry}`: with scheme `*` the port must be given (e.g. `:*`)"));
        }
        Ok(AllowedHost { scheme, host, port })
    }

    fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme_ok = self.scheme.as_deref().is_none_or(|s| s == scheme);
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Exact(h) => h == host,
            HostPattern::Subdomain(suffix) => host.ends_with(suffix.as_str()),
        };
        let port_ok = match self.port {
            PortPattern::Any => true,
            PortPattern::SchemeDefault => port == default_port(scheme),
            PortPattern::Range(lo, hi) => (lo..=hi).contains(&port),
        };
        scheme_ok && host_ok && port_ok
    }

    /// Whether this entry grants calls to `component` by service chaining. Chaining
    /// is never implied by a wildcard host: it must name `*.spin.internal` or the id.
    fn allows_chaining_to(&self, component: &str) -> bool {
        match &self.host {
            HostPattern::Exact(h) => h.strip_suffix(CHAINING_SUFFIX) == Some(component),
            HostPattern::Subdomain(suffix) => suffix == CHAINING_SUFFIX,
            HostPattern::Any => false,
        }
    }
}

fn parse_port(entry: &str, port: &str) -> Result<u16, String> {
    port.parse().map_err(|_| format!("`{entry}`: `{port}` is not a port number"))
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

/// A component's outbound grants.
#[derive(Debug, Default)]
pub struct OutboundPolicy {
    allowed: Vec<AllowedHost>,
}

impl OutboundPolicy {
    pub fn new(entries: &[String]) -> Result<OutboundPolicy, String> {
        let allowed = entries.iter().map(|e| AllowedHost::parse(e)).collect::<Result<_, _>>()?;
        Ok(OutboundPolicy { allowed })
    }

    fn allows(&self, uri: &http::Uri) -> bool {
        let scheme = uri.scheme_str().unwrap_or("https");
        let Some(host) = uri.host() else { return false };
        let host = host.to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or_else(|| default_port(scheme));
        self.allowed.iter().any(|a| a.allows(scheme, &host, port))
    }

    fn allows_chaining_to(&self, component: &str) -> bool {
        self.allowed.iter().any(|a| a.allows_chaining_to(component))
    }
}

/// The `wasi:http` hooks of one instance: its policy, and the way back into the
/// application for chained requests.
pub struct OutboundHttp {
    component: Arc<str>,
    policy: Arc<OutboundPolicy>,
    dispatcher: Arc<HttpDispatcher>,
}

impl OutboundHttp {
    pub fn new(component: Arc<str>, policy: Arc<OutboundPolicy>, dispatcher: Arc<HttpDispatcher>) -> OutboundHttp {
        OutboundHttp { component, policy, dispatcher }
    }

    fn deny(&self, uri: &http::Uri) -> Error {
        tracing::warn!(
            component = %self.component,
            "denied outbound request to {uri}: not in allowed_outbound_hosts"
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

    fn send_request(&mut self, request: http::Request<WasiBody>, options: Option<RequestOptions>, _: IoFuture) -> SendFuture {
        let uri = request.uri().clone();
        let chained = uri.host().and_then(|h| h.strip_suffix(CHAINING_SUFFIX)).map(str::to_owned);
        if let Some(target) = chained {
            if !self.policy.allows_chaining_to(&target) {
                let denied = self.deny(&uri);
                return Box::new(async move { Err(denied) });
            }
            let dispatcher = self.dispatcher.clone();
            return Box::new(async move {
                let response = dispatcher.handle_chained(&target, request).await?;
                Ok((response, Box::new(async { Ok(()) }) as IoFuture))
            });
        }
        if !self.policy.allows(&uri) {
            let denied = self.deny(&uri);
            return Box::new(async move { Err(denied) });
        }
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as IoFuture))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(entries: &[&str], url: &str) -> bool {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        OutboundPolicy::new(&entries).unwrap().allows(&url.parse().unwrap())
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
        assert!(!allows(&["http://localhost:3000..3010"], "http://localhost:3011/"));
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
    fn bad_entries_say_why() {
        assert!(AllowedHost::parse("example.com").unwrap_err().contains("no scheme"));
        assert!(AllowedHost::parse("ftp://example.com").unwrap_err().contains("unsupported scheme"));
        assert!(AllowedHost::parse("https://example.com:http").unwrap_err().contains("not a port"));
        assert!(AllowedHost::parse("https://ex*ample.com").is_err());
        assert!(AllowedHost::parse("https://example.com/path").is_err());
    }
}
