//! Bulk catch-up: when to drop the read model's secondary indexes, and when to build them
//! again (migration 0004 says why and how a crash is survived).
//!
//! Dropping pays when the events still to apply outweigh the rows the indexes must be built
//! over afterwards: maintaining an index costs per event, building it costs per row, and one
//! sorted build of N rows is far cheaper than N insertions into a growing B-tree. The worker
//! cannot know a block's size before it reads it, so the size of what is left is estimated
//! from the blocks it has written this session, per channel (a documents channel's blocks
//! are much smaller than a records channel's).
//!
//! The statements that drop and build the indexes run on the leader's connection, as the
//! batches do; the one that refreshes the planner's statistics after a catch-up
//! ([`analyze`]) on a connection of its own.

use std::collections::HashMap;
use std::sync::Arc;

use migrations::sqlx::postgres::PgConnection;
use migrations::sqlx::{self, AssertSqlSafe, Connection};

/// The decision's inputs and thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Policy {
    /// Never drop for a catch-up smaller than this many events (0: never drop at all).
    pub min_events: u64,
    /// Build the indexes again once at most this many events are left.
    pub tip_events: u64,
}

impl Policy {
    /// `min_events` from `SyncOptions::bulk_min_events`; the tip is two normal batches away.
    ///
    /// Why so near: every event written after the indexes are built again costs about twice
    /// what it costs in bulk mode (measured at 200 000 records: 765 ms against 330 ms per
    /// 5 000-event batch), and with the tip at ten batches the last 50 000 events took a
    /// quarter of the whole catch-up. The estimate of what is left is per channel from the
    /// blocks written, so it is good to within a block or two; and leaving at idle (the
    /// worker's other exit) still catches an estimate that never reaches the threshold.
    pub fn new(min_events: u64, batch_max_events: usize) -> Self {
        Policy {
            min_events,
            tip_events: (batch_max_events as u64).saturating_mul(2),
        }
    }

    /// Whether to drop the secondary indexes now, with `events_left` to apply and about
    /// `rows` rows in `properties`.
    /// Never when so near the tip that the indexes would be built again at once.
    pub fn should_drop(&self, events_left: u64, rows: u64) -> bool {
        self.min_events > 0
            && events_left >= self.min_events
            && events_left >= rows
            && events_left > self.tip_events.saturating_mul(2)
    }

    /// Whether a worker in bulk mode is near enough the tip to build the indexes again.
    pub fn near_tip(&self, events_left: u64) -> bool {
        events_left <= self.tip_events
    }
}

/// Events and blocks written per channel this session.
#[derive(Debug, Default)]
pub(crate) struct Estimate {
    seen: HashMap<Arc<str>, (u64, u64)>,
}

impl Estimate {
    /// A block of `channel` with `events` events was written.
    pub fn observe(&mut self, channel: &Arc<str>, events: u64) {
        let e = self.seen.entry(Arc::clone(channel)).or_default();
        e.0 += events;
        e.1 += 1;
    }

    /// Events left, from each channel's blocks left times its mean events per block so far
    /// (the mean over all channels for a channel not seen yet; 0 before any block).
    pub fn events_left<'a>(&self, lags: impl IntoIterator<Item = (&'a str, u64)>) -> u64 {
        let (events, blocks) = self
            .seen
            .values()
            .fold((0, 0), |(e, b), (de, db)| (e + de, b + db));
        if blocks == 0 {
            return 0;
        }
        let overall = events as f64 / blocks as f64;
        lags.into_iter()
            .map(|(channel, lag)| {
                let mean = match self.seen.get(channel) {
                    Some(&(e, b)) if b > 0 => e as f64 / b as f64,
                    _ => overall,
                };
                (lag as f64 * mean) as u64
            })
            .sum()
    }
}

/// The tables whose secondary indexes a bulk catch-up drops.
const BULK_TABLES: [&str; 6] = [
    "properties",
    "ownerships",
    "owners",
    "property_versions",
    "documents",
    "change_log",
];

/// Records the secondary indexes of `$1`'s tables in `sync_dropped_indexes` and returns
/// their names (already recorded ones are not recorded twice).
const DROPPABLE_INDEXES: &str = "
INSERT INTO sync_dropped_indexes (name, definition)
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i
JOIN pg_class t ON t.oid = i.indrelid
WHERE t.oid = ANY (SELECT to_regclass(n) FROM unnest($1::text[]) AS n)
    AND NOT i.indisprimary AND NOT i.indisunique
ON CONFLICT (name) DO NOTHING
RETURNING name";

/// Refreshes the planner's statistics of the read model. After a bulk catch-up the
/// tables hold many rows autovacuum has not analysed yet, and with no statistics the
/// planner misjudges the API's filtered pages (measured: a district page took 23 ms by a
/// bitmap scan and sort instead of 1.8 ms by the order index).
///
/// On a connection of its own: ANALYZE takes seconds at a few hundred thousand rows,
/// and on the leader's connection every live batch waited for it (freshness p99 went
/// from under 100 ms to 1.1–1.6 s just after a catch-up). ANALYZE's lock does not
/// conflict with the batches' writes.
pub(crate) async fn analyze(url: &str) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect(url).await?;
    sqlx::query(
        "ANALYZE properties, ownerships, owners, documents, property_versions, \
         change_log, location_counts",
    )
    .execute(&mut conn)
    .await?;
    conn.close().await
}

/// How many secondary indexes a bulk catch-up has dropped and not yet built again.
pub(crate) async fn dropped_indexes(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM sync_dropped_indexes")
        .fetch_one(&mut *conn)
        .await
}

/// The planner's estimate of the rows in `properties` (0 before its first ANALYZE):
/// what rebuilding its indexes would cost, to weigh against a catch-up's size.
pub(crate) async fn estimated_properties(conn: &mut PgConnection) -> Result<u64, sqlx::Error> {
    let n: f64 = sqlx::query_scalar(
        "SELECT greatest(coalesce(max(reltuples), 0), 0)::float8 FROM pg_class \
         WHERE oid = to_regclass('properties')",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(n as u64)
}

/// Enters bulk mode: records the definitions of the read model's secondary indexes
/// (not primary keys or unique indexes, which upserts and replays rely on) and drops
/// them, in one transaction. Returns the names dropped.
pub(crate) async fn drop_secondary_indexes(
    conn: &mut PgConnection,
) -> Result<Vec<String>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    // DROP INDEX waits for the API's queries on the table and holds up the ones
    // that come after it: give up rather than stall them for long.
    sqlx::query("SET LOCAL lock_timeout = '2s'")
        .execute(&mut *tx)
        .await?;
    let names: Vec<String> = sqlx::query_scalar(DROPPABLE_INDEXES)
        .bind(&BULK_TABLES[..])
        .fetch_all(&mut *tx)
        .await?;
    for name in &names {
        // The name comes from regclass's text form: already quoted where needed.
        sqlx::query(AssertSqlSafe(format!("DROP INDEX {name}")))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(names)
}

/// Leaves bulk mode: builds every recorded index again, each in a transaction with the
/// removal of its record, so a crash leaves it either built or still recorded.
///
/// Two at a time, on `conn` (the leader's) and a second one to `url`: a build is one backend
/// scanning and sorting on one core, and near the tip the worker leaves the other core
/// idle. (PostgreSQL's own parallel index build helps less: measured on 1 M rows, 25 %
/// off the location index with two workers, 6 % off the market-value one.)
pub(crate) async fn build_dropped_indexes(
    conn: &mut PgConnection,
    url: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT name, definition FROM sync_dropped_indexes ORDER BY name")
            .fetch_all(&mut *conn)
            .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let queue = std::sync::Mutex::new(rows.into_iter());
    let mut second = PgConnection::connect(url).await?;
    let (a, b) = futures::join!(
        build_indexes(conn, &queue),
        build_indexes(&mut second, &queue)
    );
    let _ = second.close().await;
    let mut built = a?;
    built.extend(b?);
    Ok(built)
}

/// Builds recorded indexes taken from `queue` until it is empty (see
/// [`build_dropped_indexes`]); the names built.
async fn build_indexes(
    conn: &mut PgConnection,
    queue: &std::sync::Mutex<std::vec::IntoIter<(String, String)>>,
) -> Result<Vec<String>, sqlx::Error> {
    let mut built = Vec::new();
    loop {
        // The guard is dropped at the end of this statement, before any await.
        let next = queue.lock().ok().and_then(|mut q| q.next());
        let Some((name, definition)) = next else {
            return Ok(built);
        };
        // IF NOT EXISTS: an operator may have built it by hand meanwhile.
        let create = definition.replacen("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1);
        let mut tx = conn.begin().await?;
        sqlx::query(AssertSqlSafe(create)).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM sync_dropped_indexes WHERE name = $1")
            .bind(&name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        built.push(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_only_for_a_catch_up_larger_than_the_table_and_the_minimum() {
        let p = Policy::new(100_000, 5000);
        // A new replica with a large chain to read.
        assert!(p.should_drop(1_500_000, 0));
        // Small catch-ups keep their indexes, even on an empty table.
        assert!(!p.should_drop(99_999, 0));
        // A large table behind by less than its own size: rebuilding would cost more.
        assert!(!p.should_drop(400_000, 1_000_000));
        assert!(p.should_drop(1_000_000, 1_000_000));
        // Not when the tip (two batches) is near: 2 000-event batches put it at 4 000.
        let small_batches = Policy::new(1_000, 2_000);
        assert!(!small_batches.should_drop(8_000, 0));
        assert!(small_batches.should_drop(8_001, 0));
        // Zero turns bulk mode off.
        assert!(!Policy::new(0, 5000).should_drop(u64::MAX, 0));
    }

    #[test]
    fn estimates_what_is_left_per_channel() {
        let (records, docs): (Arc<str>, Arc<str>) = ("records".into(), "docs".into());
        let mut e = Estimate::default();
        assert_eq!(
            e.events_left([("records", 100)]),
            0,
            "nothing seen: no estimate"
        );
        for _ in 0..8 {
            e.observe(&docs, 30);
        }
        // Records not seen yet: the overall mean (30) stands in.
        assert_eq!(e.events_left([("records", 10), ("docs", 1)]), 330);
        e.observe(&records, 500);
        e.observe(&records, 450);
        // Now each channel by its own mean: 9 × 475 + 1 × 30.
        assert_eq!(e.events_left([("records", 9), ("docs", 1)]), 4_305);
        assert_eq!(e.events_left([("records", 0), ("docs", 0)]), 0);
        let p = Policy::new(100_000, 5000);
        assert!(p.near_tip(10_000));
        assert!(!p.near_tip(10_001));
    }
}
