//! Spin-compatible HTTP route matching.
//!
//! Spin's router (spinframework/spin `crates/http/src/routes.rs`, on top of
//! `routefinder` 0.5) is reproduced here, including the values of the
//! `spin-*` request headers that guests read. Guests and Spin SDK routers rely
//! on those exact strings, so they are copied quirks and all rather than tidied.
//!
//! Header semantics, verified against Spin's source:
//!
//! * `spin-matched-route` is the *based* route: `sanitize(base) + sanitize(route)`,
//!   where `sanitize` strips one trailing `/`. For base `/` the route `/` therefore
//!   becomes the empty string, and `/hello/` becomes `/hello`; a wildcard keeps its
//!   `/...` (`/api/hello/...`). Guests use it to know which manifest entry fired.
//! * `spin-raw-component-route` is the route exactly as written in the manifest
//!   (no base), so a guest can compare it with its own manifest text.
//! * `spin-component-route` is the raw route with a trailing `/...` removed (only
//!   `/...`, not `/*`); `/...` itself gives the empty string. SDK routers strip this
//!   prefix from the request path to route inside the component.
//! * `spin-base-path` is the application base as configured (`/` by default).
//!   Spin 3 always sends `/` because it rejects a non-`/` base; Spin 1/2 sent the
//!   configured base, which is what estore's base extension follows.
//! * `spin-path-info` is the part of the path matched by a trailing wildcard,
//!   with Spin's backward-compatible slash rules: route `/foo/...` gives `""` for
//!   `/foo`, `"/"` for `/foo/`, `"/bar"` for `/foo/bar` and `"/bar/"` for
//!   `/foo/bar/`. An exact route always gives `""`, even for a request with a
//!   trailing slash. CGI-style apps build relative URLs from it, so the slash
//!   rules matter.
//! * `spin-path-match-<name>` carries each `:name` segment capture; the name is
//!   lower-cased with `_` turned into `-` (Spin builds `SPIN_PATH_MATCH_<NAME>`
//!   and then converts it to a header name).
//! * `spin-full-url` and `spin-client-addr` do not depend on routing and are
//!   left to the trigger.
//!
//! Matching, also as in Spin/routefinder: leading and trailing slashes of the
//! request path are ignored (`/foo/` matches the exact route `/foo`), path
//! segments are compared literally (no percent-decoding), and the most specific
//! route wins: comparing the routes segment by segment, the first difference
//! decides, a literal beats a `:param`, which beats the trailing wildcard, and a
//! route that ends exactly there beats a wildcard. So `/one` beats `/...` for
//! `/one`, and `/one/two/...` beats `/one/...`. Spin logs routes written twice and
//! lets the last win (and silently lets the first of `/a` and `/a/` win); estore
//! refuses both, since the loser could never be reached.
//!
//! Not supported (refused by [`validate_route`]): `:param.ext`-style captures
//! inside a segment, and wildcards anywhere but at the end.

use std::cmp::Ordering;

/// Prefix of the paths Spin reserves for itself (`/.well-known/spin/health`,
/// `/.well-known/spin/info`); routes under it are never reached in Spin.
#[allow(dead_code, reason = "for the trigger's start-up checks")]
pub const WELL_KNOWN_PREFIX: &str = "/.well-known/spin/";

/// A route table built from the application's HTTP triggers.
#[derive(Debug, Clone)]
pub struct Router {
    /// The application base as configured, for `spin-base-path`.
    base: String,
    /// Sorted most specific first.
    entries: Vec<Entry>,
}

/// The result of routing a request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch<'a> {
    /// The component that handles the request.
    pub component_id: &'a str,
    /// `spin-matched-route`: the route including the base, e.g. `/api/hello/...`.
    pub matched_route: String,
    /// `spin-component-route`: the route as written, without a trailing `/...`.
    pub component_route: String,
    /// `spin-raw-component-route`: the route as written, e.g. `/hello/...`.
    pub raw_component_route: String,
    /// `spin-base-path`: the application base as configured, e.g. `/` or `/api`.
    pub base_path: String,
    /// `spin-path-info`: the part matched by a trailing wildcard (`""` for exact routes).
    pub path_info: String,
    /// `:name` captures, in route order, as (name, value).
    pub params: Vec<(String, String)>,
    /// The matched route's position in the list the router was built from; `None` for
    /// a chained request's synthetic match.
    pub index: Option<usize>,
}

impl<'a> RouteMatch<'a> {
    /// The match Spin makes up for a service-chaining request
    /// (`http://<id>.spin.internal/...`), whatever the component's own route: as if
    /// it were mounted at `/...`, so `spin-path-info` is the whole request path.
    /// (Spin also sends `spin-client-addr: 0.0.0.0:0` for these.)
    pub fn synthetic(component_id: &'a str, path: &str) -> RouteMatch<'a> {
        RouteMatch {
            component_id,
            matched_route: "/...".to_string(),
            component_route: String::new(),
            raw_component_route: "/...".to_string(),
            base_path: "/".to_string(),
            path_info: path.to_string(),
            params: Vec::new(),
            index: None,
        }
    }

    /// All the routing headers Spin passes to a component, as (lower-case name, value),
    /// in Spin's order. `spin-full-url` and `spin-client-addr` are not included.
    pub fn headers(&self) -> Vec<(String, String)> {
        let mut headers = vec![
            ("spin-path-info".to_string(), self.path_info.clone()),
            ("spin-matched-route".to_string(), self.matched_route.clone()),
            ("spin-base-path".to_string(), self.base_path.clone()),
            (
                "spin-raw-component-route".to_string(),
                self.raw_component_route.clone(),
            ),
            (
                "spin-component-route".to_string(),
                self.component_route.clone(),
            ),
        ];
        for (name, value) in &self.params {
            headers.push((path_match_header_name(name), value.clone()));
        }
        headers
    }
}

/// The header name Spin uses for a `:name` capture: `spin-path-match-<name>`,
/// lower-cased, with `_` replaced by `-`.
pub fn path_match_header_name(param: &str) -> String {
    format!("spin-path-match-{param}")
        .replace('_', "-")
        .to_ascii_lowercase()
}

#[derive(Debug, Clone)]
struct Entry {
    component_id: String,
    raw_route: String,
    based_route: String,
    pattern: Pattern,
    /// Position in the input, for deterministic ordering and messages.
    index: usize,
}

/// A parsed route (base included): the segments before any wildcard, and whether
/// the route ends with a wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    segments: Vec<Segment>,
    wildcard: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

impl Router {
    /// Builds a router. `base` is the application base (`/` by default), prefixed to
    /// every route; `routes` are (route as written in the manifest, component id),
    /// private routes already left out. Fails on an invalid route or base, or on two
    /// routes that match exactly the same paths.
    pub fn build(
        base: &str,
        routes: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Router, String> {
        validate_base(base)?;
        let mut entries: Vec<Entry> = Vec::new();
        for (index, (raw_route, component_id)) in routes.into_iter().enumerate() {
            validate_route(&raw_route).map_err(|e| {
                format!("invalid route `{raw_route}` for component `{component_id}`: {e}")
            })?;
            let based_route = based_route(base, &raw_route);
            let pattern = parse_pattern(&based_route).map_err(|e| {
                format!("invalid route `{based_route}` for component `{component_id}`: {e}")
            })?;
            if let Some(other) = entries.iter().find(|e| e.pattern.equivalent(&pattern)) {
                return Err(format!(
                    "route `{raw_route}` for component `{component_id}` duplicates route `{}` for component `{}`",
                    other.raw_route, other.component_id
                ));
            }
            entries.push(Entry {
                component_id,
                raw_route,
                based_route,
                pattern,
                index,
            });
        }
        entries.sort_by(|a, b| a.pattern.precedence(&b.pattern).then(a.index.cmp(&b.index)));
        Ok(Router {
            base: base.to_string(),
            entries,
        })
    }

    /// Finds the component for a request path (the URI path, without the query).
    pub fn route(&self, path: &str) -> Option<RouteMatch<'_>> {
        let trimmed = path.trim_start_matches('/').trim_end_matches('/');
        self.entries.iter().find_map(|entry| {
            let (params, rest) = entry.pattern.matches(trimmed)?;
            let path_info = match rest {
                None => String::new(),
                Some(captured) => match (captured.is_empty(), path.ends_with('/')) {
                    (true, false) => String::new(),
                    (true, true) => "/".to_string(),
                    (false, false) => format!("/{captured}"),
                    (false, true) => format!("/{captured}/"),
                },
            };
            Some(RouteMatch {
                component_id: &entry.component_id,
                matched_route: entry.based_route.clone(),
                component_route: entry
                    .raw_route
                    .strip_suffix("/...")
                    .unwrap_or(&entry.raw_route)
                    .to_string(),
                raw_component_route: entry.raw_route.clone(),
                base_path: self.base.clone(),
                path_info,
                params,
                index: Some(entry.index),
            })
        })
    }

    /// The routes, most specific first, as (route including base, component id).
    #[allow(dead_code, reason = "for the trigger's start-up banner and checks")]
    pub fn routes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|e| (e.based_route.as_str(), e.component_id.as_str()))
    }

    /// True if a route lies under Spin's reserved [`WELL_KNOWN_PREFIX`].
    #[allow(dead_code, reason = "for the trigger's start-up banner and checks")]
    pub fn contains_reserved_route(&self) -> bool {
        self.entries
            .iter()
            .any(|e| e.based_route.starts_with(WELL_KNOWN_PREFIX))
    }
}

/// Checks an application base (`[application.trigger.http] base`): it must start
/// with `/` and contain no empty segment, wildcard or parameter.
pub fn validate_base(base: &str) -> Result<(), String> {
    if !base.starts_with('/') {
        return Err(format!("base `{base}` must start with `/`"));
    }
    let trimmed = base.strip_suffix('/').unwrap_or(base);
    if trimmed.contains("//") {
        return Err(format!("base `{base}` contains an empty path segment"));
    }
    for segment in trimmed.split('/').skip(1) {
        if segment == "..." || segment.starts_with('*') || segment.starts_with(':') {
            return Err(format!(
                "base `{base}` may not contain wildcards or parameters (`{segment}`)"
            ));
        }
        check_literal(segment)?;
    }
    Ok(())
}

/// Checks a route as written in a `[[trigger.http]]` entry: it must start with `/`;
/// `/...` (or `/*`) may only be the last segment; `:name` parameters must be whole
/// segments with distinct names made of ASCII letters, digits, `_` and `-`.
pub fn validate_route(route: &str) -> Result<(), String> {
    if !route.starts_with('/') {
        return Err("a route must start with `/`".to_string());
    }
    parse_pattern(sanitize(route)).map(|_| ())
}

/// A canonical form of a route, for finding duplicates: two routes with the same
/// key match exactly the same paths (`/a` and `/a/`, `/a/...` and `/a/*`,
/// `/x/:a` and `/x/:b`).
pub fn route_key(route: &str) -> Result<String, String> {
    validate_route(route)?;
    let pattern = parse_pattern(sanitize(route))?;
    let mut key = String::new();
    for segment in &pattern.segments {
        key.push('/');
        match segment {
            Segment::Literal(s) => key.push_str(s),
            Segment::Param(_) => key.push(':'),
        }
    }
    if pattern.wildcard {
        key.push_str("/...");
    }
    if key.is_empty() {
        key.push('/');
    }
    Ok(key)
}

/// Spin's `sanitize_with_base`: base and route, each with one trailing `/` removed.
fn based_route(base: &str, route: &str) -> String {
    format!("{}{}", sanitize(base), sanitize(route))
}

fn sanitize(s: &str) -> &str {
    s.strip_suffix('/').unwrap_or(s)
}

/// Parses a sanitized, based route. Empty segments are ignored, as routefinder does.
fn parse_pattern(route: &str) -> Result<Pattern, String> {
    let (prefix, wildcard) = if let Some(prefix) = route.strip_suffix("/...") {
        (prefix, true)
    } else if let Some(prefix) = route.strip_suffix("/*") {
        (prefix, true)
    } else {
        (route, false)
    };
    let mut segments = Vec::new();
    for segment in prefix.split('/').filter(|s| !s.is_empty()) {
        if segment == "..." || segment == "*" {
            return Err(format!(
                "`{segment}` is only allowed as the last segment of a route"
            ));
        }
        if segment.starts_with('*') {
            return Err(format!(
                "`{segment}`: a wildcard must be a whole segment (`/...`) at the end of the route"
            ));
        }
        if let Some(name) = segment.strip_prefix(':') {
            if name.is_empty() {
                return Err("`:` must be followed by a parameter name".to_string());
            }
            if let Some(bad) = name
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
            {
                return Err(format!(
                    "parameter `{segment}` contains `{bad}`: a parameter must be a whole segment named with ASCII letters, digits, `_` or `-` (estore does not support `:name.ext` patterns)"
                ));
            }
            if segments
                .iter()
                .any(|s| matches!(s, Segment::Param(p) if p == name))
            {
                return Err(format!("parameter `:{name}` appears twice"));
            }
            segments.push(Segment::Param(name.to_string()));
        } else {
            check_literal(segment)?;
            segments.push(Segment::Literal(segment.to_string()));
        }
    }
    Ok(Pattern { segments, wildcard })
}

fn check_literal(segment: &str) -> Result<(), String> {
    if let Some(bad) = segment
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || *c == '?' || *c == '#')
    {
        return Err(format!(
            "segment `{segment}` contains {bad:?}, which can never appear in a request path"
        ));
    }
    Ok(())
}

/// Parameter captures, and for a wildcard route the captured remainder of the path.
type Matched<'p> = (Vec<(String, String)>, Option<&'p str>);

/// How a route continues at a given segment position, from least to most specific.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    Wildcard,
    End,
    Param,
    Literal,
}

impl Pattern {
    fn slot(&self, i: usize) -> Slot {
        match self.segments.get(i) {
            Some(Segment::Literal(_)) => Slot::Literal,
            Some(Segment::Param(_)) => Slot::Param,
            None if self.wildcard => Slot::Wildcard,
            None => Slot::End,
        }
    }

    /// `Less` if `self` should be tried before `other`. Two routes that both match
    /// a path agree on every literal up to their first difference in kind, so
    /// comparing the kinds alone orders them as routefinder does.
    fn precedence(&self, other: &Pattern) -> Ordering {
        let len = self.segments.len().max(other.segments.len()) + 1;
        for i in 0..len {
            let (a, b) = (self.slot(i), other.slot(i));
            if a != b {
                return b.cmp(&a);
            }
            if matches!(a, Slot::End | Slot::Wildcard) {
                break;
            }
        }
        Ordering::Equal
    }

    /// True if both patterns match exactly the same paths.
    fn equivalent(&self, other: &Pattern) -> bool {
        self.wildcard == other.wildcard
            && self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|(a, b)| match (a, b) {
                    (Segment::Literal(x), Segment::Literal(y)) => x == y,
                    (Segment::Param(_), Segment::Param(_)) => true,
                    _ => false,
                })
    }

    /// Matches a request path stripped of leading and trailing slashes. Returns
    /// the parameter captures and, for a wildcard route, the captured remainder.
    fn matches<'p>(&self, trimmed: &'p str) -> Option<Matched<'p>> {
        let mut params = Vec::new();
        let mut rest = trimmed;
        for (i, segment) in self.segments.iter().enumerate() {
            if i > 0 {
                rest = rest.strip_prefix('/')?;
            }
            // A segment runs to the next `/`; an empty one only occurs for `//`
            // inside the path, which only a parameter can match (capturing "").
            let end = rest.find('/').unwrap_or(rest.len());
            let (value, after) = rest.split_at(end);
            match segment {
                Segment::Literal(literal) => {
                    if value != literal {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    if rest.is_empty() {
                        return None;
                    }
                    params.push((name.clone(), value.to_string()));
                }
            }
            rest = after;
        }
        if self.wildcard {
            // After the last segment, `rest` is empty or starts with its `/`.
            let captured = if self.segments.is_empty() || rest.is_empty() {
                rest
            } else {
                rest.strip_prefix('/')?
            };
            Some((params, Some(captured)))
        } else if rest.is_empty() {
            Some((params, None))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(base: &str, routes: &[(&str, &str)]) -> Router {
        match Router::build(
            base,
            routes.iter().map(|(r, c)| (r.to_string(), c.to_string())),
        ) {
            Ok(r) => r,
            Err(e) => panic!("router should build: {e}"),
        }
    }

    fn component<'a>(r: &'a Router, path: &str) -> Option<&'a str> {
        r.route(path).map(|m| m.component_id)
    }

    #[test]
    fn exact_routes() {
        let r = router("/", &[("/foo", "foo"), ("/foo/bar", "foobar")]);
        assert_eq!(component(&r, "/foo"), Some("foo"));
        assert_eq!(component(&r, "/foo/bar"), Some("foobar"));
        assert_eq!(component(&r, "/foo/baz"), None);
        assert_eq!(component(&r, "/foobar"), None);
        assert_eq!(component(&r, "/"), None);
    }

    #[test]
    fn exact_route_ignores_trailing_and_leading_slashes() {
        let r = router("/", &[("/foo", "foo")]);
        assert_eq!(component(&r, "/foo/"), Some("foo"));
        assert_eq!(component(&r, "//foo//"), Some("foo"));
        let m = r.route("/foo/").expect("match");
        assert_eq!(m.path_info, "");
    }

    #[test]
    fn route_written_with_trailing_slash_is_the_same_route() {
        let r = router("/", &[("/foo/", "foo")]);
        let m = r.route("/foo").expect("match");
        assert_eq!(m.component_id, "foo");
        assert_eq!(m.matched_route, "/foo");
        assert_eq!(m.raw_component_route, "/foo/");
        assert_eq!(m.component_route, "/foo/");
    }

    #[test]
    fn root_route_matches_only_root() {
        let r = router("/", &[("/", "root")]);
        assert_eq!(component(&r, "/"), Some("root"));
        assert_eq!(component(&r, "/x"), None);
        let m = r.route("/").expect("match");
        // Spin's based route for `/` under base `/` is the empty string.
        assert_eq!(m.matched_route, "");
        assert_eq!(m.component_route, "/");
        assert_eq!(m.raw_component_route, "/");
        assert_eq!(m.path_info, "");
    }

    #[test]
    fn wildcard_matches_prefix_itself_and_below_but_not_siblings() {
        let r = router("/", &[("/hello/...", "hello")]);
        for path in ["/hello", "/hello/", "/hello/a", "/hello/a/b", "/hello/a/b/"] {
            assert_eq!(component(&r, path), Some("hello"), "{path}");
        }
        assert_eq!(component(&r, "/helloworld"), None);
        assert_eq!(component(&r, "/hell"), None);
        assert_eq!(component(&r, "/"), None);
    }

    #[test]
    fn root_wildcard_matches_everything() {
        let r = router("/", &[("/...", "all")]);
        for path in ["/", "/foo/bar", "/abc/", "/this/should/be/captured"] {
            assert_eq!(component(&r, path), Some("all"), "{path}");
        }
        let m = r.route("/1/2/3").expect("match");
        assert_eq!(m.path_info, "/1/2/3");
        assert_eq!(m.matched_route, "/...");
        assert_eq!(m.component_route, "");
        assert_eq!(m.raw_component_route, "/...");
        assert_eq!(r.route("/").expect("match").path_info, "/");
    }

    #[test]
    fn star_is_a_wildcard_too() {
        let r = router("/", &[("/static/*", "files")]);
        let m = r.route("/static/a/b.css").expect("match");
        assert_eq!(m.path_info, "/a/b.css");
        // Spin strips only `/...` for the component route.
        assert_eq!(m.component_route, "/static/*");
        assert_eq!(m.matched_route, "/static/*");
    }

    #[test]
    fn path_info_follows_spin_trailing_slash_rules() {
        let r = router("/", &[("/test/...", "t")]);
        let info = |p: &str| r.route(p).expect("match").path_info;
        assert_eq!(info("/test"), "");
        assert_eq!(info("/test/"), "/");
        assert_eq!(info("/test/hello"), "/hello");
        assert_eq!(info("/test/hello/"), "/hello/");
        assert_eq!(info("/test/a/b"), "/a/b");
        assert_eq!(info("/test/a//"), "/a/");
        let r = router("/", &[("/1/...", "c")]);
        assert_eq!(r.route("/1/2/3").expect("match").path_info, "/2/3");
    }

    #[test]
    fn exact_beats_wildcard() {
        let r = router("/", &[("/...", "wildcard"), ("/one", "one_exact")]);
        assert_eq!(component(&r, "/one"), Some("one_exact"));
        assert_eq!(component(&r, "/one/"), Some("one_exact"));
        assert_eq!(component(&r, "/two"), Some("wildcard"));
        let r = router("/", &[("/one/...", "w"), ("/one", "e")]);
        assert_eq!(component(&r, "/one"), Some("e"));
        assert_eq!(component(&r, "/one/x"), Some("w"));
        let r = router("/", &[("/...", "w"), ("/", "root")]);
        assert_eq!(component(&r, "/"), Some("root"));
    }

    #[test]
    fn longest_wildcard_prefix_wins_regardless_of_order() {
        let routes = [
            ("/one/...", "one"),
            ("/one/two/...", "onetwo"),
            ("/one/two/three/...", "onetwothree"),
        ];
        let mut reversed = routes;
        reversed.reverse();
        for r in [router("/", &routes), router("/", &reversed)] {
            assert_eq!(component(&r, "/one/two/three/four"), Some("onetwothree"));
            assert_eq!(component(&r, "/one/two/three"), Some("onetwothree"));
            assert_eq!(component(&r, "/one/two"), Some("onetwo"));
            assert_eq!(component(&r, "/one/twothree"), Some("one"));
            assert_eq!(component(&r, "/one"), Some("one"));
        }
    }

    #[test]
    fn base_is_prefixed_to_every_route() {
        let r = router("/api", &[("/hello/...", "hello"), ("/", "root")]);
        assert_eq!(component(&r, "/hello"), None);
        let m = r.route("/api/hello/a/b").expect("match");
        assert_eq!(m.component_id, "hello");
        assert_eq!(m.matched_route, "/api/hello/...");
        assert_eq!(m.component_route, "/hello");
        assert_eq!(m.raw_component_route, "/hello/...");
        assert_eq!(m.base_path, "/api");
        assert_eq!(m.path_info, "/a/b");
        let m = r.route("/api").expect("match");
        assert_eq!(m.component_id, "root");
        assert_eq!(m.matched_route, "/api");
        assert_eq!(m.component_route, "/");
        assert_eq!(component(&r, "/api/"), Some("root"));
    }

    #[test]
    fn base_with_trailing_slash_is_reported_as_configured() {
        let r = router("/api/", &[("/x", "x")]);
        let m = r.route("/api/x").expect("match");
        assert_eq!(m.matched_route, "/api/x");
        assert_eq!(m.base_path, "/api/");
        let r = router("/", &[("/x", "x")]);
        assert_eq!(r.route("/x").expect("match").base_path, "/");
    }

    #[test]
    fn named_parameters_capture_one_segment() {
        let r = router(
            "/",
            &[
                ("/users/:user_id", "user"),
                ("/users/:id/notes/...", "notes"),
            ],
        );
        let m = r.route("/users/42").expect("match");
        assert_eq!(m.component_id, "user");
        assert_eq!(m.params, vec![("user_id".to_string(), "42".to_string())]);
        assert_eq!(m.path_info, "");
        assert!(
            m.headers()
                .contains(&("spin-path-match-user-id".to_string(), "42".to_string()))
        );
        assert_eq!(component(&r, "/users/42/43"), None);
        assert_eq!(component(&r, "/users"), None);
        let m = r.route("/users/7/notes/a/b").expect("match");
        assert_eq!(m.component_id, "notes");
        assert_eq!(m.params, vec![("id".to_string(), "7".to_string())]);
        assert_eq!(m.path_info, "/a/b");
        assert_eq!(m.component_route, "/users/:id/notes");
    }

    #[test]
    fn literal_beats_parameter_beats_wildcard() {
        let r = router(
            "/",
            &[
                ("/...", "any"),
                ("/:greeting", "param"),
                ("/hello", "literal"),
            ],
        );
        assert_eq!(component(&r, "/hello"), Some("literal"));
        assert_eq!(component(&r, "/hey"), Some("param"));
        assert_eq!(component(&r, "/hey/there"), Some("any"));
        assert_eq!(component(&r, "/"), Some("any"));
        let r = router("/", &[("/:a/b", "first-param"), ("/a/:b", "first-literal")]);
        assert_eq!(component(&r, "/a/b"), Some("first-literal"));
        let r = router("/", &[("/a/...", "wild"), ("/a/:x/...", "param-wild")]);
        assert_eq!(component(&r, "/a/b/c"), Some("param-wild"));
        assert_eq!(component(&r, "/a/b"), Some("param-wild"));
        assert_eq!(component(&r, "/a"), Some("wild"));
    }

    #[test]
    fn no_percent_decoding() {
        let r = router("/", &[("/a%20b", "encoded")]);
        assert_eq!(component(&r, "/a%20b"), Some("encoded"));
        assert_eq!(component(&r, "/a b"), None);
    }

    #[test]
    fn headers_in_spin_order() {
        let r = router("/", &[("/foo/...", "c")]);
        let m = r.route("/foo/bar").expect("match");
        assert_eq!(
            m.headers(),
            vec![
                ("spin-path-info".to_string(), "/bar".to_string()),
                ("spin-matched-route".to_string(), "/foo/...".to_string()),
                ("spin-base-path".to_string(), "/".to_string()),
                (
                    "spin-raw-component-route".to_string(),
                    "/foo/...".to_string()
                ),
                ("spin-component-route".to_string(), "/foo".to_string()),
            ]
        );
    }

    #[test]
    fn chained_requests_get_spins_synthetic_match() {
        let m = RouteMatch::synthetic("cart", "/items/3");
        assert_eq!(m.component_id, "cart");
        assert_eq!(m.matched_route, "/...");
        assert_eq!(m.raw_component_route, "/...");
        assert_eq!(m.component_route, "");
        assert_eq!(m.base_path, "/");
        assert_eq!(m.path_info, "/items/3");
        assert!(m.params.is_empty());
    }

    #[test]
    fn duplicates_are_refused() {
        for (a, b) in [
            ("/a", "/a"),
            ("/a", "/a/"),
            ("/a/...", "/a/*"),
            ("/a/...", "/a/.../"),
            ("/x/:a", "/x/:b"),
            ("/a//b", "/a/b"),
        ] {
            let err = Router::build(
                "/",
                [
                    (a.to_string(), "one".to_string()),
                    (b.to_string(), "two".to_string()),
                ],
            )
            .expect_err(&format!("{a} vs {b}"));
            assert!(err.contains("one") && err.contains("two"), "{err}");
            assert_eq!(route_key(a), route_key(b), "{a} vs {b}");
        }
        assert_ne!(route_key("/a"), route_key("/a/..."));
        assert_ne!(route_key("/a/b"), route_key("/a/:b"));
        assert_eq!(route_key("/"), Ok("/".to_string()));
        assert_eq!(route_key("/..."), Ok("/...".to_string()));
    }

    #[test]
    fn invalid_routes_are_refused() {
        for route in [
            "hello",
            "",
            "/a/.../b",
            "/a/*/b",
            "/.../...",
            "/*x",
            "/:",
            "/:name.json",
            "/:a/:a",
            "/a b",
            "/a?b",
        ] {
            assert!(validate_route(route).is_err(), "{route}");
            assert!(
                Router::build("/", [(route.to_string(), "c".to_string())]).is_err(),
                "{route}"
            );
        }
        for route in [
            "/",
            "/...",
            "/a/...",
            "/a/*",
            "/a/:b/c",
            "/a.b/c-d_e",
            "/a/",
        ] {
            assert_eq!(validate_route(route), Ok(()), "{route}");
        }
    }

    #[test]
    fn invalid_bases_are_refused() {
        for base in ["api", "/a//b", "/api/...", "/:x", "/a b"] {
            assert!(validate_base(base).is_err(), "{base}");
        }
        for base in ["/", "/api", "/api/", "/a/b"] {
            assert_eq!(validate_base(base), Ok(()), "{base}");
        }
    }

    #[test]
    fn reserved_routes_are_detected() {
        assert!(router("/", &[("/.well-known/spin/...", "c")]).contains_reserved_route());
        assert!(!router("/", &[("/.well-known/spindle/...", "c")]).contains_reserved_route());
    }

    #[test]
    fn routes_are_listed_most_specific_first() {
        let r = router("/", &[("/...", "all"), ("/a/...", "a"), ("/a/b", "ab")]);
        let listed: Vec<_> = r.routes().collect();
        assert_eq!(
            listed,
            vec![("/a/b", "ab"), ("/a/...", "a"), ("/...", "all")]
        );
    }
}
