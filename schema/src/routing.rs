//! Which database answers a read: the node's home replica while it is close enough to the
//! primary, else the nearest other replica that is, else the primary, else whatever still
//! answers (its answers marked stale by the freshness policy).
//!
//! Scaling out rests on PostgreSQL's own streaming replication: a replica here is a hot
//! standby of the primary, nothing home-made. What this module adds is measuring and
//! choosing. A monitor task asks every database, every [`Routing::probe`], how far it
//! trails the primary — in WAL bytes (the replica's replay position against the primary's
//! current one) and in blocks (the sync worker's checkpoints on the replica against those
//! on the primary, summed over channels) — and recomputes the choice. A statement that
//! finds its database gone (the connection refused or cut) takes the database out at once
//! and runs again on the next choice, so the request that found out does not fail; the
//! database comes back when a probe finds it answering and within the bound again.
//!
//! The choice is one atomic load on the request path; everything else happens in the
//! monitor.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use migrations::PgPool;
use serde::Serialize;

/// A hot standby of the primary, read by the nodes of `region`.
#[derive(Debug, Clone)]
pub struct Replica {
    /// The region's name, as operators write it (e.g. `AP`).
    pub region: String,
    pub pool: PgPool,
}

/// The databases a node reads, for [`Services::start_routed`](crate::Services::start_routed).
#[derive(Debug, Clone)]
pub struct Databases {
    /// Where the sync worker writes; the last resort among the databases, and where the
    /// change-log listener waits for NOTIFY (which standbys do not replay).
    pub primary: PgPool,
    /// The replicas, nearest first: when the home replica is out, the first other one
    /// within the bound takes over.
    pub replicas: Vec<Replica>,
    /// The region of this node; its replica is read first. `None`: the first replica.
    pub home: Option<String>,
}

impl Databases {
    /// A node that reads the primary only.
    pub fn primary_only(primary: PgPool) -> Self {
        Databases {
            primary,
            replicas: Vec::new(),
            home: None,
        }
    }
}

/// How the monitor measures and bounds the replicas.
#[derive(Debug, Clone)]
pub struct Routing {
    /// How often every database is asked where it stands.
    pub probe: Duration,
    /// A probe unanswered for this long counts as a database gone.
    pub probe_timeout: Duration,
    /// A replica further behind the primary than this many WAL bytes is routed around…
    pub max_lag_bytes: u64,
    /// …or than this many blocks (summed over channels).
    pub max_lag_blocks: u64,
}

impl Default for Routing {
    fn default() -> Self {
        Routing {
            probe: Duration::from_millis(200),
            probe_timeout: Duration::from_millis(500),
            max_lag_bytes: 16 << 20,
            max_lag_blocks: 10,
        }
    }
}

/// What a database is to this node: where the sync worker writes, or a hot standby of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, async_graphql::Enum)]
pub enum DatabaseRole {
    Primary,
    Replica,
}

/// One database the router may choose.
pub(crate) struct Member {
    pub name: String,
    pub role: DatabaseRole,
    pub region: Option<String>,
    pub pool: PgPool,
    /// Answering, as far as the last probe or statement knows.
    up: AtomicBool,
    /// WAL bytes not replayed yet; -1 unknown (the primary did not answer), 0 for the primary.
    lag_bytes: AtomicI64,
    /// Blocks not applied yet, summed over channels; -1 unknown.
    lag_blocks: AtomicI64,
    /// A standby's own view, for when the primary does not answer: WAL bytes received and
    /// not replayed; -1 before the first probe.
    unreplayed: AtomicI64,
    /// A standby's age of its last replayed transaction while WAL waits to be replayed (0
    /// when everything received is replayed), in ms; -1 before the first probe.
    replay_age_ms: AtomicI64,
}

/// How far a hot standby trails the primary, as the metrics show it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ReplicaLag {
    /// WAL bytes the standby has not replayed: against the primary's current position when
    /// the primary answers, else against what the standby has received.
    pub bytes: f64,
    /// Age of the last replayed transaction while WAL is waiting to be replayed; 0 when
    /// everything received is replayed.
    pub seconds: f64,
}

/// A database's state, as `_meta` and the metrics show it.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseState {
    pub name: String,
    pub role: DatabaseRole,
    pub region: Option<String>,
    pub up: bool,
    pub lag_bytes: Option<u64>,
    pub lag_blocks: Option<u64>,
    /// Answering and within the bound (the primary: answering).
    pub usable: bool,
    /// The one reads go to now.
    pub reading: bool,
}

/// Which database a statement ran on: an index into the router's members, carried by the
/// rows it read so that provenance can name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Served(pub u8);

pub(crate) struct Router {
    /// The primary first, then the replicas in the order given.
    members: Vec<Member>,
    /// Members in the order they are preferred: home, the other replicas, the primary.
    preference: Vec<usize>,
    current: AtomicUsize,
    routing: Routing,
}

/// A statement's error that says the database is gone, not that the statement is wrong:
/// worth the next database, and the database is out until a probe finds it again.
pub(crate) fn is_unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // 08: connection exception; 57P01–57P03: the server is shutting down, crashed or
        // starting; 53300: too many connections.
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P") || c == "53300"),
        _ => false,
    }
}

impl Router {
    pub fn new(dbs: Databases, routing: Routing) -> Self {
        let mut members = vec![Member::new(
            "primary".into(),
            DatabaseRole::Primary,
            None,
            dbs.primary,
        )];
        for r in dbs.replicas {
            members.push(Member::new(
                format!("replica {}", r.region),
                DatabaseRole::Replica,
                Some(r.region),
                r.pool,
            ));
        }
        let home = dbs
            .home
            .as_deref()
            .and_then(|h| members.iter().position(|m| m.region.as_deref() == Some(h)))
            .or((members.len() > 1).then_some(1));
        let mut preference: Vec<usize> = home.into_iter().collect();
        preference.extend((1..members.len()).filter(|i| Some(*i) != home));
        preference.push(0);
        let router = Router {
            current: AtomicUsize::new(preference[0]),
            members,
            preference,
            routing,
        };
        router.choose();
        router
    }

    /// The database reads go to now; for a request that must read after some blocks, the
    /// one its plan chose (`read_after`).
    pub fn pick(&self) -> (Served, &PgPool) {
        if let Some(served) = crate::read_after::current().and_then(|p| p.database) {
            return (served, &self.member(served).pool);
        }
        let i = self.current.load(Ordering::Relaxed);
        (Served(i as u8), &self.members[i].pool)
    }

    /// The databases worth asking for a read-after, in order: the one reads go to now, the
    /// other usable ones by preference, the primary (when it answers).
    pub fn candidates(&self) -> Vec<Served> {
        let current = self.current.load(Ordering::Relaxed);
        let mut out = vec![current];
        out.extend(
            self.preference
                .iter()
                .copied()
                .filter(|&i| i != current && self.usable(&self.members[i])),
        );
        if !out.contains(&0) && self.members[0].up.load(Ordering::Relaxed) {
            out.push(0);
        }
        out.into_iter().map(|i| Served(i as u8)).collect()
    }

    /// The primary, when it answers.
    pub fn primary_if_up(&self) -> Option<Served> {
        self.members[0]
            .up
            .load(Ordering::Relaxed)
            .then_some(Served(0))
    }

    /// A database's checkpoints now: (channel, last block applied).
    pub async fn checkpoints(&self, served: Served) -> Result<Vec<(String, i64)>, sqlx::Error> {
        let m = self.member(served);
        tokio::time::timeout(
            self.routing.probe_timeout,
            sqlx::query_as("SELECT channel, block_number FROM checkpoints").fetch_all(&m.pool),
        )
        .await
        .unwrap_or(Err(sqlx::Error::PoolTimedOut))
    }

    pub fn member(&self, served: Served) -> &Member {
        &self.members[usize::from(served.0).min(self.members.len() - 1)]
    }

    /// The primary, when reads go elsewhere now and it answers.
    pub fn primary_elsewhere(&self) -> Option<(Served, &PgPool)> {
        let primary = &self.members[0];
        (self.current.load(Ordering::Relaxed) != 0 && primary.up.load(Ordering::Relaxed))
            .then_some((Served(0), &primary.pool))
    }

    /// The region whose replica is read first (`None`: the node reads the primary only).
    pub fn home(&self) -> Option<&str> {
        self.members[self.preference[0]].region.as_deref()
    }

    /// Whether there is more than one database to choose from.
    pub fn routes(&self) -> bool {
        self.members.len() > 1
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// [`pick`](Self::pick), but never a database in `tried` (a bit per member) while
    /// another answers: where a statement runs again after a failure.
    pub fn pick_except(&self, tried: u64) -> (Served, &PgPool) {
        let (served, pool) = self.pick();
        let untried = |i: usize| tried & (1u64 << i.min(63)) == 0;
        if untried(usize::from(served.0)) {
            return (served, pool);
        }
        let next = self
            .preference
            .iter()
            .copied()
            .find(|&i| untried(i) && self.members[i].up.load(Ordering::Relaxed))
            .or_else(|| self.preference.iter().copied().find(|&i| untried(i)));
        match next {
            Some(i) => (Served(i as u8), &self.members[i].pool),
            None => (served, pool),
        }
    }

    /// A statement on `served` failed with `e`: answers whether to run it again on another
    /// database. When `e` says the database is gone it is also taken out at once. A pool
    /// that gave no connection in time is only skipped for this statement: a busy pool
    /// times out as a dead server does (sqlx retries a refused connection until then), and
    /// taking busy databases out would push their load onto the next until the primary
    /// carries everything; the monitor's probe decides whether it is gone.
    pub fn failed(&self, served: Served, e: &sqlx::Error) -> bool {
        if !self.routes() {
            return false;
        }
        if matches!(e, sqlx::Error::PoolTimedOut) {
            return true;
        }
        if !is_unreachable(e) {
            return false;
        }
        let m = self.member(served);
        if m.up.swap(false, Ordering::Relaxed) {
            tracing::warn!(database = %m.name, error = %e, "database gone; reading elsewhere");
        }
        self.choose();
        true
    }

    fn usable(&self, m: &Member) -> bool {
        if !m.up.load(Ordering::Relaxed) {
            return false;
        }
        let (bytes, blocks) = (
            m.lag_bytes.load(Ordering::Relaxed),
            m.lag_blocks.load(Ordering::Relaxed),
        );
        // Unknown lag (the primary not answering) does not rule a replica out: its answers
        // are then judged against the chain by the freshness policy.
        (bytes < 0 || bytes as u64 <= self.routing.max_lag_bytes)
            && (blocks < 0 || blocks as u64 <= self.routing.max_lag_blocks)
    }

    /// Recomputes the choice: the first usable database in order of preference, else the
    /// first one answering (the home replica first), else the home replica.
    fn choose(&self) {
        let chosen = self
            .preference
            .iter()
            .copied()
            .find(|&i| self.usable(&self.members[i]))
            .or_else(|| {
                self.preference
                    .iter()
                    .copied()
                    .find(|&i| self.members[i].up.load(Ordering::Relaxed))
            })
            .unwrap_or(self.preference[0]);
        let before = self.current.swap(chosen, Ordering::Relaxed);
        if before != chosen {
            tracing::info!(
                from = %self.members[before].name,
                to = %self.members[chosen].name,
                "reads moved"
            );
        }
    }

    /// How far the database reads go to now trails the primary, when it is a hot standby
    /// that answers and has been probed; from the monitor's last probe, no query.
    pub fn reading_lag(&self) -> Option<ReplicaLag> {
        let m = &self.members[self.current.load(Ordering::Relaxed)];
        let age = m.replay_age_ms.load(Ordering::Relaxed);
        if m.role != DatabaseRole::Replica || !m.up.load(Ordering::Relaxed) || age < 0 {
            return None;
        }
        let bytes = match m.lag_bytes.load(Ordering::Relaxed) {
            b if b >= 0 => b,
            _ => m.unreplayed.load(Ordering::Relaxed).max(0),
        };
        Some(ReplicaLag {
            bytes: bytes as f64,
            seconds: age as f64 / 1000.0,
        })
    }

    /// Every database's state, in order of preference.
    pub fn states(&self) -> Vec<DatabaseState> {
        let current = self.current.load(Ordering::Relaxed);
        self.preference
            .iter()
            .map(|&i| {
                let m = &self.members[i];
                let known = |v: i64| u64::try_from(v).ok();
                DatabaseState {
                    name: m.name.clone(),
                    role: m.role,
                    region: m.region.clone(),
                    up: m.up.load(Ordering::Relaxed),
                    lag_bytes: known(m.lag_bytes.load(Ordering::Relaxed)),
                    lag_blocks: known(m.lag_blocks.load(Ordering::Relaxed)),
                    usable: self.usable(m),
                    reading: i == current,
                }
            })
            .collect()
    }

    /// Asks every database where it stands, then chooses again.
    async fn probe_all(&self) {
        let probes = self
            .members
            .iter()
            .map(|m| tokio::time::timeout(self.routing.probe_timeout, position(&m.pool, m.role)));
        let answers = futures::future::join_all(probes).await;
        let primary = match &answers[0] {
            Ok(Ok(p)) => Some(p.clone()),
            _ => None,
        };
        for (m, answer) in self.members.iter().zip(&answers) {
            match answer {
                Ok(Ok(p)) => {
                    let (bytes, blocks) = match (&primary, m.role) {
                        (_, DatabaseRole::Primary) => (0, 0),
                        (Some(head), DatabaseRole::Replica) => (
                            head.lsn.saturating_sub(p.lsn) as i64,
                            blocks_behind(&head.checkpoints, &p.checkpoints) as i64,
                        ),
                        (None, DatabaseRole::Replica) => (-1, -1),
                    };
                    m.lag_bytes.store(bytes, Ordering::Relaxed);
                    m.lag_blocks.store(blocks, Ordering::Relaxed);
                    m.unreplayed.store(p.unreplayed as i64, Ordering::Relaxed);
                    m.replay_age_ms
                        .store((p.replay_age * 1000.0) as i64, Ordering::Relaxed);
                    if !m.up.swap(true, Ordering::Relaxed) {
                        tracing::info!(database = %m.name, lag_bytes = bytes, lag_blocks = blocks, "database answers again");
                    }
                }
                Ok(Err(e)) => {
                    if m.up.swap(false, Ordering::Relaxed) {
                        tracing::warn!(database = %m.name, error = %e, "database probe failed");
                    }
                }
                Err(_) => {
                    if m.up.swap(false, Ordering::Relaxed) {
                        tracing::warn!(database = %m.name, "database probe unanswered");
                    }
                }
            }
        }
        self.choose();
    }
}

impl Member {
    fn new(name: String, role: DatabaseRole, region: Option<String>, pool: PgPool) -> Self {
        Member {
            name,
            role,
            region,
            pool,
            up: AtomicBool::new(true),
            lag_bytes: AtomicI64::new(if role == DatabaseRole::Primary { 0 } else { -1 }),
            lag_blocks: AtomicI64::new(if role == DatabaseRole::Primary { 0 } else { -1 }),
            unreplayed: AtomicI64::new(-1),
            replay_age_ms: AtomicI64::new(-1),
        }
    }
}

/// Where a database stands: its WAL position (replayed, for a standby) and checkpoints.
#[derive(Debug, Clone)]
struct Position {
    lsn: u64,
    checkpoints: Vec<(String, i64)>,
    /// A standby's WAL received and not replayed, in bytes (0 for the primary).
    unreplayed: u64,
    /// A standby's age of the last replayed transaction while WAL waits, in seconds.
    replay_age: f64,
}

/// One round trip: the WAL figures, repeated on each checkpoint's row (one row with no
/// checkpoint before the sync worker's first batch).
async fn position(pool: &PgPool, role: DatabaseRole) -> Result<Position, sqlx::Error> {
    let sql = match role {
        DatabaseRole::Primary => {
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8, pg_is_in_recovery(), \
             0::float8, 0::float8, c.channel, c.block_number \
             FROM (SELECT) AS now LEFT JOIN checkpoints c ON true"
        }
        DatabaseRole::Replica => {
            "SELECT pg_wal_lsn_diff(coalesce(pg_last_wal_replay_lsn(), '0/0'), '0/0')::float8, \
             pg_is_in_recovery(), \
             coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::float8, \
             CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() \
                  THEN 0 \
                  ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) \
             END::float8, \
             c.channel, c.block_number \
             FROM (SELECT) AS now LEFT JOIN checkpoints c ON true"
        }
    };
    type Row = (f64, bool, f64, f64, Option<String>, Option<i64>);
    let rows: Vec<Row> = sqlx::query_as(sql).fetch_all(pool).await?;
    let Some(&(lsn, standby, unreplayed, replay_age, _, _)) = rows.first() else {
        return Err(sqlx::Error::RowNotFound);
    };
    if role == DatabaseRole::Replica && !standby {
        // Promoted, or never a standby: its data no longer follows the primary.
        return Err(sqlx::Error::Protocol(
            "not a hot standby (pg_is_in_recovery() is false)".into(),
        ));
    }
    Ok(Position {
        lsn: lsn as u64,
        checkpoints: rows
            .into_iter()
            .filter_map(|(.., channel, block)| Some((channel?, block?)))
            .collect(),
        unreplayed: unreplayed.max(0.0) as u64,
        replay_age: replay_age.max(0.0),
    })
}

/// Blocks the primary has applied that the replica has not, summed over channels.
fn blocks_behind(primary: &[(String, i64)], replica: &[(String, i64)]) -> u64 {
    primary
        .iter()
        .map(|(channel, head)| {
            let at = replica
                .iter()
                .find(|(c, _)| c == channel)
                .map_or(-1, |(_, b)| *b);
            u64::try_from(head - at).unwrap_or(0)
        })
        .sum()
}

/// Probes every database every `routing.probe` until the router is dropped.
pub(crate) async fn monitor(router: Weak<Router>) {
    loop {
        let Some(r) = router.upgrade() else { return };
        let every = r.routing.probe;
        r.probe_all().await;
        drop(r);
        tokio::time::sleep(every).await;
    }
}

/// Keeps `router` in an `Arc` the monitor can watch.
/// Measures every database once, so the first reads already go where they should, then
/// leaves the monitor running (when there is a choice to make).
pub(crate) async fn start(
    dbs: Databases,
    routing: Routing,
) -> (Arc<Router>, Option<tokio::task::JoinHandle<()>>) {
    let router = Arc::new(Router::new(dbs, routing));
    if !router.routes() {
        return (router, None);
    }
    router.probe_all().await;
    let task = tokio::spawn(monitor(Arc::downgrade(&router)));
    (router, Some(task))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lazy_pool() -> PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://nobody@localhost/none")
            .expect("a lazy pool")
    }

    fn router(home: Option<&str>) -> Router {
        Router::new(
            Databases {
                primary: lazy_pool(),
                replicas: ["TS", "AP", "KA"]
                    .iter()
                    .map(|r| Replica {
                        region: r.to_string(),
                        pool: lazy_pool(),
                    })
                    .collect(),
                home: home.map(str::to_string),
            },
            Routing::default(),
        )
    }

    fn reading(r: &Router) -> String {
        r.member(r.pick().0).name.clone()
    }

    fn set(r: &Router, i: usize, up: bool, bytes: i64, blocks: i64) {
        let m = &r.members[i];
        m.up.store(up, Ordering::Relaxed);
        m.lag_bytes.store(bytes, Ordering::Relaxed);
        m.lag_blocks.store(blocks, Ordering::Relaxed);
    }

    #[tokio::test]
    async fn home_first_then_the_next_replica_then_the_primary() {
        let r = router(Some("AP"));
        assert_eq!(reading(&r), "replica AP");
        // AP falls behind in blocks: the nearest other replica, in the order given.
        set(&r, 2, true, 0, 11);
        r.choose();
        assert_eq!(reading(&r), "replica TS");
        // TS too far behind in bytes, KA gone: the primary.
        set(&r, 1, true, 17 << 20, 0);
        set(&r, 3, false, 0, 0);
        r.choose();
        assert_eq!(reading(&r), "primary");
        // Everything gone but stale AP: AP (answers marked stale by freshness).
        set(&r, 0, false, 0, 0);
        set(&r, 1, false, 0, 0);
        r.choose();
        assert_eq!(reading(&r), "replica AP");
        // AP caught up: home again.
        set(&r, 2, true, 0, 0);
        r.choose();
        assert_eq!(reading(&r), "replica AP");
        let states = r.states();
        assert_eq!(states[0].name, "replica AP");
        assert!(states[0].reading && states[0].usable);
        assert_eq!(states.last().map(|s| s.role), Some(DatabaseRole::Primary));
    }

    #[tokio::test]
    async fn an_unknown_lag_does_not_rule_a_replica_out() {
        let r = router(Some("KA"));
        set(&r, 0, false, 0, 0);
        set(&r, 3, true, -1, -1);
        r.choose();
        assert_eq!(reading(&r), "replica KA");
    }

    #[tokio::test]
    async fn a_gone_database_is_out_at_once_a_wrong_statement_is_not() {
        let r = router(Some("TS"));
        let served = r.pick().0;
        assert!(!r.failed(served, &sqlx::Error::RowNotFound));
        assert_eq!(reading(&r), "replica TS");
        // A pool that gave no connection in time: tried elsewhere, not taken out.
        assert!(r.failed(served, &sqlx::Error::PoolTimedOut));
        assert_eq!(reading(&r), "replica TS");
        let tried = 1u64 << served.0;
        let next = r.member(r.pick_except(tried).0).name.clone();
        assert_eq!(next, "replica AP");
        let all = (1u64 << r.len()) - 1;
        assert_eq!(r.member(r.pick_except(all).0).name, "replica TS");
        let gone = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(r.failed(served, &gone));
        assert_eq!(reading(&r), "replica AP");
    }

    #[tokio::test]
    async fn no_home_reads_the_first_replica_and_no_replica_the_primary() {
        assert_eq!(reading(&router(None)), "replica TS");
        let only = Router::new(Databases::primary_only(lazy_pool()), Routing::default());
        assert_eq!(reading(&only), "primary");
        assert!(!only.failed(
            only.pick().0,
            &sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
        ));
    }

    #[test]
    fn blocks_behind_sums_channels_and_counts_missing_ones() {
        let p = vec![("a".to_string(), 10), ("b".to_string(), 4)];
        let r = vec![("a".to_string(), 7)];
        assert_eq!(blocks_behind(&p, &r), 3 + 5);
        assert_eq!(blocks_behind(&p, &p), 0);
    }
}
