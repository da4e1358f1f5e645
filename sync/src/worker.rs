//! The worker's life: connect, become leader (or wait as standby), tail every channel from
//! its checkpoint through the batcher into the writer, and start over from the database's
//! checkpoints whenever PostgreSQL goes away.
//!
//! A *session* is one leader connection. Anything that breaks it — PostgreSQL restarted, the
//! network, a failed commit — ends the session: tailers and batcher are dropped with whatever
//! they held, and the next session resumes from the checkpoints that were committed. Because
//! each batch commits together with its checkpoints, nothing is lost and nothing is applied
//! twice.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::VerifyingKey;
use ledger::client::Ledger;
use ledger::model::ChainInfo;
use migrations::sqlx;
use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, JoinSet};
use tracing::Instrument;

use crate::backoff::Backoff;
use crate::batch::{self, Batch};
use crate::bulk;
use crate::error::{ChannelHalt, SyncError};
use crate::leader::{Checkpoint, Leader};
use crate::metrics::{ch, Metrics};
use crate::source::{self, Cursor, TailMsg};
use crate::writer::{Outcome, Writer};
use crate::{SyncOptions, LEADER_LOCK_KEY};

/// How often a standby asks for the leader lock.
const STANDBY_POLL: Duration = Duration::from_millis(250);
/// How often the chain height is polled for the lag metrics.
const HEIGHT_POLL: Duration = Duration::from_secs(1);
/// How long the leader's connection may sit idle before it is checked.
const IDLE_PING: Duration = Duration::from_secs(2);
/// Events applied since the last ANALYZE after which the worker, once it is at the tip (a
/// batch well below the batch size), refreshes the planner's statistics (see `bulk::analyze`).
const ANALYZE_AFTER_EVENTS: usize = 50_000;
/// Decoded blocks in flight between the tailers and the batcher.
const TAIL_QUEUE: usize = 16;

/// A session's bulk catch-up (see `bulk`): one at most per session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Every secondary index in place; a large enough catch-up may drop them.
    Indexed,
    /// Secondary indexes dropped (by this session or one before it) until near the tip.
    Bulk,
    /// Built again, or the drop was refused: not tried again this session.
    Done,
}

/// How a session ended.
enum End {
    Shutdown,
    /// Something transient; start a new session after a backoff.
    Retry(String),
    Fatal(SyncError),
}

pub(crate) struct Worker {
    pub opts: SyncOptions,
    pub ledger: Arc<dyn Ledger>,
    pub metrics: Arc<Metrics>,
    /// `--orderer-key`, parsed; `None` for trust on first use.
    pub explicit_key: Option<(String, VerifyingKey)>,
}

impl Worker {
    pub async fn run(self, stop: watch::Receiver<bool>) -> Result<(), SyncError> {
        let mut backoff = Backoff::standard();
        loop {
            let started = Instant::now();
            // Boxed, one allocation per session, so that `run`'s future does not carry the
            // session's state inline (about 3.5 KB, two thirds of it unboxed).
            let end = futures::FutureExt::boxed(self.session(&stop)).await;
            self.metrics.leader.set(0);
            match end {
                End::Shutdown => return Ok(()),
                End::Fatal(e) => {
                    tracing::error!(error = %e, "sync worker stops");
                    return Err(e);
                }
                End::Retry(why) => {
                    if started.elapsed() > Duration::from_secs(30) {
                        backoff.reset();
                    }
                    let delay = backoff.next_delay();
                    tracing::warn!(reason = %why, retry_in_ms = delay.as_millis() as u64, "sync session ended; resuming from the stored checkpoints");
                    if sleep_or_stop(delay, &stop).await {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn session(&self, stop: &watch::Receiver<bool>) -> End {
        let mut leader = match self.become_leader(stop).await {
            None => return End::Shutdown,
            Some(Err(end)) => return end,
            Some(Ok(l)) => l,
        };
        self.metrics.leader.set(1);
        tracing::info!(
            lock_key = LEADER_LOCK_KEY,
            "leader lock taken; this worker writes"
        );
        let mut writer = match Writer::prepare(leader.conn()).await {
            Ok(w) => w,
            Err(e) => return db_end(&self.metrics, "preparing the session", &e),
        };
        let policy = bulk::Policy::new(self.opts.bulk_min_events, self.opts.batch_max_events);
        let mut phase = match bulk::dropped_indexes(leader.conn()).await {
            Ok(n) if n > 0 => {
                tracing::info!(
                    dropped = n,
                    "resuming a bulk catch-up: secondary indexes stay dropped until near the tip"
                );
                Phase::Bulk
            }
            Ok(_) => Phase::Indexed,
            Err(e) => return db_end(&self.metrics, "reading the dropped indexes", &e),
        };
        // What this session wrote, to estimate the events left from the blocks left.
        let mut estimate = bulk::Estimate::default();

        let Some(info) = self.chain_info(stop).await else {
            return End::Shutdown;
        };
        let trusted = match &self.explicit_key {
            Some((hex, key)) => {
                if !info.orderer_public_key.eq_ignore_ascii_case(hex) {
                    tracing::warn!(trusted = %hex, presented = %info.orderer_public_key, "the ledger presents another orderer key than --orderer-key; blocks not signed by the trusted key will halt their channel");
                }
                *key
            }
            None => match leader.pin_key(&info.orderer_public_key).await {
                Err(e) => return db_end(&self.metrics, "reading the pinned orderer key", &e),
                Ok(pinned) if pinned != info.orderer_public_key => {
                    return End::Fatal(SyncError::OrdererKeyChanged {
                        pinned,
                        presented: info.orderer_public_key,
                    })
                }
                Ok(pinned) => match ledger::signing::parse_public_key(&pinned) {
                    Ok(k) => k,
                    Err(e) => {
                        return End::Fatal(SyncError::Config {
                            option: "orderer key presented by the ledger",
                            why: e.to_string(),
                        })
                    }
                },
            },
        };
        let stored = match leader.checkpoints().await {
            Ok(c) => c,
            Err(e) => return db_end(&self.metrics, "reading checkpoints", &e),
        };

        // Source → transform → batcher → (this task) writer.
        let mut tasks = JoinSet::new();
        let (tail_tx, tail_rx) = mpsc::channel::<TailMsg>(TAIL_QUEUE);
        let (batch_tx, mut batch_rx) = mpsc::channel::<Batch>(1);
        let mut tailers: HashMap<Arc<str>, AbortHandle> = HashMap::new();
        let mut halts: Vec<ChannelHalt> = Vec::new();
        for c in &info.channels {
            let name: Arc<str> = c.name.as_str().into();
            self.metrics.register_channel(&c.name);
            let cursor = match stored.get(&c.name) {
                None => Cursor::GENESIS,
                Some(Err(why)) => {
                    return End::Fatal(SyncError::Config {
                        option: "checkpoints table",
                        why: format!("channel {}: {why}", c.name),
                    })
                }
                Some(Ok(cp)) => {
                    self.metrics.set_checkpoint(&c.name, cp.block, None);
                    if c.height < cp.block + 1 {
                        tracing::warn!(channel = %c.name, height = c.height, checkpoint = cp.block, "the ledger has fewer blocks than the read model has applied; waiting for it to catch up");
                    } else if c.height == cp.block + 1 && c.tip_hash != cp.hash {
                        let h = ChannelHalt {
                            channel: c.name.clone(),
                            block: cp.block,
                            reason: format!(
                                "the ledger's block {} has hash {}, but the read model applied a block {} with hash {} (the chains diverge)",
                                cp.block, c.tip_hash, cp.block, cp.hash
                            ),
                        };
                        tracing::error!(channel = %h.channel, block = h.block, reason = %h.reason, "channel halted");
                        self.metrics.set_halted(&c.name);
                        halts.push(h);
                        continue;
                    }
                    Cursor::from(*cp)
                }
            };
            self.metrics.set_chain(&c.name, c.height, c.tip_time);
            self.metrics.ledger_up.set(1);
            tracing::info!(channel = %c.name, from = cursor.next, height = c.height, "tailing");
            let h = tasks.spawn(source::tail(
                self.ledger.clone(),
                name.clone(),
                cursor,
                trusted,
                tail_tx.clone(),
                self.metrics.clone(),
            ));
            tailers.insert(name, h);
        }
        drop(tail_tx);
        let channels_total = info.channels.len();
        if channels_total > 0 && halts.len() == channels_total {
            return End::Fatal(SyncError::Halted(halts));
        }
        tasks.spawn(batch::run(
            tail_rx,
            batch_tx,
            self.opts.batch_max_events.max(1),
            self.opts.batch_window,
        ));
        tasks.spawn(poll_heights(self.ledger.clone(), self.metrics.clone()));

        let mut stop = stop.clone();
        let mut halted: HashSet<Arc<str>> = HashSet::new();
        let mut unanalyzed = 0usize;
        // The statistics refresh running in the background, if any (see `bulk::analyze`).
        let mut analyzing: Option<tokio::task::JoinHandle<()>> = None;
        let mut idle = tokio::time::interval(IDLE_PING);
        idle.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let batch = tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => return End::Shutdown,
                b = batch_rx.recv() => Some(b),
                _ = idle.tick() => None,
            };
            let Some(batch) = batch else {
                // Nothing to write: at the tip, so a bulk catch-up is over.
                if phase == Phase::Bulk {
                    if let Err(end) = self.leave_bulk(&mut leader).await {
                        return end;
                    }
                    phase = Phase::Done;
                }
                // Make sure the connection (and with it the leader lock) is still there, so
                // a lost lock shows up now, not at the next block.
                if let Err(e) = leader.ping().await {
                    return db_end(&self.metrics, "checking the leader connection", &e);
                }
                continue;
            };
            idle.reset();
            let Some(mut batch) = batch else {
                // Every tailer has ended, which they only do when halted.
                if channels_total == 0 {
                    let _ = stop.wait_for(|s| *s).await;
                    return End::Shutdown;
                }
                return End::Fatal(SyncError::Halted(halts));
            };
            batch.blocks.retain(|b| !halted.contains(&b.channel));
            let batch_halts = std::mem::take(&mut batch.halts);
            let events = batch.events;
            for b in &batch.blocks {
                estimate.observe(&b.channel, (b.changes.len() + b.failures.len()) as u64);
            }
            if let Err(end) = self
                .write(
                    &mut leader,
                    &mut writer,
                    batch,
                    &mut halts,
                    &mut halted,
                    &tailers,
                )
                .await
            {
                return end;
            }
            for h in batch_halts {
                halted.insert(h.channel.as_str().into());
                halts.push(h);
            }
            let left = self.events_left(&estimate, &halted);
            let full = events >= self.opts.batch_max_events;
            match self.steer(&mut leader, phase, &policy, left, full).await {
                Ok(p) => phase = p,
                Err(end) => return end,
            }
            unanalyzed += events;
            if unanalyzed >= ANALYZE_AFTER_EVENTS
                && events < self.opts.batch_max_events / 2
                && analyzing.as_ref().is_none_or(|t| t.is_finished())
            {
                let (url, events) = (self.opts.database_url.clone(), unanalyzed);
                analyzing = Some(tokio::spawn(async move {
                    let started = Instant::now();
                    match bulk::analyze(&url).await {
                        Ok(()) => tracing::info!(
                            events,
                            ms = started.elapsed().as_millis() as u64,
                            "at the tip after a catch-up; planner statistics refreshed"
                        ),
                        // Statistics are an optimisation: the next catch-up tries again,
                        // and autovacuum analyses in any case.
                        Err(e) => tracing::warn!(error = %e, "refreshing statistics failed"),
                    }
                }));
                unanalyzed = 0;
            }
            if halts.len() >= channels_total {
                return End::Fatal(SyncError::Halted(halts));
            }
        }
    }

    /// Events not yet applied (estimated), over the channels that are not halted.
    fn events_left(&self, estimate: &bulk::Estimate, halted: &HashSet<Arc<str>>) -> u64 {
        let progress = self.metrics.tracker.lock();
        estimate.events_left(
            progress
                .iter()
                .filter(|(c, _)| !halted.contains(c.as_str()))
                .map(|(c, p)| (c.as_str(), p.lag_blocks())),
        )
    }

    /// After a batch, with about `left` events to go: the bulk phase to be in, entering or
    /// leaving it as `policy` says. Entering is only considered after a full batch (a
    /// catch-up, not the tip), and the rows of `properties` are only asked for then.
    async fn steer(
        &self,
        leader: &mut Leader,
        phase: Phase,
        policy: &bulk::Policy,
        left: u64,
        full: bool,
    ) -> Result<Phase, End> {
        match phase {
            Phase::Bulk if policy.near_tip(left) => {
                self.leave_bulk(leader).await?;
                Ok(Phase::Done)
            }
            Phase::Indexed if full && policy.should_drop(left, 0) => {
                let rows = bulk::estimated_properties(leader.conn())
                    .await
                    .map_err(|e| db_end(&self.metrics, "estimating the read model's size", &e))?;
                if !policy.should_drop(left, rows) {
                    return Ok(phase);
                }
                let started = Instant::now();
                match bulk::drop_secondary_indexes(leader.conn()).await {
                    Ok(names) => {
                        tracing::info!(
                            events_left = left,
                            rows,
                            dropped = ?names,
                            ms = started.elapsed().as_millis() as u64,
                            "bulk catch-up: secondary indexes dropped until near the tip"
                        );
                        Ok(Phase::Bulk)
                    }
                    // Readers held the tables past the lock timeout (or the statement failed
                    // otherwise): catch up with the indexes in place.
                    Err(e) if is_refusal(&e) || is_lock_timeout(&e) => {
                        tracing::warn!(error = %e, "bulk catch-up not started; going on with the indexes in place");
                        Ok(Phase::Done)
                    }
                    Err(e) => Err(db_end(&self.metrics, "dropping secondary indexes", &e)),
                }
            }
            _ => Ok(phase),
        }
    }

    /// Ends a bulk catch-up: builds the dropped secondary indexes again.
    async fn leave_bulk(&self, leader: &mut Leader) -> Result<(), End> {
        let started = Instant::now();
        tracing::info!("near the tip: building the secondary indexes the bulk catch-up dropped");
        match bulk::build_dropped_indexes(leader.conn(), &self.opts.database_url).await {
            Ok(names) => {
                tracing::info!(
                    built = ?names,
                    ms = started.elapsed().as_millis() as u64,
                    "bulk catch-up over: secondary indexes built"
                );
                Ok(())
            }
            Err(e) => Err(db_end(&self.metrics, "building secondary indexes", &e)),
        }
    }

    /// Writes a batch; a batch PostgreSQL refuses (bad data, not a lost connection) is
    /// written again block by block, and a single block it still refuses halts its channel.
    async fn write(
        &self,
        leader: &mut Leader,
        writer: &mut Writer,
        batch: Batch,
        halts: &mut Vec<ChannelHalt>,
        halted: &mut HashSet<Arc<str>>,
        tailers: &HashMap<Arc<str>, AbortHandle>,
    ) -> Result<(), End> {
        if batch.blocks.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let span = tracing::info_span!(
            "sync.batch",
            blocks = batch.blocks.len(),
            events = batch.events
        );
        self.metrics.set_db_connection(Some(true));
        let written = writer
            .write(leader.conn(), &batch)
            .instrument(span.clone())
            .await;
        self.metrics.set_db_connection(Some(false));
        match written {
            Ok(out) => {
                self.metrics.record_steps(&out.steps);
                self.record(&batch, &out, started.elapsed());
                Ok(())
            }
            Err(e) if is_refusal(&e) => {
                self.metrics.db_errors.inc();
                tracing::warn!(error = %e, blocks = batch.blocks.len(), "PostgreSQL refused a batch; writing its blocks one by one to find the culprit");
                for block in batch.blocks {
                    if halted.contains(&block.channel) {
                        continue;
                    }
                    let one = Batch {
                        events: block.changes.len() + block.failures.len(),
                        blocks: vec![block],
                        halts: Vec::new(),
                    };
                    let started = Instant::now();
                    match writer
                        .write(leader.conn(), &one)
                        .instrument(tracing::info_span!(parent: &span, "sync.batch.block"))
                        .await
                    {
                        Ok(out) => self.record(&one, &out, started.elapsed()),
                        Err(e) if is_refusal(&e) => {
                            let b = &one.blocks[0];
                            let h = ChannelHalt {
                                channel: b.channel.to_string(),
                                block: b.number,
                                reason: format!("PostgreSQL refuses to store the block: {e}"),
                            };
                            tracing::error!(channel = %h.channel, block = h.block, reason = %h.reason, "channel halted: nothing from the block is written");
                            self.metrics.set_halted(&h.channel);
                            if let Some(t) = tailers.get(&b.channel) {
                                t.abort();
                            }
                            halted.insert(b.channel.clone());
                            halts.push(h);
                        }
                        Err(e) => return Err(db_end(&self.metrics, "writing a block", &e)),
                    }
                }
                Ok(())
            }
            Err(e) => Err(db_end(&self.metrics, "writing a batch", &e)),
        }
    }

    fn record(&self, batch: &Batch, out: &Outcome, took: Duration) {
        let m = &self.metrics;
        m.batch_seconds.observe(took.as_secs_f64());
        m.batch_events.observe(batch.events as f64);
        m.batches_total.fetch_add(1, Ordering::Relaxed);
        for b in &batch.blocks {
            let c = ch(&b.channel);
            m.blocks.get_or_create(&c).inc();
            if b.invalid > 0 {
                m.tx_invalid.get_or_create(&c).inc_by(b.invalid);
            }
            if !b.failures.is_empty() {
                m.tx_failed
                    .get_or_create(&c)
                    .inc_by(b.failures.len() as u64);
                for f in &b.failures {
                    tracing::warn!(channel = %f.channel, block = f.block, tx_index = ?f.tx_index, tx_id = ?f.tx_id.map(|t| t.to_hex()), error = %f.error, "valid transaction cannot be projected; recorded in indexing_errors and skipped");
                }
            }
        }
        let mut applied = 0;
        for (c, n) in &out.applied {
            m.events_applied.get_or_create(&ch(c)).inc_by(*n);
            applied += n;
        }
        for (c, n) in &out.replayed {
            m.events_replayed.get_or_create(&ch(c)).inc_by(*n);
        }
        m.applied_total.fetch_add(applied, Ordering::Relaxed);
        if let Some(seq) = out.last_seq {
            m.last_seq.store(seq, Ordering::Relaxed);
        }
        for (c, cp, time) in &out.checkpoints {
            m.set_checkpoint(c, cp.block, Some(*time));
        }
        tracing::debug!(
            blocks = batch.blocks.len(),
            events = batch.events,
            applied,
            last_seq = ?out.last_seq,
            took_ms = took.as_millis() as u64,
            steps = ?out.steps,
            "batch committed"
        );
    }

    /// Connects, migrates and waits for the leader lock. `None` on shutdown; `Some(Err)` when
    /// the session must end before it began.
    async fn become_leader(&self, stop: &watch::Receiver<bool>) -> Option<Result<Leader, End>> {
        let mut leader = tokio::select! {
            r = Leader::connect(&self.opts.database_url) => match r {
                Ok(l) => {
                    self.metrics.set_db_connection(Some(false));
                    l
                }
                Err(e) => return Some(Err(db_end(&self.metrics, "connecting to PostgreSQL", &e))),
            },
            _ = stopped(stop) => return None,
        };
        tokio::select! {
            r = Leader::migrate(&self.opts.database_url) => if let Err(e) = r {
                return Some(Err(migrate_end(&self.metrics, e)));
            },
            _ = stopped(stop) => return None,
        }
        let mut said = false;
        loop {
            match leader.try_lock(LEADER_LOCK_KEY).await {
                Ok(true) => return Some(Ok(leader)),
                Ok(false) => {
                    if !said {
                        tracing::info!(
                            lock_key = LEADER_LOCK_KEY,
                            "another sync worker is the leader; waiting as hot standby"
                        );
                        said = true;
                    }
                }
                Err(e) => {
                    return Some(Err(db_end(&self.metrics, "asking for the leader lock", &e)))
                }
            }
            if sleep_or_stop(STANDBY_POLL, stop).await {
                return None;
            }
        }
    }

    /// `Ledger::info`, retried with backoff until it answers. `None` on shutdown.
    async fn chain_info(&self, stop: &watch::Receiver<bool>) -> Option<ChainInfo> {
        let mut backoff = Backoff::standard();
        loop {
            match self.ledger.info().await {
                Ok(i) => return Some(i),
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "the ledger does not answer; waiting");
                    if sleep_or_stop(delay, stop).await {
                        return None;
                    }
                }
            }
        }
    }
}

/// Polls the chain heights for the lag metrics.
async fn poll_heights(ledger: Arc<dyn Ledger>, metrics: Arc<Metrics>) {
    let mut tick = tokio::time::interval(HEIGHT_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match ledger.info().await {
            Ok(info) => {
                metrics.ledger_up.set(1);
                for c in &info.channels {
                    metrics.set_chain(&c.name, c.height, c.tip_time);
                }
            }
            Err(e) => {
                metrics.ledger_up.set(0);
                tracing::debug!(error = %e, "polling the chain height failed")
            }
        }
    }
}

/// PostgreSQL refused the statement for what it contains (data, constraint, a statement
/// it cannot run) rather than for being unavailable: retrying it unchanged cannot help.
fn is_refusal(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            ["22", "23", "42", "54"].iter().any(|c| code.starts_with(c))
        }
        _ => false,
    }
}

/// PostgreSQL gave up waiting for a lock (`lock_timeout`).
fn is_lock_timeout(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("55P03"))
}

fn db_end(metrics: &Metrics, what: &str, e: &sqlx::Error) -> End {
    metrics.db_errors.inc();
    // The session ends here; the worker connects again.
    metrics.set_db_connection(None);
    metrics.reconnect("database");
    End::Retry(format!("PostgreSQL error while {what}: {e}"))
}

fn migrate_end(metrics: &Metrics, e: migrations::DbError) -> End {
    use migrations::DbError as D;
    use sqlx::migrate::MigrateError as M;
    match &e {
        D::Connect { source, .. } => db_end(metrics, "connecting to migrate", source),
        D::Migrate(M::Execute(inner) | M::ExecuteMigration(inner, _)) if !is_refusal(inner) => {
            db_end(metrics, "migrating", inner)
        }
        _ => End::Fatal(SyncError::Migrate(e.to_string())),
    }
}

/// Completes when shutdown is signalled (or the signal is gone).
async fn stopped(stop: &watch::Receiver<bool>) {
    let _ = stop.clone().wait_for(|v| *v).await;
}

/// Sleeps for `d`; `true` when shutdown came first.
async fn sleep_or_stop(d: Duration, stop: &watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => false,
        () = stopped(stop) => true,
    }
}

impl From<Checkpoint> for Cursor {
    fn from(cp: Checkpoint) -> Self {
        Cursor {
            next: cp.block + 1,
            prev: cp.hash,
        }
    }
}
