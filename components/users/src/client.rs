//! Where a login comes from, for the throttle: the client's network address.
//!
//! The host tells a component the address the connection came from in Spin's
//! `spin-client-addr` header (`ip:port`), which it sets on every request after
//! dropping whatever a client sent under that name, so it cannot be forged.
//! `x-forwarded-for` can be: it is believed only from a proxy the operator names in
//! variable `trusted_proxies` (addresses, comma-separated), and then only its last
//! entry not itself a trusted proxy (what the nearest trusted proxy saw).
//!
//! An IPv6 client counts by its /64, the block one subscriber line gets, so that
//! cycling through one's own addresses does not buy more guesses.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use spin_sdk::http::Request;

/// The client's address as the throttle counts it; `unknown` when the host gave none.
pub fn address(req: &Request, trusted_proxies: &str) -> String {
    let header = |name: &str| req.header(name).and_then(|value| value.as_str());
    let trusted: Vec<IpAddr> = trusted_proxies.split(',').filter_map(|entry| entry.trim().parse().ok()).collect();
    match from_headers(header("spin-client-addr"), header("x-forwarded-for"), &trusted) {
        Some(ip) => counted_as(ip),
        None => "unknown".to_owned(),
    }
}

fn from_headers(client_addr: Option<&str>, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = client_addr.and_then(|addr| addr.parse::<SocketAddr>().ok())?.ip().to_canonical();
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let forwarded = forwarded_for.unwrap_or_default().split(',').rev().map(|entry| entry.trim().parse::<IpAddr>());
    for entry in forwarded {
        match entry {
            Ok(ip) if trusted.contains(&ip.to_canonical()) => continue,
            Ok(ip) => return Some(ip.to_canonical()),
            // Garbage from beyond the trusted proxies: believe nothing further out.
            Err(_) => break,
        }
    }
    Some(peer)
}

fn counted_as(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", Ipv6Addr::from(prefix))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn the_hosts_address_unless_a_trusted_proxy_says_otherwise() {
        assert_eq!(from_headers(Some("192.0.2.7:51234"), None, &[]), Some(ip("192.0.2.7")));
        // Not configured: x-forwarded-for is a client's word, and ignored.
        assert_eq!(from_headers(Some("192.0.2.7:51234"), Some("203.0.113.9"), &[]), Some(ip("192.0.2.7")));
        let proxies = [ip("10.0.0.1"), ip("10.0.0.2")];
        assert_eq!(from_headers(Some("10.0.0.1:4000"), Some("203.0.113.9"), &proxies), Some(ip("203.0.113.9")));
        // What a client wrote in front of the proxies' entries is not believed.
        let chain = Some("198.51.100.1, 203.0.113.9, 10.0.0.2");
        assert_eq!(from_headers(Some("10.0.0.1:4000"), chain, &proxies), Some(ip("203.0.113.9")));
        assert_eq!(from_headers(Some("10.0.0.1:4000"), Some("nonsense, 10.0.0.2"), &proxies), Some(ip("10.0.0.1")));
        assert_eq!(from_headers(Some("10.0.0.1:4000"), None, &proxies), Some(ip("10.0.0.1")));
        assert_eq!(from_headers(None, Some("203.0.113.9"), &proxies), None);
        assert_eq!(from_headers(Some("[::ffff:192.0.2.7]:80"), None, &[]), Some(ip("192.0.2.7")));
    }

    #[test]
    fn ipv6_clients_count_by_their_64_block() {
        assert_eq!(counted_as(ip("192.0.2.7")), "192.0.2.7");
        assert_eq!(counted_as(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(counted_as(ip("2001:db8:1:2:bbbb::9")), counted_as(ip("2001:db8:1:2::1")));
    }
}
