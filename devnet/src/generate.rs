//! Deterministic, realistic demo data for the devnet: the create proposals of `landql seed`
//! and the follow-up traffic of `landql load`.
//!
//! Places come from `devnet/data/places.tsv` — GeoNames postal code data for India, © GeoNames,
//! licensed under Creative Commons Attribution 4.0 (<https://www.geonames.org>,
//! <https://creativecommons.org/licenses/by/4.0/>) — and names from `devnet/data/names.tsv`; both are
//! embedded in the binary. What the generator makes look real:
//!
//! - places: state → district → mandal/taluk → village with the source's own spellings
//!   ("K.V.Rangareddy", "Mahabub Nagar", "Bathalapalle"/"Bathalapalli"); one record in eight
//!   uses another spelling or the new official name of its district ("Rangareddy", "Kadapa",
//!   "Belgaum");
//! - owners: in Telangana and Andhra Pradesh 40 % of records are in Telugu script, in
//!   Karnataka 40 % in Kannada, 3 % everywhere in Devanagari, the rest in Latin letters with
//!   the spelling variety of real records (Lakshmi/Laxmi/Lakshmee, Srinivas/Sreenivas,
//!   Reddy/Reddi, Chowdary/Chaudhari, …), surname-first order, initials ("K. Ravi Kumar"),
//!   run-together names ("Ravikumar"), 8 % all capitals, and typos in 8 % of Latin names
//!   (a letter dropped, swapped or doubled) that a later `CorrectLandRecord` fixes; 15 % joint
//!   owners (50/50, 60/40, 34/33/33, …); 10 % of new parcels go to someone who already owns
//!   one (same `owner_ref`, the name sometimes spelt differently or in another script);
//! - parcels: survey numbers "123", "123/A", "45/2B", "218-1", unique per village by
//!   construction (a counter per place, permuted over the village's survey range); khata
//!   numbers; land types weighted by district; areas in acres+guntas (TS, KA), acres+cents
//!   (AP), sq.yds, sq.ft or sq.m with the exact square-metre conversion; market values from
//!   area, type and district.
//!
//! The same seed gives the same proposals. Creates draw from their own random stream, so
//! the n-th create does not depend on how many follow-ups were asked for in between. Runs
//! against the same ledger need different seeds: nonces and request IDs derive from the seed.
//!
//! Follow-ups refer to records handed to [`Generator::remember`]; it keeps at most 65 536 of
//! them (a uniform sample beyond that), so a million-record seed stays small in memory.

mod create;
mod follow_ups;
mod identity;
mod land;
mod names;
mod places;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use crate::chaincode::{Args, CorrectArgs, CreateArgs, LinkArgs, TransferArgs, VerificationArgs};
use ledger::canonical::{sha256, Hash32};
use ledger::id::PropertyId;
use ledger::model::{Owner, Proposal, Record, Validation, VerificationStatus};

pub use identity::{NameKey, NamePart};
use names::{Names, Script, Spec};
use places::{Places, STATES};

pub(crate) type Rng8 = ChaCha8Rng;
/// "No token" in the fixed-size name-part arrays.
pub(crate) const NONE: u16 = u16::MAX;

const PLACES_TSV: &str = include_str!("../data/places.tsv");
const NAMES_TSV: &str = include_str!("../data/names.tsv");

/// Remembered records kept for follow-ups (a uniform sample once more have been seen).
const RESERVOIR: usize = 1 << 16;
/// Persons kept per state for owning further parcels.
const POOL: usize = 1 << 15;
/// Misspellings waiting for their record to be remembered.
const MAX_FIXES: usize = 1 << 18;
/// Follow-ups after which a record with a follow-up in flight counts as settled again.
const BUSY_WINDOW: u64 = 4096;

/// The parsed places and names the generator draws from (see the module docs).
pub struct DemoData {
    names: Names,
    places: Places,
    identifier: identity::Identifier,
}

impl DemoData {
    /// The data embedded in the binary, parsed once per process.
    pub fn embedded() -> Arc<DemoData> {
        static DATA: OnceLock<Arc<DemoData>> = OnceLock::new();
        DATA.get_or_init(|| {
            Arc::new(DemoData::parse(PLACES_TSV, NAMES_TSV).expect("embedded demo data parses"))
        })
        .clone()
    }

    /// Parses `places.tsv` and `names.tsv` (the formats of `devnet/data/README.md`).
    pub fn parse(places_tsv: &str, names_tsv: &str) -> Result<DemoData, String> {
        let names = Names::parse(names_tsv)?;
        Ok(DemoData {
            identifier: identity::Identifier::new(&names),
            names,
            places: Places::parse(places_tsv)?,
        })
    }

    /// The name behind a written owner or father name (see [`NameKey`]): equal for every
    /// spelling, script and order the generator writes one name in.
    pub fn name_key(&self, written: &str) -> NameKey {
        self.identifier.key(written)
    }

    /// The names an unfinished word may become: those with a spelling (any script) that
    /// starts with `typed`.
    pub fn names_starting_with(&self, typed: &str) -> Vec<NamePart> {
        self.identifier.starting_with(typed)
    }

    /// Number of distinct villages (state, district, mandal, village).
    pub fn place_count(&self) -> usize {
        self.places.places.len()
    }
}

/// Which channel family a proposal goes to: the records channel of the record's state
/// (primary or regional), or the docs channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Records,
    Docs,
}

/// A follow-up with the validation code the generator means it to earn. The code holds when
/// every earlier proposal on the same record has been committed and remembered.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUp {
    pub target: Target,
    pub proposal: Proposal,
    pub expect: Validation,
}

/// The state a proposal's record belongs to (`args.state`, else the state of
/// `args.property_id`), for routing it to that state's records channel.
pub fn proposal_state(p: &Proposal) -> Option<&str> {
    p.args.get("state").and_then(Value::as_str).or_else(|| {
        p.args
            .get("property_id")
            .and_then(Value::as_str)
            .and_then(|s| s.get(8..10))
    })
}

/// A proposal with its arguments typed (see [`Generator::create_typed`]); its kind is
/// theirs.
pub(crate) struct TypedProposal {
    pub creator: String,
    pub nonce: String,
    pub args: Args,
}

impl TypedProposal {
    /// The proposal as a client would send it.
    pub fn into_proposal(self) -> Proposal {
        Proposal {
            kind: self.args.kind(),
            creator: self.creator,
            nonce: self.nonce,
            args: self.args.to_value(),
        }
    }
}

/// A follow-up planned typed (see [`Generator::follow_up_typed`]).
pub(crate) struct TypedFollowUp {
    pub target: Target,
    pub proposal: TypedProposal,
    pub expect: Validation,
}

struct Entry {
    /// Shared with the seeder's world state, which holds the same version.
    record: Arc<Record>,
    tx: Hash32,
    prev_tx: Option<Hash32>,
    /// A version-changing follow-up may be in flight until this follow-up count.
    busy_until: u64,
    /// Owner index and right spelling of a misspelt owner name.
    fix: Option<(usize, Box<str>)>,
}

/// Where new persons come from: a counter and a tag that keep create-side and follow-up-side
/// owner refs apart.
#[derive(Clone, Copy)]
enum Side {
    Create = 0,
    FollowUp = 1,
}

/// The demo-data generator (see the module docs).
pub struct Generator {
    data: Arc<DemoData>,
    seed: u64,
    seed_hex: String,
    crng: Rng8,
    frng: Rng8,
    rrng: Rng8,
    creates: u64,
    follows: u64,
    persons: [u64; 2],
    /// Next parcel number per place.
    survey_next: Vec<u32>,
    last_place: usize,
    /// Next post-resurvey number per place (corrections only).
    resurvey_next: HashMap<u32, u32>,
    /// Ring of persons per state who may own further parcels.
    pool: [Vec<Spec>; 3],
    pool_next: [usize; 3],
    /// owner_ref → (misspelt name, right name), until the record is remembered.
    fixes: foldhash::HashMap<Box<str>, (Box<str>, Box<str>)>,
    entries: Vec<Entry>,
    index: foldhash::HashMap<PropertyId, u32>,
    /// Slots of entries with a misspelt owner.
    misspelt: Vec<u32>,
    seen: u64,
    /// Records this generator has stopped remembering since the last
    /// [`Generator::take_forgotten`], when its caller tracks them.
    forgotten: Option<Vec<PropertyId>>,
    /// How many records to remember (`RESERVOIR`, smaller in tests).
    reservoir: usize,
}

fn stream(seed: u64, n: u64) -> Rng8 {
    let mut r = Rng8::seed_from_u64(seed);
    r.set_stream(n);
    r
}

impl Generator {
    pub fn new(seed: u64, data: Arc<DemoData>) -> Self {
        let n = data.places.places.len();
        Generator {
            data,
            seed,
            seed_hex: format!("{seed:016x}"),
            crng: stream(seed, 1),
            frng: stream(seed, 2),
            rrng: stream(seed, 3),
            creates: 0,
            follows: 0,
            persons: [0; 2],
            survey_next: vec![0; n],
            last_place: 0,
            resurvey_next: HashMap::new(),
            pool: Default::default(),
            pool_next: [0; 3],
            fixes: Default::default(),
            entries: Vec::new(),
            index: Default::default(),
            misspelt: Vec::new(),
            seen: 0,
            forgotten: None,
            reservoir: RESERVOIR,
        }
    }

    /// Numbers this generator's new parcels after the first `n` of every village, so that
    /// its creates never collide (DUPLICATE_PARCEL) with those of a ledger that another
    /// generator seeded with fewer than `n` parcels a village — for probes that create
    /// records beside a seeded ledger and must see each one committed.
    pub fn after_parcels(mut self, n: u32) -> Self {
        self.survey_next.fill(n);
        self
    }

    /// Remembers at most `n` records instead of `RESERVOIR` (tests that need forgetting
    /// without seeding a hundred thousand records).
    pub(crate) fn with_reservoir(mut self, n: usize) -> Self {
        self.reservoir = n.max(1);
        self
    }

    /// From now on, keep the IDs of records the generator stops remembering (a record it
    /// does not keep, or one another displaces), for [`Generator::take_forgotten`]. The
    /// generator plans follow-ups only on records it remembers, so a caller executing its
    /// proposals needs the current value of no other record.
    pub(crate) fn track_forgotten(&mut self) {
        self.forgotten.get_or_insert_with(Vec::new);
    }

    /// The records forgotten since the last call and not remembered again since (see
    /// [`Generator::track_forgotten`]).
    pub(crate) fn take_forgotten(&mut self) -> Vec<PropertyId> {
        let mut forgotten = self
            .forgotten
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        forgotten.retain(|id| !self.index.contains_key(id));
        forgotten
    }

    /// Number of records remembered for follow-ups right now.
    pub fn remembered(&self) -> usize {
        self.entries.len()
    }

    /// A valid `CreateLandRecord` proposal for a parcel not registered before.
    pub fn create(&mut self) -> Proposal {
        self.create_typed().into_proposal()
    }

    /// Remembers a record that now exists on chain, with the tx_id of its current version.
    pub fn remember(&mut self, record: &Record, current_tx: Hash32) {
        self.remember_owned(Arc::new(record.clone()), current_tx);
    }

    /// [`Generator::remember`] without a copy.
    pub fn remember_owned(&mut self, record: Arc<Record>, current_tx: Hash32) {
        let fix = self.take_fix(&record);
        let id = record.property_id;
        if let Some(&slot) = self.index.get(&id) {
            let e = &mut self.entries[slot as usize];
            if e.tx != current_tx {
                e.prev_tx = Some(e.tx);
                e.tx = current_tx;
            }
            e.record = record;
            e.busy_until = 0;
            if fix.is_some() {
                self.misspelt.push(slot);
            }
            e.fix = fix;
            return;
        }
        self.seen += 1;
        let entry = Entry {
            record,
            tx: current_tx,
            prev_tx: None,
            busy_until: 0,
            fix,
        };
        let slot = if self.entries.len() < self.reservoir {
            self.entries.push(entry);
            self.entries.len() - 1
        } else {
            // Reservoir sampling: every record seen so far is kept with the same chance.
            let j = self.rrng.gen_range(0..self.seen);
            if j >= self.reservoir as u64 {
                if let Some(f) = &mut self.forgotten {
                    f.push(id);
                }
                return;
            }
            let j = j as usize;
            let old = std::mem::replace(&mut self.entries[j], entry);
            self.index.remove(&old.record.property_id);
            if let Some(f) = &mut self.forgotten {
                f.push(old.record.property_id);
            }
            j
        };
        if self.entries[slot].fix.is_some() {
            self.misspelt.push(slot as u32);
        }
        self.index.insert(id, slot as u32);
    }

    /// A follow-up on a remembered record (see [`Generator::follow_up_expected`]).
    pub fn follow_up(&mut self) -> Option<(Target, Proposal)> {
        self.follow_up_expected().map(|f| (f.target, f.proposal))
    }

    /// [`Generator::follow_up`] with the arguments typed, as [`Generator::create_typed`].
    pub(crate) fn follow_up_typed(&mut self) -> Option<(Target, TypedProposal)> {
        self.plan_follow_up().map(|f| (f.target, f.proposal))
    }

    /// A follow-up on a remembered record with the code it should earn. Of all follow-ups:
    /// 30 % transfers, 30 % verification updates, 12 % corrections, 26 % document links and
    /// 2 % deliberately invalid ones (duplicate parcel, unknown property, stale expected_tx,
    /// bad shares or area, wrong state's registrar). `None` until something is remembered.
    pub fn follow_up_expected(&mut self) -> Option<FollowUp> {
        self.plan_follow_up().map(|f| FollowUp {
            target: f.target,
            proposal: f.proposal.into_proposal(),
            expect: f.expect,
        })
    }

    fn plan_follow_up(&mut self) -> Option<TypedFollowUp> {
        if self.entries.is_empty() {
            return None;
        }
        self.follows += 1;
        let data = Arc::clone(&self.data);
        let slot = self.frng.gen_range(0..self.entries.len());
        let roll = self.frng.gen_range(0..1000);
        let f = match roll {
            0..=19 => self.invalid(&data, slot),
            20..=319 => self.transfer(&data, slot),
            320..=619 => self.verification(slot),
            620..=739 => self.correction(&data, slot),
            _ => self.link(slot),
        };
        Some(f)
    }

    fn nonce(&self, side: char, n: u64) -> String {
        let mut s = String::with_capacity(32);
        s.push(side);
        s.push_str(&self.seed_hex);
        s.push('-');
        push_u64(&mut s, n);
        s
    }

    fn take_fix(&mut self, record: &Record) -> Option<(usize, Box<str>)> {
        if self.fixes.is_empty() {
            return None;
        }
        for (i, o) in record.owners.iter().enumerate() {
            if let Some((wrong, _)) = self.fixes.get(o.owner_ref.as_str()) {
                if **wrong == *o.name {
                    let (_, (_, right)) = self.fixes.remove_entry(o.owner_ref.as_str())?;
                    return Some((i, right));
                }
            }
        }
        None
    }

    fn state_ix(state: &str) -> usize {
        STATES.iter().position(|s| *s == state).unwrap_or(0)
    }

    fn mark_busy(&mut self, slot: usize) {
        self.entries[slot].busy_until = self.follows + BUSY_WINDOW;
    }

    fn follow(
        &mut self,
        target: Target,
        creator: String,
        args: Args,
        expect: Validation,
    ) -> TypedFollowUp {
        TypedFollowUp {
            target,
            proposal: TypedProposal {
                creator,
                nonce: self.nonce('f', self.follows),
                args,
            },
            expect,
        }
    }
}

fn registrar(state: &str) -> String {
    let mut s = String::with_capacity(12);
    s.push_str("registrar@");
    s.push_str(state);
    s
}

/// The script a new record's names are written in.
fn record_script(rng: &mut Rng8, st: usize) -> Script {
    match (rng.gen_range(0..100), st) {
        (0..=39, 0 | 1) => Script::Telugu,
        (0..=39, _) => Script::Kannada,
        (40..=42, _) => Script::Devanagari,
        _ => Script::Latin,
    }
}

/// Owner shares: 85 % sole owners, 11 % two, 4 % three.
fn shares(rng: &mut Rng8) -> &'static [i64] {
    const TWO: [&[i64]; 7] = [
        &[50, 50],
        &[50, 50],
        &[50, 50],
        &[50, 50],
        &[60, 40],
        &[75, 25],
        &[70, 30],
    ];
    const THREE: [&[i64]; 5] = [
        &[34, 33, 33],
        &[34, 33, 33],
        &[34, 33, 33],
        &[50, 25, 25],
        &[40, 30, 30],
    ];
    match rng.gen_range(0..100) {
        0..=84 => &[100],
        85..=95 => TWO[rng.gen_range(0..TWO.len())],
        _ => THREE[rng.gen_range(0..THREE.len())],
    }
}

/// splitmix64's finaliser: a cheap, well-mixed hash of a number.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Appends a number in decimal without going through `fmt`.
pub(crate) fn push_u64(s: &mut String, n: u64) {
    let mut buf = [0u8; 20];
    s.extend(
        ledger::id::decimal_digits(n, &mut buf)
            .iter()
            .map(|&b| b as char),
    );
}

fn hex32(b: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    for (i, &x) in b.iter().enumerate() {
        out[2 * i] = HEX[(x >> 4) as usize];
        out[2 * i + 1] = HEX[(x & 15) as usize];
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The chaincode's parcel normalisation (no case, spaces or dots; `-` as `/`) of a place,
/// for keeping places distinct.
pub(crate) fn parcel_norm_eq_key(
    state: &str,
    district: &str,
    mandal: &str,
    village: &str,
) -> String {
    let mut out = String::with_capacity(64);
    out.push_str(state);
    for part in [district, mandal, village] {
        out.push('|');
        for c in part.chars() {
            if c.is_whitespace() || c == '.' {
                continue;
            }
            let c = if c == '-' { '/' } else { c };
            out.extend(c.to_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests;
