//! Content negotiation of GraphQL responses (GraphQL-over-HTTP, "Accept").
//!
//! `application/graphql-response+json` is the spec's media type: with it, a request error
//! can be told from a field error by the status code alone (4xx). Legacy clients ask for
//! `application/json`, and the spec has a server treat a request with no Accept header, or
//! one that accepts any type (`*/*`, `application/*`), as one that asked for
//! `application/json`: such a client may not know the new type, so it gets the old one,
//! with status 200 for parse, validation and variable errors (see `graphql`). The spec's
//! type is answered when the client names it at least as preferred as `application/json`.

/// The response media types the API can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MediaType {
    GraphqlResponseJson,
    Json,
}

impl MediaType {
    pub fn content_type(self) -> &'static str {
        match self {
            MediaType::GraphqlResponseJson => "application/graphql-response+json; charset=utf-8",
            MediaType::Json => "application/json; charset=utf-8",
        }
    }
}

/// The media type to answer with for an `Accept` header value (`None`: no header), or
/// `None` when the client accepts neither JSON type (406). On equal preference the spec's
/// type wins when the client named it; when only wildcards match, `application/json` does.
pub(crate) fn negotiate(accept: Option<&str>) -> Option<MediaType> {
    let Some(accept) = accept.map(str::trim).filter(|a| !a.is_empty()) else {
        return Some(MediaType::Json);
    };
    let mut gql = 0.0f32;
    let mut json = 0.0f32;
    // The most specific range that matches a type decides its q (RFC 9110 §12.5.1).
    let mut gql_spec = 0u8;
    let mut json_spec = 0u8;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1.0f32;
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                if k.trim().eq_ignore_ascii_case("q") {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
        }
        let q = q.clamp(0.0, 1.0);
        let (for_gql, for_json) = match media.as_str() {
            "application/graphql-response+json" => (3, 0),
            "application/json" => (0, 3),
            "application/*" => (2, 2),
            "*/*" => (1, 1),
            _ => (0, 0),
        };
        if for_gql > gql_spec {
            gql_spec = for_gql;
            gql = q;
        }
        if for_json > json_spec {
            json_spec = for_json;
            json = q;
        }
    }
    // Named explicitly (not through a wildcard).
    let gql_named = gql_spec == 3;
    if gql > 0.0 && (gql > json || (gql == json && gql_named)) {
        Some(MediaType::GraphqlResponseJson)
    } else if json > 0.0 {
        Some(MediaType::Json)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::{negotiate, MediaType::*};

    #[test]
    fn picks_the_preferred_json_type() {
        // No Accept, or any type: the legacy type (the spec's rule for clients that may not
        // know the new one).
        assert_eq!(negotiate(None), Some(Json));
        assert_eq!(negotiate(Some("")), Some(Json));
        assert_eq!(negotiate(Some("*/*")), Some(Json));
        assert_eq!(negotiate(Some("application/*")), Some(Json));
        assert_eq!(negotiate(Some("application/json")), Some(Json));
        assert_eq!(
            negotiate(Some("application/graphql-response+json")),
            Some(GraphqlResponseJson)
        );
        assert_eq!(
            negotiate(Some(
                "application/graphql-response+json, application/json;q=0.9"
            )),
            Some(GraphqlResponseJson)
        );
        assert_eq!(
            negotiate(Some(
                "application/graphql-response+json;q=0.5, application/json"
            )),
            Some(Json)
        );
        // A browser navigating to the endpoint.
        assert_eq!(
            negotiate(Some(
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
            )),
            Some(Json)
        );
        // Named beside a wildcard, the spec's type wins.
        assert_eq!(
            negotiate(Some("application/graphql-response+json, */*")),
            Some(GraphqlResponseJson)
        );
        assert_eq!(
            negotiate(Some("application/graphql-response+json;q=0.9, */*")),
            Some(Json)
        );
        assert_eq!(negotiate(Some("application/json, */*;q=0.1")), Some(Json));
        assert_eq!(
            negotiate(Some("APPLICATION/JSON ; Q=1")),
            Some(Json),
            "media types and parameters are case-insensitive"
        );
    }

    #[test]
    fn refuses_what_it_cannot_produce() {
        assert_eq!(negotiate(Some("text/html")), None);
        assert_eq!(negotiate(Some("application/xml, text/plain")), None);
        assert_eq!(negotiate(Some("application/json;q=0")), None);
        assert_eq!(
            negotiate(Some("*/*, application/graphql-response+json;q=0")),
            Some(Json),
            "an explicit q=0 beats the wildcard"
        );
    }
}
