//! Every rule and validation code of the chaincode, exercised through real blocks; then the
//! unit checks of text fields (`text`), parcel keys (`parcel`) and `CreateArgs`'s hand-written
//! JCS (`encode`).

use serde_json::{json, Value};

use crate::chain::{Chains, DevnetConfig};
use crate::state::tx_id;
use ledger::canonical::Hash32;
use ledger::model::{Proposal, Receipt, Record, TxKind, Validation, VerificationStatus};

/// 2026-01-01, before "now", so that block times are the ones the tests give.
const T0: i64 = 1_767_225_600_000;

struct Fixture {
    _dir: tempfile::TempDir,
    chains: Chains,
    nonce: u64,
}

fn create_args(survey: &str) -> Value {
    json!({
        "request_id": format!("req-{survey}"), "state": "TS", "district": "K.V.Rangareddy",
        "mandal": "Saroornagar", "village": "Balapur", "survey_no": survey, "khata_no": "1045",
        "owners": [{"owner_ref": "o1", "name": "Ravi Kumar", "father_name": "Venkata Rao", "share_pct": 100}],
        "area_sq_m": 201, "area_text": "240 sq.yds", "land_type": "Residential", "market_value": 4500000
    })
}

impl Fixture {
    fn new(cfg: DevnetConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (chains, _) = Chains::open_at(dir.path(), &cfg, T0).unwrap();
        Self {
            _dir: dir,
            chains,
            nonce: 0,
        }
    }

    fn run(&mut self, channel: &str, kind: TxKind, creator: &str, args: Value) -> Receipt {
        self.nonce += 1;
        let p = Proposal {
            kind,
            creator: creator.into(),
            nonce: self.nonce.to_string(),
            args,
        };
        let ch = self.chains.channel_index(channel).unwrap();
        let id = tx_id(&p, channel).unwrap();
        let (mut r, _) = self
            .chains
            .commit(ch, 1_767_225_600_000, vec![(id, p)])
            .unwrap();
        r.pop().unwrap()
    }

    fn primary(&mut self, kind: TxKind, creator: &str, args: Value) -> Receipt {
        self.run("land-registry-primary", kind, creator, args)
    }

    fn record(&self, id: &str) -> Record {
        serde_json::from_str(&self.chains.state.current(id).unwrap().text()).unwrap()
    }

    fn current_tx(&self, id: &str) -> Hash32 {
        self.chains.state.current(id).unwrap().loc.tx_id
    }
}

#[test]
fn create_issues_sharded_ids_and_refuses_duplicate_parcels() {
    let mut f = Fixture::new(DevnetConfig::default());
    let r = f.primary(
        TxKind::CreateLandRecord,
        "registrar@TS",
        create_args("123/A"),
    );
    assert_eq!(r.validation, Validation::Valid);
    let id = r.property_id.unwrap();
    assert!(id.starts_with("LRI-IND-TS-2026-"), "{id}");
    let rec = f.record(&id);
    assert_eq!(rec.verification_status, VerificationStatus::Pending);
    assert_eq!(rec.created_at, 1_767_225_600_000);
    // Same parcel written differently: case, spaces and -/ do not make it new.
    let mut again = create_args("123 - a");
    again["request_id"] = json!("other");
    let r = f.primary(TxKind::CreateLandRecord, "registrar@TS", again);
    assert_eq!(r.validation, Validation::DuplicateParcel);
    // Sequences per shard are dense: a refusal burns no number.
    let mut ids = vec![id.parse::<ledger::PropertyId>().unwrap()];
    for i in 0..30 {
        let r = f.primary(
            TxKind::CreateLandRecord,
            "registrar@TS",
            create_args(&format!("{i}")),
        );
        ids.push(r.property_id.unwrap().parse().unwrap());
    }
    for shard in 0..10u8 {
        let mut seqs: Vec<u64> = ids
            .iter()
            .filter(|i| i.shard() == Some(shard))
            .map(|i| i.sequence())
            .collect();
        seqs.sort();
        assert_eq!(
            seqs,
            (1..=seqs.len() as u64).collect::<Vec<_>>(),
            "shard {shard}"
        );
    }
}

#[test]
fn bad_arguments_are_refused_with_bad_argument() {
    let mut f = Fixture::new(DevnetConfig::default());
    let mut cases: Vec<Value> = Vec::new();
    let mut a = create_args("1");
    a["owners"][0]["share_pct"] = json!(60);
    cases.push(a);
    let mut a = create_args("2");
    a["area_sq_m"] = json!(-5);
    cases.push(a);
    let mut a = create_args("3");
    a["state"] = json!("XX");
    cases.push(a);
    let mut a = create_args("4");
    a["unexpected"] = json!(1);
    cases.push(a);
    let mut a = create_args("5");
    a["survey_no"] = json!("");
    cases.push(a);
    let mut a = create_args("6");
    a["owners"] = json!([]);
    cases.push(a);
    let mut a = create_args("7");
    a["market_value"] = json!(1.5);
    cases.push(a);
    let mut a = create_args("8");
    a["owners"] = json!([{"owner_ref": "o1", "name": "A", "share_pct": 50}, {"owner_ref": "o1", "name": "A", "share_pct": 50}]);
    cases.push(a);
    for (i, args) in cases.into_iter().enumerate() {
        let r = f.primary(TxKind::CreateLandRecord, "registrar@TS", args);
        assert_eq!(r.validation, Validation::BadArgument, "case {i}");
    }
    // Records do not go on the docs channel, documents not on the primary.
    let r = f.run(
        "land-registry-docs",
        TxKind::CreateLandRecord,
        "registrar@TS",
        create_args("9"),
    );
    assert_eq!(r.validation, Validation::BadArgument);
    let r = f.primary(
        TxKind::TransferLandRecord,
        "registrar@TS",
        json!({"property_id": "LRI-IND-TS-2026-1"}),
    );
    assert_eq!(r.validation, Validation::BadArgument);
}

#[test]
fn transfer_verification_correction_and_every_refusal() {
    let mut f = Fixture::new(DevnetConfig::default());
    let id = f
        .primary(TxKind::CreateLandRecord, "registrar@TS", create_args("77"))
        .property_id
        .unwrap();
    let created_tx = f.current_tx(&id);
    let owners = json!([{"owner_ref": "o2", "name": "Lakshmi Devi", "share_pct": 50},
                        {"owner_ref": "o3", "name": "Srinivas Reddy", "share_pct": 50}]);

    // UNAUTHORIZED: another state's registrar, a verifier transferring, a stranger.
    for who in ["registrar@AP", "verifier@TS", "citizen", "admin@TS"] {
        let r = f.primary(
            TxKind::TransferLandRecord,
            who,
            json!({"property_id": id, "owners": owners}),
        );
        assert_eq!(r.validation, Validation::Unauthorized, "{who}");
    }
    // PROPERTY_NOT_FOUND.
    let r = f.primary(
        TxKind::TransferLandRecord,
        "registrar@TS",
        json!({"property_id": "LRI-IND-TS-2026-09-99999", "owners": owners}),
    );
    assert_eq!(r.validation, Validation::PropertyNotFound);
    assert_eq!(r.property_id.as_deref(), Some("LRI-IND-TS-2026-09-99999"));
    // A valid transfer with the right expected version.
    let r = f.primary(
        TxKind::TransferLandRecord,
        "registrar@TS",
        json!({"property_id": id, "owners": owners, "expected_tx": created_tx}),
    );
    assert_eq!(r.validation, Validation::Valid);
    assert_eq!(f.record(&id).owners.len(), 2);
    // VERSION_CONFLICT: the same expected version again is now stale.
    let r = f.primary(
        TxKind::TransferLandRecord,
        "registrar@TS",
        json!({"property_id": id, "owners": owners, "expected_tx": created_tx}),
    );
    assert_eq!(r.validation, Validation::VersionConflict);
    // Verification by the state's verifier.
    let r = f.primary(
        TxKind::UpdateVerificationStatus,
        "verifier@TS",
        json!({"property_id": id, "status": "verified", "note": "field visit"}),
    );
    assert_eq!(r.validation, Validation::Valid);
    assert_eq!(
        f.record(&id).verification_status,
        VerificationStatus::Verified
    );
    let r = f.primary(
        TxKind::UpdateVerificationStatus,
        "verifier@TS",
        json!({"property_id": id, "status": "approved"}),
    );
    assert_eq!(r.validation, Validation::BadArgument);
    // Correction of a misspelt name, and a correction onto another registered parcel.
    let fixed = json!([{"owner_ref": "o2", "name": "Laxmi Devi", "share_pct": 50},
                       {"owner_ref": "o3", "name": "Srinivas Reddy", "share_pct": 50}]);
    let r = f.primary(
        TxKind::CorrectLandRecord,
        "registrar@TS",
        json!({"property_id": id, "owners": fixed}),
    );
    assert_eq!(r.validation, Validation::Valid);
    assert_eq!(f.record(&id).owners[0].name, "Laxmi Devi");
    let other = f
        .primary(TxKind::CreateLandRecord, "registrar@TS", create_args("78"))
        .property_id
        .unwrap();
    let r = f.primary(
        TxKind::CorrectLandRecord,
        "registrar@TS",
        json!({"property_id": other, "survey_no": "77"}),
    );
    assert_eq!(r.validation, Validation::DuplicateParcel);
    let r = f.primary(
        TxKind::CorrectLandRecord,
        "registrar@TS",
        json!({"property_id": id}),
    );
    assert_eq!(r.validation, Validation::BadArgument);
    // Moving a parcel frees its old number.
    let r = f.primary(
        TxKind::CorrectLandRecord,
        "registrar@TS",
        json!({"property_id": other, "survey_no": "79"}),
    );
    assert_eq!(r.validation, Validation::Valid);
    let r = f.primary(TxKind::CreateLandRecord, "registrar@TS", create_args("78"));
    assert_eq!(r.validation, Validation::Valid);
    // History: create, transfer, verification, correction.
    assert_eq!(f.chains.state.values[id.as_str()].len(), 4);
}

#[test]
fn documents_link_across_channels() {
    let mut f = Fixture::new(DevnetConfig::default());
    let id = f
        .primary(TxKind::CreateLandRecord, "registrar@TS", create_args("5"))
        .property_id
        .unwrap();
    let h = "ab".repeat(32);
    let r = f.run(
        "land-registry-docs",
        TxKind::LinkDocumentHash,
        "registrar@TS",
        json!({"property_id": id, "doc_hash": h, "doc_type": "sale_deed"}),
    );
    assert_eq!(r.validation, Validation::Valid);
    assert!(f.chains.state.current(&format!("DOC:{id}:{h}")).is_some());
    let r = f.run(
        "land-registry-docs",
        TxKind::LinkDocumentHash,
        "registrar@TS",
        json!({"property_id": id, "doc_hash": "AB".repeat(32), "doc_type": "sale_deed"}),
    );
    assert_eq!(r.validation, Validation::BadArgument);
    let r = f.run(
        "land-registry-docs",
        TxKind::LinkDocumentHash,
        "registrar@TS",
        json!({"property_id": "LRI-IND-TS-2026-00-00042", "doc_hash": h, "doc_type": "x"}),
    );
    assert_eq!(r.validation, Validation::PropertyNotFound);
    let r = f.primary(
        TxKind::LinkDocumentHash,
        "registrar@TS",
        json!({"property_id": id, "doc_hash": h, "doc_type": "sale_deed"}),
    );
    assert_eq!(r.validation, Validation::BadArgument);
}

#[test]
fn regional_channels_keep_their_states_records() {
    let mut f = Fixture::new(DevnetConfig {
        regional_states: vec!["TS".into()],
        ..DevnetConfig::default()
    });
    assert!(f.chains.channel_index("land-registry-region-ts").is_some());
    let r = f.primary(TxKind::CreateLandRecord, "registrar@TS", create_args("1"));
    assert_eq!(r.validation, Validation::BadArgument);
    let r = f.run(
        "land-registry-region-ts",
        TxKind::CreateLandRecord,
        "registrar@TS",
        create_args("1"),
    );
    assert_eq!(r.validation, Validation::Valid);
    let id = r.property_id.unwrap();
    // The record lives on its regional channel only.
    let r = f.primary(
        TxKind::UpdateVerificationStatus,
        "verifier@TS",
        json!({"property_id": id, "status": "verified"}),
    );
    assert_eq!(r.validation, Validation::PropertyNotFound);
}

#[test]
fn state_rebuilds_identically_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = DevnetConfig::default();
    let (mut chains, _) = Chains::open_at(dir.path(), &cfg, T0).unwrap();
    let mut ids = Vec::new();
    for i in 0..20 {
        let p = Proposal {
            kind: TxKind::CreateLandRecord,
            creator: "registrar@TS".into(),
            nonce: i.to_string(),
            args: create_args(&i.to_string()),
        };
        let id = tx_id(&p, "land-registry-primary").unwrap();
        let (r, _) = chains
            .commit(0, 1_767_225_600_000 + i, vec![(id, p)])
            .unwrap();
        ids.push(r[0].property_id.clone().unwrap());
    }
    // A correction moves a parcel: the rebuilt registry must release the old one.
    let p = Proposal {
        kind: TxKind::CorrectLandRecord,
        creator: "registrar@TS".into(),
        nonce: "moved".into(),
        args: json!({"property_id": ids[0], "survey_no": "moved"}),
    };
    let id = tx_id(&p, "land-registry-primary").unwrap();
    let (r, _) = chains.commit(0, 1_767_225_700_000, vec![(id, p)]).unwrap();
    assert_eq!(r[0].validation, Validation::Valid);
    let parcels = chains.state.parcels.clone();
    let snapshot: Vec<(String, Hash32)> = ids
        .iter()
        .map(|id| (id.clone(), chains.state.current(id).unwrap().hash()))
        .collect();
    let counters = chains.state.counters.clone();
    drop(chains);
    let (chains, report) = Chains::open(dir.path(), &cfg).unwrap();
    assert_eq!(report.transactions, 21);
    for (id, h) in snapshot {
        assert_eq!(chains.state.current(&id).unwrap().hash(), h);
    }
    assert_eq!(chains.state.counters, counters);
    assert_eq!(chains.state.parcels.len(), 20);
    assert_eq!(chains.state.parcels, parcels);
}

mod text {
    use crate::chaincode::check_text;

    #[test]
    fn text_fields_are_printable_and_bounded_in_characters() {
        let ok = |v: &str, max| check_text("f", v, max).is_ok();
        assert!(ok("Balapur", 7));
        assert!(ok("  Ravi Kumar ", 13));
        // Characters, not bytes: "రవి" is 3 characters and 9 bytes.
        assert!(ok("రవి", 3));
        assert!(!ok("రవి", 2));
        assert!(!ok("Balapur", 6));
        assert!(!ok("", 10));
        assert!(!ok(" \t ", 10));
        assert!(!ok("\u{3000}", 10)); // an ideographic space is blank too
        assert!(!ok("Ravi\nKumar", 20));
        assert!(!ok("Ravi\u{7f}", 20));
        // The C1 controls are controls too, and a character past them is not.
        assert!(!ok("Ravi\u{85}", 20));
        assert!(!ok("\u{9f}", 20));
        assert!(ok("Ravi\u{a0}", 20));
    }

    proptest::proptest! {
        /// The byte-level checks agree with the rules stated on characters.
        #[test]
        fn text_rules_hold_for_any_text(
            s in "(\\PC|[\u{0}-\u{1f}\u{7f}-\u{a0} \t\u{3000}\u{c00}-\u{c7f}]){0,12}",
            max in 0usize..12,
        ) {
            let chars = s.chars().count();
            let expected = chars <= max
                && !s.chars().all(char::is_whitespace)
                && !s.chars().any(char::is_control);
            proptest::prop_assert_eq!(check_text("f", &s, max).is_ok(), expected, "{:?}", s);
        }
    }
}

mod parcel {
    use crate::chaincode::parcel_key_of;

    /// The straightforward normalisation that `parcel_key_of` must equal.
    fn reference(parts: [&str; 5]) -> String {
        let norm = |s: &str| -> String {
            s.chars()
                .filter(|c| !c.is_whitespace() && *c != '.')
                .map(|c| if c == '-' { '/' } else { c })
                .flat_map(char::to_lowercase)
                .collect()
        };
        format!(
            "{}|{}|{}|{}|{}",
            parts[0],
            norm(parts[1]),
            norm(parts[2]),
            norm(parts[3]),
            norm(parts[4])
        )
    }

    #[test]
    fn parcel_keys_normalise_ascii_and_other_scripts_alike() {
        for parts in [
            ["TS", "K.V. Rangareddy", "Saroor Nagar", "Balapur", "123-A"],
            [
                "KA",
                "Bengaluru\tUrban",
                "Anekal\u{b}",
                "\u{c}X\r\n",
                "7/1 B.",
            ],
            ["TS", "రంగారెడ్డి", "సరూర్ నగర్", "బాలాపూర్", "12-ఆ"],
            ["MH", "PUNE\u{a0}CITY", "Haveli", "ÉCOLE", "ǅ-9"],
        ] {
            assert_eq!(
                parcel_key_of(parts[0], parts[1], parts[2], parts[3], parts[4]),
                reference(parts),
                "{parts:?}"
            );
        }
    }
}

mod encode {
    use crate::chaincode::CreateArgs;
    use ledger::model::Owner;
    use proptest::prelude::*;

    /// Text as the ledger's fields may hold it: any printable characters, the controls,
    /// quotes and backslashes a careless client might send, Telugu (as `ledger::model`'s
    /// own property tests draw it).
    fn arb_text() -> impl Strategy<Value = String> {
        "(\\PC|[\u{0}-\u{1f}\"\\\\\u{c00}-\u{c7f}]){0,12}"
    }

    fn arb_owners() -> impl Strategy<Value = Vec<Owner>> {
        proptest::collection::vec(
            (
                proptest::option::of(arb_text()),
                arb_text(),
                arb_text(),
                any::<i64>(),
            )
                .prop_map(|(father_name, name, owner_ref, share_pct)| Owner {
                    father_name,
                    name,
                    owner_ref,
                    share_pct,
                }),
            0..4,
        )
    }

    proptest! {
        #[test]
        fn create_args_encode_as_serde_writes_them(
            a in (any::<i64>(), arb_text(), arb_text(), proptest::option::of(arb_text())),
            b in (arb_text(), arb_text(), any::<i64>(), arb_owners()),
            c in (arb_text(), arb_text(), arb_text(), arb_text()),
        ) {
            let (area_sq_m, area_text, district, khata_no) = a;
            let (land_type, mandal, market_value, owners) = b;
            let (request_id, state, survey_no, village) = c;
            let args = CreateArgs {
                area_sq_m, area_text, district, khata_no, land_type, mandal, market_value,
                owners, request_id, state, survey_no, village,
            };
            let mut ours = Vec::new();
            args.encode_jcs(&mut ours);
            prop_assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&args).unwrap()
            );
        }
    }
}
