//! Connecting to the read model's databases and bringing them to the current schema.
//!
//! The primary takes the sync worker's writes; replicas (one per region) serve the API.
//! Migrations are embedded at compile time from `migrations/sql/`, so the binary carries
//! its schema and a fresh clone builds without a database (no checked `query!` macros).

use std::time::Duration;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};

/// The read model's migrations, embedded from `migrations/sql/`.
pub static MIGRATOR: Migrator = sqlx::migrate!("./sql");

/// How long to wait for a pooled connection before giving up: long enough to ride out a
/// busy moment, short enough that a request fails inside its deadline when the database
/// is gone.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why connecting or migrating failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL does not parse as a PostgreSQL connection URL.
    #[error("invalid database URL {url}: {source}")]
    InvalidUrl {
        /// The URL with any password masked.
        url: String,
        /// The parse error.
        source: sqlx::Error,
    },
    /// The database did not answer.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The URL with any password masked.
        url: String,
        /// The connection error.
        source: sqlx::Error,
    },
    /// Applying the migrations failed (the failed one is rolled back).
    #[error("migrating the read model failed: {0}")]
    Migrate(#[from] MigrateError),
}

/// A pooled connection idle for longer than this is pinged before it is handed out.
///
/// Pinging every connection on every acquire (sqlx's `test_before_acquire`) costs a round
/// trip per request: in the `property(id)` profile it was 10 % of the server's CPU, and it
/// doubled the statements PostgreSQL answered. A connection used within the last second
/// is alive unless the server died in that second; one that sat idle across a server
/// restart (which takes longer than this) is noticed and replaced before use.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// The pool settings landql uses; start from these to change one.
pub fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_WHEN_IDLE_FOR {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

/// Connects to the primary (`DATABASE_URL`), failing now if it cannot be reached.
pub async fn connect(url: &str) -> Result<PgPool, DbError> {
    connect_with(url, pool_options()).await
}

/// [`connect`] with explicit pool settings.
pub async fn connect_with(url: &str, options: PgPoolOptions) -> Result<PgPool, DbError> {
    open(url, options, parse_url(url)?).await
}

fn parse_url(url: &str) -> Result<PgConnectOptions, DbError> {
    url.parse().map_err(|source| DbError::InvalidUrl {
        url: redact(url),
        source,
    })
}

async fn open(
    url: &str,
    options: PgPoolOptions,
    connect_options: PgConnectOptions,
) -> Result<PgPool, DbError> {
    let pool = options
        .connect_with(connect_options)
        .await
        .map_err(|source| DbError::Connect {
            url: redact(url),
            source,
        })?;
    tracing::debug!(url = %redact(url), "connected");
    Ok(pool)
}

/// Connects a pool for answering API requests: the server cancels any statement on it that
/// runs longer than `statement_timeout`. The API gives up on a request at its time limit by
/// dropping the work in flight, but sqlx cannot cancel a statement whose future is dropped
/// (the connection drains it before its next use), so without this a query the client gave
/// up on would keep a backend busy until it finished.
pub async fn connect_for_requests(
    url: &str,
    statement_timeout: Duration,
) -> Result<PgPool, DbError> {
    let ms = statement_timeout.as_millis().max(1).to_string();
    let connect_options = parse_url(url)?.options([("statement_timeout", ms.as_str())]);
    open(url, pool_options(), connect_options).await
}

/// A pool like [`connect`]'s that connects only when first used: for a replica that may be
/// down when the process starts (its first statements fail until it answers).
pub fn connect_lazy(url: &str) -> Result<PgPool, DbError> {
    Ok(pool_options().connect_lazy_with(parse_url(url)?))
}

/// A pool like [`connect_lazy`]'s that gives up waiting for a connection after
/// `acquire_timeout`: for a reader with somewhere else to go when this database is down
/// (the index follower, which then reads another replica's change log).
pub fn connect_lazy_within(url: &str, acquire_timeout: Duration) -> Result<PgPool, DbError> {
    Ok(pool_options()
        .acquire_timeout(acquire_timeout)
        .connect_lazy_with(parse_url(url)?))
}

/// A pool like [`connect_for_requests`]'s that connects only when first used and gives up
/// waiting for a connection after `acquire_timeout`: for the replicas an API node routes
/// between, which may be down when the node starts and which it reads only while they
/// answer (a replica that cannot give a connection in time is read around, not waited for).
pub fn connect_lazy_for_requests(
    url: &str,
    statement_timeout: Duration,
    acquire_timeout: Duration,
) -> Result<PgPool, DbError> {
    let ms = statement_timeout.as_millis().max(1).to_string();
    let connect_options = parse_url(url)?.options([("statement_timeout", ms.as_str())]);
    Ok(pool_options()
        .acquire_timeout(acquire_timeout)
        .connect_lazy_with(connect_options))
}

/// Connects to each read replica (`--replica-url`), in order; fails on the first that
/// cannot be reached, naming it.
pub async fn connect_replicas<S: AsRef<str>>(urls: &[S]) -> Result<Vec<PgPool>, DbError> {
    let mut pools = Vec::with_capacity(urls.len());
    for url in urls {
        pools.push(connect(url.as_ref()).await?);
    }
    Ok(pools)
}

/// Brings the database to the current schema. Safe to run again (applied migrations are
/// skipped) and from several processes at once (sqlx holds an advisory lock meanwhile).
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// The URL with its password (in the user info or a `password=` parameter) replaced by
/// `***`, for errors and logs.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    let (authority, path) =
        before_query.split_at(before_query.find('/').unwrap_or(before_query.len()));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let mut redacted = format!("{scheme}://{authority}{path}");
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => param.to_string(),
            })
            .collect();
        redacted.push('?');
        redacted.push_str(&params.join("&"));
    }
    redacted
}

#[cfg(test)]
mod tests;
