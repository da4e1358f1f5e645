//! `landql seed`: builds a realistic ledger offline, deterministically.
//!
//! The seeder drives the same chaincode and block sealing as the live node — only the
//! clock is synthetic (history runs from 2019 to 2026) and nothing waits on HTTP — so a
//! seeded data directory is exactly what a node would have written had those transactions
//! been submitted live. The same `--seed` gives the same records, IDs and transactions.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::chain::{execute_block, Chains, Channel, DevnetConfig, DevnetError};
use crate::generate::{DemoData, Generator, Target, TypedProposal};
use crate::log::bulk::BulkWriter;
use crate::state::{
    counter_of, tx_id_of, ChannelIx, Entry, Executed, Proposed, Routing, WorldState,
};
use ledger::block::TxBody;
use ledger::canonical::{CanonicalError, Hash32};
use ledger::id::PropertyId;
use ledger::model::{Proposal, Record, TxKind, Validation};
use ledger::signing::OrdererKey;

/// 2019-01-01T00:00:00Z: the synthetic history starts here…
pub const HISTORY_START: i64 = 1_546_300_800_000;
/// …and ends at 2026-10-31T00:00:00Z (fixed, so that seeds are reproducible).
pub const HISTORY_END: i64 = 1_793_404_800_000;

#[derive(Debug, Clone)]
pub struct SeedOptions {
    pub records: u64,
    pub seed: u64,
    /// Follow-up transactions (transfers, corrections, documents, …) per created record.
    pub follow_ups_per_record: f64,
    pub devnet: DevnetConfig,
}

impl Default for SeedOptions {
    fn default() -> Self {
        Self {
            records: 20_000,
            seed: 1,
            follow_ups_per_record: 0.5,
            devnet: DevnetConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SeedReport {
    pub records: u64,
    pub transactions: u64,
    pub invalid: u64,
    pub blocks: u64,
    pub by_kind: HashMap<&'static str, u64>,
    pub by_code: HashMap<&'static str, u64>,
    /// Records whose current value the seeder stopped holding once the generator was done
    /// with them (see `Forgetting`); the ledger holds them all the same.
    pub forgotten: u64,
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Devnet(#[from] DevnetError),
    #[error("{0} already holds a ledger with transactions; seed needs a new data directory")]
    NotEmpty(String),
    #[error("the generator followed up record {0}, which the seeder had stopped keeping (a bug in landql seed)")]
    Forgotten(String),
}

/// Seeds `dir` with `opts.records` records and their history. `progress(records_done)` is
/// called after every round of blocks.
///
/// Blocks go through the node's own steps — `execute_block` (the chaincode), then
/// `Channel::seal` and the log append — but in a pipeline rather than one after another:
/// a generator thread plans each round of proposals and computes their tx_ids; this thread
/// executes them and merges each block into the world state at once; a sealer thread
/// encodes, hashes, signs and appends the blocks in order, through a `BulkWriter` whose
/// thread writes them to disk past the page cache. None of these threads uses rayon's pool:
/// the pipeline keeps both cores busy already, and the pool's workers, woken for every
/// block, spun on them (seeds took 1–2 s longer with it). The generator's follow-ups need
/// records that exist, so this thread reports each round's record writes back to it, and
/// the generator plans round `r` from the reports up to round `r - FEEDBACK_LAG` — a fixed
/// lag, not "whatever has arrived", so that the ledger depends on the seed alone and not on
/// thread timing. Nobody reads the data directory before `seed` returns, and it returns
/// only after every log is synced, so merging a block before it is written is safe here,
/// unlike in the live node.
pub fn seed(
    dir: &Path,
    opts: &SeedOptions,
    progress: impl FnMut(u64),
) -> Result<SeedReport, SeedError> {
    seed_tuned(dir, opts, Tuning::default(), progress)
}

/// Knobs of the seeder that change how it works, never what it writes; tests turn them to
/// show exactly that.
#[derive(Debug, Clone, Copy)]
struct Tuning {
    /// Records the generator remembers for follow-ups (its default when `None`).
    reservoir: Option<usize>,
    /// Drop the values of records the generator forgot (see [`Forgetting`]).
    forget: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            reservoir: None,
            forget: true,
        }
    }
}

fn seed_tuned(
    dir: &Path,
    opts: &SeedOptions,
    tuning: Tuning,
    mut progress: impl FnMut(u64),
) -> Result<SeedReport, SeedError> {
    let started = Instant::now();
    let (mut chains, open) = Chains::open_at(dir, &opts.devnet, HISTORY_START)?;
    if open.transactions > 0 {
        return Err(SeedError::NotEmpty(dir.display().to_string()));
    }
    let names = chains.channel_names();
    let bulk = BulkWriter::new(chains.channels.iter().map(|c| &c.log)).map_err(|source| {
        DevnetError::Io {
            path: dir.display().to_string(),
            source,
        }
    })?;
    let Chains {
        key,
        channels,
        state,
        routing,
        ..
    } = &mut chains;
    let heads: Vec<Head> = channels
        .iter()
        .map(|c| Head {
            next: c.height(),
            time: c.tip_time,
        })
        .collect();
    let mut report = std::thread::scope(|s| {
        let routing: &Routing = routing;
        let names = &names;
        let (jobs, queue) = mpsc::sync_channel::<SealJob>(SEAL_QUEUE);
        let (round_tx, round_rx) = mpsc::sync_channel::<Round>(FEEDBACK_LAG);
        let (feedback_tx, feedback_rx) = mpsc::channel::<Feedback>();
        let generator =
            s.spawn(move || generate_loop(opts, tuning, names, routing, round_tx, feedback_rx));
        let sealer = s.spawn(move || seal_loop(channels, key, queue, bulk));
        let driven = drive(
            opts,
            state,
            routing,
            heads,
            round_rx,
            feedback_tx,
            &jobs,
            &mut progress,
        );
        drop(jobs);
        let generated = generator.join().unwrap_or(Err(DevnetError::Failed));
        let sealed = sealer.join().unwrap_or(Err(DevnetError::Failed));
        // The generator's or sealer's failure explains a driver that stopped because its
        // queue closed.
        generated.and(sealed).map_err(SeedError::from).and(driven)
    })?;
    report.elapsed = started.elapsed();
    // Freeing millions of small allocations takes a while and nobody needs to wait for it.
    let _ = std::thread::Builder::new()
        .name("seed-drop".into())
        .spawn(move || drop(chains));
    Ok(report)
}

/// Blocks waiting to be sealed; enough to ride out a slow block, few enough to bound memory
/// (≈ 1.5 MB a block). With 8 the executing thread, timed, waited 0.85 s of a 1 M seed
/// for room in the queue while the generator and it took both cores; with 32 the sealer
/// catches up when either of them waits (1 M seed, median of three back to back: 9.76 s
/// against 10.11 s).
const SEAL_QUEUE: usize = 32;

/// The next block of a channel as the executing side sees it (the sealer may lag behind).
#[derive(Clone, Copy)]
struct Head {
    next: u64,
    time: i64,
}

/// One executed block for the sealer.
struct SealJob {
    channel: ChannelIx,
    number: u64,
    timestamp: i64,
    executed: Vec<Executed>,
    /// Values the executing side dropped (see [`Forgetting`]), for the sealer to free:
    /// freeing a million records took the executing thread, the seeder's busiest, 0.6 s.
    garbage: Vec<Vec<Entry>>,
}

/// Rounds the generator may run ahead of execution: round `r` is generated from what the
/// executing side reported up to round `r - FEEDBACK_LAG`. Fixed, so that the proposals
/// depend only on the seed, never on how the two threads happen to be scheduled. Two would
/// let the generator build round `r` while round `r - 1` executes, but rounds differ in
/// cost and the two threads share two cores with the sealer, so with two the executing
/// thread waited 2.4 s of a 1 M seed for rounds; four lets the generator get further ahead
/// (1.4 s of waiting; seed 14.1 → 13.3 s, median of three runs each, back to back).
/// Eight measured no better than four.
const FEEDBACK_LAG: usize = 4;

/// One round of proposals, grouped into blocks in the order they are to execute.
struct Round {
    /// The round's clock (a block's time is this or its channel's tip time, if later).
    now: i64,
    blocks: Vec<(ChannelIx, Vec<Proposed>)>,
    /// Records the generator stopped remembering as it planned this round, from what it
    /// knew of rounds up to `r - FEEDBACK_LAG` (see [`Forgetting`]).
    forget: Vec<PropertyId>,
}

/// What lets the executing side keep the current value of only the records the generator
/// remembers (≈ 65 000), not of every record (a million): the generator plans follow-ups on
/// no other, and holding them all was most of the seeder's memory (1.17 GB peak against
/// 0.52 GB), which on these VMs costs CPU in first-touch page faults.
///
/// A forgotten record's value is dropped from the world state (its parcel stays, so a
/// duplicate is still refused). The generator's list for round `r` reflects what it knew
/// up to round `r - FEEDBACK_LAG`; a record written since is kept, since the generator has
/// yet to hear of that write and may take the record back (it forgets it again if not).
/// Should a transaction still find a dropped record missing, the seed stops with
/// [`SeedError::Forgotten`] rather than record a wrong PROPERTY_NOT_FOUND.
#[derive(Default)]
struct Forgetting {
    /// The next block of each channel as each of the last `FEEDBACK_LAG` rounds began.
    starts: VecDeque<Vec<u64>>,
    /// Records dropped so far.
    dropped: u64,
}

impl Forgetting {
    /// Drops the values of `forget` from `state` as round `r` begins, the channels' next
    /// blocks being `heads`, and returns them (to be freed elsewhere).
    fn apply(
        &mut self,
        state: &mut WorldState,
        forget: Vec<PropertyId>,
        heads: &[Head],
    ) -> Vec<Vec<Entry>> {
        if self.starts.len() == FEEDBACK_LAG {
            self.starts.pop_front();
        }
        self.starts
            .push_back(heads.iter().map(|h| h.next).collect());
        // Blocks from these on belong to rounds `r - FEEDBACK_LAG + 1` and later.
        let Some(unheard) = self
            .starts
            .front()
            .filter(|_| self.starts.len() == FEEDBACK_LAG)
        else {
            return Vec::new(); // nothing is forgotten before the generator has heard of a round
        };
        let mut dropped = Vec::with_capacity(forget.len());
        for id in forget {
            let Some((key, versions)) = state.values.remove_entry(id.text().as_str()) else {
                continue;
            };
            let recent = versions.last().is_some_and(|e| {
                unheard
                    .get(usize::from(e.loc.channel))
                    .is_some_and(|&b| e.loc.block >= b)
            });
            if recent {
                state.values.insert(key, versions);
            } else {
                self.dropped += 1;
                dropped.push(versions);
            }
        }
        dropped
    }

    /// Fails if one of `executed` found a record missing that the seeder dropped: one whose
    /// ID was issued (its sequence is within its shard's counter) yet has no value.
    fn check(state: &WorldState, executed: &[Executed]) -> Result<(), SeedError> {
        for ex in executed {
            if ex.validation != Validation::PropertyNotFound {
                continue;
            }
            let Some(key) = ex.receipt.property_id.as_deref() else {
                continue;
            };
            let Ok(id) = key.parse::<PropertyId>() else {
                continue;
            };
            let issued = counter_of(&id)
                .and_then(|at| state.counters.get(&at))
                .is_some_and(|&last| id.sequence() <= last);
            if issued && state.current(key).is_none() {
                return Err(SeedError::Forgotten(key.to_string()));
            }
        }
        Ok(())
    }
}

/// What the executing side reports back to the generator after each round.
struct Feedback {
    /// Records created so far.
    records: u64,
    /// Each block's valid record writes in block order, with their tx_ids.
    written: Vec<Vec<(Arc<Record>, Hash32)>>,
}

/// The generator thread: plans rounds of proposals and computes their tx_ids, running up to
/// [`FEEDBACK_LAG`] rounds ahead of execution, and remembers the records each executed
/// round wrote for later follow-ups. It decides when the seed is complete — every record
/// created (as reported back) and `follow_ups_per_record` follow-ups per record planned —
/// and then stops, closing the rounds; it also stops, without error, once the executing
/// side hangs up.
///
/// Why the generator and not the executing side decides: the first rounds can only create
/// (nothing is known to follow up until the reports arrive), so stopping as soon as the
/// records exist would leave a small seed without history.
fn generate_loop(
    opts: &SeedOptions,
    tuning: Tuning,
    names: &[String],
    routing: &Routing,
    rounds: mpsc::SyncSender<Round>,
    feedback: mpsc::Receiver<Feedback>,
) -> Result<(), DevnetError> {
    let mut gen = Generator::new(opts.seed, DemoData::embedded());
    if let Some(n) = tuning.reservoir {
        gen = gen.with_reservoir(n);
    }
    if tuning.forget {
        gen.track_forgotten();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x5eed);
    let round = opts.devnet.max_txs.max(1);
    let ratio = opts.follow_ups_per_record.max(0.0);
    let p_create = 1.0 / (1.0 + ratio);
    let est_rounds = ((opts.records as f64 * (1.0 + ratio)) / round as f64)
        .ceil()
        .max(1.0);
    let step = ((HISTORY_END - HISTORY_START) as f64 / est_rounds) as i64;
    let docs = routing.docs;
    let follow_up_quota = (opts.records as f64 * ratio).round() as u64;
    let mut follow_ups = 0u64;
    // Creates planned so far, and those of the rounds not yet reported back (oldest first).
    let mut planned = 0u64;
    let mut unconfirmed: VecDeque<u64> = VecDeque::with_capacity(FEEDBACK_LAG + 1);
    let mut records = 0u64;
    let mut now = HISTORY_START;
    for r in 0usize.. {
        if r >= FEEDBACK_LAG {
            let Ok(fb) = feedback.recv() else {
                return Ok(()); // the executing side is done
            };
            unconfirmed.pop_front();
            records = fb.records;
            for block in fb.written {
                remember_block(&mut gen, block);
            }
        }
        let forget = gen.take_forgotten();
        if records >= opts.records && follow_ups >= follow_up_quota {
            return Ok(()); // complete; the rounds still in flight are executed
        }
        let in_flight: u64 = unconfirmed.iter().sum();
        let mut made = 0u64;
        let mut batches: Vec<(ChannelIx, Vec<TypedProposal>)> = Vec::new();
        let mut push =
            |ch: ChannelIx, p: TypedProposal| match batches.iter_mut().find(|b| b.0 == ch) {
                Some(b) => b.1.push(p),
                None => batches.push((ch, vec![p])),
            };
        for _ in 0..round {
            let creates_left = planned < opts.records;
            let follow_ups_left = follow_ups < follow_up_quota;
            let want_create = creates_left
                && (gen.remembered() == 0 || !follow_ups_left || rng.gen_bool(p_create));
            let follow_up = (!want_create && follow_ups_left)
                .then(|| gen.follow_up_typed())
                .flatten();
            if follow_up.is_none() && !creates_left {
                break;
            }
            match follow_up {
                Some((target, p)) => {
                    follow_ups += 1;
                    let ch = match target {
                        Target::Docs => docs,
                        Target::Records => {
                            routing.records_channel(p.args.state().unwrap_or_default())
                        }
                    };
                    push(ch, p);
                }
                None => {
                    planned += 1;
                    made += 1;
                    let c = gen.create_typed();
                    let ch = routing.records_channel(c.args.state().unwrap_or_default());
                    push(ch, c);
                }
            }
        }
        unconfirmed.push_back(made);
        // Creates were refused (all those reported are in, and fewer records exist than
        // were planned; or more than four rounds' worth are missing, which should not
        // happen): plan again past those known to have failed. Creates of rounds still
        // executing count as made, so that none is planned twice. A round with nothing
        // left to plan waits, empty, for the reports of the rounds before it.
        let expected = records + in_flight + made;
        if (batches.is_empty() && in_flight == 0) || planned > expected + round as u64 * 4 {
            planned = planned.min(expected);
        }
        if batches.is_empty() && in_flight == 0 && records >= opts.records {
            return Ok(()); // every record exists and no follow-up can be made
        }
        if !batches.is_empty() {
            now += step.max(1);
        }
        // Records channels first, so that documents link to records of this round.
        batches.sort_by_key(|b| (b.0 == docs, b.0));
        let mut blocks = Vec::with_capacity(batches.len());
        for (ch, proposals) in batches {
            let name = &names[ch as usize];
            let items = proposals
                .into_iter()
                .map(|p| propose(p, name))
                .collect::<Result<Vec<_>, _>>()?;
            blocks.push((ch, items));
        }
        if rounds
            .send(Round {
                now,
                blocks,
                forget,
            })
            .is_err()
        {
            return Ok(()); // the executing side is done
        }
    }
    Ok(())
}

/// A proposal the generator planned, on its way into a block of `channel`, with its tx_id
/// and its args' JCS.
fn propose(p: TypedProposal, channel: &str) -> Result<Proposed, CanonicalError> {
    let mut args = Vec::with_capacity(512);
    p.args.encode_jcs(&mut args)?;
    let kind = p.args.kind();
    let tx_id = tx_id_of(&args, channel, &p.creator, kind, &p.nonce)?;
    Ok(Proposed {
        tx_id,
        proposal: Proposal {
            kind,
            creator: p.creator,
            nonce: p.nonce,
            args: serde_json::Value::Null,
        },
        args_jcs: Some(args),
        typed: Some(p.args),
    })
}

/// Remembers one executed block's record writes for follow-ups. Only the block's last
/// version of a record is its current one, so earlier versions in the same block are
/// skipped.
fn remember_block(gen: &mut Generator, written: Vec<(Arc<Record>, Hash32)>) {
    let mut last: HashMap<PropertyId, usize> = HashMap::with_capacity(written.len());
    for (i, (record, _)) in written.iter().enumerate() {
        last.insert(record.property_id, i);
    }
    for (i, (record, tx_id)) in written.into_iter().enumerate() {
        if last.get(&record.property_id) == Some(&i) {
            gen.remember_owned(record, tx_id);
        }
    }
}

/// Executes and merges the generator's rounds until it closes them, handing each block to
/// the sealer through `jobs` and each round's record writes back to the generator through
/// `feedback`.
#[allow(clippy::too_many_arguments)]
fn drive(
    opts: &SeedOptions,
    state: &mut WorldState,
    routing: &Routing,
    mut heads: Vec<Head>,
    rounds: mpsc::Receiver<Round>,
    feedback: mpsc::Sender<Feedback>,
    jobs: &mpsc::SyncSender<SealJob>,
    progress: &mut impl FnMut(u64),
) -> Result<SeedReport, SeedError> {
    // Sized up front: growing maps of a million keys rehashes them over and over.
    let keys = usize::try_from(opts.records)
        .unwrap_or(usize::MAX)
        .min(1 << 26);
    // Nothing is served from this state: records stay typed, encoded once, into the block.
    state.typed = true;
    // The values of the records the generator remembers (see `Forgetting`) and documents.
    state.values.reserve(keys.min(1 << 18));
    state.parcels.reserve(keys);
    let mut report = SeedReport::default();
    let mut forgetting = Forgetting::default();
    // Until the generator closes the rounds: it decides when the seed is complete, and a
    // generator that failed closes them too (`seed` reports its error).
    while let Ok(Round {
        now,
        blocks,
        forget,
    }) = rounds.recv()
    {
        let mut garbage = forgetting.apply(state, forget, &heads);
        let mut written = Vec::with_capacity(blocks.len());
        for (ch, items) in blocks {
            let head = heads[ch as usize];
            let timestamp = now.max(head.time);
            let (mut executed, changes) =
                execute_block(state, routing, ch, head.next, timestamp, items)
                    .map_err(DevnetError::from)?;
            Forgetting::check(state, &executed)?;
            changes.merge_current_into(state);
            heads[ch as usize] = Head {
                next: head.next + 1,
                time: timestamp,
            };
            report.blocks += 1;
            let mut records = Vec::new();
            for ex in &mut executed {
                report.transactions += 1;
                *report.by_kind.entry(ex.kind.as_str()).or_default() += 1;
                *report.by_code.entry(ex.validation.as_str()).or_default() += 1;
                if ex.validation != Validation::Valid {
                    report.invalid += 1;
                    continue;
                }
                if ex.kind == TxKind::CreateLandRecord {
                    report.records += 1;
                }
                if let Some(record) = ex.record.take() {
                    records.push((record, ex.tx_id));
                }
            }
            written.push(records);
            let job = SealJob {
                channel: ch,
                number: head.next,
                timestamp,
                executed,
                garbage: std::mem::take(&mut garbage),
            };
            if jobs.send(job).is_err() {
                // The sealer stopped; its error is the one to report.
                return Err(DevnetError::Failed.into());
            }
        }
        // The generator may have stopped after an error: the round's result says so.
        let _ = feedback.send(Feedback {
            records: report.records,
            written,
        });
        progress(report.records);
    }
    report.forgotten = forgetting.dropped;
    Ok(report)
}

/// The sealer thread: seals each executed block after its channel's tip and appends it,
/// and once the queue closes, writes out and syncs the logs.
fn seal_loop(
    channels: &mut [Channel],
    key: &OrdererKey,
    queue: mpsc::Receiver<SealJob>,
    mut bulk: BulkWriter,
) -> Result<(), DevnetError> {
    let mut body = TxBody::default();
    let mut json = Vec::new();
    for job in queue {
        let ch = channels
            .get_mut(job.channel as usize)
            .ok_or_else(|| DevnetError::UnknownChannel(job.channel.to_string()))?;
        if ch.height() != job.number {
            // Cannot happen: blocks of a channel are queued in order, one per number.
            return Err(DevnetError::Failed);
        }
        let header_hash = ch.seal_into(
            key,
            job.number,
            job.timestamp,
            &job.executed,
            &mut body,
            &mut json,
        )?;
        bulk.append(usize::from(job.channel), &mut ch.log, &json)
            .map_err(|source| DevnetError::Io {
                path: ch.log.path().display().to_string(),
                source,
            })?;
        ch.tip_hash = header_hash;
        ch.tip_time = job.timestamp;
        drop(job.garbage);
    }
    bulk.finish().map_err(|source| DevnetError::Io {
        path: "a channel log".into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Chains;
    use crate::state::{tx_id, Stored};
    use ledger::model::Record;

    /// The reference canonicaliser over any of our types.
    mod erased {
        pub trait Ser {
            fn jcs(&self) -> Vec<u8>;
        }
        impl<T: serde::Serialize> Ser for T {
            fn jcs(&self) -> Vec<u8> {
                serde_json_canonicalizer::to_vec(self).unwrap()
            }
        }
    }

    #[test]
    fn a_small_seed_has_its_history_too() {
        // Fewer records than two rounds hold: every create is planned before the first
        // report comes back, and the follow-ups come after the records exist.
        let opts = SeedOptions {
            records: 600,
            ..SeedOptions::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let r = seed(dir.path(), &opts, |_| {}).unwrap();
        assert_eq!(r.records, 600);
        assert_eq!(r.transactions, 900, "{:?}", r.by_kind);
        for kind in TxKind::ALL {
            assert!(
                r.by_kind.get(kind.as_str()).copied().unwrap_or(0) > 0,
                "{kind:?} missing: {:?}",
                r.by_kind
            );
        }
    }

    #[test]
    fn a_typed_state_executes_blocks_as_the_nodes_state_does() {
        // The seeder's state keeps records typed (`WorldState::typed`), the node's as
        // canonical text: the same proposals must give the same transactions, byte for
        // byte, follow-ups on stored records included.
        let dir = tempfile::tempdir().unwrap();
        let (chains, _) = Chains::open(dir.path(), &DevnetConfig::default()).unwrap();
        let routing = &chains.routing;
        let names = chains.channel_names();
        let mut typed = WorldState {
            typed: true,
            ..WorldState::default()
        };
        let mut node = WorldState::default();
        let mut gen = Generator::new(9, DemoData::embedded());
        let mut follow_ups = 0;
        for number in 1..40u64 {
            let mut blocks: Vec<(ChannelIx, Vec<Proposal>)> = Vec::new();
            for i in 0..120 {
                let (target, p) = match (number > 3 && i % 2 == 1)
                    .then(|| gen.follow_up())
                    .flatten()
                {
                    Some(f) => {
                        follow_ups += 1;
                        f
                    }
                    None => (Target::Records, gen.create()),
                };
                let ch = match target {
                    Target::Docs => routing.docs,
                    Target::Records => routing.primary,
                };
                match blocks.iter_mut().find(|b| b.0 == ch) {
                    Some(b) => b.1.push(p),
                    None => blocks.push((ch, vec![p])),
                }
            }
            blocks.sort_by_key(|b| (b.0 == routing.docs, b.0));
            for (ch, proposals) in blocks {
                let name = &names[ch as usize];
                let proposed = || {
                    proposals
                        .iter()
                        .map(|p| Proposed::from((tx_id(p, name).unwrap(), p.clone())))
                        .collect::<Vec<_>>()
                };
                let time = HISTORY_START + number as i64 * 60_000;
                let (a, a_changes) =
                    execute_block(&typed, routing, ch, number, time, proposed()).unwrap();
                let (b, b_changes) =
                    execute_block(&node, routing, ch, number, time, proposed()).unwrap();
                assert_eq!(a.len(), b.len());
                for (x, y) in a.iter().zip(&b) {
                    let (mut ex, mut ey) = (Vec::new(), Vec::new());
                    x.encode(&mut ex).unwrap();
                    y.encode(&mut ey).unwrap();
                    assert_eq!(String::from_utf8(ex), String::from_utf8(ey));
                    if let Some(r) = &x.record {
                        gen.remember_owned(r.clone(), x.tx_id);
                    }
                }
                // And both are the transaction's canonical JSON, by an independent JCS of
                // the model type (records, documents, refusals without an event).
                for ex in a.into_iter().chain(b) {
                    let mut bytes = Vec::new();
                    ex.encode(&mut bytes).unwrap();
                    let tx = ex.into_transaction().unwrap();
                    let reference = serde_json_canonicalizer::to_vec(&tx).unwrap();
                    assert_eq!(
                        String::from_utf8(bytes).unwrap(),
                        String::from_utf8(reference).unwrap()
                    );
                }
                a_changes.merge_current_into(&mut typed);
                b_changes.merge_into(&mut node);
            }
        }
        assert!(follow_ups > 1_000, "{follow_ups} follow-ups");
        assert!(typed
            .values
            .values()
            .any(|v| matches!(v[0].value, Stored::Record(_))));
    }

    #[test]
    fn forgetting_the_records_the_generator_forgot_changes_nothing_on_chain() {
        // A reservoir far smaller than the records: most of them are forgotten, many with
        // follow-ups still in flight, and some taken back.
        let opts = SeedOptions {
            records: 6_000,
            seed: 11,
            follow_ups_per_record: 1.5,
            ..SeedOptions::default()
        };
        let run = |forget| {
            let dir = tempfile::tempdir().unwrap();
            let tuning = Tuning {
                reservoir: Some(500),
                forget,
            };
            let report = seed_tuned(dir.path(), &opts, tuning, |_| {}).unwrap();
            (dir, report)
        };
        let (kept, all) = run(false);
        let (dropped, some) = run(true);
        assert_eq!(all.forgotten, 0);
        assert!(some.forgotten > 3_000, "{} forgotten", some.forgotten);
        assert_eq!(
            (some.transactions, some.invalid, some.by_code.clone()),
            (all.transactions, all.invalid, all.by_code.clone())
        );
        // The tip of each chain hashes every header before it, and each header its block's
        // transactions: equal tips, equal chains.
        let (a, _) = Chains::open(kept.path(), &DevnetConfig::default()).unwrap();
        let (b, _) = Chains::open(dropped.path(), &DevnetConfig::default()).unwrap();
        for (x, y) in a.channels.iter().zip(&b.channels) {
            assert_eq!(
                (x.height(), x.tip_hash),
                (y.height(), y.tip_hash),
                "{}",
                x.name
            );
        }
    }

    #[test]
    fn seeds_deterministically_with_every_kind_and_code() {
        let opts = SeedOptions {
            records: 3_000,
            seed: 7,
            ..SeedOptions::default()
        };
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let ra = seed(a.path(), &opts, |_| {}).unwrap();
        let rb = seed(b.path(), &opts, |_| {}).unwrap();
        assert_eq!(ra.records, 3_000);
        assert_eq!((ra.transactions, ra.invalid), (rb.transactions, rb.invalid));
        for kind in TxKind::ALL {
            assert!(
                ra.by_kind.get(kind.as_str()).copied().unwrap_or(0) > 0,
                "{kind:?} missing"
            );
        }
        for code in [
            "VALID",
            "PROPERTY_NOT_FOUND",
            "DUPLICATE_PARCEL",
            "BAD_ARGUMENT",
            "VERSION_CONFLICT",
            "UNAUTHORIZED",
        ] {
            assert!(
                ra.by_code.get(code).copied().unwrap_or(0) > 0,
                "{code} missing: {:?}",
                ra.by_code
            );
        }
        // Same seed, same world state, hash by hash (orderer keys differ; records do not).
        let (ca, _) = Chains::open(a.path(), &DevnetConfig::default()).unwrap();
        let (cb, _) = Chains::open(b.path(), &DevnetConfig::default()).unwrap();
        assert_eq!(ca.state.values.len(), cb.state.values.len());
        for (k, v) in &ca.state.values {
            let w = &cb.state.values[k];
            let ha: Vec<_> = v.iter().map(|e| e.hash()).collect();
            let hb: Vec<_> = w.iter().map(|e| e.hash()).collect();
            assert_eq!(ha, hb, "{k}");
        }
        // The ledger's types serialise straight to JCS: compare with an independent
        // implementation on every transaction, record and header of the seeded chain.
        for ch in 0..ca.channels.len() {
            for n in 0..ca.channels[ch].height() {
                let bytes = ca.block_ref(ch as u16, n).unwrap().read().unwrap();
                let block: ledger::model::Block = serde_json::from_slice(&bytes).unwrap();
                let reference = |v: &dyn erased::Ser| v.jcs();
                assert_eq!(
                    ledger::canonical::to_jcs(&block.header).unwrap(),
                    reference(&block.header)
                );
                // The block as stored is the block's JCS, byte for byte.
                assert_eq!(ledger::canonical::to_jcs(&block).unwrap(), bytes);
                for tx in &block.txs {
                    assert_eq!(ledger::canonical::to_jcs(tx).unwrap(), reference(tx));
                    // The reopened node serves each written value with its verifier's hash.
                    for w in tx.writes.iter().filter(|_| tx.is_valid()) {
                        let hash =
                            ledger::canonical::hash_jcs(&ledger::canonical::Canonical(&w.value))
                                .unwrap();
                        assert!(
                            ca.state.values[w.key.as_str()]
                                .iter()
                                .any(|e| e.hash() == hash && e.loc.tx_id == tx.tx_id),
                            "{}",
                            w.key
                        );
                    }
                    for w in &tx.writes {
                        let typed: Record = match serde_json::from_value(w.value.clone()) {
                            Ok(r) => r,
                            Err(_) => continue, // a document
                        };
                        assert_eq!(
                            ledger::canonical::to_jcs(&typed).unwrap(),
                            reference(&typed)
                        );
                    }
                }
            }
        }
        // A seeded directory is not seeded twice.
        assert!(matches!(
            seed(a.path(), &opts, |_| {}),
            Err(SeedError::NotEmpty(_))
        ));
    }
}
