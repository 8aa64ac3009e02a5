//! `allowed_outbound_hosts` entries: Spin's `scheme://host[:port]` syntax and what
//! each entry lets through.
//!
//! The manifest validates entries with [`parse_allowed_host`] at load, and the
//! outbound-HTTP capability matches every request against the parsed form, so the two
//! can never disagree about what an entry means.

use std::net::IpAddr;

/// A parsed `allowed_outbound_hosts` entry (`scheme://host[:port]`), following
/// Spin's rules (`spin-outbound-networking-config`), restricted to HTTP and PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    /// `http` or `https`; `None` for `*`.
    pub scheme: Option<String>,
    pub host: HostPattern,
    pub port: PortPattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `*`
    Any,
    /// `*.example.com`: any host ending in the stored suffix (`.example.com`), not
    /// the bare domain.
    AnySubdomain(String),
    /// A host name (including `<id>.spin.internal` and `localhost`), as written.
    Exact(String),
    /// An IP address or CIDR network (`10.0.0.0/8`, `[::1]`).
    Ip { addr: IpAddr, prefix: u8 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortPattern {
    /// `*`
    Any,
    /// A port; when omitted, the scheme's (80 for http, 443 for https).
    Port(u16),
    /// `start..end`, end excluded (as in Spin).
    Range(u16, u16),
}

impl AllowedHost {
    /// True if a request to `scheme://host[:port]` is allowed. `host` may be a
    /// bracketed IPv6 address; a missing port means the scheme's default.
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        if self
            .scheme
            .as_ref()
            .is_some_and(|own| !own.eq_ignore_ascii_case(scheme))
        {
            return false;
        }
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::AnySubdomain(suffix) => {
                host.len() > suffix.len()
                    && host
                        .get(host.len() - suffix.len()..)
                        .is_some_and(|end| end.eq_ignore_ascii_case(suffix))
            }
            HostPattern::Exact(name) => name.eq_ignore_ascii_case(host),
            HostPattern::Ip { addr, prefix } => {
                let bare = host.trim_start_matches('[').trim_end_matches(']');
                bare.parse::<IpAddr>()
                    .is_ok_and(|ip| ip_in_network(ip, *addr, *prefix))
            }
        };
        if !host_ok {
            return false;
        }
        let Some(port) = port.or_else(|| default_port(scheme)) else {
            return matches!(self.port, PortPattern::Any);
        };
        match self.port {
            PortPattern::Any => true,
            PortPattern::Port(p) => p == port,
            PortPattern::Range(start, end) => (start..end).contains(&port),
        }
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme.to_ascii_lowercase().as_str() {
        "http" => Some(80),
        "https" => Some(443),
        "postgres" => Some(5432),
        _ => None,
    }
}

fn ip_in_network(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Parses a literal (template-free) `allowed_outbound_hosts` entry.
pub fn parse_allowed_host(entry: &str) -> Result<AllowedHost, String> {
    let url = entry.trim();
    if url == "insecure:allow-all" {
        return Err(
            "`insecure:allow-all` is not allowed; use `*://*:*` to allow everything".to_string(),
        );
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(match url {
            "*" | ":" | "" | "?" => format!(
                "`{url}` is not an outbound host: use `<scheme>://<host>[:<port>]`, with `*` wildcards allowed in each part"
            ),
            _ => format!("`{url}` has no scheme (e.g. `https://` or `*://`)"),
        });
    };
    let scheme = match scheme {
        "*" => None,
        "http" | "https" | "postgres" => Some(scheme.to_string()),
        s if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphabetic()) => {
            return Err(format!(
                "scheme `{s}` is not supported by estore (only `http`, `https`, `postgres` or `*`)"
            ));
        }
        s => return Err(format!("invalid scheme `{s}`")),
    };
    let (host, port) = split_host_port(rest)?;
    let port = match port.split_once('/') {
        Some((_, path)) if !path.is_empty() => {
            return Err(format!(
                "`{url}` has a path; only scheme, host and port are allowed"
            ));
        }
        Some((port, _)) => port,
        None => port,
    };
    let host = parse_host(host)?;
    let port = parse_port(port, scheme.as_deref())?;
    Ok(AllowedHost { scheme, host, port })
}

/// Splits `host[:port]` as Spin does (at the last `:`), with bracketed IPv6 hosts.
fn split_host_port(rest: &str) -> Result<(&str, &str), String> {
    if rest.starts_with('[') {
        let Some(close) = rest.find(']') else {
            return Err(format!("`{rest}`: unclosed `[` in IPv6 address"));
        };
        let (host, after) = rest.split_at(close + 1);
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, port)),
            None if after.is_empty() || after.starts_with('/') => {
                Ok((host, after.trim_start_matches('/')))
            }
            None => Err(format!(
                "`{rest}`: unexpected `{after}` after the IPv6 address"
            )),
        };
    }
    Ok(rest.rsplit_once(':').unwrap_or((rest, "")))
}

fn parse_host(host: &str) -> Result<HostPattern, String> {
    let host = host.trim();
    match host {
        "*" => return Ok(HostPattern::Any),
        "self" | "self.alt" => {
            return Err(format!(
                "`{host}` (requests to the application by relative URL) is not supported by estore; \
                 call a component as http://<component-id>.spin.internal instead"
            ));
        }
        "" => return Err("the host is empty".to_string()),
        _ => {}
    }
    if host.starts_with('{') {
        return Err("host lists are not supported".to_string());
    }
    if let Some(net) = parse_ip_network(host) {
        return net;
    }
    if matches!(host.split('/').nth(1), Some(path) if !path.is_empty()) {
        return Err(format!("host `{host}` must not contain a path"));
    }
    let host = host.trim_end_matches('/');
    if let Some(domain) = host.strip_prefix("*.") {
        if domain.is_empty() || domain.contains('*') {
            return Err(format!(
                "invalid host `{host}`: `*` is only allowed alone or as the first label (`*.example.com`)"
            ));
        }
        check_host_name(domain)?;
        return Ok(HostPattern::AnySubdomain(format!(".{domain}")));
    }
    if host.contains('*') {
        return Err(format!(
            "invalid host `{host}`: `*` is only allowed alone or as the first label (`*.example.com`)"
        ));
    }
    check_host_name(host)?;
    Ok(HostPattern::Exact(host.to_string()))
}

fn check_host_name(host: &str) -> Result<(), String> {
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(format!("invalid host `{host}`"));
    }
    Ok(())
}

/// `a.b.c.d`, `a.b.c.d/n`, `[v6]`, `v6`, `v6/n`; `None` if it is not an IP at all.
fn parse_ip_network(host: &str) -> Option<Result<HostPattern, String>> {
    let unbracketed = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let (addr, prefix) = match unbracketed.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (unbracketed, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => return Some(Err(format!("invalid network prefix in `{host}`"))),
        },
    };
    Some(Ok(HostPattern::Ip { addr, prefix }))
}

fn parse_port(port: &str, scheme: Option<&str>) -> Result<PortPattern, String> {
    if port.is_empty() {
        return match scheme.and_then(default_port) {
            Some(p) => Ok(PortPattern::Port(p)),
            None => Err(
                "no port given, and scheme `*` has no default port: add `:*` or a port".to_string(),
            ),
        };
    }
    if port == "*" {
        return Ok(PortPattern::Any);
    }
    if port.starts_with('{') {
        return Err("port lists are not supported".to_string());
    }
    let number = |s: &str| {
        s.parse::<u16>()
            .map_err(|_| format!("port `{s}` is not a number from 0 to 65535"))
    };
    match port.split_once("..") {
        Some((start, end)) => {
            let (start, end) = (number(start)?, number(end)?);
            if start >= end {
                return Err(format!(
                    "port range `{port}` is empty (the end is excluded: `8000..8080`)"
                ));
            }
            Ok(PortPattern::Range(start, end))
        }
        None => Ok(PortPattern::Port(number(port)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_follow_spins_syntax() {
        for good in [
            "http://example.com",
            "https://example.com:8443",
            "https://example.com/",
            "*://example.com:*",
            "*://*:*",
            "https://*",
            "https://*.example.com",
            "http://my-component.spin.internal",
            "http://*.spin.internal",
            "http://localhost:3000",
            "http://127.0.0.1:8080",
            "http://10.0.0.0/8:80",
            "http://[::1]:8080",
            "http://[::1]",
            "http://localhost:1000..2000",
        ] {
            assert!(
                parse_allowed_host(good).is_ok(),
                "{good}: {:?}",
                parse_allowed_host(good)
            );
        }
        for (bad, why) in [
            ("example.com", "no scheme"),
            ("*", "not an outbound host"),
            ("", "not an outbound host"),
            (
                "ftp://example.com",
                "scheme `ftp` is not supported by estore",
            ),
            (
                "redis://cache:6379",
                "scheme `redis` is not supported by estore",
            ),
            ("ht-tp://x", "invalid scheme"),
            ("*://example.com", "no port given"),
            ("https://example.com/path", "path"),
            ("https://example.com:443/path", "has a path"),
            ("https://ex*mple.com", "`*` is only allowed"),
            ("https://*.*.com", "`*` is only allowed"),
            ("https://example.com:http", "not a number"),
            ("https://example.com:70000", "not a number"),
            ("https://example.com:2000..1000", "empty"),
            ("https://exa mple.com", "invalid host"),
            ("https://", "host is empty"),
            ("insecure:allow-all", "*://*:*"),
            ("https://10.0.0.0/40", "prefix"),
            ("http://self", "not supported by estore"),
        ] {
            match parse_allowed_host(bad) {
                Ok(h) => panic!("{bad} should be refused, got {h:?}"),
                Err(e) => assert!(e.contains(why), "{bad}: {e}"),
            }
        }
    }

    #[test]
    fn allowed_hosts_match_like_spin() {
        let host = |s: &str| match parse_allowed_host(s) {
            Ok(h) => h,
            Err(e) => panic!("{s}: {e}"),
        };
        let h = host("https://example.com");
        assert!(h.allows("https", "example.com", None));
        assert!(h.allows("https", "EXAMPLE.com", Some(443)));
        assert!(!h.allows("https", "example.com", Some(8443)));
        assert!(!h.allows("http", "example.com", None));
        let h = host("https://*.example.com");
        assert!(h.allows("https", "api.example.com", None));
        assert!(!h.allows("https", "example.com", None));
        assert!(!h.allows("https", "badexample.com", None));
        let h = host("*://localhost:*");
        assert!(h.allows("http", "localhost", Some(1234)));
        assert!(h.allows("https", "localhost", None));
        let h = host("http://localhost:3000..3002");
        assert!(h.allows("http", "localhost", Some(3001)));
        assert!(!h.allows("http", "localhost", Some(3002)));
        let h = host("http://10.0.0.0/8:*");
        assert!(h.allows("http", "10.1.2.3", None));
        assert!(!h.allows("http", "11.1.2.3", None));
        assert!(host("http://[::1]:80").allows("http", "[::1]", None));
        assert!(host("http://*.spin.internal").allows("http", "cart.spin.internal", None));
        // PostgreSQL (spin:postgres), on its default port unless one is given.
        let h = host("postgres://db.internal");
        assert!(h.allows("postgres", "db.internal", Some(5432)));
        assert!(!h.allows("postgres", "db.internal", Some(5433)));
        assert!(!h.allows("https", "db.internal", Some(5432)));
        assert!(!host("https://*:*").allows("postgres", "db.internal", Some(5432)));
    }

}
