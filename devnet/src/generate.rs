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
        Ok(DemoData {
            names: Names::parse(names_tsv)?,
            places: Places::parse(places_tsv)?,
        })
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

    /// [`Generator::create`] with the arguments typed: the seeder encodes them and hands
    /// them to the chaincode as they are, where a JSON tree would be built, walked to encode
    /// it, parsed by the chaincode and freed.
    pub(crate) fn create_typed(&mut self) -> TypedProposal {
        self.creates += 1;
        let data = Arc::clone(&self.data);
        let places = &data.places;
        // Registrations come village by village: half the time the clerk stays in the
        // village of the previous record.
        let p_ix = if self.creates > 1 && self.crng.gen_bool(0.5) {
            self.last_place
        } else {
            self.crng.gen_range(0..places.places.len())
        };
        self.last_place = p_ix;
        let place = &places.places[p_ix];
        let district = &places.districts[place.district as usize];
        let st = district.state as usize;
        let n = self.survey_next[p_ix];
        self.survey_next[p_ix] += 1;
        let mut survey = String::with_capacity(12);
        land::survey_no(place, p_ix as u32, n, &mut survey);
        let district_name = if district.names.len() > 1 && self.crng.gen_ratio(1, 8) {
            &district.names[self.crng.gen_range(1..district.names.len())]
        } else {
            &district.names[0]
        };
        let script = record_script(&mut self.crng, st);
        let upper = script == Script::Latin && self.crng.gen_ratio(1, 12);
        let shares = shares(&mut self.crng);
        let owners = self.owners(&data, Side::Create, st, script, upper, shares, None, None);
        let ty = land::land_type(&mut self.crng, district.profile);
        let l = land::land(&mut self.crng, st, ty, district.value_pct);
        let khata = if self.crng.gen_ratio(9, 10) {
            let mut k = String::with_capacity(6);
            push_u64(&mut k, self.crng.gen_range(1..=(place.bases as u64 * 3)));
            Some(k)
        } else {
            None
        };

        let mut request_id = String::with_capacity(32);
        request_id.push_str("REQ-");
        request_id.push_str(STATES[st]);
        request_id.push('-');
        request_id.push_str(&self.seed_hex[8..]);
        request_id.push('-');
        push_u64(&mut request_id, self.creates);

        TypedProposal {
            creator: registrar(STATES[st]),
            nonce: self.nonce('c', self.creates),
            args: Args::Create(CreateArgs {
                area_sq_m: l.area_sq_m,
                area_text: l.area_text,
                district: district_name.to_string(),
                khata_no: khata,
                land_type: l.land_type.to_string(),
                mandal: place.mandal.to_string(),
                market_value: l.market_value,
                owners,
                request_id,
                state: STATES[st].to_string(),
                survey_no: survey,
                village: place.village.to_string(),
            }),
        }
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

    fn owner_ref(&mut self, side: Side) -> [u8; 16] {
        let k = side as usize;
        self.persons[k] += 1;
        let mut buf = [0u8; 17];
        buf[..8].copy_from_slice(&self.seed.to_le_bytes());
        buf[8] = k as u8;
        buf[9..].copy_from_slice(&self.persons[k].to_le_bytes());
        let h = sha256(&buf);
        let mut out = [0u8; 16];
        out.copy_from_slice(&h.0[..16]);
        out
    }

    /// Owners for a record: new people, people who own other parcels, or relatives of
    /// `family` (surname token) with `father` as their father's name.
    #[allow(clippy::too_many_arguments)]
    fn owners(
        &mut self,
        data: &DemoData,
        side: Side,
        st: usize,
        script: Script,
        upper: bool,
        shares: &[i64],
        family: Option<u16>,
        father: Option<&str>,
    ) -> Vec<Owner> {
        let names = &data.names;
        let mut out = Vec::with_capacity(shares.len());
        let mut refs: [[u8; 16]; 3] = [[0; 16]; 3];
        let mut first_surname = family;
        for (i, &share) in shares.iter().enumerate() {
            let rng = match side {
                Side::Create => &mut self.crng,
                Side::FollowUp => &mut self.frng,
            };
            let reuse_pct = match side {
                Side::Create => 10,
                Side::FollowUp if family.is_none() => 35,
                Side::FollowUp => 0,
            };
            let mut spec = None;
            if rng.gen_range(0..100) < reuse_pct && !self.pool[st].is_empty() {
                for _ in 0..3 {
                    let mut s = self.pool[st][rng.gen_range(0..self.pool[st].len())];
                    if s.writable_in(script) && !refs[..i].contains(&s.oref) {
                        if rng.gen_ratio(1, 4) {
                            // Same person, spelt differently on this deed.
                            s.vseed = rng.gen();
                        }
                        spec = Some(s);
                        break;
                    }
                }
            }
            let spec = match spec {
                Some(s) => s,
                None => {
                    let family = if i > 0 && rng.gen_ratio(7, 10) {
                        first_surname
                    } else {
                        family
                    };
                    let oref = self.owner_ref(side);
                    let rng = match side {
                        Side::Create => &mut self.crng,
                        Side::FollowUp => &mut self.frng,
                    };
                    let s = names.new_spec(rng, st, script, oref, family);
                    if let Side::Create = side {
                        let pool = &mut self.pool[st];
                        if pool.len() < POOL {
                            pool.push(s);
                        } else {
                            pool[self.pool_next[st]] = s;
                            self.pool_next[st] = (self.pool_next[st] + 1) % POOL;
                        }
                    }
                    s
                }
            };
            refs[i.min(2)] = spec.oref;
            if i == 0 && first_surname.is_none() {
                first_surname = Some(spec.surname);
            }
            let rng = match side {
                Side::Create => &mut self.crng,
                Side::FollowUp => &mut self.frng,
            };
            let mut name = String::with_capacity(64);
            names.write_name(&spec, script, &mut name);
            let mut father_name = match father {
                Some(f) => Some(f.to_string()),
                None => names.write_father(&spec, script),
            };
            if upper {
                name.make_ascii_uppercase();
                if let Some(f) = father_name.as_mut() {
                    f.make_ascii_uppercase();
                }
            }
            let oref = hex32(&spec.oref);
            if script == Script::Latin && rng.gen_ratio(1, 12) {
                if let Some(wrong) = names::misspell(&name, rng) {
                    if self.fixes.len() < MAX_FIXES {
                        self.fixes.insert(
                            oref.as_str().into(),
                            (wrong.as_str().into(), name.into_boxed_str()),
                        );
                    }
                    name = wrong;
                }
            }
            out.push(Owner {
                father_name,
                name,
                owner_ref: oref,
                share_pct: share,
            });
        }
        out
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

    fn transfer(&mut self, data: &DemoData, slot: usize) -> TypedFollowUp {
        let e = &self.entries[slot];
        let state = e.record.state.clone();
        let id = e.record.property_id;
        let expected = (e.busy_until <= self.follows && self.frng.gen_ratio(2, 5)).then_some(e.tx);
        let owners = self.new_owners_for(data, slot, None);
        let a = Args::Transfer(TransferArgs {
            expected_tx: expected,
            owners,
            property_id: id,
        });
        self.mark_busy(slot);
        let creator = if self.frng.gen_ratio(1, 20) {
            "admin".to_string()
        } else {
            registrar(&state)
        };
        self.follow(Target::Records, creator, a, Validation::Valid)
    }

    /// New owners for a remembered record: a sale (new people or people who own other
    /// parcels) or a succession (heirs of the first owner, of the same family). `shares`
    /// overrides the share split.
    fn new_owners_for(
        &mut self,
        data: &DemoData,
        slot: usize,
        shares_override: Option<&'static [i64]>,
    ) -> Vec<Owner> {
        let r = &self.entries[slot].record;
        let st = Self::state_ix(&r.state);
        let first = r.owners.first().map(|o| o.name.clone()).unwrap_or_default();
        let script = Script::of(&first);
        let upper = script == Script::Latin
            && first.bytes().any(|b| b.is_ascii_uppercase())
            && !first.bytes().any(|b| b.is_ascii_lowercase());
        if self.frng.gen_ratio(3, 10) && shares_override.is_none() && !first.is_empty() {
            const HEIRS: [&[i64]; 4] = [&[100], &[50, 50], &[50, 50], &[34, 33, 33]];
            let shares = HEIRS[self.frng.gen_range(0..HEIRS.len())];
            let family = data.names.surname_in(&first);
            return self.owners(
                data,
                Side::FollowUp,
                st,
                script,
                upper,
                shares,
                family,
                Some(&first),
            );
        }
        let shares = shares_override.unwrap_or_else(|| shares(&mut self.frng));
        self.owners(data, Side::FollowUp, st, script, upper, shares, None, None)
    }

    fn verification(&mut self, slot: usize) -> TypedFollowUp {
        use VerificationStatus::*;
        let r = &self.entries[slot].record;
        let id = r.property_id;
        let state = r.state.clone();
        let roll = self.frng.gen_range(0..100);
        let status = match r.verification_status {
            Pending => match roll {
                0..=79 => Verified,
                80..=94 => Disputed,
                _ => Rejected,
            },
            Disputed => match roll {
                0..=59 => Verified,
                60..=84 => Rejected,
                _ => Pending,
            },
            Verified => match roll {
                0..=69 => Disputed,
                _ => Pending,
            },
            Rejected => Pending,
        };
        const NOTES: [&[&str]; 4] = [
            &[
                "Resubmitted with documents",
                "Re-opened for field verification",
            ],
            &[
                "Field inspection done",
                "Documents verified with SRO records",
                "Verified against revenue records",
                "Boundaries verified by mandal surveyor",
            ],
            &[
                "Objection filed by neighbour",
                "Boundary dispute pending before RDO",
                "Civil suit pending",
                "Ownership contested by legal heirs",
            ],
            &[
                "Documents not genuine",
                "Survey number does not match village map",
                "Applicant failed to appear for hearing",
            ],
        ];
        let list = NOTES[status as usize];
        let note = self
            .frng
            .gen_ratio(3, 4)
            .then(|| list[self.frng.gen_range(0..list.len())].to_string());
        let a = Args::Verification(VerificationArgs {
            note,
            property_id: id,
            status,
        });
        self.mark_busy(slot);
        let creator = if self.frng.gen_ratio(1, 30) {
            "admin".to_string()
        } else {
            format!("verifier@{state}")
        };
        self.follow(Target::Records, creator, a, Validation::Valid)
    }

    /// A misspelt name fixed (most corrections), else area, survey number, khata number or
    /// land type.
    fn correction(&mut self, data: &DemoData, slot: usize) -> TypedFollowUp {
        let mut a = CorrectArgs::default();
        let mut slot = slot;
        let mut done = false;
        while !self.misspelt.is_empty() && self.frng.gen_ratio(9, 10) {
            let k = self.frng.gen_range(0..self.misspelt.len());
            let s = self.misspelt.swap_remove(k) as usize;
            if let Some((i, right)) = self.entries[s].fix.take() {
                let mut owners = self.entries[s].record.owners.clone();
                if let Some(o) = owners.get_mut(i) {
                    o.name = right.into();
                    slot = s;
                    a.owners = Some(owners);
                    a.note = Some("Owner name corrected as per Aadhaar".into());
                    done = true;
                    break;
                }
            }
        }
        let r = &self.entries[slot].record;
        let state = r.state.clone();
        let id = r.property_id;
        if !done {
            let place = data
                .places
                .find(&r.state, &r.district, &r.mandal, &r.village);
            let value_pct = place.map_or(100, |p| {
                let d = data.places.places[p as usize].district;
                data.places.districts[d as usize].value_pct
            });
            let mut what = self.frng.gen_range(0..100);
            if (40..65).contains(&what) && place.is_none() {
                what = 70;
            }
            let land_ty = if what >= 85 {
                land::corrected_type(&r.land_type, &mut self.frng)
            } else {
                None
            };
            match (what, land::type_index(&r.land_type), land_ty) {
                (0..=39, Some(ty), _) => {
                    let l = land::land(&mut self.frng, Self::state_ix(&state), ty, value_pct);
                    a.area_sq_m = Some(l.area_sq_m);
                    a.area_text = Some(l.area_text);
                    a.market_value = Some(l.market_value);
                    a.note = Some("Area corrected after re-measurement".into());
                }
                (40..=64, _, _) => {
                    let p = place.unwrap_or(0);
                    let k = self.resurvey_next.entry(p).or_insert(0);
                    let mut s = String::with_capacity(12);
                    land::resurvey_no(&data.places.places[p as usize], p, *k, &mut s);
                    *k += 1;
                    a.survey_no = Some(s);
                    a.note = Some("Survey number corrected as per resurvey".into());
                }
                (85.., _, Some(t)) => {
                    a.land_type = Some(t.into());
                    a.note = Some("Land classification corrected".into());
                }
                _ => {
                    let mut k = String::with_capacity(6);
                    push_u64(&mut k, self.frng.gen_range(1..=3000));
                    if r.khata_no.as_deref() == Some(k.as_str()) {
                        k.push('A');
                    }
                    a.khata_no = Some(k);
                    a.note = Some("Khata number corrected".into());
                }
            }
        }
        a.property_id = Some(id);
        self.mark_busy(slot);
        let creator = if self.frng.gen_ratio(1, 10) {
            "admin".to_string()
        } else {
            registrar(&state)
        };
        self.follow(
            Target::Records,
            creator,
            Args::Correction(a),
            Validation::Valid,
        )
    }

    fn link_args(&mut self, id: PropertyId) -> Args {
        const TS_AP: &[(&str, u32)] = &[
            ("sale_deed", 30),
            ("encumbrance_certificate", 25),
            ("mutation_order", 15),
            ("survey_sketch", 12),
            ("pattadar_passbook", 15),
            ("legal_heir_certificate", 3),
        ];
        const KA: &[(&str, u32)] = &[
            ("sale_deed", 30),
            ("encumbrance_certificate", 25),
            ("mutation_order", 15),
            ("survey_sketch", 15),
            ("rtc_extract", 12),
            ("legal_heir_certificate", 3),
        ];
        let table = if id.state() == "KA" { KA } else { TS_AP };
        let mut r = self.frng.gen_range(0..100);
        let doc_type = table
            .iter()
            .find(|(_, w)| {
                if r < *w {
                    true
                } else {
                    r -= w;
                    false
                }
            })
            .map_or("sale_deed", |(t, _)| t);
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(&self.seed.to_le_bytes());
        bytes.extend_from_slice(&self.follows.to_le_bytes());
        bytes.extend_from_slice(id.to_string().as_bytes());
        bytes.extend_from_slice(doc_type.as_bytes());
        Args::Link(LinkArgs {
            doc_hash: sha256(&bytes).to_hex(),
            doc_type: doc_type.into(),
            property_id: id,
        })
    }

    fn link(&mut self, slot: usize) -> TypedFollowUp {
        let r = &self.entries[slot].record;
        let (id, state) = (r.property_id, r.state.clone());
        let a = self.link_args(id);
        let creator = if self.frng.gen_ratio(1, 20) {
            "admin".to_string()
        } else {
            registrar(&state)
        };
        self.follow(Target::Docs, creator, a, Validation::Valid)
    }

    /// One of the deliberately invalid follow-ups, in equal parts: duplicate parcel, unknown
    /// property, stale expected_tx, shares not adding to 100, negative area, another state's
    /// registrar.
    fn invalid(&mut self, data: &DemoData, slot: usize) -> TypedFollowUp {
        let r = &self.entries[slot].record;
        let id = r.property_id;
        let state = r.state.clone();
        match self.frng.gen_range(0..6) {
            0 => self.duplicate(data, slot),
            1 => {
                let missing = PropertyId::sharded(
                    &state,
                    id.year(),
                    self.frng.gen_range(0..10),
                    90_000_000 + self.follows,
                )
                .unwrap_or(id);
                match self.frng.gen_range(0..3) {
                    0 => {
                        let owners = self.new_owners_for(data, slot, None);
                        let a = Args::Transfer(TransferArgs {
                            expected_tx: None,
                            owners,
                            property_id: missing,
                        });
                        let creator = registrar(&state);
                        self.follow(Target::Records, creator, a, Validation::PropertyNotFound)
                    }
                    1 => {
                        let a = Args::Verification(VerificationArgs {
                            note: None,
                            property_id: missing,
                            status: VerificationStatus::Verified,
                        });
                        let creator = format!("verifier@{state}");
                        self.follow(Target::Records, creator, a, Validation::PropertyNotFound)
                    }
                    _ => {
                        let a = self.link_args(missing);
                        let creator = registrar(&state);
                        self.follow(Target::Docs, creator, a, Validation::PropertyNotFound)
                    }
                }
            }
            2 => {
                let e = &self.entries[slot];
                let stale = match e.prev_tx {
                    Some(t) if t != e.tx => t,
                    _ => {
                        let mut b = self.seed.to_le_bytes().to_vec();
                        b.extend_from_slice(&self.follows.to_le_bytes());
                        b.extend_from_slice(b"stale");
                        sha256(&b)
                    }
                };
                let owners = self.new_owners_for(data, slot, None);
                let a = Args::Transfer(TransferArgs {
                    expected_tx: Some(stale),
                    owners,
                    property_id: id,
                });
                let creator = registrar(&state);
                self.follow(Target::Records, creator, a, Validation::VersionConflict)
            }
            3 => {
                const BAD: [&[i64]; 4] = [&[50, 40], &[60, 60], &[40, 30, 20], &[34, 33, 34]];
                let shares = BAD[self.frng.gen_range(0..BAD.len())];
                let owners = self.new_owners_for(data, slot, Some(shares));
                let a = Args::Transfer(TransferArgs {
                    expected_tx: None,
                    owners,
                    property_id: id,
                });
                let creator = registrar(&state);
                self.follow(Target::Records, creator, a, Validation::BadArgument)
            }
            4 => {
                let area = -self.entries[slot].record.area_sq_m.max(1);
                let a = Args::Correction(CorrectArgs {
                    property_id: Some(id),
                    area_sq_m: Some(area),
                    note: Some("Area corrected after re-measurement".into()),
                    ..CorrectArgs::default()
                });
                let creator = registrar(&state);
                self.follow(Target::Records, creator, a, Validation::BadArgument)
            }
            _ => {
                let others: Vec<&str> = STATES.iter().copied().filter(|s| *s != state).collect();
                let other = others[self.frng.gen_range(0..others.len())];
                match self.frng.gen_range(0..4) {
                    0 => {
                        let owners = self.new_owners_for(data, slot, None);
                        let a = Args::Transfer(TransferArgs {
                            expected_tx: None,
                            owners,
                            property_id: id,
                        });
                        // A verifier may not transfer, even in their own state.
                        let creator = if self.frng.gen_bool(0.5) {
                            registrar(other)
                        } else {
                            format!("verifier@{state}")
                        };
                        self.follow(Target::Records, creator, a, Validation::Unauthorized)
                    }
                    1 => {
                        let a = Args::Verification(VerificationArgs {
                            note: None,
                            property_id: id,
                            status: VerificationStatus::Verified,
                        });
                        let creator = format!("verifier@{other}");
                        self.follow(Target::Records, creator, a, Validation::Unauthorized)
                    }
                    2 => {
                        let a = Args::Correction(CorrectArgs {
                            property_id: Some(id),
                            khata_no: Some("1".into()),
                            ..CorrectArgs::default()
                        });
                        let creator = registrar(other);
                        self.follow(Target::Records, creator, a, Validation::Unauthorized)
                    }
                    _ => {
                        let a = self.link_args(id);
                        let creator = registrar(other);
                        self.follow(Target::Docs, creator, a, Validation::Unauthorized)
                    }
                }
            }
        }
    }

    /// A create of a parcel that is already registered, written a little differently
    /// (case, `-` for `/`), as a second registration attempt would be.
    fn duplicate(&mut self, data: &DemoData, slot: usize) -> TypedFollowUp {
        let r = &self.entries[slot].record;
        let st = Self::state_ix(&r.state);
        let state = r.state.clone();
        let (district, mandal) = (r.district.clone(), r.mandal.clone());
        let mut village = r.village.clone();
        let mut survey = r.survey_no.clone();
        let land_type = land::type_index(&r.land_type).unwrap_or(0);
        let value_pct = data
            .places
            .find(&r.state, &r.district, &r.mandal, &r.village)
            .map_or(100, |p| {
                let d = data.places.places[p as usize].district;
                data.places.districts[d as usize].value_pct
            });
        match self.frng.gen_range(0..4) {
            0 => village.make_ascii_uppercase(),
            1 => {
                survey = survey
                    .chars()
                    .map(|c| match c {
                        '/' => '-',
                        '-' => '/',
                        c => c.to_ascii_lowercase(),
                    })
                    .collect()
            }
            2 => survey = survey.replace('/', " / "),
            _ => {}
        }
        let owners = self.new_owners_for(data, slot, Some(&[100]));
        let l = land::land(&mut self.frng, st, land_type, value_pct);
        let mut request_id = format!("REQ-{state}-{}-D", &self.seed_hex[8..]);
        push_u64(&mut request_id, self.follows);
        let creator = registrar(&state);
        let a = Args::Create(CreateArgs {
            area_sq_m: l.area_sq_m,
            area_text: l.area_text,
            district,
            khata_no: None,
            land_type: l.land_type.into(),
            mandal,
            market_value: l.market_value,
            owners,
            request_id,
            state,
            survey_no: survey,
            village,
        });
        self.follow(Target::Records, creator, a, Validation::DuplicateParcel)
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
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::chaincode::{
        authorize, check_doc_hash, check_owners, check_record, check_text, parcel_key,
    };
    use ledger::model::TxKind;

    fn record_of(a: CreateArgs, seq: u64) -> Record {
        let id = PropertyId::sharded(&a.state, 2026, (seq % 10) as u8, seq).unwrap();
        a.into_record(id, VerificationStatus::Pending, 1_767_225_600_000)
    }

    /// A small stand-in for the devnet's world state, applying the chaincode rules.
    #[derive(Default)]
    struct Sim {
        records: HashMap<PropertyId, (Record, Hash32)>,
        parcels: HashMap<String, PropertyId>,
        seq: u64,
    }

    impl Sim {
        fn run(&mut self, target: Target, p: &Proposal) -> (Validation, Option<(Record, Hash32)>) {
            match self.exec(target, p) {
                Ok(r) => (Validation::Valid, r),
                Err(code) => (code, None),
            }
        }

        fn get(&self, id: &PropertyId) -> Result<(Record, Hash32), Validation> {
            self.records
                .get(id)
                .cloned()
                .ok_or(Validation::PropertyNotFound)
        }

        fn exec(
            &mut self,
            target: Target,
            p: &Proposal,
        ) -> Result<Option<(Record, Hash32)>, Validation> {
            let bad = |_| Validation::BadArgument;
            let code = |r: crate::chaincode::Refusal| r.code;
            assert_eq!(target == Target::Docs, p.kind == TxKind::LinkDocumentHash);
            let tx = sha256(p.nonce.as_bytes());
            let mut r = match p.kind {
                TxKind::CreateLandRecord => {
                    let a: CreateArgs = serde_json::from_value(p.args.clone()).map_err(bad)?;
                    authorize(&p.creator, p.kind, &a.state).map_err(code)?;
                    check_text("request_id", &a.request_id, 200).map_err(code)?;
                    self.seq += 1;
                    let r = record_of(a, self.seq);
                    check_record(&r).map_err(code)?;
                    if self.parcels.contains_key(&parcel_key(&r)) {
                        return Err(Validation::DuplicateParcel);
                    }
                    r
                }
                TxKind::TransferLandRecord => {
                    let a: TransferArgs = serde_json::from_value(p.args.clone()).map_err(bad)?;
                    let (mut r, cur) = self.get(&a.property_id)?;
                    authorize(&p.creator, p.kind, &r.state).map_err(code)?;
                    if a.expected_tx.is_some_and(|t| t != cur) {
                        return Err(Validation::VersionConflict);
                    }
                    check_owners(&a.owners).map_err(code)?;
                    r.owners = a.owners;
                    r
                }
                TxKind::UpdateVerificationStatus => {
                    let a: VerificationArgs =
                        serde_json::from_value(p.args.clone()).map_err(bad)?;
                    let (mut r, _) = self.get(&a.property_id)?;
                    authorize(&p.creator, p.kind, &r.state).map_err(code)?;
                    r.verification_status = a.status;
                    r
                }
                TxKind::CorrectLandRecord => {
                    let a: CorrectArgs = serde_json::from_value(p.args.clone()).map_err(bad)?;
                    let (mut r, _) = self.get(&a.property_id.expect("property_id"))?;
                    authorize(&p.creator, p.kind, &r.state).map_err(code)?;
                    let fields = [
                        a.district.is_some(),
                        a.mandal.is_some(),
                        a.village.is_some(),
                        a.survey_no.is_some(),
                        a.khata_no.is_some(),
                        a.owners.is_some(),
                        a.area_sq_m.is_some(),
                        a.land_type.is_some(),
                    ];
                    assert!(fields.iter().any(|f| *f), "a correction corrects something");
                    r.survey_no = a.survey_no.unwrap_or(r.survey_no);
                    r.khata_no = a.khata_no.or(r.khata_no);
                    r.owners = a.owners.unwrap_or(r.owners);
                    r.area_sq_m = a.area_sq_m.unwrap_or(r.area_sq_m);
                    r.area_text = a.area_text.unwrap_or(r.area_text);
                    r.land_type = a.land_type.unwrap_or(r.land_type);
                    r.market_value = a.market_value.unwrap_or(r.market_value);
                    check_record(&r).map_err(code)?;
                    if let Some(holder) = self.parcels.get(&parcel_key(&r)) {
                        if *holder != r.property_id {
                            return Err(Validation::DuplicateParcel);
                        }
                    }
                    r
                }
                TxKind::LinkDocumentHash => {
                    let a: LinkArgs = serde_json::from_value(p.args.clone()).map_err(bad)?;
                    let (r, _) = self.get(&a.property_id)?;
                    authorize(&p.creator, p.kind, &r.state).map_err(code)?;
                    check_doc_hash(&a.doc_hash).map_err(code)?;
                    check_text("doc_type", &a.doc_type, 60).map_err(code)?;
                    return Ok(None);
                }
            };
            if let Some((old, _)) = self.records.get(&r.property_id) {
                self.parcels.remove(&parcel_key(old));
            }
            r.updated_at += 1;
            self.parcels.insert(parcel_key(&r), r.property_id);
            self.records.insert(r.property_id, (r.clone(), tx));
            Ok(Some((r, tx)))
        }
    }

    fn creates(seed: u64, n: usize) -> Vec<Proposal> {
        let mut g = Generator::new(seed, DemoData::embedded());
        (0..n).map(|_| g.create()).collect()
    }

    #[test]
    fn typed_proposals_are_the_proposals_and_encode_canonically() {
        // The seeder plans proposals typed and hashes their arguments' JCS as the typed
        // encoders write it; clients get the same proposals as JSON. Both must agree, with
        // each other and with an independent JCS implementation, for every kind.
        let (mut a, mut b) = (
            Generator::new(5, DemoData::embedded()),
            Generator::new(5, DemoData::embedded()),
        );
        let mut kinds = HashSet::new();
        for i in 0..6000u64 {
            let (typed, proposal) = if i % 2 == 0 || a.remembered() == 0 {
                (a.create_typed(), b.create())
            } else {
                (a.follow_up_typed().unwrap().1, b.follow_up().unwrap().1)
            };
            let mut jcs = Vec::new();
            typed.args.encode_jcs(&mut jcs).unwrap();
            let jcs = String::from_utf8(jcs).unwrap();
            let from_json = ledger::canonical::value_to_jcs(&proposal.args).unwrap();
            assert_eq!(jcs, String::from_utf8(from_json).unwrap());
            let reference = serde_json_canonicalizer::to_vec(&proposal.args).unwrap();
            assert_eq!(jcs, String::from_utf8(reference).unwrap());
            kinds.insert(typed.args.kind().as_str());
            if let Args::Create(c) = &typed.args {
                let r = record_of(c.clone(), i);
                let tx = sha256(&i.to_le_bytes());
                a.remember(&r, tx);
                b.remember(&r, tx);
            }
            assert_eq!(typed.into_proposal(), proposal);
        }
        assert_eq!(kinds.len(), TxKind::ALL.len(), "{kinds:?}");
    }

    #[test]
    fn same_seed_same_proposals() {
        let run = |seed| {
            let mut g = Generator::new(seed, DemoData::embedded());
            let mut sim = Sim::default();
            let mut out = Vec::new();
            for i in 0..3000 {
                let p = if i % 3 == 0 || g.remembered() == 0 {
                    let p = g.create();
                    out.push((Target::Records, p.clone()));
                    p
                } else {
                    let f = g.follow_up_expected().unwrap();
                    out.push((f.target, f.proposal.clone()));
                    if f.target == Target::Docs {
                        continue;
                    }
                    f.proposal
                };
                if let (_, Some((r, tx))) = sim.run(Target::Records, &p) {
                    g.remember(&r, tx);
                }
            }
            out
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7)[..50], run(8)[..50]);
        // Creates do not depend on follow-ups asked for in between.
        let mut g = Generator::new(7, DemoData::embedded());
        let plain = creates(7, 200);
        let mut sim = Sim::default();
        for p in &plain {
            let q = g.create();
            assert_eq!(&q, p);
            if let (_, Some((r, tx))) = sim.run(Target::Records, &q) {
                g.remember(&r, tx);
            }
            let _ = g.follow_up();
        }
    }

    #[test]
    fn creates_are_valid_unique_and_varied() {
        check_creates(42);
    }

    pub(super) fn check_creates(seed: u64) {
        let mut parcels = HashSet::new();
        let mut nonces = HashSet::new();
        let mut requests = HashSet::new();
        let mut owner_parcels: HashMap<String, usize> = HashMap::new();
        let mut script: HashMap<(String, Script), usize> = HashMap::new();
        let mut per_state: HashMap<String, usize> = HashMap::new();
        let (mut joint, mut khata, mut words) = (0, 0, HashSet::new());
        let mut types = HashSet::new();
        let mut surveys = [0usize; 4];
        let n = 30_000;
        for (i, p) in creates(seed, n).into_iter().enumerate() {
            assert_eq!(p.kind, TxKind::CreateLandRecord);
            assert!(nonces.insert(p.nonce.clone()));
            let a: CreateArgs = serde_json::from_value(p.args.clone()).unwrap();
            assert_eq!(p.creator, format!("registrar@{}", a.state));
            assert_eq!(proposal_state(&p), Some(a.state.as_str()));
            assert!(requests.insert(a.request_id.clone()));
            let r = record_of(a, i as u64 + 1);
            check_record(&r).unwrap_or_else(|e| panic!("{e:?} in {r:?}"));
            assert!(parcels.insert(parcel_key(&r)), "duplicate parcel {r:?}");
            assert_eq!(r.owners.iter().map(|o| o.share_pct).sum::<i64>(), 100);
            *per_state.entry(r.state.clone()).or_default() += 1;
            joint += usize::from(r.owners.len() > 1);
            khata += usize::from(r.khata_no.is_some());
            types.insert(r.land_type.clone());
            let s = &r.survey_no;
            let shape = if s.contains('-') {
                1
            } else if s.ends_with(|c: char| c.is_ascii_uppercase()) {
                2
            } else if s.contains('/') {
                3
            } else {
                0
            };
            surveys[shape] += 1;
            let mut seen_here = HashSet::new();
            for o in &r.owners {
                if seen_here.insert(o.owner_ref.clone()) {
                    *owner_parcels.entry(o.owner_ref.clone()).or_default() += 1;
                }
                assert_eq!(o.owner_ref.len(), 32);
                *script
                    .entry((r.state.clone(), Script::of(&o.name)))
                    .or_default() += 1;
                words.extend(o.name.split(' ').map(str::to_string));
            }
            // Areas agree with their text.
            if r.area_text.ends_with("sq.yds") {
                let n: i64 = r.area_text.split(' ').next().unwrap().parse().unwrap();
                assert_eq!(r.area_sq_m, (n * 83_612_736 + 50_000_000) / 100_000_000);
            }
            assert!(r.market_value >= 1000);
        }
        let frac = |num: usize, den: usize| num as f64 / den as f64;
        assert!((0.12..0.18).contains(&frac(joint, n)), "joint {joint}");
        assert!(frac(khata, n) > 0.85);
        assert_eq!(types.len(), 7, "{types:?}");
        assert!(surveys.iter().all(|&c| c > n / 30), "{surveys:?}");
        let multi = owner_parcels.values().filter(|&&c| c > 1).count();
        assert!(multi > n / 40, "only {multi} owners with several parcels");
        for (st, native) in [
            ("TS", Script::Telugu),
            ("AP", Script::Telugu),
            ("KA", Script::Kannada),
        ] {
            let total: usize = Script::ALL
                .iter()
                .map(|s| script.get(&(st.to_string(), *s)).copied().unwrap_or(0))
                .sum();
            let share = |s| {
                frac(
                    script.get(&(st.to_string(), s)).copied().unwrap_or(0),
                    total,
                )
            };
            assert!(
                (0.32..0.48).contains(&share(native)),
                "{st} native {}",
                share(native)
            );
            assert!(
                (0.01..0.06).contains(&share(Script::Devanagari)),
                "{st} devanagari"
            );
            assert!((0.45..0.65).contains(&share(Script::Latin)), "{st} latin");
            let foreign = if native == Script::Telugu {
                Script::Kannada
            } else {
                Script::Telugu
            };
            assert_eq!(share(foreign), 0.0, "{st} in the wrong script");
            assert!(per_state[st] > n / 6);
        }
        for w in [
            "Lakshmi",
            "Laxmi",
            "Lakshmee",
            "Srinivas",
            "Sreenivas",
            "Shrinivas",
            "Reddy",
            "Reddi",
            "Venkat",
            "Chowdary",
            "Chaudhari",
            "Venkateshwara",
            "Naidu",
            "Nayudu",
            "REDDY",
            "లక్ష్మి",
            "ರೆಡ್ಡಿ",
            "K.",
            "Ravikumar",
        ] {
            assert!(
                words.contains(w) || words.iter().any(|x| x.starts_with(w) && w.ends_with('.')),
                "no {w}"
            );
        }
        // Initials glued to the name ("K.Ravi"), run-together names ("Sureshkumar").
        assert!(words.iter().any(|w| {
            let b = w.as_bytes();
            b.len() > 3
                && b[0].is_ascii_uppercase()
                && b[1] == b'.'
                && b[b.len() - 1].is_ascii_lowercase()
        }));
        assert!(
            words
                .iter()
                .filter(|w| w.len() > 6 && w.is_ascii() && w.ends_with("kumar"))
                .count()
                > 3
        );
    }

    #[test]
    fn follow_ups_cover_every_kind_and_code() {
        check_follow_ups(3);
    }

    pub(super) fn check_follow_ups(seed: u64) {
        let mut g = Generator::new(seed, DemoData::embedded());
        assert!(g.follow_up().is_none());
        let mut sim = Sim::default();
        let mut kinds: HashMap<TxKind, usize> = HashMap::new();
        let mut codes: HashMap<Validation, usize> = HashMap::new();
        let mut doc_types = HashSet::new();
        let (mut name_fixes, mut expected_tx, mut heirs) = (0, 0, 0);
        for _ in 0..3000 {
            let p = g.create();
            let (v, r) = sim.run(Target::Records, &p);
            assert_eq!(v, Validation::Valid);
            let (r, tx) = r.unwrap();
            g.remember(&r, tx);
        }
        let n = 6000;
        for _ in 0..n {
            let f = g.follow_up_expected().unwrap();
            let before = f
                .proposal
                .args
                .get("property_id")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<PropertyId>().ok())
                .and_then(|id| sim.records.get(&id).cloned());
            let (v, r) = sim.run(f.target, &f.proposal);
            assert_eq!(v, f.expect, "{:?}", f.proposal);
            assert!(proposal_state(&f.proposal).is_some());
            *codes.entry(v).or_default() += 1;
            if v == Validation::Valid {
                *kinds.entry(f.proposal.kind).or_default() += 1;
            }
            let args = &f.proposal.args;
            if let Some(t) = args.get("doc_type").and_then(Value::as_str) {
                doc_types.insert(t.to_string());
            }
            expected_tx += usize::from(v == Validation::Valid && args.get("expected_tx").is_some());
            if let (Some((old, _)), Some((new, _))) = (&before, &r) {
                if f.proposal.kind == TxKind::CorrectLandRecord && old.owners != new.owners {
                    name_fixes += 1;
                    let changed: Vec<_> = old
                        .owners
                        .iter()
                        .zip(&new.owners)
                        .filter(|(a, b)| a.name != b.name)
                        .collect();
                    assert_eq!(changed.len(), 1);
                    let (a, b) = (&changed[0].0.name, &changed[0].1.name);
                    assert!(a.len().abs_diff(b.len()) <= 1, "{a} → {b}");
                }
                if f.proposal.kind == TxKind::TransferLandRecord
                    && new
                        .owners
                        .iter()
                        .any(|o| o.father_name.as_deref() == Some(&old.owners[0].name))
                {
                    heirs += 1;
                }
            }
            if let (_, Some((r, tx))) = (v, r) {
                g.remember(&r, tx);
            }
        }
        for k in &TxKind::ALL[1..] {
            assert!(
                kinds.get(k).copied().unwrap_or(0) > 0,
                "no valid {k:?}: {kinds:?}"
            );
        }
        for c in [
            Validation::DuplicateParcel,
            Validation::PropertyNotFound,
            Validation::VersionConflict,
            Validation::BadArgument,
            Validation::Unauthorized,
        ] {
            assert!(
                codes.get(&c).copied().unwrap_or(0) > 0,
                "no {c:?}: {codes:?}"
            );
        }
        let invalid = n - codes[&Validation::Valid];
        assert!((n / 100..n / 25).contains(&invalid), "{invalid} invalid");
        assert!(kinds[&TxKind::LinkDocumentHash] > n / 5);
        assert!(name_fixes > 20, "{name_fixes} name fixes");
        assert!(expected_tx > 50 && heirs > 50);
        assert!(doc_types.len() >= 6, "{doc_types:?}");
    }

    #[test]
    fn district_variants_do_not_collide() {
        let d = DemoData::embedded();
        let mut canon = HashMap::new();
        for dist in &d.places.districts {
            let k = parcel_norm_eq_key(STATES[dist.state as usize], &dist.names[0], "", "");
            canon.insert(k, &*dist.names[0]);
        }
        for dist in &d.places.districts {
            for v in &dist.names[1..] {
                let k = parcel_norm_eq_key(STATES[dist.state as usize], v, "", "");
                if let Some(other) = canon.get(&k) {
                    assert_eq!(*other, &*dist.names[0], "{v} collides with {other}");
                }
            }
        }
        assert!(d.place_count() > 20_000);
        let found = d.places.places.iter().take(500).enumerate().all(|(i, p)| {
            let dist = &d.places.districts[p.district as usize];
            d.places.find(
                STATES[dist.state as usize],
                dist.names.last().unwrap(),
                &p.mandal,
                &p.village,
            ) == Some(i as u32)
        });
        assert!(found);
    }

    #[test]
    fn reservoir_stays_bounded() {
        let mut g = Generator::new(5, DemoData::embedded());
        let a: CreateArgs = serde_json::from_value(g.create().args).unwrap();
        let r = record_of(a, 1);
        let n = RESERVOIR as u64 + 5000;
        for seq in 1..=n {
            let mut r = r.clone();
            r.property_id = PropertyId::sharded("TS", 2026, 1, seq).unwrap();
            g.remember(&r, sha256(&seq.to_le_bytes()));
        }
        // A second version of a kept record updates it in place.
        let kept = g.entries[7].record.clone();
        g.remember(&kept, Hash32::ZERO);
        assert_eq!(g.entries.len(), RESERVOIR);
        assert_eq!(g.index.len(), RESERVOIR);
        assert_eq!(g.entries[7].tx, Hash32::ZERO);
        assert!(g.entries[7].prev_tx.is_some());
        for (id, &slot) in &g.index {
            assert_eq!(g.entries[slot as usize].record.property_id, *id);
        }
        let late = g
            .entries
            .iter()
            .filter(|e| e.record.property_id.sequence() > RESERVOIR as u64)
            .count();
        assert!(late > 1000 && late < 9000, "{late} late records kept");
    }

    #[test]
    fn rule_variants_spell_like_people() {
        let v = names::rule_variants("Sunitha");
        assert!(v.contains(&"Sunita".to_string()), "{v:?}");
        assert!(names::rule_variants("Venu").contains(&"Wenu".to_string()));
        assert!(names::rule_variants("Reddy").contains(&"Redy".to_string()));
    }
}
