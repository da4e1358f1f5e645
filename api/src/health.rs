//! `/healthz` (the process answers) and `/readyz` (this node should get traffic: database
//! reachable, search index open, replica within the freshness bound — JSON that says which).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;

use crate::AppState;

/// `GET /healthz`: 200 "ok" while the process serves HTTP at all. Deliberately checks
/// nothing else: a liveness probe that failed on a database outage would restart every node
/// at once.
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: 200 when ready, else 503; the body is the readiness report either way.
pub(crate) async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let r = state.services.readiness().await;
    let status = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(r))
}
