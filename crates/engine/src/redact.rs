//! URLs as the host writes them into logs and spans: whole, except for credentials.
//!
//! A browser's `EventSource` can only pass its token in the query
//! (`?access_token=...`), and outbound calls may carry keys the same way or as
//! `user:password@` in the authority. Logs and exported traces outlive the token and
//! reach people who must not act as its holder, so every URL the host records goes
//! through [`uri`]: the value of each credential is replaced by [`REDACTED`], and
//! everything else (path, other parameters, their order and encoding) is kept so the
//! line still says which request it was. Headers are never logged or recorded, so
//! `authorization` and cookies need no redaction.

use http::Uri;

/// What a credential's value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// `uri` with the values of credential query parameters and any user info replaced.
pub fn uri(uri: &Uri) -> String {
    let mut out = String::new();
    if let Some(scheme) = uri.scheme_str() {
        out.push_str(scheme);
        out.push_str("://");
    }
    if let Some(authority) = uri.authority() {
        match authority.as_str().rsplit_once('@') {
            Some((_, host)) => {
                out.push_str(REDACTED);
                out.push('@');
                out.push_str(host);
            }
            None => out.push_str(authority.as_str()),
        }
    }
    out.push_str(uri.path());
    if let Some(query) = uri.query() {
        out.push('?');
        out.push_str(&query_without_credentials(query));
    }
    out
}

/// The query with each credential's value replaced; the rest byte for byte.
fn query_without_credentials(query: &str) -> String {
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            // The name as a form decoder reads it, so `access%5Ftoken` is caught too.
            let decoded = form_urlencoded::parse(name.as_bytes()).next().map(|(name, _)| name.into_owned());
            match decoded {
                Some(decoded) if !value.is_empty() && is_credential(&decoded) => format!("{name}={REDACTED}"),
                _ => pair.to_owned(),
            }
        })
        .collect();
    pairs.join("&")
}

/// Parameter names that carry a secret: OAuth's `access_token` and its kin, API keys,
/// passwords, signatures of pre-signed URLs. Matched on the end of the name, so
/// `author` or `tokens_left` stay readable.
fn is_credential(name: &str) -> bool {
    let name = name.to_ascii_lowercase().replace('-', "_");
    ["token", "secret", "password", "passwd", "signature", "api_key", "apikey"].iter().any(|end| name.ends_with(end))
        || ["auth", "authorization", "sig"].contains(&name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &str) -> String {
        uri(&text.parse().unwrap())
    }

    #[test]
    fn tokens_in_the_query_are_replaced_and_the_rest_kept() {
        assert_eq!(
            shown("/api/orders/7/events?access_token=eyJhbGciOi.x.y&last=3"),
            "/api/orders/7/events?access_token=[redacted]&last=3"
        );
        assert_eq!(shown("http://h:8080/p?a=1&token=t&b=%20x&b=2"), "http://h:8080/p?a=1&token=[redacted]&b=%20x&b=2");
        assert_eq!(shown("/p?Authorization=Bearer%20x"), "/p?Authorization=[redacted]");
        assert_eq!(shown("/p?X-Amz-Signature=abc&sig=def&api_key=k&client_secret=s"), "/p?X-Amz-Signature=[redacted]&sig=[redacted]&api_key=[redacted]&client_secret=[redacted]");
        assert_eq!(shown("/p?access%5Ftoken=t"), "/p?access%5Ftoken=[redacted]");
    }

    #[test]
    fn urls_without_credentials_are_unchanged() {
        for text in ["/", "/api/products?q=sony&sort=price", "https://api.example.com/v1?x", "/p?token=", "/p?&&a", "/p?author=ann&tokens_left=3"] {
            assert_eq!(shown(text), text);
        }
    }

    #[test]
    fn user_info_is_replaced() {
        assert_eq!(shown("https://ann:hunter2@api.example.com/x?y=1"), "https://[redacted]@api.example.com/x?y=1");
    }
}
