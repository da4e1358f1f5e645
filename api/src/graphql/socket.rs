//! Subscriptions over WebSocket: `GET /graphql` with `Upgrade: websocket`, speaking
//! `graphql-transport-ws` (or the older `graphql-ws`), driven by async-graphql-axum.
//!
//! Two things sit between the socket and the driver:
//!
//! - **Who is calling**: a token in `connection_init` (browsers cannot set headers on a
//!   WebSocket), else the upgrade request's Authorization header (already verified by the
//!   auth layer), else anonymous. A bad `connection_init` token is refused (the
//!   graphql-transport-ws socket is closed; graphql-ws gets `connection_error`), never
//!   taken as anonymous.
//! - **Rate limits per operation**: the upgrade itself is one request to the rate-limit
//!   layer, and each subscription started on the open socket (`subscribe`, or `start` in
//!   `graphql-ws`) costs one more, charged to the socket's caller. Over the limit, that
//!   subscription is not started and the client gets an `error` message for its id with
//!   code RATE_LIMITED; the socket and its other subscriptions carry on. Without this, one
//!   socket could start operations without bound at the cost of a single request.
//!
//! The driver writes into a channel rather than the socket, so that refusals (written here)
//! and the driver's own messages share one writer.

use std::sync::{Arc, OnceLock};

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::ws::Message;
use axum::extract::{FromRequestParts, Request, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::channel::mpsc;
use futures::StreamExt;
use schema::Principal;
use serde_json::json;

use super::{MediaType, Refusal};
use crate::codes::Code;
use crate::ratelimit::Charge;
use crate::AppState;

/// How many of the driver's messages may wait for the socket before it waits in turn.
const OUTGOING_BUFFER: usize = 64;

pub(crate) async fn websocket(state: AppState, req: Request) -> Response {
    let (mut parts, _body) = req.into_parts();
    let Ok(protocol) = GraphQLProtocol::from_request_parts(&mut parts, &state).await else {
        return Refusal::new(
            StatusCode::BAD_REQUEST,
            Code::BadRequest,
            "a GraphQL WebSocket needs Sec-WebSocket-Protocol: graphql-transport-ws (or graphql-ws)",
        )
        .into_response(MediaType::Json);
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    let schema = state.schema.clone();
    let from_header = parts
        .extensions
        .get::<Principal>()
        .cloned()
        .unwrap_or(Principal::ANONYMOUS);
    // Absent only when the router runs without the rate-limit layer.
    let charge = parts.extensions.get::<Charge>().cloned();
    let auth = state.auth.clone();
    let metrics = state.metrics.clone();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            let _open = metrics.websocket_opened();
            tracing::debug!("subscription socket opened");
            let legacy = socket
                .protocol()
                .is_some_and(|p| p.as_bytes() == b"graphql-ws");
            let (socket_tx, socket_rx) = socket.split();
            let (driver_tx, driver_rx) = mpsc::channel::<Message>(OUTGOING_BUFFER);
            let (refusal_tx, refusal_rx) = mpsc::unbounded::<Message>();
            // The caller's charge once `connection_init` has named them.
            let signed_in: Arc<OnceLock<Charge>> = Arc::default();
            let limits = Limits {
                before_init: charge.clone(),
                signed_in: signed_in.clone(),
                refusals: refusal_tx,
                legacy,
            };
            let incoming = socket_rx.filter_map(move |msg| {
                let msg = match msg {
                    Ok(Message::Text(text)) => limits.admit(text).map(|t| Ok(Message::Text(t))),
                    other => Some(other),
                };
                futures::future::ready(msg)
            });
            let driver = GraphQLWebSocket::new_with_pair(driver_tx, incoming, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let principal = match auth.principal_of_init(&payload) {
                        Ok(p) => p.unwrap_or(from_header),
                        Err(e) => {
                            metrics.record_unauthenticated(e.reason());
                            return Err(crate::auth::refused_init(&e));
                        }
                    };
                    let mut data = async_graphql::Data::default();
                    if let Some(charge) = &charge {
                        let charge = charge.for_principal(&principal);
                        if let Some(allowance) = charge.list_allowance() {
                            data.insert(allowance);
                        }
                        let _ = signed_in.set(charge);
                    }
                    data.insert(principal);
                    Ok(data)
                })
                .serve();
            // Ends when the driver has finished (its sender and the refusals' sender are
            // dropped with it) or the client has gone.
            let writer = futures::stream::select(driver_rx, refusal_rx)
                .map(Ok)
                .forward(socket_tx);
            let ((), _) = futures::join!(driver, writer);
            tracing::debug!("subscription socket closed");
        })
}

/// The per-operation rate limit of one socket.
struct Limits {
    /// The upgrade request's charge, used until `connection_init` has been accepted.
    before_init: Option<Charge>,
    signed_in: Arc<OnceLock<Charge>>,
    refusals: mpsc::UnboundedSender<Message>,
    /// `graphql-ws` (subscriptions-transport-ws) rather than `graphql-transport-ws`.
    legacy: bool,
}

impl Limits {
    /// The frame to pass on to the driver, or `None` when it started an operation over the
    /// limit (the refusal is sent instead).
    fn admit(&self, text: axum::extract::ws::Utf8Bytes) -> Option<axum::extract::ws::Utf8Bytes> {
        let Some(id) = started_operation(text.as_str(), self.legacy) else {
            return Some(text);
        };
        let Some(charge) = self.signed_in.get().or(self.before_init.as_ref()) else {
            return Some(text);
        };
        match charge.one() {
            Ok(()) => Some(text),
            Err(message) => {
                tracing::debug!(operation_id = %id, "subscription rate limited");
                let error = json!({
                    "message": message,
                    "extensions": { "code": Code::RateLimited.as_str() },
                });
                // graphql-transport-ws sends a list of errors; graphql-ws a single one.
                let payload = if self.legacy { error } else { json!([error]) };
                let reply = json!({ "id": id, "type": "error", "payload": payload });
                let _ = self
                    .refusals
                    .unbounded_send(Message::Text(reply.to_string().into()));
                None
            }
        }
    }
}

/// The id of the operation a client message starts (`subscribe`, or `start` in `graphql-ws`),
/// if it is one. Anything else — including frames that are not JSON — is the driver's to
/// judge.
fn started_operation(text: &str, legacy: bool) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(rename = "type")]
        kind: String,
        id: Option<String>,
    }
    let envelope: Envelope = serde_json::from_str(text).ok()?;
    let starts = if legacy { "start" } else { "subscribe" };
    (envelope.kind == starts).then_some(envelope.id).flatten()
}

#[cfg(test)]
mod tests {
    use super::started_operation;

    #[test]
    fn only_messages_that_start_an_operation_are_charged() {
        let subscribe = r#"{"id":"1","type":"subscribe","payload":{"query":"subscription { x }"}}"#;
        let start = r#"{"id":"7","type":"start","payload":{"query":"subscription { x }"}}"#;
        assert_eq!(started_operation(subscribe, false).as_deref(), Some("1"));
        assert_eq!(started_operation(start, true).as_deref(), Some("7"));
        assert_eq!(started_operation(start, false), None);
        assert_eq!(started_operation(subscribe, true), None);
        for other in [
            r#"{"type":"connection_init"}"#,
            r#"{"type":"ping"}"#,
            r#"{"id":"1","type":"complete"}"#,
            r#"{"type":"subscribe"}"#,
            "not json",
        ] {
            assert_eq!(started_operation(other, false), None, "{other}");
        }
    }
}
