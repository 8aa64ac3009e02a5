//! The `spin-*` request headers that tell a Spin component where it is mounted.
//!
//! Spin components (and its SDKs' routers) read these instead of parsing the URL
//! themselves, so they must carry Spin's exact values. Whatever the client sent under
//! these names is dropped first: a client must not be able to tell a component it was
//! reached by a route it was not.

use std::net::SocketAddr;

use http::{HeaderName, HeaderValue, Request};

use estore_manifest::routes::RouteMatch;

const FULL_URL: &str = "spin-full-url";
const CLIENT_ADDR: &str = "spin-client-addr";

/// Replaces any `spin-*` header of the request with the values for `route`.
pub fn apply<B>(req: &mut Request<B>, route: &RouteMatch<'_>, client: SocketAddr, listen: SocketAddr) {
    let scheme = req.uri().scheme_str().unwrap_or("http").to_owned();
    let authority = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .or_else(|| req.headers().get(http::header::HOST).and_then(|h| h.to_str().ok()).map(str::to_owned))
        .unwrap_or_else(|| listen.to_string());
    let path_and_query = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let full_url = format!("{scheme}://{authority}{path_and_query}");

    let headers = req.headers_mut();
    let spoofed: Vec<HeaderName> =
        headers.keys().filter(|name| name.as_str().starts_with("spin-")).cloned().collect();
    for name in spoofed {
        headers.remove(&name);
    }
    let client = client.to_string();
    let own = [(FULL_URL.to_owned(), full_url.clone()), (CLIENT_ADDR.to_owned(), client)];
    for (name, value) in route.headers().into_iter().chain(own) {
        // Every value comes from the route table or a parsed URI, so it is a valid
        // header; anything that is not is left out rather than sent mangled.
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::from_str(&value)) {
            headers.insert(name, value);
        }
    }
    // The guest sees an absolute URI, as a proxy would hand it on.
    if req.uri().authority().is_none() {
        if let Ok(uri) = full_url.parse() {
            *req.uri_mut() = uri;
        }
    }
}
