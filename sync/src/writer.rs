//! The batch writer: one batch → one PostgreSQL transaction, on the leader's connection
//! (`leader`: the connection that holds the lock is the one that writes).
//!
//! A batch's transaction, in order ([`write_once`], one function per step):
//! 1. property versions are COPYed (binary format) into a temporary staging table — one row
//!    per write, each marked `latest` when it is the newest write of its property in the
//!    batch, and `fresh` when it is also the newest of a property the batch creates;
//! 2. `property_versions`: every staged row. A batch is first written by *appending*
//!    (see [`Writer::write`]): its rows cannot be in the read model yet, so they are inserted
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
//! Every bulk statement sends arrays (UNNEST) or COPY data, never a row at a time (`sql`);
//! `plan` lays the batch out for them.

mod plan;
mod sql;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use migrations::sqlx::postgres::PgConnection;
use migrations::sqlx::{self, Connection, Row};
use tracing::Instrument;

use self::plan::{to_i32, to_i64, DocCols, LogCols, Plan};
use self::sql::*;
use crate::batch::Batch;
use crate::copy::BinaryRows;
use crate::decode::{Change, PropertyChange};
use crate::leader::Checkpoint;
use crate::NOTIFY_CHANNEL;

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
    /// Milliseconds spent in each step, for the debug log.
    pub steps: Vec<(&'static str, Duration)>,
}

/// Writes batches on the leader's connection, one transaction each, for one session.
pub(crate) struct Writer {
    /// How batches are written (see [`Writer::write`]). Turned to merging for the session by
    /// the first batch whose rows turn out to be there already.
    mode: Mode,
}

/// How a batch is written (see [`Writer::write`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Its rows cannot be in the read model yet: inserted plainly.
    Append,
    /// Some may be: every statement guarded, a replay a no-op.
    Merge,
}

impl Writer {
    /// Readies the leader's session `conn` for batches: its memory settings and the staging
    /// table.
    pub async fn prepare(conn: &mut PgConnection) -> Result<Self, sqlx::Error> {
        // A batch stages up to several MB of rows (each with its record as jsonb);
        // temporary tables live in the session's own buffers, 8 MB by default, beyond
        // which every batch is written out to disk and read back. The setting only
        // takes effect before the session's first temporary table, hence here.
        sqlx::query(STAGE_BUFFERS).execute(&mut *conn).await?;
        // And memory for what the batch's statements sort and keep (see WORK_MEM).
        sqlx::query(WORK_MEM).execute(&mut *conn).await?;
        sqlx::query(STAGE_DDL).execute(&mut *conn).await?;
        Ok(Writer { mode: Mode::Append })
    }

    /// Writes `batch` in one transaction on `conn`, the leader's (see the module docs).
    ///
    /// First by appending: the blocks come after their channel's checkpoint, which is
    /// committed with the rows of every block up to it, so none of their history rows can
    /// be in the read model yet, nor a `properties` row of a property the batch creates.
    /// Those rows are then inserted plainly: no conflict check, no version guard, no
    /// matching of what was inserted. Only a reset checkpoint (an operator replaying the
    /// chain) or a chain that creates one ID twice breaks that premise; a primary key then
    /// refuses the duplicate, the transaction is rolled back, and the batch is merged instead
    /// (every statement guarded, a replay a no-op), as is every batch after it this session.
    pub async fn write(
        &mut self,
        conn: &mut PgConnection,
        batch: &Batch,
    ) -> Result<Outcome, sqlx::Error> {
        if self.mode == Mode::Append {
            match write_once(conn, batch, Mode::Append).await {
                Err(e) if is_unique_violation(&e) => {
                    tracing::warn!(error = %e, "rows of a batch are in the read model already (a replay?); merging it and the rest of this session's batches");
                    self.mode = Mode::Merge;
                }
                r => return r,
            }
        }
        write_once(conn, batch, Mode::Merge).await
    }
}

/// One attempt at writing `batch`: the transaction of the module docs, step by step.
async fn write_once(
    conn: &mut PgConnection,
    batch: &Batch,
    mode: Mode,
) -> Result<Outcome, sqlx::Error> {
    let mut laps = Laps::start();
    // Two spans: `sync.write`, the statements, and `sync.commit`, where PostgreSQL flushes.
    let (tx, applied_per_channel, replayed, last_seq, checkpoints) = async {
        let plan = Plan::new(batch);
        let mut tx = conn.begin().await?;
        laps.lap("plan");
        // Which of `plan.changes` this transaction applies (a replay applies none).
        let mut applied = vec![false; plan.changes.len()];

        if !plan.props.is_empty() {
            // The properties whose rows changed: first the fresh ones, then those upserted.
            let mut changed = stage_versions(&mut tx, &plan, mode).await?;
            laps.lap("copy");
            insert_history(&mut tx, &plan, mode, &mut applied).await?;
            laps.lap("versions");
            if mode == Mode::Append {
                insert_created_properties(&mut tx, &changed).await?;
                laps.lap("created");
            }
            let updated = upsert_properties(&mut tx, &mut changed).await?;
            laps.lap("properties");
            replace_ownerships(&mut tx, &plan, &updated, &changed).await?;
            laps.lap("ownerships");
            upsert_owners(&mut tx, &plan).await?;
            laps.lap("owners");
        }
        upsert_documents(&mut tx, &plan, &mut applied).await?;

        let (applied_per_channel, replayed) = count_per_channel(&plan, &applied);
        let last_seq = append_change_log(&mut tx, &plan, &applied).await?;
        record_indexing_errors(&mut tx, batch).await?;
        let checkpoints = advance_checkpoints(&mut tx, batch).await?;
        if let Some(seq) = last_seq {
            notify(&mut tx, seq).await?;
        }
        laps.lap("log");
        Ok::<_, sqlx::Error>((tx, applied_per_channel, replayed, last_seq, checkpoints))
    }
    .instrument(tracing::info_span!("sync.write"))
    .await?;
    tx.commit()
        .instrument(tracing::info_span!("sync.commit"))
        .await?;
    laps.lap("commit");
    Ok(Outcome {
        applied: applied_per_channel,
        replayed,
        last_seq,
        checkpoints,
        steps: laps.steps,
    })
}

/// Step 1: every property write into the staging table (binary COPY). When appending, the
/// newest row of each property the batch creates is `fresh`: inserted, not upserted.
/// Returns the fresh properties' IDs.
async fn stage_versions(
    conn: &mut PgConnection,
    plan: &Plan<'_>,
    mode: Mode,
) -> Result<Vec<String>, sqlx::Error> {
    let created = match mode {
        Mode::Append => plan.created(),
        Mode::Merge => HashSet::new(),
    };
    let mut stage = BinaryRows::new();
    let mut fresh_ids = Vec::new();
    for (k, &(ord, p)) in plan.props.iter().enumerate() {
        let latest = plan.latest.contains(&k);
        let fresh = latest && created.contains(p.id.as_str());
        if fresh {
            fresh_ids.push(p.id.clone());
        }
        stage_row(&mut stage, ord, latest, fresh, plan.changes[ord], p);
    }
    copy_binary(conn, STAGE_COPY, stage).await?;
    Ok(fresh_ids)
}

/// Step 2: the staged rows into `property_versions`, marking the property events applied —
/// all of them when appending, those whose row was not there yet when merging.
async fn insert_history(
    conn: &mut PgConnection,
    plan: &Plan<'_>,
    mode: Mode,
    applied: &mut [bool],
) -> Result<(), sqlx::Error> {
    match mode {
        Mode::Append => {
            sqlx::query(APPEND_VERSIONS).execute(&mut *conn).await?;
            for &(ord, _) in &plan.props {
                applied[ord] = true;
            }
        }
        Mode::Merge => {
            let ords: Vec<i32> = sqlx::query_scalar(INSERT_VERSIONS)
                .fetch_all(&mut *conn)
                .await?;
            mark_applied(applied, ords);
        }
    }
    Ok(())
}

/// Step 3, appending: the fresh rows (`fresh_ids`) into `properties`, plainly.
async fn insert_created_properties(
    conn: &mut PgConnection,
    fresh_ids: &[String],
) -> Result<(), sqlx::Error> {
    if !fresh_ids.is_empty() {
        sqlx::query(APPEND_PROPERTIES).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Step 3: the other newest rows upserted into `properties`, guarded by version. Adds the
/// properties it inserted or updated to `changed`, and returns those updated (whose old
/// ownerships must go).
async fn upsert_properties(
    conn: &mut PgConnection,
    changed: &mut Vec<String>,
) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query(UPSERT_PROPERTIES).fetch_all(&mut *conn).await?;
    let mut updated = Vec::new();
    for row in rows {
        let id: String = row.try_get(0)?;
        let inserted: bool = row.try_get(1)?;
        if !inserted {
            updated.push(id.clone());
        }
        changed.push(id);
    }
    Ok(updated)
}

/// Step 4: the `ownerships` of the `updated` properties deleted, and those of every
/// `changed` one inserted from its newest version.
async fn replace_ownerships(
    conn: &mut PgConnection,
    plan: &Plan<'_>,
    updated: &[String],
    changed: &[String],
) -> Result<(), sqlx::Error> {
    if !updated.is_empty() {
        sqlx::query(DELETE_OWNERSHIPS)
            .bind(updated)
            .execute(&mut *conn)
            .await?;
    }
    if !changed.is_empty() {
        let (pids, positions, refs, shares) = plan.ownerships(changed);
        sqlx::query(INSERT_OWNERSHIPS)
            .bind(pids)
            .bind(positions)
            .bind(refs)
            .bind(shares)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Step 4: `owners` upserted, the newest ledger time winning.
async fn upsert_owners(conn: &mut PgConnection, plan: &Plan<'_>) -> Result<(), sqlx::Error> {
    let (refs, names, fathers, times) = plan.owners();
    if !refs.is_empty() {
        sqlx::query(UPSERT_OWNERS)
            .bind(refs)
            .bind(names)
            .bind(fathers)
            .bind(times)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Step 5: the newest write of each document upserted, guarded by version, marking the
/// document events that changed a row applied.
async fn upsert_documents(
    conn: &mut PgConnection,
    plan: &Plan<'_>,
    applied: &mut [bool],
) -> Result<(), sqlx::Error> {
    if plan.docs.is_empty() {
        return Ok(());
    }
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
        .fetch_all(&mut *conn)
        .await?;
    mark_applied(applied, ords);
    Ok(())
}

/// Marks the changes at `ords` (staging or document ords) applied.
fn mark_applied(applied: &mut [bool], ords: Vec<i32>) {
    for ord in ords {
        if let Some(a) = usize::try_from(ord).ok().and_then(|o| applied.get_mut(o)) {
            *a = true;
        }
    }
}

/// Applied and replayed events per channel.
#[allow(clippy::type_complexity)]
fn count_per_channel(
    plan: &Plan<'_>,
    applied: &[bool],
) -> (HashMap<Arc<str>, u64>, HashMap<Arc<str>, u64>) {
    let (mut done, mut replayed) = (HashMap::new(), HashMap::new());
    for (c, was_applied) in plan.changes.iter().zip(applied) {
        let counts = if *was_applied {
            &mut done
        } else {
            &mut replayed
        };
        *counts.entry(c.version.channel.clone()).or_default() += 1;
    }
    (done, replayed)
}

/// Step 6: one `change_log` row per applied event, numbered on from the highest seq (the
/// leader is the only writer, so the seqs are gap-free). The last seq written, if any.
async fn append_change_log(
    conn: &mut PgConnection,
    plan: &Plan<'_>,
    applied: &[bool],
) -> Result<Option<i64>, sqlx::Error> {
    let mut log = LogCols::default();
    for (c, _) in plan.changes.iter().zip(applied).filter(|(_, a)| **a) {
        log.push(c);
    }
    if log.pid.is_empty() {
        return Ok(None);
    }
    let base: i64 = sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM change_log")
        .fetch_one(&mut *conn)
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
        .execute(&mut *conn)
        .await?;
    Ok(Some(base + n))
}

/// Step 7: the batch's transactions that could not be projected into `indexing_errors`
/// (not twice for a replay).
async fn record_indexing_errors(conn: &mut PgConnection, batch: &Batch) -> Result<(), sqlx::Error> {
    let failures: Vec<_> = batch.blocks.iter().flat_map(|b| &b.failures).collect();
    if failures.is_empty() {
        return Ok(());
    }
    sqlx::query(INSERT_ERRORS)
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
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Step 8: each channel's checkpoint moved to its last block in the batch (only forward).
/// Those checkpoints, with the blocks' ledger times.
async fn advance_checkpoints(
    conn: &mut PgConnection,
    batch: &Batch,
) -> Result<Vec<(Arc<str>, Checkpoint, i64)>, sqlx::Error> {
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
            .execute(&mut *conn)
            .await?;
    }
    Ok(last)
}

/// Step 9: `NOTIFY landql_changes, '<seq>'`, inside the transaction, so it is delivered when
/// the batch's rows become visible (the contract in the crate docs).
async fn notify(conn: &mut PgConnection, seq: i64) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(NOTIFY_CHANNEL)
        .bind(seq.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Milliseconds per step of a batch's transaction, for the debug log.
struct Laps {
    clock: Instant,
    steps: Vec<(&'static str, Duration)>,
}

impl Laps {
    fn start() -> Self {
        Laps {
            clock: Instant::now(),
            steps: Vec::new(),
        }
    }

    /// Ends the step `name`, begun at the end of the one before.
    fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        self.steps.push((name, now.duration_since(self.clock)));
        self.clock = now;
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
