//! What the resolvers run on: the replica, the ledger, the search index, the caches, and the
//! node's background tasks (one change-log listener, one chain-height poller).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use ledger::client::Ledger;
use migrations::PgPool;
use search_index::SearchIndex;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::cache::Caches;
use crate::changes::{self, Change};
use crate::db::Db;
use crate::freshness::Freshness;
use crate::instruments::Instruments;
use crate::routing::{self, DatabaseState, Databases, ReplicaLag, Routing};

/// Tunables of the API node's policies. Defaults are design/api.md's.
#[derive(Debug, Clone)]
pub struct Config {
    /// FRESH reads serve the replica while it is at most this many blocks behind…
    pub freshness_blocks: u64,
    /// …and has been behind for at most this long.
    pub freshness_time: Duration,
    /// Deadline of every ledger call made while answering a query.
    pub ledger_timeout: Duration,
    /// How often the chain height is polled.
    pub chain_poll: Duration,
    /// Largest `first` of any connection, for signed-in callers.
    pub max_page: usize,
    /// Largest `first` for anonymous callers (design/api.md: the tightest page limits);
    /// never more than `max_page`.
    pub max_page_anonymous: usize,
    /// Let anonymous callers page `properties` and `search` as deep as signed-in callers
    /// (a registry published as open data); by default they read the first page only
    /// unless they narrow to a village or survey number (`list_depth`).
    pub anonymous_deep_lists: bool,
    /// Property cache size and time to live (a bound on staleness should an invalidation be
    /// missed, e.g. while the listener reconnects).
    pub property_cache_capacity: u64,
    pub property_cache_ttl: Duration,
    /// How replicas are measured and when one is routed around (its block bound is
    /// `freshness_blocks`).
    pub routing: Routing,
    /// How long a request that must read after some blocks waits for a database that has
    /// applied them before reading the ledger.
    pub read_after_wait: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            freshness_blocks: 10,
            freshness_time: Duration::from_secs(5),
            ledger_timeout: Duration::from_secs(2),
            chain_poll: Duration::from_millis(250),
            max_page: 100,
            max_page_anonymous: 20,
            anonymous_deep_lists: false,
            property_cache_capacity: 10_000,
            property_cache_ttl: Duration::from_secs(10),
            routing: Routing::default(),
            read_after_wait: Duration::from_secs(1),
        }
    }
}

/// Everything the schema's resolvers use; cheap to clone. The background tasks stop when the
/// last clone is dropped.
#[derive(Clone)]
pub struct Services(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub db: Db,
    pub ledger: Arc<dyn Ledger>,
    pub index: Option<Arc<SearchIndex>>,
    pub config: Config,
    pub freshness: Freshness,
    pub caches: Caches,
    /// Changes as the listener reads them from the change log, fanned out to subscribers.
    pub changes: broadcast::Sender<Arc<Change>>,
    /// The last change-log seq the listener has applied (invalidations included).
    pub seq: AtomicI64,
    pub has_indexing_errors: AtomicBool,
    /// Searches running at once. A search is CPU-bound work on a blocking thread; without a
    /// bound, a burst queues hundreds of threads (each holding its candidates) and memory
    /// and latency grow for everyone. Waiting here is asynchronous and cheap.
    pub search_slots: tokio::sync::Semaphore,
    /// Whether the listener is connected (otherwise caches may miss invalidations).
    pub listening: AtomicBool,
    pub instruments: Arc<Instruments>,
    /// The database the listener waits on (the primary, or `db` itself).
    primary: PgPool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for t in self
            .tasks
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}

/// Hit counts of one cache.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: u64,
}

/// One channel's lag, for metrics.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelLag {
    pub channel: String,
    pub indexed_block: Option<u64>,
    pub chain_height: Option<u64>,
    pub lag_blocks: Option<u64>,
    pub lag_seconds: Option<f64>,
}

/// One connection pool, for metrics.
#[derive(Debug, Clone, Serialize)]
pub struct PoolStats {
    /// `requests` (resolvers' statements) or `background` (the change-log listener's).
    pub name: &'static str,
    pub open: u32,
    pub idle: usize,
    pub max: u32,
    /// Statements waiting for a connection, where the node can tell: resolver statements
    /// in flight beyond the connections in use.
    pub waiters: Option<u64>,
}

/// The search index as the node's follower keeps it, for metrics.
#[derive(Debug, Clone, Serialize)]
pub struct IndexStats {
    /// Change-log seq of the index's last commit.
    pub seq: Option<i64>,
    pub documents: u64,
    pub errors: u64,
    /// Bytes of the index's files on disk.
    pub disk_bytes: u64,
}

/// Counters for `/metrics`, read at scrape time.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub property_cache: CacheStats,
    pub location_cache: CacheStats,
    pub search_cache: CacheStats,
    pub sql_statements: u64,
    pub pools: Vec<PoolStats>,
    pub change_log_seq: i64,
    pub subscribers: usize,
    pub channels: Vec<ChannelLag>,
    /// Whether the last poll of the ledger's chain heights was answered.
    pub ledger_up: bool,
    pub index: Option<IndexStats>,
}

/// One readiness check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub ok: bool,
    pub detail: String,
}

/// `/readyz`: whether this node should get traffic, and why not.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub database: Check,
    pub index: Check,
    pub lag: Check,
}

impl Services {
    /// Starts the node's listener and poller over an open replica pool, a ledger client and
    /// (when this node searches) its index. Returns once the first checkpoints and the
    /// change-log position are read, so that the first answers already know their freshness.
    pub async fn start(
        db: PgPool,
        ledger: Arc<dyn Ledger>,
        index: Option<Arc<SearchIndex>>,
        config: Config,
    ) -> Result<Services, sqlx::Error> {
        let wake = db.clone();
        Self::start_routed(Databases::primary_only(db), wake, ledger, index, config).await
    }

    /// As [`Services::start`], for a node that reads `dbs` (replicas, routed; see
    /// `routing`) and waits for the change log's NOTIFY on `wake`, a connection to the
    /// primary (NOTIFY is not replicated). The change log is read from the database reads go
    /// to, so a change is acted on (caches dropped, subscribers told) once that database has
    /// it, never before.
    pub async fn start_routed(
        dbs: Databases,
        wake: PgPool,
        ledger: Arc<dyn Ledger>,
        index: Option<Arc<SearchIndex>>,
        config: Config,
    ) -> Result<Services, sqlx::Error> {
        let (changes, _) = broadcast::channel(4096);
        let chain_expiry = config.ledger_timeout + config.chain_poll * 4;
        let instruments = Arc::new(Instruments::new());
        let routing = Routing {
            max_lag_blocks: config.freshness_blocks,
            ..config.routing.clone()
        };
        let (router, monitor) = routing::start(dbs, routing).await;
        let primary = wake;
        let inner = Arc::new(Inner {
            db: Db::new(router, Arc::clone(&instruments)),
            instruments,
            primary: primary.clone(),
            ledger,
            index,
            freshness: Freshness::new(config.freshness_blocks, config.freshness_time, chain_expiry),
            caches: Caches::new(config.property_cache_capacity, config.property_cache_ttl),
            config,
            changes,
            seq: AtomicI64::new(0),
            has_indexing_errors: AtomicBool::new(false),
            search_slots: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
            listening: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
        });
        let start = inner.db.last_seq().await.map_err(into_sqlx)?;
        inner.seq.store(start, Ordering::SeqCst);
        changes::refresh(&inner).await.map_err(into_sqlx)?;
        let weak = Arc::downgrade(&inner);
        let listener = tokio::spawn(changes::listen(weak.clone(), primary));
        let poller = tokio::spawn(poll_chain(weak));
        inner
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend([listener, poller].into_iter().chain(monitor));
        Ok(Services(inner))
    }

    /// Database reachable, index open, replica within the freshness bound.
    pub async fn readiness(&self) -> Readiness {
        let i = &self.0;
        let database = match tokio::time::timeout(Duration::from_secs(2), i.db.ping()).await {
            Ok(Ok(())) => Check {
                ok: true,
                detail: "reachable".into(),
            },
            Ok(Err(e)) => Check {
                ok: false,
                detail: format!("not reachable: {e}"),
            },
            Err(_) => Check {
                ok: false,
                detail: "no answer within 2 s".into(),
            },
        };
        let index = match &i.index {
            // Until a rebuild (and its merge) ends, searches see a partial index and the
            // merge competes with requests for the CPU and the disk.
            Some(ix) if ix.is_rebuilding() => Check {
                ok: false,
                detail: format!(
                    "rebuilding from PostgreSQL, {} documents searchable so far",
                    ix.num_docs()
                ),
            },
            Some(ix) => Check {
                ok: true,
                detail: format!("open, {} documents", ix.num_docs()),
            },
            // A node without an index serves everything but `search`; that is configuration,
            // not a fault.
            None => Check {
                ok: true,
                detail: "search disabled on this node (no --index-dir)".into(),
            },
        };
        let views = i.freshness.all();
        let stale: Vec<String> = views
            .iter()
            .filter(|v| v.stale)
            .map(|v| match v.lag_blocks {
                Some(b) => format!("{} is {b} blocks behind", v.channel),
                None => format!("{}: chain height unknown (ledger unreachable)", v.channel),
            })
            .collect();
        let lag = if views.is_empty() {
            Check {
                ok: false,
                detail: "no channel synced yet".into(),
            }
        } else if stale.is_empty() {
            Check {
                ok: true,
                detail: "every channel within the freshness bound".into(),
            }
        } else {
            Check {
                ok: false,
                detail: stale.join("; "),
            }
        };
        Readiness {
            ready: database.ok && index.ok && lag.ok,
            database,
            index,
            lag,
        }
    }

    /// The databases this node may read, in order of preference, and which one it reads.
    pub fn databases(&self) -> Vec<DatabaseState> {
        self.0.db.router().states()
    }

    /// Counters for metrics.
    pub fn stats(&self) -> Stats {
        let i = &self.0;
        let pool = i.db.raw_pool();
        let in_use = i64::from(pool.size()) - pool.num_idle() as i64;
        let waiting = i.instruments.statements_in_flight() - in_use;
        let mut pools = vec![PoolStats {
            name: "requests",
            open: pool.size(),
            idle: pool.num_idle(),
            max: pool.options().get_max_connections(),
            waiters: Some(u64::try_from(waiting).unwrap_or(0)),
        }];
        // The same pool when the node reads the primary itself (`Services::start`): sqlx
        // pools share their options with their clones, so one address is one pool.
        if !std::ptr::eq(i.primary.options(), pool.options()) {
            pools.push(PoolStats {
                name: "background",
                open: i.primary.size(),
                idle: i.primary.num_idle(),
                max: i.primary.options().get_max_connections(),
                waiters: None,
            });
        }
        Stats {
            property_cache: i.caches.properties.stats(),
            location_cache: i.caches.locations.stats(),
            search_cache: i.caches.searches.stats(),
            sql_statements: i.db.statements(),
            pools,
            ledger_up: i.instruments.ledger_up(),
            index: i.index.as_ref().map(|ix| {
                let a = ix.activity();
                IndexStats {
                    seq: a.seq,
                    documents: a.documents,
                    errors: a.errors,
                    disk_bytes: a.disk_bytes,
                }
            }),
            change_log_seq: i.seq.load(Ordering::Relaxed),
            subscribers: i.changes.receiver_count(),
            channels: i
                .freshness
                .all()
                .into_iter()
                .map(|v| ChannelLag {
                    channel: v.channel,
                    indexed_block: v.indexed_block,
                    chain_height: v.chain_height,
                    lag_blocks: v.lag_blocks,
                    lag_seconds: v.lag_seconds,
                })
                .collect(),
        }
    }
}

impl Services {
    /// Adds the schema's own series (reads by source, search and verification, statement
    /// times) and the index follower's commit times to the API node's `registry`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.0.instruments.register(registry);
        if let Some(ix) = &self.0.index {
            registry.register(
                "index_commit_duration_seconds",
                "Time of each search index commit by this node's follower",
                ix.commit_seconds(),
            );
        }
    }

    /// How far the database this node reads now trails the primary; `None` when it is not
    /// a hot standby (or not one that answers). The router's monitor measured it.
    pub fn replica_lag(&self) -> Option<ReplicaLag> {
        self.0.db.router().reading_lag()
    }
}

fn into_sqlx(e: crate::db::DbError) -> sqlx::Error {
    match e {
        crate::db::DbError::Sql(e) => e,
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

/// Polls the chain height of every channel. A failed poll leaves the old heights, which
/// expire (and make every channel stale) once the ledger has been silent for a while.
async fn poll_chain(inner: Weak<Inner>) {
    loop {
        let Some(i) = inner.upgrade() else { return };
        let every = i.config.chain_poll;
        match tokio::time::timeout(i.config.ledger_timeout, i.ledger.info()).await {
            Ok(Ok(info)) => {
                let heights: Vec<(String, u64)> = info
                    .channels
                    .iter()
                    .map(|c| (c.name.clone(), c.height))
                    .collect();
                i.freshness.set_chain(&heights);
                i.instruments.set_ledger_up(true);
            }
            Ok(Err(e)) => {
                i.instruments.set_ledger_up(false);
                tracing::debug!(error = %e, "chain height poll failed")
            }
            Err(_) => {
                i.instruments.set_ledger_up(false);
                tracing::debug!("chain height poll timed out")
            }
        }
        drop(i);
        tokio::time::sleep(every).await;
    }
}
