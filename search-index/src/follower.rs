//! The index follower: keeps a [`SearchIndex`] a projection of PostgreSQL (design/system.md,
//! invariant 4).
//!
//! It reads `change_log` rows with `seq > last` (gap-free in commit order, so `seq > last`
//! misses nothing), takes each property's current row from `properties` (the change log
//! says *what* changed, `properties.record` says what it is now, so replays are harmless),
//! and commits the index at most every `commit_interval` with the last applied seq as the
//! commit payload. It wakes on `LISTEN landql_changes` and also polls on the same interval,
//! because notifications are lost while disconnected. It rebuilds from `properties` when
//! the index is new, its payload unreadable, it is ahead of the database (a restored or
//! reset database), or further behind than a rebuild costs.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use ledger::model::Record;
use ledger::PropertyId;
use migrations::sqlx::{self, postgres::PgListener, Row};
use migrations::PgPool;

use crate::{Error, SearchIndex};

/// The sync worker's notification channel (`sync::NOTIFY_CHANNEL`; not imported, as this
/// crate may not depend on `sync`). The payload is the highest committed seq.
pub const NOTIFY_CHANNEL: &str = "landql_changes";

/// Why the follower stopped or a step failed.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("index: {0}")]
    Index(#[from] Error),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("index task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// How the follower runs.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// Longest time between applying a change and making it searchable (≤ 1 s).
    pub commit_interval: Duration,
    /// Change-log rows read per query.
    pub batch: i64,
    /// Rebuild instead of replaying when the index is this many seqs behind.
    pub rebuild_lag: i64,
    /// Where to LISTEN for wake-ups: the primary, when the follower reads a hot standby
    /// (which cannot LISTEN, and NOTIFY is not replicated); `None`: the database it reads.
    pub wake: Option<PgPool>,
    /// Where to read the change log while the database given to [`follow`] does not
    /// answer, in order (other replicas, then the primary). They hold the same change log:
    /// a hot standby is a prefix of its primary, seq for seq, so the follower may move
    /// between them at any seq; one that is behind only has fewer rows to give yet. The
    /// first database is tried again every [`HOME_RETRY`]. Not used at start: a follower
    /// that starts while its database is down waits for it (a fallback further behind than
    /// the index would look like a reset database and cost a rebuild).
    pub fallbacks: Vec<PgPool>,
}

/// How long the follower reads a fallback before it tries its own database again.
pub const HOME_RETRY: Duration = Duration::from_secs(5);

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            commit_interval: Duration::from_millis(500),
            batch: 2000,
            rebuild_lag: 1_000_000,
            wake: None,
            fallbacks: Vec::new(),
        }
    }
}

/// Opens the index in `dir`; when it is corrupt or has another schema, moves it aside and
/// starts an empty one (the follower then rebuilds it from PostgreSQL).
pub fn open_or_reset(dir: &Path) -> Result<SearchIndex, Error> {
    match SearchIndex::open_or_create(dir) {
        Ok(i) if i.last_seq().is_ok() => Ok(i),
        Ok(i) => {
            drop(i);
            reset(dir)
        }
        // The directory itself cannot be used: moving it aside would not help.
        Err(e @ (Error::Io(..) | Error::Directory(_))) => Err(e),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "search index unusable; rebuilding");
            reset(dir)
        }
    }
}

fn reset(dir: &Path) -> Result<SearchIndex, Error> {
    let aside = dir.with_extension(format!("broken-{}", std::process::id()));
    std::fs::rename(dir, &aside).map_err(|e| Error::Io(dir.display().to_string(), e))?;
    SearchIndex::open_or_create(dir)
}

fn parse_record(id: &str, json: &str) -> Option<Record> {
    match serde_json::from_str(json) {
        Ok(r) => Some(r),
        Err(e) => {
            // The read model took what the ledger committed; skip rather than stall.
            tracing::warn!(property_id = id, error = %e, "record not indexable; skipped");
            None
        }
    }
}

/// Every owner name of every version of the properties whose owners a transfer or a
/// correction ever changed (the only ones with former names), per property: a rebuild
/// reads it once, before the records.
const FORMER_ALL_SQL: &str = "SELECT v.property_id, array_agg(o->>'name') AS names \
     FROM property_versions v CROSS JOIN LATERAL jsonb_array_elements(v.record->'owners') o \
     WHERE v.property_id IN (SELECT property_id FROM property_versions \
         WHERE event IN ('PropertyTransferred', 'PropertyCorrected')) \
     GROUP BY v.property_id";

/// Every owner name of every version of the given properties (a batch of changes).
const FORMER_OF_SQL: &str = "SELECT v.property_id, array_agg(o->>'name') AS names \
     FROM property_versions v CROSS JOIN LATERAL jsonb_array_elements(v.record->'owners') o \
     WHERE v.property_id = ANY($1) GROUP BY v.property_id";

/// Owner names of all versions, per property ID, from [`FORMER_ALL_SQL`] or
/// [`FORMER_OF_SQL`].
async fn version_names<'e>(
    query: sqlx::query::Query<'e, sqlx::Postgres, sqlx::postgres::PgArguments>,
    conn: impl sqlx::PgExecutor<'e>,
) -> Result<HashMap<String, Vec<String>>, FollowError> {
    let rows = query.fetch_all(conn).await?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        out.insert(row.try_get("property_id")?, row.try_get("names")?);
    }
    Ok(out)
}

/// The former owner names of `record` among its versions' names.
fn former_of(record: &Record, names: &HashMap<String, Vec<String>>, id: &str) -> Vec<String> {
    names.get(id).map_or_else(Vec::new, |all| {
        crate::index::former_names(record, all.iter().map(String::as_str))
    })
}

/// Rows handed from the reading task to the indexing thread at a time.
const REBUILD_BATCH: usize = 1024;

/// Replaces the whole index with the `properties` table, read in one snapshot together
/// with the change-log position it reflects. Returns that seq.
///
/// The reading task only fetches rows; a blocking thread parses them and builds the
/// documents (tantivy's own threads then index them), so reading, analysis and indexing
/// overlap. Documents are added without the delete-by-ID of an upsert (the index was just
/// cleared) and store the record text as PostgreSQL returned it instead of serialising it
/// again. Segments are not merged while the documents stream in; once committed, they are
/// merged into two (`SearchIndex::merge_all`) before this returns, so that the searches
/// that follow do not pay per segment. While it runs, [`SearchIndex::is_rebuilding`] is
/// true (readiness says not ready).
pub async fn rebuild(index: &Arc<SearchIndex>, pool: &PgPool) -> Result<i64, FollowError> {
    index.set_rebuilding(true);
    let result = rebuild_and_merge(index, pool).await;
    index.set_rebuilding(false);
    result
}

async fn rebuild_and_merge(index: &Arc<SearchIndex>, pool: &PgPool) -> Result<i64, FollowError> {
    let started = Instant::now();
    index.set_bulk(true)?;
    let result = load_all(index, pool).await;
    // Whatever happened, the live follower merges segments again.
    index.set_bulk(false)?;
    let (seq, n) = result?;
    let loaded = started.elapsed();
    let idx = Arc::clone(index);
    tokio::task::spawn_blocking(move || idx.merge_all()).await??;
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(
        docs = n,
        seq,
        load_ms = loaded.as_millis() as u64,
        ms = (secs * 1000.0) as u64,
        docs_per_s = (n as f64 / secs.max(1e-9)) as u64,
        "search index rebuilt"
    );
    Ok(seq)
}

/// The bulk of [`rebuild`]: clears the index, loads every record, commits. Returns the seq
/// and the documents added.
async fn load_all(index: &Arc<SearchIndex>, pool: &PgPool) -> Result<(i64, u64), FollowError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let seq: i64 = sqlx::query_scalar("SELECT coalesce(max(seq), 0)::bigint FROM change_log")
        .fetch_one(&mut *tx)
        .await?;
    let names = version_names(sqlx::query(FORMER_ALL_SQL), &mut *tx).await?;
    index.clear()?;
    let (send, mut recv) = tokio::sync::mpsc::channel::<Vec<(String, String)>>(8);
    let idx = Arc::clone(index);
    let builder = tokio::task::spawn_blocking(move || -> Result<u64, Error> {
        let mut n = 0u64;
        while let Some(batch) = recv.blocking_recv() {
            let records = batch.into_iter().filter_map(|(id, json)| {
                parse_record(&id, &json).map(|r| {
                    let former = former_of(&r, &names, &id);
                    (r, json, former)
                })
            });
            n += idx.add_new_batch(records)? as u64;
        }
        Ok(n)
    });
    let read = async {
        let mut rows =
            sqlx::query("SELECT id, record::text AS record FROM properties").fetch(&mut *tx);
        let mut batch = Vec::with_capacity(REBUILD_BATCH);
        while let Some(row) = rows.try_next().await? {
            batch.push((row.try_get("id")?, row.try_get("record")?));
            if batch.len() == REBUILD_BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(REBUILD_BATCH));
                if send.send(full).await.is_err() {
                    // The builder stopped: its error is the one to report.
                    return Ok(());
                }
            }
        }
        if !batch.is_empty() {
            let _ = send.send(batch).await;
        }
        Ok::<(), FollowError>(())
    };
    let read_result = read.await;
    drop(send);
    let n = builder.await??;
    read_result?;
    tx.commit().await?;
    let idx = Arc::clone(index);
    tokio::task::spawn_blocking(move || idx.commit(seq)).await??;
    Ok((seq, n))
}

/// Applies change-log rows after `last` (at most `batch`); returns the new last seq and
/// how many rows were read. Nothing is committed here.
pub(crate) async fn apply_batch(
    index: &SearchIndex,
    pool: &PgPool,
    last: i64,
    batch: i64,
) -> Result<(i64, usize), FollowError> {
    let rows = sqlx::query(
        "SELECT c.seq, c.property_id, p.record::text AS record \
         FROM change_log c LEFT JOIN properties p ON p.id = c.property_id \
         WHERE c.seq > $1 ORDER BY c.seq LIMIT $2",
    )
    .bind(last)
    .bind(batch)
    .fetch_all(pool)
    .await?;
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r.try_get("property_id"))
        .collect::<Result<_, _>>()?;
    let names = if ids.is_empty() {
        HashMap::new()
    } else {
        version_names(sqlx::query(FORMER_OF_SQL).bind(&ids), pool).await?
    };
    let mut new_last = last;
    for row in &rows {
        let seq: i64 = row.try_get("seq")?;
        let id: String = row.try_get("property_id")?;
        let json: Option<String> = row.try_get("record")?;
        match json.as_deref().and_then(|j| parse_record(&id, j)) {
            Some(r) => index.upsert(&r, &former_of(&r, &names, &id))?,
            None => {
                // No row: the property is gone from the read model; drop it here too.
                if json.is_none() {
                    if let Ok(pid) = id.parse::<PropertyId>() {
                        index.delete(&pid)?;
                    }
                }
            }
        }
        new_last = seq;
    }
    Ok((new_last, rows.len()))
}

async fn commit(index: &Arc<SearchIndex>, seq: i64) -> Result<(), FollowError> {
    let idx = Arc::clone(index);
    tokio::task::spawn_blocking(move || idx.commit(seq)).await??;
    Ok(())
}

/// Where to start: the index's seq, or a rebuild when that cannot be trusted.
async fn start_seq(
    index: &Arc<SearchIndex>,
    pool: &PgPool,
    opts: &FollowOptions,
) -> Result<i64, FollowError> {
    let head: i64 = sqlx::query_scalar("SELECT coalesce(max(seq), 0)::bigint FROM change_log")
        .fetch_one(pool)
        .await?;
    let last = match index.last_seq() {
        Ok(Some(s)) if s <= head && head - s <= opts.rebuild_lag => return Ok(s),
        Ok(Some(s)) => s,
        Ok(None) => -1,
        Err(e) => {
            tracing::warn!(error = %e, "index payload unreadable");
            -1
        }
    };
    tracing::info!(index_seq = last, head, "search index needs a rebuild");
    rebuild(index, pool).await
}

/// Follows the change log until `shutdown` completes, committing what it applied before
/// returning. Database outages are waited out (retried every `commit_interval`).
pub async fn follow(
    index: Arc<SearchIndex>,
    pool: PgPool,
    opts: FollowOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), FollowError> {
    tokio::pin!(shutdown);
    let mut last = loop {
        match start_seq(&index, &pool, &opts).await {
            Ok(s) => break s,
            Err(FollowError::Db(e)) => {
                index.count_error();
                tracing::warn!(error = %e, "follower cannot start yet; retrying");
                tokio::select! {
                    _ = &mut shutdown => return Ok(()),
                    _ = tokio::time::sleep(opts.commit_interval) => {}
                }
            }
            Err(e) => return Err(e),
        }
    };
    let mut committed = last;
    let mut last_commit = Instant::now();
    let sources: Vec<&PgPool> = std::iter::once(&pool).chain(&opts.fallbacks).collect();
    // The source read now, and when the follower left its own database.
    let mut reading = 0usize;
    let mut left_home: Option<Instant> = None;
    let mut listener: Option<PgListener> = None;
    tracing::info!(seq = last, "index follower started");
    loop {
        if listener.is_none() {
            match PgListener::connect_with(opts.wake.as_ref().unwrap_or(&pool)).await {
                Ok(mut l) => match l.listen(NOTIFY_CHANNEL).await {
                    Ok(()) => listener = Some(l),
                    Err(e) => {
                        index.count_error();
                        tracing::warn!(error = %e, "LISTEN failed; polling")
                    }
                },
                Err(e) => {
                    index.count_error();
                    tracing::warn!(error = %e, "LISTEN connection failed; polling")
                }
            }
        }
        if left_home.is_some_and(|t| t.elapsed() >= HOME_RETRY) {
            reading = 0;
            left_home = None;
        }
        let mut caught_up = false;
        match apply_batch(&index, sources[reading], last, opts.batch).await {
            Ok((l, n)) => {
                last = l;
                caught_up = (n as i64) < opts.batch;
            }
            Err(FollowError::Db(e)) => {
                index.count_error();
                if sources.len() > 1 {
                    left_home.get_or_insert_with(Instant::now);
                    reading = (reading + 1) % sources.len();
                    tracing::warn!(error = %e, seq = last, source = reading, "change log read failed; reading the next database");
                } else {
                    tracing::warn!(error = %e, seq = last, "change log read failed; retrying")
                }
            }
            Err(e) => return Err(e),
        }
        // A commit is a new segment (files, an fsync, a reader reload, later a merge): at
        // most one per interval however often the change log wakes us, else a busy chain
        // (a NOTIFY per sync batch) makes the index commit many times a second.
        if last != committed && last_commit.elapsed() >= opts.commit_interval {
            commit(&index, last).await?;
            tracing::debug!(seq = last, "index follower committed");
            committed = last;
            last_commit = Instant::now();
        }
        if !caught_up {
            continue;
        }
        // Applied but not yet committed: wake when the commit is due.
        let wait = tokio::time::sleep(if last != committed {
            opts.commit_interval.saturating_sub(last_commit.elapsed())
        } else {
            opts.commit_interval
        });
        tokio::select! {
            _ = &mut shutdown => break,
            _ = wait => {}
            n = async {
                match listener.as_mut() {
                    Some(l) => l.try_recv().await,
                    None => std::future::pending().await,
                }
            } => {
                // Ok(None): the connection dropped and will be re-made by the next call; the
                // next pass reads the change log anyway, so nothing is missed.
                if let Err(e) = n {
                    index.count_error();
                    tracing::warn!(error = %e, "LISTEN failed; polling");
                    listener = None;
                }
            }
        }
    }
    if last != committed {
        commit(&index, last).await?;
    }
    tracing::info!(seq = last, "index follower stopped");
    Ok(())
}
