//! landql's HTTP API (design/api.md, "HTTP"): the schema of the `schema` crate served over
//! GraphQL-over-HTTP and WebSocket, with health, readiness, Prometheus metrics and the web
//! pages (`playground/`).
//!
//! ```text
//!  request ─► request id (x-request-id, echoed or made) ─► client address (X-Forwarded-For
//!          from trusted proxies only) ─► access log + metrics layer
//!          ─► CORS (preflights answered here) ─► compression (gzip/br, bodies ≥ 1 KiB)
//!          ─► /graphql only: bearer token → principal (401 if bad) ─► rate limit (429)
//!          ─► route:  POST /graphql            JSON body, single or batch
//!                     GET  /graphql?query=…    queries only (405 for anything else)
//!                     GET  /graphql + Upgrade  graphql-transport-ws / graphql-ws
//!                     /healthz  /readyz  /metrics
//!                     /  /search  /property/{id}  /verify  /graphiql  /assets/…  (pages)
//! ```
//!
//! The public surface is small: build the schema with [`schema()`] (it installs the limits
//! and the error-code extension), turn it into a router with [`router`], and run it with
//! [`serve`].
//!
//! Handlers stay thin: a GraphQL handler parses the transport, executes, and shapes the
//! response; it tags the response with what it ran (an `OpInfo` response extension) and
//! the layer in `trace` turns that into one log line and the metrics, so logging and
//! metrics are the same for every route.

pub mod auth;
mod client;
mod codes;
mod documents;
mod graphql;
/// The `graphql_request` fuzz target's body (README, "Fuzzing").
#[cfg(any(test, feature = "fuzzing"))]
pub use graphql::fuzzing;
mod health;
mod metrics;
mod negotiate;
mod nesting;
mod pages;
mod persisted;
mod ratelimit;
mod refuse;
mod spans;
mod startup;
mod trace;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use schema::{LandqlSchema, Services};
use tower::ServiceBuilder;
use tower_http::compression::predicate::{DefaultPredicate, Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

pub use auth::{Auth, TokenRules};
pub use axum::http::HeaderValue;
pub use client::{BadProxy, TrustedProxies};
pub use codes::{Code, INTROSPECTION_DEPTH};
pub(crate) use metrics::Metrics;
pub use ratelimit::RateLimits;
pub use startup::{Startup, NOT_READY};

/// Limits and settings of the HTTP API. The defaults are design/api.md's starting point;
/// the hardening work refines them.
#[derive(Debug, Clone)]
pub struct Options {
    /// Deepest selection nesting accepted (a query `{ a { b } }` has depth 2). Operations
    /// that only introspect may nest up to [`INTROSPECTION_DEPTH`] if that is more.
    pub max_depth: usize,
    /// Highest query complexity accepted (async-graphql's count: one per selected field).
    pub max_complexity: usize,
    /// Largest request body, in bytes; bigger bodies get 413 before any parsing.
    pub max_body_bytes: usize,
    /// Most operations in one batch (a JSON array body).
    pub max_batch: usize,
    /// Most aliased fields in one document: `{ a1: property(id: …) a2: property(…) … }`
    /// multiplies the work of one field without nesting deeper.
    pub max_aliases: usize,
    /// How long one request may take, from its first byte to its answer. The database
    /// pool should cancel statements at the same bound (see `migrations::connect_for_requests`):
    /// dropping a query's future does not stop it on the server.
    pub request_timeout: Duration,
    /// Bearer-token verification (see [`auth`]); disabled by default (every request
    /// without a token is anonymous, every token refused).
    pub auth: Auth,
    /// Requests per second per client, by role (see `ratelimit`).
    pub rate_limits: RateLimits,
    /// Records with owner names an anonymous client may list a day (`properties`, `search`;
    /// see schema's `list_quota`); `None` = no bound.
    pub anonymous_list_quota: Option<std::num::NonZeroU32>,
    /// Origins allowed to call the API from a browser; empty = any origin. Tokens travel in
    /// the Authorization header, never in cookies, so credentials are never allowed.
    pub cors_origins: Vec<HeaderValue>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (see `client`); none by
    /// default, so the TCP peer is the client.
    pub trusted_proxies: TrustedProxies,
}

/// Records with owner names an anonymous client may list a day, unless configured: many
/// times what a person looking up their own parcels reads, 200 days for a registry of 1 M.
pub const DEFAULT_ANONYMOUS_LIST_QUOTA: u32 = 5_000;

impl Default for Options {
    fn default() -> Self {
        Options {
            max_depth: 12,
            max_complexity: 2000,
            max_body_bytes: 64 * 1024,
            max_batch: 10,
            max_aliases: 30,
            request_timeout: Duration::from_secs(10),
            auth: Auth::disabled(),
            rate_limits: RateLimits::default(),
            anonymous_list_quota: std::num::NonZeroU32::new(DEFAULT_ANONYMOUS_LIST_QUOTA),
            cors_origins: Vec::new(),
            trusted_proxies: TrustedProxies::none(),
        }
    }
}

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Accepting or serving connections failed.
    #[error("serving HTTP: {0}")]
    Serve(#[from] std::io::Error),
}

/// The schema with the API's limits and its error-code extension installed: parse and
/// validation failures get `extensions.code`, and depth and complexity are checked with
/// messages that say the limit and the query's own figure.
pub fn schema(services: Services, opts: &Options) -> LandqlSchema {
    schema::builder(services)
        .extension(codes::Codes::new(
            opts.max_depth,
            opts.max_complexity,
            opts.max_aliases,
        ))
        .extension(spans::Spans)
        .finish()
}

/// What every handler reads through axum's `State`.
#[derive(Clone)]
pub(crate) struct AppState {
    pub schema: LandqlSchema,
    pub services: Services,
    pub opts: Arc<Options>,
    pub metrics: Arc<Metrics>,
    /// The SDL, rendered once (it is ~20 KiB and never changes while running).
    pub sdl: Arc<str>,
    /// Parsed documents by query text.
    pub documents: Arc<documents::Documents>,
    /// Query texts by hash (automatic persisted queries).
    pub persisted: Arc<persisted::Persisted>,
    /// Verifies the tokens of WebSocket `connection_init` payloads.
    pub auth: Auth,
}

/// The API's routes over `schema` (build it with [`schema()`] so that errors carry codes and
/// the limits hold) and the `services` it runs on (for `/readyz` and `/metrics`).
pub fn router(schema: LandqlSchema, services: Services, opts: Options) -> Router {
    let documents: Arc<documents::Documents> = Arc::default();
    let metrics = Arc::new(Metrics::new(services.clone(), documents.clone()));
    let limiter = Arc::new(ratelimit::Limiter::new(
        &opts.rate_limits,
        opts.anonymous_list_quota,
        metrics.clone(),
    ));
    let auth = auth::AuthState {
        auth: opts.auth.clone(),
        metrics: metrics.clone(),
        limiter: limiter.clone(),
    };
    let cors = cors(&opts.cors_origins);
    let trusted_proxies = Arc::new(opts.trusted_proxies.clone());
    let state = AppState {
        auth: opts.auth.clone(),
        sdl: Arc::from(schema.sdl()),
        schema,
        services,
        opts: Arc::new(opts),
        metrics: metrics.clone(),
        documents,
        persisted: Arc::default(),
    };
    Router::new()
        .route(
            "/graphql",
            get(graphql::get_or_upgrade)
                .post(graphql::post)
                .fallback(graphql::method_not_allowed),
        )
        // Only /graphql knows callers: health, readiness and metrics are never refused for
        // a token or a rate.
        .route_layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn_with_state(auth, auth::layer))
                .layer(axum::middleware::from_fn_with_state(
                    limiter,
                    ratelimit::layer,
                )),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::render))
        .merge(pages::routes())
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(axum::middleware::from_fn_with_state(
                    trusted_proxies,
                    client::layer,
                ))
                .layer(axum::middleware::from_fn_with_state(metrics, trace::layer))
                .layer(cors)
                .layer(
                    CompressionLayer::new()
                        .gzip(true)
                        .br(true)
                        .compress_when(DefaultPredicate::new().and(SizeAbove::new(COMPRESS_FROM))),
                ),
        )
}

/// A CORS origin for [`Options::cors_origins`]: `scheme://host[:port]`, as browsers send it
/// in `Origin` (no path, no trailing slash).
pub fn parse_origin(s: &str) -> Result<HeaderValue, String> {
    let s = s.trim();
    let host = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    if !host.is_some_and(|h| !h.is_empty() && !h.contains('/')) {
        return Err(format!(
            "`{s}` is not an origin: give scheme://host[:port], e.g. https://registry.example"
        ));
    }
    HeaderValue::from_str(s).map_err(|_| format!("`{s}` is not a valid header value"))
}

/// Smallest response body compressed, in bytes: below it compression saves less than a
/// packet and costs CPU on the hottest path (`property(id)` answers are ~1 KiB).
pub const COMPRESS_FROM: u64 = 1024;

/// CORS for browsers: any origin unless `origins` names some; GET, POST and OPTIONS; the
/// headers a GraphQL client sends; no credentials (tokens are headers, not cookies). The
/// headers a client may want to read — request id, Retry-After, WWW-Authenticate — exposed.
fn cors(origins: &[HeaderValue]) -> CorsLayer {
    use axum::http::{header, HeaderName, Method};
    let request_id = HeaderName::from_static("x-request-id");
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            request_id.clone(),
            HeaderName::from_static(graphql::READ_AFTER),
        ])
        .expose_headers([request_id, header::RETRY_AFTER, header::WWW_AUTHENTICATE])
        .max_age(Duration::from_secs(600));
    if origins.is_empty() {
        layer.allow_origin(AllowOrigin::any())
    } else {
        layer.allow_origin(AllowOrigin::list(origins.iter().cloned()))
    }
}

/// How long requests in flight may take to finish once shutdown has begun.
pub const DRAIN: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` completes, then lets requests in flight
/// finish (for at most [`DRAIN`]), and returns. Open WebSockets are not waited for: a
/// subscription never ends by itself, and its task ends with the runtime.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    let drain = DRAIN;
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    tokio::select! {
        r = server => r?,
        () = async move {
            let _ = stop_rx.wait_for(|s| *s).await;
            tokio::time::sleep(drain).await;
        } => tracing::warn!(?drain, "requests still running after the drain time; stopping anyway"),
    }
    Ok(())
}
