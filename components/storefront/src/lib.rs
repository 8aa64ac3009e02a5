//! The storefront: the web shop and the operators' console, a single-page app built
//! from `web/` (`scripts/build-storefront`) and served from the folder the manifest
//! mounts at [`SITE`], next to the API on the same origin.
//!
//! - A file of the build answers with its content type. Vite names the files under
//!   `/assets/` by their content's hash, so they are cached for good; everything else
//!   (`index.html` above all) is revalidated, so a deploy shows at the next load.
//! - A path that names no file and has no extension is one of the app's own pages
//!   (`/orders/42`): it gets `index.html`, and the app's router draws the page.
//! - Anything else is a 404, as is any other method than GET and HEAD on a path that
//!   names no file of the build (the app serves pages, it takes no requests).
//! - Every answer carries [`SECURITY_HEADERS`]: a content security policy that lets
//!   the page run only the shop's own scripts and talk only to its own origin, no
//!   framing (clickjacking), no referrer beyond the origin, no content-type sniffing.

use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

/// Where the manifest's `files` mount the built app.
const SITE: &str = "/site";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";
/// The app is one origin's files and API: scripts, styles, fonts and requests all
/// stay on it (`data:` images only for the built-in blank favicon), and nothing may
/// frame it, post it elsewhere or reset its base URL.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    ("x-content-type-options", "nosniff"),
];

#[http_component]
fn handle(req: Request) -> Response {
    if !matches!(req.method(), Method::Get | Method::Head) {
        // Only the app's own files take a method at all; any other path is nothing.
        let is_file = site_file(req.path()).is_some_and(|file| std::fs::metadata(file).is_ok_and(|m| m.is_file()));
        if !is_file {
            return not_found(req.path());
        }
        return answer(405).header("allow", "GET, HEAD").body("only GET and HEAD are served here").build();
    }
    let head_only = *req.method() == Method::Head;
    let answer = match site_file(req.path()) {
        Some(file) => serve(&file, head_only).or_else(|| app_page(req.path(), head_only)),
        None => None,
    };
    answer.unwrap_or_else(|| not_found(req.path()))
}

/// The file `path` names under [`SITE`]; `None` for a path that tries to leave it.
fn site_file(path: &str) -> Option<String> {
    let relative = path.trim_start_matches('/');
    let escapes = relative.split('/').any(|segment| segment == ".." || segment == ".") || relative.contains(['\\', '\0']);
    if escapes {
        return None;
    }
    Some(match relative {
        "" => format!("{SITE}/index.html"),
        _ => format!("{SITE}/{relative}"),
    })
}

/// `index.html` for a page of the app: a path whose last segment has no extension.
fn app_page(path: &str, head_only: bool) -> Option<Response> {
    let last = path.rsplit('/').next().unwrap_or_default();
    if last.contains('.') {
        return None;
    }
    serve(&format!("{SITE}/index.html"), head_only)
}

fn serve(file: &str, head_only: bool) -> Option<Response> {
    let bytes = std::fs::read(file).ok()?;
    let caching = if file.starts_with(&format!("{SITE}/assets/")) { IMMUTABLE } else { REVALIDATE };
    let length = bytes.len().to_string();
    let body = if head_only { Vec::new() } else { bytes };
    Some(
        answer(200)
            .header("content-type", content_type(file))
            .header("content-length", length)
            .header("cache-control", caching)
            .body(body)
            .build(),
    )
}

fn not_found(path: &str) -> Response {
    answer(404).header("content-type", "text/plain; charset=utf-8").body(format!("nothing at {path}")).build()
}

/// A response with `status` and the [`SECURITY_HEADERS`] every answer carries.
fn answer(status: u16) -> spin_sdk::http::ResponseBuilder {
    let mut builder = Response::builder();
    builder.status(status);
    for (name, value) in SECURITY_HEADERS {
        builder.header(name, value);
    }
    builder
}

fn content_type(file: &str) -> &'static str {
    match file.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_into_the_site_and_never_out_of_it() {
        assert_eq!(site_file("/").as_deref(), Some("/site/index.html"));
        assert_eq!(site_file("/assets/index-3f2a.js").as_deref(), Some("/site/assets/index-3f2a.js"));
        for escape in ["/../etc/passwd", "/assets/../../x", "/./index.html", "/a\\b", "/a\0b"] {
            assert_eq!(site_file(escape), None, "{escape:?}");
        }
    }

    #[test]
    fn every_answer_carries_the_security_headers() {
        for response in [not_found("/x"), answer(405).body("").build()] {
            for (name, value) in SECURITY_HEADERS {
                assert_eq!(response.header(name).and_then(|v| v.as_str()), Some(value), "{name}");
            }
        }
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("/site/index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("/site/assets/app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("/site/assets/app.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("/site/blob"), "application/octet-stream");
    }
}
