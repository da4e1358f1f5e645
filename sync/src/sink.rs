//! Sink: one batch → one PostgreSQL transaction, on the leader's own connection.
//!
//! The connection that holds the leader lock (see `worker`) is the one that writes:
//! if it drops, the lock and any open batch go together, so a worker that lost leadership
//! cannot commit anything afterwards.
//!
//! A batch's transaction, in order:
//! 1. property versions are COPYed (binary format) into a temporary staging table — one row
//!    per write, each marked `latest` when it is the newest write of its property in the
//!    batch, and `fresh` when it is also the newest of a property the batch creates;
//! 2. `property_versions`: every staged row. A batch is first written by *appending*
//!    (see [`Sink::write`]): its rows cannot be in the read model yet, so they are inserted
//!    plainly and every property event is applied. Should a primary key say otherwise, the
//!    batch is written again by *merging*: `INSERT … ON CONFLICT DO NOTHING`, and the rows
//!    actually inserted are the batch's applied property events (a replay inserts none);
//! 3. `properties`: the `fresh` rows inserted; the other `latest` rows upserted, guarded so
//!    that only a newer version ((block, tx index) within the channel) overwrites — a replay
//!    or an older version is a no-op;
//! 4. `ownerships` of the properties that changed: old rows deleted (only for updated rows;
//!    fresh inserts have none), new ones inserted; `owners` upserted, newest ledger time wins;
//! 5. `documents`: guarded upsert like properties (no FK: they may arrive before the property);
//! 6. `change_log`: one row per applied event, numbered max(seq)+1… in batch order (which is
//!    commit order within each channel) — gap-free because only the leader writes;
//! 7. `indexing_errors` for transactions that could not be projected (not twice for a replay);
//! 8. `checkpoints` of every channel in the batch (block number and hash), only forward;
//! 9. `NOTIFY landql_changes, '<last seq>'` when the change log grew; then COMMIT.
//!
//! Every bulk statement sends arrays (UNNEST) or COPY data, never a row at a time.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ledger::model::EventType;
use ledger::Hash32;
use migrations::sqlx::postgres::PgConnection;
use migrations::sqlx::{self, Connection, Row};

use crate::batch::Batch;
use crate::copy::BinaryRows;
use crate::decode::{event_name, Change, ChangeKind, DocumentChange, PropertyChange};
use crate::NOTIFY_CHANNEL;

/// A channel's checkpoint: the last applied block and its header hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    pub block: u64,
    pub hash: Hash32,
}

/// What a committed batch did.
#[derive(Debug, Default, Clone)]
pub(crate) struct Outcome {
    /// Applied events (change-log rows) per channel.
    pub applied: HashMap<Arc<str>, u64>,
    /// Events already present (replays) per channel.
    pub replayed: HashMap<Arc<str>, u64>,
    /// The last change-log seq written, if any.
    pub last_seq: Option<i64>,
    /// The checkpoint of each channel in the batch after it, with the block's ledger time.
    pub checkpoints: Vec<(Arc<str>, Checkpoint, i64)>,
    pub errors_recorded: u64,
    /// Milliseconds spent in each step, for the debug log.
    pub steps: Vec<(&'static str, u64)>,
}

/// The leader's connection to the primary.
pub(crate) struct Sink {
    conn: PgConnection,
    /// Whether batches are written by appending (see [`Sink::write`]). Turned off for the
    /// session by the first batch whose rows turn out to be there already.
    append: bool,
}

const STAGE_BUFFERS: &str = "SET temp_buffers = '128MB'";

/// Memory for the batch's sorts, hashes and the row sets statement-level triggers see. The
/// location-count triggers keep every inserted or updated `properties` row of a statement
/// (about 1 KB each with its record), so at the default 4 MB a 5 000-event batch spilled
/// them to disk: 64 MB took the write time per 5 000 events from 288 to 259 ms at 1 M
/// records. Only this session sets it, and it runs one statement at a time, so the server
/// needs a few times 64 MB more at most (one per sort, hash or row set of the statement).
const WORK_MEM: &str = "SET work_mem = '64MB'";

const STAGE_DDL: &str = "
CREATE TEMP TABLE IF NOT EXISTS sync_stage (
    ord integer NOT NULL, latest boolean NOT NULL, fresh boolean NOT NULL, id text NOT NULL,
    state text NOT NULL, year integer NOT NULL, shard integer, sequence bigint NOT NULL,
    district text NOT NULL, mandal text NOT NULL, village text NOT NULL, survey_no text NOT NULL, khata_no text,
    area_sq_m bigint NOT NULL, area_text text NOT NULL, land_type text NOT NULL,
    market_value bigint NOT NULL, verification_status text NOT NULL, created_ms bigint NOT NULL,
    updated_ms bigint NOT NULL, record jsonb NOT NULL, record_hash text NOT NULL,
    channel text NOT NULL, block_number bigint NOT NULL, tx_index integer NOT NULL,
    tx_id text NOT NULL, event text NOT NULL, committed_ms bigint NOT NULL
) ON COMMIT DELETE ROWS";

/// The columns of [`stage_row`].
const STAGE_COPY: &str = "COPY sync_stage (ord, latest, fresh, id, state, year, shard, \
    sequence, district, mandal, village, survey_no, khata_no, area_sq_m, area_text, land_type, \
    market_value, verification_status, created_ms, updated_ms, record, record_hash, channel, \
    block_number, tx_index, tx_id, event, committed_ms) FROM STDIN (FORMAT binary)";

/// Every staged row into `property_versions` (appending and merging add to it).
macro_rules! insert_versions {
    () => {
        "INSERT INTO property_versions (property_id, block_number, tx_index, channel, tx_id,
            event, record, record_hash, committed_at)
        SELECT id, block_number, tx_index, channel, tx_id, event, record, record_hash,
            ms_to_timestamptz(committed_ms)
        FROM sync_stage"
    };
}

/// Staged rows into `properties`, those the condition that follows selects.
macro_rules! insert_properties_where {
    () => {
        "INSERT INTO properties AS p (id, state, year, shard, sequence, district, mandal,
            village, survey_no, khata_no, area_sq_m, area_text, land_type, market_value,
            verification_status, created_at, updated_at, record, record_hash, channel,
            block_number, tx_index, tx_id)
        SELECT id, state, year, shard, sequence, district, mandal, village, survey_no,
            khata_no, area_sq_m, area_text, land_type, market_value, verification_status,
            ms_to_timestamptz(created_ms), ms_to_timestamptz(updated_ms), record, record_hash,
            channel, block_number, tx_index, tx_id
        FROM sync_stage WHERE "
    };
}

/// History rows of the stage, when appending: every one is new.
const APPEND_VERSIONS: &str = insert_versions!();

/// Inserted history rows when merging, answered as the staging ords of the applied events.
const INSERT_VERSIONS: &str = concat!(
    "WITH ins AS (",
    insert_versions!(),
    "
    ON CONFLICT DO NOTHING
    RETURNING property_id, block_number, tx_index, channel)
SELECT s.ord FROM sync_stage s JOIN ins ON s.id = ins.property_id
    AND s.block_number = ins.block_number AND s.tx_index = ins.tx_index
    AND s.channel = ins.channel"
);

/// The newest rows of properties created in the batch, when appending.
const APPEND_PROPERTIES: &str = concat!(insert_properties_where!(), "fresh");

/// The version guard (see `decode::Version::is_newer_than`), for a table aliased `t` whose
/// time column is `time`.
macro_rules! newer_guard {
    ($t:literal, $time:literal) => {
        concat!(
            "CASE WHEN ",
            $t,
            ".channel = excluded.channel ",
            "THEN (",
            $t,
            ".block_number, ",
            $t,
            ".tx_index) < (excluded.block_number, excluded.tx_index) ",
            "ELSE (",
            $t,
            ".",
            $time,
            ", ",
            $t,
            ".channel) < (excluded.",
            $time,
            ", excluded.channel) END"
        )
    };
}

const UPSERT_PROPERTIES: &str = concat!(
    insert_properties_where!(),
    "latest AND NOT fresh
    ON CONFLICT (id) DO UPDATE SET state = excluded.state, year = excluded.year,
        shard = excluded.shard, sequence = excluded.sequence, district = excluded.district,
        mandal = excluded.mandal, village = excluded.village, survey_no = excluded.survey_no,
        khata_no = excluded.khata_no, area_sq_m = excluded.area_sq_m,
        area_text = excluded.area_text, land_type = excluded.land_type,
        market_value = excluded.market_value,
        verification_status = excluded.verification_status, created_at = excluded.created_at,
        updated_at = excluded.updated_at, record = excluded.record,
        record_hash = excluded.record_hash, channel = excluded.channel,
        block_number = excluded.block_number, tx_index = excluded.tx_index,
        tx_id = excluded.tx_id
    WHERE ",
    newer_guard!("p", "updated_at"),
    "
    RETURNING id, (xmax = 0) AS inserted"
);

const DELETE_OWNERSHIPS: &str = "DELETE FROM ownerships WHERE property_id = ANY($1::text[])";

const INSERT_OWNERSHIPS: &str = "
INSERT INTO ownerships (property_id, position, owner_ref, share_pct)
SELECT * FROM unnest($1::text[], $2::integer[], $3::text[], $4::bigint[])";

const UPSERT_OWNERS: &str = "
INSERT INTO owners AS o (owner_ref, name, father_name, updated_at)
SELECT r, n, f, ms_to_timestamptz(t)
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS u(r, n, f, t)
ON CONFLICT (owner_ref) DO UPDATE SET name = excluded.name,
    father_name = excluded.father_name, updated_at = excluded.updated_at
WHERE (o.updated_at, o.name, coalesce(o.father_name, ''))
    < (excluded.updated_at, excluded.name, coalesce(excluded.father_name, ''))";

const UPSERT_DOCUMENTS: &str = concat!(
    "WITH u AS (
        SELECT * FROM unnest($1::integer[], $2::text[], $3::text[], $4::text[], $5::bigint[],
            $6::text[], $7::bigint[], $8::integer[], $9::text[])
        AS u(ord, property_id, doc_hash, doc_type, linked_ms, channel, block_number, tx_index, tx_id)),
    ins AS (
        INSERT INTO documents AS d (property_id, doc_hash, doc_type, linked_at, channel,
            block_number, tx_index, tx_id)
        SELECT property_id, doc_hash, doc_type, ms_to_timestamptz(linked_ms), channel,
            block_number, tx_index, tx_id FROM u
        ON CONFLICT (property_id, doc_hash) DO UPDATE SET doc_type = excluded.doc_type,
            linked_at = excluded.linked_at, channel = excluded.channel,
            block_number = excluded.block_number, tx_index = excluded.tx_index,
            tx_id = excluded.tx_id
        WHERE ",
    newer_guard!("d", "linked_at"),
    "
        RETURNING property_id, doc_hash)
    SELECT u.ord FROM u JOIN ins USING (property_id, doc_hash)"
);

const INSERT_CHANGES: &str = "
INSERT INTO change_log (seq, property_id, event, channel, block_number, tx_index, tx_id)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[],
    $6::integer[], $7::text[])";

const INSERT_ERRORS: &str = "
INSERT INTO indexing_errors (channel, block_number, tx_index, tx_id, error, raw)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::integer[], $4::text[], $5::text[], $6::text[])
    AS u(c, b, i, t, e, r)
WHERE NOT EXISTS (SELECT 1 FROM indexing_errors x WHERE x.channel = u.c
    AND x.block_number = u.b AND x.tx_index IS NOT DISTINCT FROM u.i)";

const UPSERT_CHECKPOINTS: &str = "
INSERT INTO checkpoints AS c (channel, block_number, block_hash, updated_at)
SELECT ch, b, h, now() FROM unnest($1::text[], $2::bigint[], $3::text[]) AS u(ch, b, h)
ON CONFLICT (channel) DO UPDATE SET block_number = excluded.block_number,
    block_hash = excluded.block_hash, updated_at = excluded.updated_at
WHERE c.block_number < excluded.block_number";

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

impl Sink {
    pub async fn connect(url: String) -> Result<Self, sqlx::Error> {
        let conn = PgConnection::connect(&url).await?;
        Ok(Self { conn, append: true })
    }

    /// Brings the schema up to date (sqlx serialises concurrent migrators with its own lock),
    /// on a connection of its own.
    pub async fn migrate(url: String) -> Result<(), migrations::DbError> {
        let pool =
            migrations::connect_with(&url, migrations::pool_options().max_connections(1)).await?;
        let r = migrations::migrate(&pool).await;
        pool.close().await;
        r
    }

    /// `pg_try_advisory_lock` on this session: `true` once this worker is the leader.
    pub async fn try_lock(&mut self, key: i64) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut self.conn)
            .await
    }

    /// Creates this session's staging table.
    pub async fn prepare(&mut self) -> Result<(), sqlx::Error> {
        // A batch stages up to several MB of rows (each with its record as jsonb);
        // temporary tables live in the session's own buffers, 8 MB by default, beyond
        // which every batch is written out to disk and read back. The setting only
        // takes effect before the session's first temporary table, hence here.
        sqlx::query(STAGE_BUFFERS).execute(&mut self.conn).await?;
        // And memory for what the batch's statements sort and keep (see WORK_MEM).
        sqlx::query(WORK_MEM).execute(&mut self.conn).await?;
        sqlx::query(STAGE_DDL).execute(&mut self.conn).await?;
        Ok(())
    }

    /// The stored checkpoints; a hash that does not parse is reported as `Err` text.
    #[allow(clippy::type_complexity)]
    pub async fn checkpoints(
        &mut self,
    ) -> Result<HashMap<String, Result<Checkpoint, String>>, sqlx::Error> {
        let rows = sqlx::query("SELECT channel, block_number, block_hash FROM checkpoints")
            .fetch_all(&mut self.conn)
            .await?;
        let mut out = HashMap::new();
        for row in rows {
            let channel: String = row.try_get(0)?;
            let block: i64 = row.try_get(1)?;
            let hash: String = row.try_get(2)?;
            let cp = match (u64::try_from(block), hash.parse::<Hash32>()) {
                (Ok(block), Ok(hash)) => Ok(Checkpoint { block, hash }),
                _ => Err(format!(
                    "stored checkpoint ({block}, {hash:?}) is not a block number and hash"
                )),
            };
            out.insert(channel, cp);
        }
        Ok(out)
    }

    /// A round trip, to notice a dead connection (and so a lost lock) while idle.
    pub async fn ping(&mut self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&mut self.conn).await?;
        Ok(())
    }

    /// Refreshes the planner's statistics of the read model. After a bulk catch-up the
    /// tables hold many rows autovacuum has not analysed yet, and with no statistics the
    /// planner misjudges the API's filtered pages (measured: a district page took 23 ms by a
    /// bitmap scan and sort instead of 1.8 ms by the order index).
    ///
    /// On a connection of its own: ANALYZE takes seconds at a few hundred thousand rows,
    /// and on the leader's connection every live batch waited for it (freshness p99 went
    /// from under 100 ms to 1.1–1.6 s just after a catch-up). ANALYZE's lock does not
    /// conflict with the batches' writes.
    pub async fn analyze(url: String) -> Result<(), sqlx::Error> {
        let mut conn = PgConnection::connect(&url).await?;
        sqlx::query(
            "ANALYZE properties, ownerships, owners, documents, property_versions, \
             change_log, location_counts",
        )
        .execute(&mut conn)
        .await?;
        conn.close().await
    }

    /// How many secondary indexes a bulk catch-up has dropped and not yet built again.
    pub async fn dropped_indexes(&mut self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT count(*) FROM sync_dropped_indexes")
            .fetch_one(&mut self.conn)
            .await
    }

    /// The planner's estimate of the rows in `properties` (0 before its first ANALYZE):
    /// what rebuilding its indexes would cost, to weigh against a catch-up's size.
    pub async fn estimated_properties(&mut self) -> Result<u64, sqlx::Error> {
        let n: f64 = sqlx::query_scalar(
            "SELECT greatest(coalesce(max(reltuples), 0), 0)::float8 FROM pg_class \
             WHERE oid = to_regclass('properties')",
        )
        .fetch_one(&mut self.conn)
        .await?;
        Ok(n as u64)
    }

    /// Enters bulk mode: records the definitions of the read model's secondary indexes
    /// (not primary keys or unique indexes, which upserts and replays rely on) and drops
    /// them, in one transaction. Returns the names dropped.
    pub async fn drop_secondary_indexes(&mut self) -> Result<Vec<String>, sqlx::Error> {
        let mut tx = self.conn.begin().await?;
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
            sqlx::query(&format!("DROP INDEX {name}"))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(names)
    }

    /// Leaves bulk mode: builds every recorded index again, each in a transaction with the
    /// removal of its record, so a crash leaves it either built or still recorded.
    ///
    /// Two at a time, on this connection and a second one to `url`: a build is one backend
    /// scanning and sorting on one core, and near the tip the worker leaves the other core
    /// idle. (PostgreSQL's own parallel index build helps less: measured on 1 M rows, 25 %
    /// off the location index with two workers, 6 % off the market-value one.)
    pub async fn build_dropped_indexes(&mut self, url: &str) -> Result<Vec<String>, sqlx::Error> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT name, definition FROM sync_dropped_indexes ORDER BY name")
                .fetch_all(&mut self.conn)
                .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let queue = std::sync::Mutex::new(rows.into_iter());
        let mut second = PgConnection::connect(url).await?;
        let (a, b) = futures::join!(
            build_indexes(&mut self.conn, &queue),
            build_indexes(&mut second, &queue)
        );
        let _ = second.close().await;
        let mut built = a?;
        built.extend(b?);
        Ok(built)
    }

    /// The pinned orderer key, pinning `presented` if none is.
    pub async fn pin_key(&mut self, presented: &str) -> Result<String, sqlx::Error> {
        sqlx::query("INSERT INTO sync_trust (orderer_key) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(presented)
            .execute(&mut self.conn)
            .await?;
        sqlx::query_scalar("SELECT orderer_key FROM sync_trust")
            .fetch_one(&mut self.conn)
            .await
    }

    /// Writes `batch` in one transaction (see the module docs).
    ///
    /// First by appending: the blocks come after their channel's checkpoint, which is
    /// committed with the rows of every block up to it, so none of their history rows can
    /// be in the read model yet, nor a `properties` row of a property the batch creates.
    /// Those rows are then inserted plainly: no conflict check, no version guard, no
    /// matching of what was inserted. Only a reset checkpoint (an operator replaying the
    /// chain) or a chain that creates one ID twice breaks that premise; a primary key then
    /// refuses the duplicate, the transaction is rolled back, and the batch is merged instead
    /// (every statement guarded, a replay a no-op), as is every batch after it this session.
    pub async fn write(&mut self, batch: &Batch) -> Result<Outcome, sqlx::Error> {
        if self.append {
            match self.write_inner(batch, true).await {
                Err(e) if is_unique_violation(&e) => {
                    tracing::warn!(error = %e, "rows of a batch are in the read model already (a replay?); merging it and the rest of this session's batches");
                    self.append = false;
                }
                r => return r,
            }
        }
        self.write_inner(batch, false).await
    }

    /// One attempt at writing `batch`: by appending (`append`) or by merging.
    async fn write_inner(&mut self, batch: &Batch, append: bool) -> Result<Outcome, sqlx::Error> {
        let mut clock = std::time::Instant::now();
        let mut steps: Vec<(&'static str, u64)> = Vec::new();
        let mut lap = |name: &'static str, steps: &mut Vec<(&'static str, u64)>| {
            let now = std::time::Instant::now();
            steps.push((name, now.duration_since(clock).as_millis() as u64));
            clock = now;
        };
        let plan = Plan::new(batch);
        let mut tx = self.conn.begin().await?;
        lap("plan", &mut steps);
        let mut applied = vec![false; plan.changes.len()];

        if !plan.props.is_empty() {
            // When appending, the newest row of each property the batch creates is `fresh`:
            // inserted, not upserted.
            let created = if append {
                plan.created()
            } else {
                HashSet::new()
            };
            let mut stage = BinaryRows::new();
            let mut changed = Vec::new();
            for (k, &(ord, p)) in plan.props.iter().enumerate() {
                let latest = plan.latest.contains(&k);
                let fresh = latest && created.contains(p.id.as_str());
                if fresh {
                    changed.push(p.id.clone());
                }
                stage_row(&mut stage, ord, latest, fresh, plan.changes[ord], p);
            }
            copy_binary(&mut tx, STAGE_COPY, stage).await?;
            lap("copy", &mut steps);

            if append {
                sqlx::query(APPEND_VERSIONS).execute(&mut *tx).await?;
                for &(ord, _) in &plan.props {
                    applied[ord] = true;
                }
                lap("versions", &mut steps);
                if !changed.is_empty() {
                    sqlx::query(APPEND_PROPERTIES).execute(&mut *tx).await?;
                }
                lap("created", &mut steps);
            } else {
                let ords: Vec<i32> = sqlx::query_scalar(INSERT_VERSIONS)
                    .fetch_all(&mut *tx)
                    .await?;
                for ord in ords {
                    if let Some(a) = usize::try_from(ord).ok().and_then(|o| applied.get_mut(o)) {
                        *a = true;
                    }
                }
                lap("versions", &mut steps);
            }

            let rows = sqlx::query(UPSERT_PROPERTIES).fetch_all(&mut *tx).await?;
            let mut updated = Vec::new();
            for row in rows {
                let id: String = row.try_get(0)?;
                let inserted: bool = row.try_get(1)?;
                if !inserted {
                    updated.push(id.clone());
                }
                changed.push(id);
            }
            lap("properties", &mut steps);
            if !updated.is_empty() {
                sqlx::query(DELETE_OWNERSHIPS)
                    .bind(&updated)
                    .execute(&mut *tx)
                    .await?;
            }
            if !changed.is_empty() {
                let (pids, positions, refs, shares) = plan.ownerships(&changed);
                sqlx::query(INSERT_OWNERSHIPS)
                    .bind(pids)
                    .bind(positions)
                    .bind(refs)
                    .bind(shares)
                    .execute(&mut *tx)
                    .await?;
            }
            lap("ownerships", &mut steps);
            let (refs, names, fathers, times) = plan.owners();
            if !refs.is_empty() {
                sqlx::query(UPSERT_OWNERS)
                    .bind(refs)
                    .bind(names)
                    .bind(fathers)
                    .bind(times)
                    .execute(&mut *tx)
                    .await?;
            }
            lap("owners", &mut steps);
        }

        if !plan.docs.is_empty() {
            let mut cols = DocCols::default();
            for &(ord, d) in &plan.docs {
                cols.push(ord, plan.changes[ord], d);
            }
            let ords: Vec<i32> = sqlx::query_scalar(UPSERT_DOCUMENTS)
                .bind(cols.ord)
                .bind(cols.property_id)
                .bind(cols.doc_hash)
                .bind(cols.doc_type)
                .bind(cols.linked_ms)
                .bind(cols.channel)
                .bind(cols.block)
                .bind(cols.tx_index)
                .bind(cols.tx_id)
                .fetch_all(&mut *tx)
                .await?;
            for ord in ords {
                if let Some(a) = usize::try_from(ord).ok().and_then(|o| applied.get_mut(o)) {
                    *a = true;
                }
            }
        }

        let mut out = Outcome::default();
        let mut log = LogCols::default();
        for (c, was_applied) in plan.changes.iter().zip(&applied) {
            let count = if *was_applied {
                log.push(c);
                out.applied.entry(c.version.channel.clone()).or_default()
            } else {
                out.replayed.entry(c.version.channel.clone()).or_default()
            };
            *count += 1;
        }
        if !log.pid.is_empty() {
            let base: i64 = sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM change_log")
                .fetch_one(&mut *tx)
                .await?;
            let n = log.pid.len() as i64;
            let seqs: Vec<i64> = (base + 1..=base + n).collect();
            sqlx::query(INSERT_CHANGES)
                .bind(seqs)
                .bind(log.pid)
                .bind(log.event)
                .bind(log.channel)
                .bind(log.block)
                .bind(log.tx_index)
                .bind(log.tx_id)
                .execute(&mut *tx)
                .await?;
            out.last_seq = Some(base + n);
        }

        let failures: Vec<_> = batch.blocks.iter().flat_map(|b| &b.failures).collect();
        if !failures.is_empty() {
            let r = sqlx::query(INSERT_ERRORS)
                .bind(
                    failures
                        .iter()
                        .map(|f| f.channel.to_string())
                        .collect::<Vec<_>>(),
                )
                .bind(failures.iter().map(|f| to_i64(f.block)).collect::<Vec<_>>())
                .bind(
                    failures
                        .iter()
                        .map(|f| f.tx_index.map(to_i32))
                        .collect::<Vec<_>>(),
                )
                .bind(
                    failures
                        .iter()
                        .map(|f| f.tx_id.map(|t| t.to_hex()))
                        .collect::<Vec<_>>(),
                )
                .bind(failures.iter().map(|f| f.error.clone()).collect::<Vec<_>>())
                .bind(failures.iter().map(|f| f.raw.clone()).collect::<Vec<_>>())
                .execute(&mut *tx)
                .await?;
            out.errors_recorded = r.rows_affected();
        }

        // The last block of each channel in the batch.
        let mut last: Vec<(Arc<str>, Checkpoint, i64)> = Vec::new();
        for b in &batch.blocks {
            let cp = Checkpoint {
                block: b.number,
                hash: b.hash,
            };
            match last.iter_mut().find(|(c, _, _)| *c == b.channel) {
                Some(e) => *e = (b.channel.clone(), cp, b.time_ms),
                None => last.push((b.channel.clone(), cp, b.time_ms)),
            }
        }
        if !last.is_empty() {
            sqlx::query(UPSERT_CHECKPOINTS)
                .bind(last.iter().map(|l| l.0.to_string()).collect::<Vec<_>>())
                .bind(last.iter().map(|l| to_i64(l.1.block)).collect::<Vec<_>>())
                .bind(last.iter().map(|l| l.1.hash.to_hex()).collect::<Vec<_>>())
                .execute(&mut *tx)
                .await?;
        }
        if let Some(seq) = out.last_seq {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(NOTIFY_CHANNEL)
                .bind(seq.to_string())
                .execute(&mut *tx)
                .await?;
        }
        lap("log", &mut steps);
        tx.commit().await?;
        lap("commit", &mut steps);
        out.checkpoints = last;
        out.steps = steps;
        Ok(out)
    }
}

/// Builds recorded indexes taken from `queue` until it is empty (see
/// [`Sink::build_dropped_indexes`]); the names built.
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
        sqlx::query(&create).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM sync_dropped_indexes WHERE name = $1")
            .bind(&name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        built.push(name);
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A batch laid out for the statements: changes in order, property and document changes with
/// their index in `changes`, and which of them are the newest of their key in the batch.
struct Plan<'a> {
    changes: Vec<&'a Change>,
    props: Vec<(usize, &'a PropertyChange)>,
    /// Indexes into `props` of the newest write of each property.
    latest: HashSet<usize>,
    /// The newest write of each document only (a document has no history table).
    docs: Vec<(usize, &'a DocumentChange)>,
}

impl<'a> Plan<'a> {
    fn new(batch: &'a Batch) -> Self {
        let changes: Vec<&Change> = batch.blocks.iter().flat_map(|b| &b.changes).collect();
        let mut props = Vec::new();
        let mut newest: HashMap<&str, usize> = HashMap::new();
        let mut doc_newest: HashMap<(&str, &str), (usize, &DocumentChange)> = HashMap::new();
        for (ord, c) in changes.iter().enumerate() {
            match &c.kind {
                ChangeKind::Property(p) => {
                    let k = props.len();
                    props.push((ord, &**p));
                    match newest.get(p.id.as_str()) {
                        Some(&j) => {
                            let (jord, q) = props[j];
                            if c.version.is_newer_than(
                                p.record.updated_at,
                                &changes[jord].version,
                                q.record.updated_at,
                            ) {
                                newest.insert(&p.id, k);
                            }
                        }
                        None => {
                            newest.insert(&p.id, k);
                        }
                    }
                }
                ChangeKind::Document(d) => {
                    let key = (d.property_id.as_str(), d.doc.doc_hash.as_str());
                    let replace = match doc_newest.get(&key) {
                        Some(&(jord, q)) => c.version.is_newer_than(
                            d.doc.linked_at,
                            &changes[jord].version,
                            q.doc.linked_at,
                        ),
                        None => true,
                    };
                    if replace {
                        doc_newest.insert(key, (ord, d));
                    }
                }
            }
        }
        let mut docs: Vec<_> = doc_newest.into_values().collect();
        docs.sort_by_key(|d| d.0);
        Plan {
            latest: newest.into_values().collect(),
            changes,
            props,
            docs,
        }
    }

    /// Properties whose first write in the batch creates them.
    fn created(&self) -> HashSet<&'a str> {
        let creates = event_name(EventType::PropertyCreated);
        let mut seen = HashSet::new();
        let mut created = HashSet::new();
        for &(ord, p) in &self.props {
            if seen.insert(p.id.as_str()) && self.changes[ord].event == creates {
                created.insert(p.id.as_str());
            }
        }
        created
    }

    /// Ownership rows of the newest version of each property in `changed`.
    fn ownerships(&self, changed: &[String]) -> (Vec<String>, Vec<i32>, Vec<String>, Vec<i64>) {
        let changed: HashSet<&str> = changed.iter().map(String::as_str).collect();
        let mut props: Vec<&PropertyChange> = self
            .latest
            .iter()
            .map(|&k| self.props[k].1)
            .filter(|p| changed.contains(p.id.as_str()))
            .collect();
        // In key order, so that the inserts walk the primary key's pages in order (at 1 M
        // records 36 → 32 ms per 5 000 events, with the owners' sort below).
        props.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        let mut cols = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for p in props {
            for (pos, o) in p.record.owners.iter().enumerate() {
                cols.0.push(p.id.clone());
                cols.1.push(i32::try_from(pos).unwrap_or(i32::MAX));
                cols.2.push(o.owner_ref.clone());
                cols.3.push(o.share_pct);
            }
        }
        cols
    }

    /// One row per owner ref: the name from the newest ledger time in the batch (ties broken
    /// by the larger name, as the SQL guard does).
    #[allow(clippy::type_complexity)]
    fn owners(&self) -> (Vec<String>, Vec<String>, Vec<Option<String>>, Vec<i64>) {
        let mut best: HashMap<&str, (i64, &str, &str, Option<&str>)> = HashMap::new();
        for &(ord, p) in &self.props {
            let t = self.changes[ord].tx_time_ms;
            for o in &p.record.owners {
                let cand = (t, o.name.as_str(), o.father_name.as_deref().unwrap_or(""));
                let better = match best.get(o.owner_ref.as_str()) {
                    Some(&(bt, bn, bf, _)) => cand > (bt, bn, bf),
                    None => true,
                };
                if better {
                    best.insert(
                        &o.owner_ref,
                        (cand.0, cand.1, cand.2, o.father_name.as_deref()),
                    );
                }
            }
        }
        // In key order, so that the upserts walk the primary key's pages in order (at 1 M
        // records 47 → 41 ms per 5 000 events).
        let mut best: Vec<_> = best.into_iter().collect();
        best.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut cols = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (r, (t, n, _, f)) in best {
            cols.0.push(r.to_string());
            cols.1.push(n.to_string());
            cols.2.push(f.map(str::to_string));
            cols.3.push(t);
        }
        cols
    }
}

#[derive(Default)]
struct DocCols {
    ord: Vec<i32>,
    property_id: Vec<String>,
    doc_hash: Vec<String>,
    doc_type: Vec<String>,
    linked_ms: Vec<i64>,
    channel: Vec<String>,
    block: Vec<i64>,
    tx_index: Vec<i32>,
    tx_id: Vec<String>,
}

impl DocCols {
    fn push(&mut self, ord: usize, c: &Change, d: &DocumentChange) {
        self.ord.push(i32::try_from(ord).unwrap_or(i32::MAX));
        self.property_id.push(d.property_id.clone());
        self.doc_hash.push(d.doc.doc_hash.clone());
        self.doc_type.push(d.doc.doc_type.clone());
        self.linked_ms.push(d.doc.linked_at);
        self.channel.push(c.version.channel.to_string());
        self.block.push(to_i64(c.version.block));
        self.tx_index.push(to_i32(c.version.tx_index));
        self.tx_id.push(c.version.tx_id.to_hex());
    }
}

#[derive(Default)]
struct LogCols {
    pid: Vec<String>,
    event: Vec<&'static str>,
    channel: Vec<String>,
    block: Vec<i64>,
    tx_index: Vec<i32>,
    tx_id: Vec<String>,
}

impl LogCols {
    fn push(&mut self, c: &Change) {
        self.pid.push(c.property_id().to_string());
        self.event.push(c.event);
        self.channel.push(c.version.channel.to_string());
        self.block.push(to_i64(c.version.block));
        self.tx_index.push(to_i32(c.version.tx_index));
        self.tx_id.push(c.version.tx_id.to_hex());
    }
}

/// One staging row (the columns of [`STAGE_COPY`]).
fn stage_row(
    rows: &mut BinaryRows,
    ord: usize,
    latest: bool,
    fresh: bool,
    c: &Change,
    p: &PropertyChange,
) {
    let r = &p.record;
    rows.row(28);
    rows.int4(i32::try_from(ord).unwrap_or(i32::MAX));
    rows.bool(latest);
    rows.bool(fresh);
    rows.text(&p.id);
    rows.text(p.pid.state());
    rows.int4(i32::from(p.pid.year()));
    match p.pid.shard() {
        Some(s) => rows.int4(i32::from(s)),
        None => rows.null(),
    }
    rows.int8(to_i64(p.pid.sequence()));
    rows.text(&r.district);
    rows.text(&r.mandal);
    rows.text(&r.village);
    rows.text(&r.survey_no);
    rows.opt_text(r.khata_no.as_deref());
    rows.int8(r.area_sq_m);
    rows.text(&r.area_text);
    rows.text(&r.land_type);
    rows.int8(r.market_value);
    rows.text(r.verification_status.as_str());
    rows.int8(r.created_at);
    rows.int8(r.updated_at);
    rows.jsonb(&p.record_jcs);
    rows.hex(&p.record_hash);
    rows.text(&c.version.channel);
    rows.int8(to_i64(c.version.block));
    rows.int4(to_i32(c.version.tx_index));
    rows.hex(&c.version.tx_id);
    rows.text(c.event);
    rows.int8(c.tx_time_ms);
}

/// Sends `rows` with `statement` (a `COPY … FROM STDIN (FORMAT binary)`).
async fn copy_binary(
    conn: &mut PgConnection,
    statement: &str,
    rows: BinaryRows,
) -> Result<(), sqlx::Error> {
    let mut copy = conn.copy_in_raw(statement).await?;
    copy.send(rows.finish()).await?;
    copy.finish().await?;
    Ok(())
}

/// A primary key refused a row: what appending hits when its rows are there already.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{DecodedBlock, Version};
    use ledger::model::{Document, Owner, Record, VerificationStatus};

    fn prop(channel: &Arc<str>, block: u64, tx: u32, id: &str, name: &str, at: i64) -> Change {
        let pid: ledger::PropertyId = id.parse().unwrap();
        let record = Record {
            property_id: pid,
            state: "TS".into(),
            district: "D".into(),
            mandal: "M".into(),
            village: "V".into(),
            survey_no: "1".into(),
            khata_no: None,
            owners: vec![Owner {
                owner_ref: "r1".into(),
                name: name.into(),
                father_name: None,
                share_pct: 100,
            }],
            area_sq_m: 1,
            area_text: "1".into(),
            land_type: "Dry".into(),
            market_value: 1,
            verification_status: VerificationStatus::Pending,
            created_at: 1,
            updated_at: at,
        };
        Change {
            version: Version {
                channel: channel.clone(),
                block,
                tx_index: tx,
                tx_id: Hash32::ZERO,
            },
            event: "PropertyCreated",
            tx_time_ms: at,
            kind: ChangeKind::Property(Box::new(PropertyChange {
                id: id.into(),
                pid,
                record,
                record_jcs: "{}".into(),
                record_hash: Hash32::ZERO,
            })),
        }
    }

    fn block(channel: &Arc<str>, number: u64, changes: Vec<Change>) -> DecodedBlock {
        DecodedBlock {
            channel: channel.clone(),
            number,
            hash: Hash32::ZERO,
            time_ms: 0,
            changes,
            invalid: 0,
            failures: Vec::new(),
        }
    }

    #[test]
    fn plan_keeps_every_version_and_picks_the_newest_per_key() {
        let ch: Arc<str> = "p".into();
        let docs: Arc<str> = "d".into();
        let a = "LRI-IND-TS-2026-03-00001";
        let b = "LRI-IND-TS-2026-03-00002";
        let doc = |block, tx, at| Change {
            version: Version {
                channel: docs.clone(),
                block,
                tx_index: tx,
                tx_id: Hash32::ZERO,
            },
            event: "DocumentLinked",
            tx_time_ms: at,
            kind: ChangeKind::Document(DocumentChange {
                property_id: a.into(),
                doc: Document {
                    property_id: a.parse().unwrap(),
                    doc_hash: "h".into(),
                    doc_type: format!("t{block}"),
                    linked_at: at,
                },
            }),
        };
        let batch = Batch {
            blocks: vec![
                block(
                    &ch,
                    1,
                    vec![prop(&ch, 1, 0, a, "Ravi", 10), prop(&ch, 1, 1, b, "X", 10)],
                ),
                block(&docs, 1, vec![doc(1, 0, 11)]),
                block(&ch, 2, vec![prop(&ch, 2, 0, a, "Ravi Kumar", 20)]),
                block(&docs, 2, vec![doc(2, 0, 21)]),
                block(&ch, 3, vec![prop(&ch, 3, 4, a, "Ravi K", 30)]),
            ],
            events: 7,
            halts: Vec::new(),
        };
        let plan = Plan::new(&batch);
        assert_eq!(plan.changes.len(), 6);
        assert_eq!(plan.props.len(), 4, "every version goes to history");
        let mut latest: Vec<(u64, &str)> = plan
            .latest
            .iter()
            .map(|&k| {
                (
                    plan.changes[plan.props[k].0].version.block,
                    plan.props[k].1.id.as_str(),
                )
            })
            .collect();
        latest.sort();
        assert_eq!(latest, vec![(1, b), (3, a)]);
        assert_eq!(plan.docs.len(), 1, "one document row per key");
        assert_eq!(plan.docs[0].1.doc.doc_type, "t2");
        let (refs, names, _, times) = plan.owners();
        assert_eq!(refs, vec!["r1".to_string()]);
        assert_eq!((names[0].as_str(), times[0]), ("Ravi K", 30));
        let (pids, positions, owners, _) = plan.ownerships(&[a.to_string()]);
        assert_eq!(
            (pids, positions, owners),
            (vec![a.to_string()], vec![0], vec!["r1".to_string()])
        );
    }

    #[test]
    fn a_property_is_created_in_the_batch_only_when_its_first_write_creates_it() {
        let ch: Arc<str> = "p".into();
        let a = "LRI-IND-TS-2026-03-00001";
        let b = "LRI-IND-TS-2026-03-00002";
        let mut transfer = prop(&ch, 1, 0, a, "Ravi", 10);
        transfer.event = "PropertyTransferred";
        let batch = Batch {
            blocks: vec![block(
                &ch,
                1,
                vec![
                    transfer,
                    prop(&ch, 1, 1, b, "X", 10),
                    prop(&ch, 1, 2, b, "Y", 11),
                    prop(&ch, 1, 3, a, "Ravi K", 12),
                ],
            )],
            events: 4,
            halts: Vec::new(),
        };
        let plan = Plan::new(&batch);
        assert_eq!(plan.created(), HashSet::from([b]));
    }
}
