//! Refusals made by layers before any handler runs (401, 429): a GraphQL error body with its
//! code, in the media type the client accepts, tagged for the access log and metrics.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::negotiate::{negotiate, MediaType};
use crate::trace::{OpInfo, OpRecord, OpType, Outcome};

#[derive(Serialize)]
struct Body<'a> {
    errors: [Error<'a>; 1],
}

#[derive(Serialize)]
struct Error<'a> {
    message: &'a str,
    extensions: Extensions<'a>,
}

#[derive(Serialize)]
struct Extensions<'a> {
    code: &'a str,
}

/// A refusal with `status`, `extensions.code` = `code` and `message`; `request` are the
/// request's headers (for Accept).
pub(crate) fn refusal(
    status: StatusCode,
    code: &str,
    message: &str,
    request: &HeaderMap,
) -> Response {
    let accept: Vec<&str> = request
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let accept = (!accept.is_empty()).then(|| accept.join(","));
    // A client that accepts neither JSON type still gets JSON here: the refusal matters more.
    let media = negotiate(accept.as_deref()).unwrap_or(MediaType::Json);
    let body = Body {
        errors: [Error {
            message,
            extensions: Extensions { code },
        }],
    };
    // Serialising two strings cannot fail; the fallback keeps this path panic-free anyway.
    let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| b"{\"errors\":[]}".to_vec());
    let mut r = (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(media.content_type()),
            ),
            (header::VARY, HeaderValue::from_static("Accept")),
        ],
        bytes,
    )
        .into_response();
    r.extensions_mut().insert(OpInfo(vec![OpRecord {
        name: None,
        ty: OpType::Unknown,
        outcome: Outcome::Refused,
        errors: vec![code.to_string()],
    }]));
    r
}
