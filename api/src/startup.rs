//! Serving HTTP before the API can answer queries: the start-up gate.
//!
//! Operators start the sync worker and the API nodes together, so a node may come up before
//! its database does, or before the sync worker has migrated it. Exiting then would make
//! the node's supervisor restart it in a loop; instead the node listens at once behind a
//! [`Startup`] gate that answers
//!
//! - `/healthz` 200 — the process is alive and should not be restarted;
//! - `/readyz` 503 with the readiness report's shape (`ready`, `database`, `index`, `lag`)
//!   whose `database.detail` says what the node waits for;
//! - everything else 503 with `Retry-After` (a GraphQL-shaped error with the code
//!   `NOT_READY` on `/graphql`),
//!
//! until [`Startup::open`] hands it the real router, which then answers every request,
//! WebSocket upgrades included (the request, its connection info and its upgrade handle
//! are passed on as they are).

use std::convert::Infallible;
use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceExt;

/// The code of the error `/graphql` answers while the node waits.
pub const NOT_READY: &str = "NOT_READY";

/// Seconds a client is told to wait (`Retry-After`) while the node starts.
const RETRY_AFTER_SECS: &str = "2";

/// The gate in front of a node that is still starting; cheap to clone (all clones are the
/// same gate).
#[derive(Clone)]
pub struct Startup(Arc<RwLock<Phase>>);

enum Phase {
    /// Not serving the API yet, for this reason.
    Waiting(String),
    /// The API's router: every request goes to it.
    Open(Router),
}

impl Startup {
    /// A gate that is waiting, for `reason` (what `/readyz` says).
    pub fn new(reason: impl Into<String>) -> Startup {
        Startup(Arc::new(RwLock::new(Phase::Waiting(reason.into()))))
    }

    /// Changes what the node says it waits for. Does nothing once the gate is open.
    pub fn waiting(&self, reason: impl Into<String>) {
        let mut phase = self.0.write().unwrap_or_else(|p| p.into_inner());
        if let Phase::Waiting(r) = &mut *phase {
            *r = reason.into();
        }
    }

    /// Opens the gate: from now on every request goes to `router` (built with
    /// [`crate::router`]).
    pub fn open(&self, router: Router) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Phase::Open(router);
    }

    /// What the node waits for, or `None` once the gate is open.
    pub fn reason(&self) -> Option<String> {
        match &*self.0.read().unwrap_or_else(|p| p.into_inner()) {
            Phase::Waiting(r) => Some(r.clone()),
            Phase::Open(_) => None,
        }
    }

    /// The router to serve (with [`crate::serve`]) from the start: it answers for the gate
    /// while waiting and passes every request to the API's router once open.
    pub fn router(&self) -> Router {
        let gate = self.clone();
        Router::new().fallback(move |request: Request| {
            let gate = gate.clone();
            async move { gate.handle(request).await }
        })
    }

    async fn handle(&self, request: Request) -> Response {
        let phase = match &*self.0.read().unwrap_or_else(|p| p.into_inner()) {
            Phase::Open(router) => Ok(router.clone()),
            Phase::Waiting(reason) => Err(reason.clone()),
        };
        match phase {
            Ok(router) => {
                let answer: Result<Response, Infallible> = router.oneshot(request).await;
                match answer {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            }
            Err(reason) => waiting_answer(request.uri().path(), &reason),
        }
    }
}

/// What the gate answers on `path` while the node waits for `reason`.
fn waiting_answer(path: &str, reason: &str) -> Response {
    match path {
        "/healthz" => "ok".into_response(),
        "/readyz" => {
            let not_yet = |detail: &str| schema::Check {
                ok: false,
                detail: detail.to_string(),
            };
            let report = schema::Readiness {
                ready: false,
                database: not_yet(reason),
                index: not_yet("not opened yet: waiting for the database"),
                lag: not_yet("unknown: waiting for the database"),
            };
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(report)).into_response()
        }
        "/graphql" => {
            let body = serde_json::json!({
                "errors": [{
                    "message": format!("this API node is starting and cannot answer yet: {reason}"),
                    "extensions": { "code": NOT_READY },
                }]
            });
            let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
            retry_after(&mut response);
            response
        }
        _ => {
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("landql is starting: {reason}\n"),
            )
                .into_response();
            retry_after(&mut response);
            response
        }
    }
}

fn retry_after(response: &mut Response<Body>) {
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECS),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    async fn call(router: &Router, path: &str) -> (StatusCode, String) {
        let response = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn waits_alive_and_not_ready_then_passes_everything_on() {
        let gate = Startup::new("the database is not reachable yet");
        let router = gate.router();

        assert_eq!(
            call(&router, "/healthz").await,
            (StatusCode::OK, "ok".into())
        );
        let (status, body) = call(&router, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let report: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(report["ready"], false);
        assert_eq!(
            report["database"]["detail"],
            "the database is not reachable yet"
        );

        gate.waiting("the database has no landql schema yet");
        let (_, body) = call(&router, "/readyz").await;
        assert!(body.contains("no landql schema yet"), "{body}");
        let (status, body) = call(&router, "/graphql").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(answer["errors"][0]["extensions"]["code"], NOT_READY);
        assert!(answer["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no landql schema yet")));
        assert_eq!(call(&router, "/").await.0, StatusCode::SERVICE_UNAVAILABLE);

        gate.open(
            Router::new()
                .route("/readyz", get(|| async { "ready" }))
                .route("/anything", get(|| async { "api" })),
        );
        assert_eq!(gate.reason(), None);
        gate.waiting("ignored once open");
        assert_eq!(gate.reason(), None);
        assert_eq!(
            call(&router, "/readyz").await,
            (StatusCode::OK, "ready".into())
        );
        assert_eq!(
            call(&router, "/anything").await,
            (StatusCode::OK, "api".into())
        );
        assert_eq!(call(&router, "/healthz").await.0, StatusCode::NOT_FOUND);
    }
}
