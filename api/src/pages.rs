//! The web pages (`playground/`, embedded by the `landql-playground` crate): each page's
//! HTML at its route, the hashed assets under `/assets/`, the SDL at `/schema.graphql`, and
//! the bundled packages' licences at `/licenses.txt`.
//!
//! Headers are the point of this module:
//! - HTML is `no-cache` (revalidated by ETag), so a new binary's pages are seen at once;
//!   assets carry a content hash in their names and are `immutable` for a year.
//! - A brotli copy made at build time is sent to clients that accept br (the compression
//!   layer leaves a response that already has a `Content-Encoding` alone, and compresses
//!   the rest on the fly as usual).
//! - Every page response carries a Content-Security-Policy that allows nothing outside the
//!   origin: the pages must work on a machine with no network, and a policy makes the
//!   browser enforce it.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::AppState;

/// Nothing from another origin. Scripts are `'self'` only (no eval, no inline script).
/// `'unsafe-inline'` for styles: GraphiQL's editor (Monaco) adds `<style>` elements and it,
/// GraphiQL's pane resizing and its animations set inline styles. `data:` images: Monaco's
/// CSS carries some, and the pages' empty favicon is one. Workers are same-origin files;
/// `connect-src 'self'` covers the same-origin WebSocket.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src 'self'; \
object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The pages' routes, added to the API's router.
pub(crate) fn routes() -> Router<AppState> {
    let mut router = Router::new()
        .route("/assets/{*path}", get(asset))
        .route("/schema.graphql", get(sdl))
        // What the pages bundle, with licences (written by the build).
        .route(
            "/licenses.txt",
            get(|headers: HeaderMap| async move { page("licenses.txt", &headers) }),
        );
    for &(route, file) in playground::PAGES {
        router = router.route(
            route,
            get(move |headers: HeaderMap| async move { page(file, &headers) }),
        );
    }
    router
}

fn page(file: &str, req: &HeaderMap) -> Response {
    match playground::file(file) {
        Some(f) => send(f, req, "no-cache"),
        // Only a build without `npm run build` gets here: say so rather than 404 silently.
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("this build of landql has no {file}: build the pages (`npm run build` in playground/)"),
        )
            .into_response(),
    }
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match playground::file(&format!("assets/{path}")) {
        Some(f) => send(f, &headers, IMMUTABLE),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

async fn sdl(State(state): State<AppState>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        state.sdl.to_string(),
    )
        .into_response()
}

/// One file with its caching, encoding and security headers; 304 when the client's ETag
/// matches.
fn send(f: playground::File, req: &HeaderMap, cache: &'static str) -> Response {
    let etag = format!("\"{}\"", &f.sha256[..32]);
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(f.content_type),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    let matches = req
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    match f.brotli {
        Some(br) if accepts_br(req) => {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
            (headers, br).into_response()
        }
        _ => (headers, f.raw).into_response(),
    }
}

/// Whether `Accept-Encoding` names br with a non-zero weight.
fn accepts_br(req: &HeaderMap) -> bool {
    req.get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            name.eq_ignore_ascii_case("br") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(accept).expect("header"),
        );
        h
    }

    #[test]
    fn br_is_sent_only_to_clients_that_accept_it() {
        assert!(accepts_br(&headers("gzip, deflate, br, zstd")));
        assert!(accepts_br(&headers("br;q=0.5")));
        assert!(!accepts_br(&headers("gzip")));
        assert!(!accepts_br(&headers("br;q=0, gzip")));
        assert!(!accepts_br(&HeaderMap::new()));
    }
}
