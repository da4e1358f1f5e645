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
                let a: VerificationArgs = serde_json::from_value(p.args.clone()).map_err(bad)?;
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
