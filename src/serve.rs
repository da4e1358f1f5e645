//! `landql serve`: one API node — the GraphQL API over the databases it reads (its region's
//! replica while that is close enough to the primary, else the nearest other replica that
//! is, else the primary: see `schema`'s routing), its own search index follower, and the
//! ledger for read-through and proofs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use migrations::sqlx;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// The ledger's HTTP API (read-through when the replica is stale, and proofs).
    #[arg(long, env = "LANDQL_LEDGER", default_value = "http://127.0.0.1:7050")]
    ledger: String,
    /// Address the API listens on.
    #[arg(long, env = "LANDQL_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Keep this node's search index here (rebuilt from PostgreSQL when missing, then kept
    /// in step with the change log). Without it, `search` is unavailable on this node.
    #[arg(long, env = "LANDQL_INDEX_DIR")]
    index_dir: Option<PathBuf>,
    /// The primary database: reads fall back to it, and the node waits there for the change
    /// log's NOTIFY (its search index follows its region's replica, or this without one).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// A hot standby of the primary and its region, as REGION=URL; repeat for several,
    /// nearest first (the environment variable takes a comma-separated list). Reads go to
    /// --region's replica while it is within the bound, else to the next one listed that
    /// is, else to the primary.
    #[arg(
        long = "replica-url",
        env = "LANDQL_REPLICA_URL",
        value_delimiter = ',',
        hide_env_values = true,
        value_parser = parse_replica
    )]
    replica_urls: Vec<(String, String)>,
    /// This node's region: the one whose replica it reads first. Default: the first
    /// --replica-url's.
    #[arg(long, env = "LANDQL_REGION")]
    region: Option<String>,
    /// A replica more than this many WAL bytes behind the primary is read around (as is
    /// one more than --freshness-blocks blocks behind it).
    #[arg(long, env = "LANDQL_REPLICA_MAX_LAG_BYTES", default_value_t = 16 << 20)]
    replica_max_lag_bytes: u64,
    /// Deepest query nesting accepted.
    #[arg(long, env = "LANDQL_MAX_DEPTH", default_value_t = 12)]
    max_depth: usize,
    /// Highest query complexity accepted (one per selected field).
    #[arg(long, env = "LANDQL_MAX_COMPLEXITY", default_value_t = 2000)]
    max_complexity: usize,
    /// Largest `first` of any connection for signed-in callers.
    #[arg(long, env = "LANDQL_MAX_PAGE", default_value_t = 100)]
    max_page: usize,
    /// Largest `first` for anonymous callers (capped at --max-page).
    #[arg(long, env = "LANDQL_MAX_PAGE_ANONYMOUS", default_value_t = 20)]
    max_page_anonymous: usize,
    /// Let anonymous callers page `properties` and `search` as deep as signed-in callers,
    /// for a registry published as open data. By default they read the first page only
    /// unless the filter names a village or a survey number (NARROW_OR_SIGN_IN beyond).
    #[arg(long, env = "LANDQL_ANONYMOUS_DEEP_LISTS")]
    anonymous_deep_lists: bool,
    /// Records with owner names (from `properties` and `search`) an anonymous client may
    /// list a day, or `off`; the allowance refills evenly over the day. Past it such lists
    /// answer DAILY_LIST_LIMIT. Off with --anonymous-deep-lists.
    #[arg(
        long,
        env = "LANDQL_ANONYMOUS_LIST_QUOTA",
        default_value = "5000",
        value_parser = parse_list_quota
    )]
    anonymous_list_quota: ListQuota,
    /// Verify bearer tokens signed with HS256 and this shared secret (at least 32 bytes).
    #[arg(
        long,
        env = "LANDQL_JWT_SECRET",
        hide_env_values = true,
        conflicts_with = "jwt_public_key"
    )]
    jwt_secret: Option<String>,
    /// Verify bearer tokens with this PEM public key; its type decides the algorithm: RSA →
    /// RS256, EC P-256 → ES256 (P-384 → ES384), Ed25519 → EdDSA. Without a key (and
    /// without --jwt-secret) every request is anonymous and any token is refused.
    #[arg(long, env = "LANDQL_JWT_PUBLIC_KEY")]
    jwt_public_key: Option<PathBuf>,
    /// Tokens must carry this audience (`aud`).
    #[arg(long, env = "LANDQL_JWT_AUDIENCE")]
    jwt_audience: Option<String>,
    /// Tokens must carry this issuer (`iss`).
    #[arg(long, env = "LANDQL_JWT_ISSUER")]
    jwt_issuer: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds (at most 300).
    #[arg(
        long,
        env = "LANDQL_JWT_LEEWAY_SECS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(0..=300)
    )]
    jwt_leeway_secs: u64,
    /// Requests per second per client for a role, as ROLE=N or ROLE=off; repeat for several
    /// (the environment variable takes a comma-separated list). Clients are token subjects,
    /// or addresses (IPv6 by /64) when anonymous; the burst equals the rate. Defaults:
    /// anonymous=20, citizen=50, verifier=200, registrar=1000, admin=1000.
    #[arg(
        long = "rate-limit",
        env = "LANDQL_RATE_LIMIT",
        value_delimiter = ',',
        value_parser = api::RateLimits::parse_setting
    )]
    rate_limits: Vec<(schema::Role, Option<std::num::NonZeroU32>)>,
    // The doc comment is also `--help` text, printed as written: no <…> around the URL.
    #[allow(rustdoc::bare_urls)]
    /// A browser origin allowed to call the API (CORS), e.g. https://registry.example; repeat
    /// for several (comma-separated in the environment variable). Default: any origin.
    #[arg(
        long = "cors-origin",
        env = "LANDQL_CORS_ORIGIN",
        value_delimiter = ',',
        value_parser = api::parse_origin
    )]
    cors_origins: Vec<api::HeaderValue>,
    /// A reverse proxy (address or CIDR range, e.g. 10.0.0.0/8) whose X-Forwarded-For names
    /// the client, for rate limits and logs; repeat for several (comma-separated in the
    /// environment variable). Default: none — the TCP peer is the client, and
    /// X-Forwarded-For is ignored, since any client can send one.
    #[arg(
        long = "trusted-proxy",
        env = "LANDQL_TRUSTED_PROXY",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<api::TrustedProxies>,
    /// Most operations in one batched request.
    #[arg(long, env = "LANDQL_MAX_BATCH", default_value_t = 10)]
    max_batch: usize,
    /// Largest request body, in bytes.
    #[arg(long, env = "LANDQL_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    max_body_bytes: usize,
    /// Most aliased fields in one query document.
    #[arg(long, env = "LANDQL_MAX_ALIASES", default_value_t = 30)]
    max_aliases: usize,
    /// Time limit of one request, in milliseconds; the database cancels a request's
    /// statements at the same bound.
    #[arg(long, env = "LANDQL_REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    request_timeout_ms: u64,
    /// FRESH reads serve the replica while it is at most this many blocks behind the chain…
    #[arg(long, env = "LANDQL_FRESHNESS_BLOCKS", default_value_t = 10)]
    freshness_blocks: u64,
    /// …and has been behind for at most this many milliseconds.
    #[arg(long, env = "LANDQL_FRESHNESS_MS", default_value_t = 5000)]
    freshness_ms: u64,
    /// Deadline of each ledger call made while answering a query, in milliseconds.
    #[arg(long, env = "LANDQL_LEDGER_TIMEOUT_MS", default_value_t = 2000)]
    ledger_timeout_ms: u64,
}

impl ServeArgs {
    fn options(&self) -> anyhow::Result<api::Options> {
        let rules = api::TokenRules {
            audience: self.jwt_audience.clone(),
            issuer: self.jwt_issuer.clone(),
            leeway: Duration::from_secs(self.jwt_leeway_secs),
        };
        let auth = match (&self.jwt_secret, &self.jwt_public_key) {
            (Some(secret), _) => {
                api::Auth::hs256(secret.as_bytes(), rules).context("--jwt-secret")?
            }
            (None, Some(path)) => {
                let pem = std::fs::read(path)
                    .with_context(|| format!("reading --jwt-public-key {}", path.display()))?;
                api::Auth::public_key_pem(&pem, rules)
                    .with_context(|| format!("--jwt-public-key {}", path.display()))?
            }
            (None, None) => api::Auth::disabled(),
        };
        let mut rate_limits = api::RateLimits::default();
        for (role, rate) in &self.rate_limits {
            rate_limits.set(*role, *rate);
        }
        Ok(api::Options {
            max_depth: self.max_depth,
            max_complexity: self.max_complexity,
            max_body_bytes: self.max_body_bytes,
            max_batch: self.max_batch,
            max_aliases: self.max_aliases,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            auth,
            rate_limits,
            anonymous_list_quota: if self.anonymous_deep_lists {
                None
            } else {
                self.anonymous_list_quota.0
            },
            cors_origins: self.cors_origins.clone(),
            trusted_proxies: self.trusted_proxies.iter().cloned().collect(),
        })
    }

    fn config(&self) -> schema::Config {
        schema::Config {
            freshness_blocks: self.freshness_blocks,
            freshness_time: Duration::from_millis(self.freshness_ms),
            ledger_timeout: Duration::from_millis(self.ledger_timeout_ms),
            routing: schema::Routing {
                max_lag_bytes: self.replica_max_lag_bytes,
                ..schema::Routing::default()
            },
            max_page: self.max_page,
            max_page_anonymous: self.max_page_anonymous,
            anonymous_deep_lists: self.anonymous_deep_lists,
            ..schema::Config::default()
        }
    }
}

/// `--replica-url REGION=URL`.
fn parse_replica(s: &str) -> Result<(String, String), String> {
    let Some((region, url)) = s.split_once('=').filter(|(r, _)| !r.contains(':')) else {
        return Err("write a replica as REGION=URL, e.g. AP=postgres://replica-ap/landql".into());
    };
    Ok((crate::dev::parse_region(region)?, url.trim().to_string()))
}

/// How long a statement waits for a replica's connection before it is read around.
const REPLICA_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);

/// The regions as configured: each named once, `--region` among them.
fn check_regions(replicas: &[(String, String)], region: Option<&str>) -> anyhow::Result<()> {
    let known: Vec<&str> = replicas.iter().map(|(r, _)| r.as_str()).collect();
    if let Some(r) = crate::dev::named_twice(known.iter().copied()) {
        anyhow::bail!("--replica-url names the region {r} twice; give each region one replica URL");
    }
    if let Some(home) = region {
        if !known.contains(&home) {
            anyhow::bail!(
                "--region {home} is not a region of any --replica-url (they are: {}); \
                 add --replica-url {home}=URL or name one of those",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            );
        }
    }
    Ok(())
}

/// The databases queries read: the primary, and each replica — a pool of its own, whose
/// statements the database cancels at the request time limit. A replica that answers must
/// be a hot standby (else the node refuses to start); one that does not answer yet is read
/// once it does.
async fn read_databases(
    args: &ServeArgs,
    statement_timeout: Duration,
) -> Result<schema::Databases, NotOpen> {
    let primary = migrations::connect_for_requests(&args.database_url, statement_timeout)
        .await
        .map_err(|e| NotOpen::Waiting(format!("the database is not reachable yet: {e}")))?;
    let mut replicas = Vec::with_capacity(args.replica_urls.len());
    for (region, url) in &args.replica_urls {
        let pool =
            migrations::connect_lazy_for_requests(url, statement_timeout, REPLICA_ACQUIRE_TIMEOUT)
                .map_err(|e| NotOpen::Fatal(anyhow::anyhow!("--replica-url {region}=…: {e}")))?;
        match sqlx::query_scalar::<_, bool>("SELECT pg_is_in_recovery()")
            .fetch_one(&pool)
            .await
        {
            Ok(true) => tracing::info!(region, "replica answers"),
            Ok(false) => {
                return Err(NotOpen::Fatal(anyhow::anyhow!(
                    "--replica-url {region}=… is not a hot standby (pg_is_in_recovery() is \
                     false): name a streaming replica of the primary, or leave it out to read \
                     the primary"
                )))
            }
            // The router reads it once it answers.
            Err(e) => tracing::warn!(region, error = %e, "replica unreachable at start"),
        }
        replicas.push(schema::Replica {
            region: region.clone(),
            pool,
        });
    }
    Ok(schema::Databases {
        primary,
        replicas,
        home: args.region.clone(),
    })
}

/// Why the node cannot open its database yet (it keeps waiting), or cannot at all (it exits).
enum NotOpen {
    /// Waiting, for this reason: what `/readyz` says.
    Waiting(String),
    /// A setting is wrong; waiting would not help.
    Fatal(anyhow::Error),
}

/// What the sync worker (or `landql migrate`) has to do before this node can serve.
const MIGRATE_HINT: &str = "waiting for the sync worker (or `landql migrate`) to migrate it";

/// The migrations this binary needs that the database has not applied, as
/// "version description"; `None` when the database has none of landql's schema.
async fn missing_migrations(pool: &migrations::PgPool) -> Result<Option<Vec<String>>, sqlx::Error> {
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(pool)
        .await?;
    if table.is_none() {
        return Ok(None);
    }
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await?;
    Ok(Some(
        migrations::MIGRATOR
            .iter()
            .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
            .map(|m| format!("{} {}", m.version, m.description))
            .collect(),
    ))
}

/// Connects to the primary and the read pool once the primary is reachable and carries
/// every migration this binary needs.
async fn open_database(
    args: &ServeArgs,
) -> Result<(migrations::PgPool, schema::Databases), NotOpen> {
    let unreachable = |e: migrations::DbError| match e {
        migrations::DbError::InvalidUrl { .. } => NotOpen::Fatal(e.into()),
        e => NotOpen::Waiting(format!("the database is not reachable yet: {e}")),
    };
    let primary = migrations::connect(&args.database_url)
        .await
        .map_err(unreachable)?;
    match missing_migrations(&primary).await {
        Ok(None) => {
            return Err(NotOpen::Waiting(format!(
                "the database has no landql schema yet; {MIGRATE_HINT}"
            )))
        }
        Ok(Some(missing)) if !missing.is_empty() => {
            return Err(NotOpen::Waiting(format!(
                "the database's landql schema lacks migration {}; {MIGRATE_HINT}",
                missing.join(", ")
            )))
        }
        Ok(Some(_)) => {}
        Err(e) => {
            return Err(NotOpen::Waiting(format!(
                "cannot read the database's schema version yet: {e}"
            )))
        }
    }
    let reads = read_databases(args, Duration::from_millis(args.request_timeout_ms)).await?;
    Ok((primary, reads))
}

/// First and longest pause between two attempts to open the database.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MOST: Duration = Duration::from_secs(5);

pub async fn run(
    args: ServeArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Settings first: a bad key or limit fails before anything connects.
    let opts = args.options()?;
    check_regions(&args.replica_urls, args.region.as_deref())?;
    let ledger = Arc::new(
        ledger::client::HttpLedger::new(
            &args.ledger,
            Duration::from_millis(args.ledger_timeout_ms),
        )
        .with_context(|| format!("ledger client for {}", args.ledger))?,
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let tx = stop_tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });

    // Listen at once: while the database is away or not migrated yet (the sync worker and
    // the API nodes are started together), /healthz says alive and /readyz says what the
    // node waits for, rather than the process exiting and being restarted in a loop.
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let gate = api::Startup::new("connecting to the database");
    let server = tokio::spawn(api::serve(
        listener,
        gate.router(),
        stopped(stop_rx.clone()),
    ));

    // The index is local: open it (or start an empty one) while the database is awaited.
    let index = match &args.index_dir {
        Some(dir) => {
            let d = dir.clone();
            Some(Arc::new(
                tokio::task::spawn_blocking(move || search_index::follower::open_or_reset(&d))
                    .await?
                    .with_context(|| format!("opening the search index in {}", dir.display()))?,
            ))
        }
        None => {
            tracing::warn!("no --index-dir: search is unavailable on this node");
            None
        }
    };

    let mut delay = RETRY_FIRST;
    let mut said = String::new();
    let opened = loop {
        let attempt = async {
            let (primary, reads) = open_database(&args).await?;
            let services = schema::Services::start_routed(
                reads,
                primary.clone(),
                ledger.clone(),
                index.clone(),
                args.config(),
            )
            .await
            .map_err(|e| NotOpen::Waiting(format!("starting the API services failed: {e}")))?;
            Ok((primary, services))
        };
        let outcome = tokio::select! {
            o = attempt => o,
            () = stopped(stop_rx.clone()) => break None,
        };
        match outcome {
            Ok(opened) => break Some(opened),
            Err(NotOpen::Fatal(e)) => {
                let _ = stop_tx.send(true);
                let _ = server.await;
                return Err(e);
            }
            Err(NotOpen::Waiting(reason)) => {
                if reason != said {
                    tracing::warn!(%reason, "not serving the API yet");
                    said.clone_from(&reason);
                }
                gate.waiting(reason);
            }
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stopped(stop_rx.clone()) => break None,
        }
        delay = (delay * 2).min(RETRY_MOST);
    };
    let Some((primary, services)) = opened else {
        server.await??;
        tracing::info!("stopped before the database was ready");
        return Ok(());
    };

    // This node's index follows the change log of its region's replica (so that what it
    // finds, that replica holds), woken by NOTIFY on the primary (standbys cannot LISTEN);
    // without replicas, the primary's. While the home replica is down it reads the next
    // replica's, then the primary's (the same change log), and goes home again when it
    // answers.
    let home = args
        .region
        .as_ref()
        .and_then(|r| args.replica_urls.iter().position(|(region, _)| region == r))
        .unwrap_or(0);
    let order = std::iter::once(home).chain((0..args.replica_urls.len()).filter(|i| *i != home));
    let mut sources = order
        .filter_map(|i| args.replica_urls.get(i))
        .map(|(region, url)| {
            migrations::connect_lazy_within(url, REPLICA_ACQUIRE_TIMEOUT)
                .with_context(|| format!("--replica-url {region}=… for the search index"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (follow, fallbacks, wake) = match sources.len() {
        0 => (primary, Vec::new(), None),
        _ => {
            let follow = sources.remove(0);
            sources.push(primary.clone());
            (follow, sources, Some(primary))
        }
    };
    let follower = index.map(|index| {
        tokio::spawn(search_index::follower::follow(
            index,
            follow,
            search_index::follower::FollowOptions {
                wake,
                fallbacks,
                ..Default::default()
            },
            stopped(stop_rx.clone()),
        ))
    });
    gate.open(api::router(
        api::schema(services.clone(), &opts),
        services,
        opts,
    ));
    tracing::info!(
        listen = %args.listen,
        ledger = %args.ledger,
        index = args.index_dir.as_ref().map(|d| d.display().to_string()),
        replicas = args.replica_urls.len(),
        region = args.region.as_deref(),
        "GraphQL API ready at http://{}/graphql",
        args.listen
    );

    let served = server.await?;
    let _ = stop_tx.send(true);
    if let Some(f) = follower {
        match f.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "search index follower stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "search index follower task failed"),
        }
    }
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// `--anonymous-list-quota`: records a day, `None` for `off`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ListQuota(pub(crate) Option<std::num::NonZeroU32>);

pub(crate) fn parse_list_quota(s: &str) -> Result<ListQuota, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("off") {
        return Ok(ListQuota(None));
    }
    match s.parse::<u32>().ok().and_then(std::num::NonZeroU32::new) {
        Some(n) => Ok(ListQuota(Some(n))),
        None => Err(format!(
            "`{s}` is not an allowance: give records a day (1 or more), or `off`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_are_region_and_url() {
        assert_eq!(
            parse_replica("AP=postgres://replica-ap/landql?sslmode=require"),
            Ok((
                "AP".to_string(),
                "postgres://replica-ap/landql?sslmode=require".to_string()
            ))
        );
        let bare = parse_replica("postgres://replica/landql?a=b").unwrap_err();
        assert!(bare.contains("REGION=URL"), "{bare}");
        let bad = parse_replica("A P=postgres://x").unwrap_err();
        assert!(bad.contains("not a region name"), "{bad}");
    }

    #[test]
    fn each_region_once_and_the_home_among_them() {
        let r = |names: &[&str]| -> Vec<(String, String)> {
            names
                .iter()
                .map(|n| (n.to_string(), format!("postgres://{n}")))
                .collect()
        };
        assert!(check_regions(&r(&["TS", "AP"]), Some("AP")).is_ok());
        assert!(check_regions(&r(&[]), None).is_ok());
        let twice = check_regions(&r(&["AP", "AP"]), None)
            .unwrap_err()
            .to_string();
        assert!(twice.contains("names the region AP twice"), "{twice}");
        let unknown = check_regions(&r(&["TS", "AP"]), Some("KA"))
            .unwrap_err()
            .to_string();
        assert!(
            unknown.contains("--region KA is not a region") && unknown.contains("TS, AP"),
            "{unknown}"
        );
        let none = check_regions(&r(&[]), Some("KA")).unwrap_err().to_string();
        assert!(none.contains("none"), "{none}");
    }

    #[test]
    fn list_quota_settings_parse() {
        assert_eq!(
            parse_list_quota("5000").map(|q| q.0),
            Ok(std::num::NonZeroU32::new(5000))
        );
        assert_eq!(parse_list_quota(" OFF ").map(|q| q.0), Ok(None));
        for bad in ["0", "-1", "lots", ""] {
            let e = parse_list_quota(bad).map(|q| q.0).unwrap_err();
            assert!(e.contains("records a day"), "{bad}: {e}");
        }
    }
}
