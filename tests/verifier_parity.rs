//! The browser's proof checker (`playground/src/verify/proof.js`, run by Node through
//! `playground/test/verify-cli.mjs`) and the Rust verifier (`ledger::proof::verify_proof`,
//! what `landql verify-proof` runs) accept and refuse exactly the same documents, and refuse
//! each at the same step of ledger.md; where both accept, they report the same record hash.
//!
//! The corpus: the checked-in fuzz seeds, real proofs from a devnet node (three channels,
//! blocks of 1 to 13 transactions), one-byte changes across the record, the audit path, the
//! header and the signature, systematic edits of every JSON value of a proof (each number
//! and string changed or respelt, members removed, added, duplicated and reordered, arrays
//! cut), whole-text damage (truncation, not JSON, not UTF-8, nesting limits), and proofs
//! re-signed with the fuzz world's orderer key so that odd headers and transactions reach
//! steps 3 to 5. Both verifiers trust that one key: the devnet is started with it.
//!
//! A file that is not UTF-8 counts as a step-0 failure on both sides (the browser reads an
//! upload's bytes; `landql verify-proof` refuses to read it at all, exit status 2).
//!
//! Needs Node 20 or later (`node` on PATH, or LANDQL_NODE). With
//! `LANDQL_WRITE_VERIFY_FIXTURES=1` it also refreshes the devnet proof among the fixtures of
//! the page's unit tests (`playground/test/fixtures/`).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{landql, LedgerProcess};
use ledger::canonical::{hash_jcs, value_to_jcs, Canonical};
use ledger::merkle;
use ledger::proof::{verify_proof, Expect, Step};
use ledger::signing::{parse_public_key, OrdererKey};
use ledger::Hash32;
use serde_json::{json, Value};

/// The fuzz world's orderer secret (`devnet::fuzzing`): the checked-in seed proofs are
/// signed with it, so the devnet here uses it too and one trusted key covers everything.
const SECRET: [u8; 32] = [0x5a; 32];
const RAW_TOKEN: &str = "$serde_json::private::RawValue";

fn playground() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("playground")
}

// ---------------------------------------------------------------------------------------
// The corpus on disk

struct Corpus {
    dir: PathBuf,
    names: Vec<String>,
}

impl Corpus {
    fn new(dir: PathBuf) -> Self {
        fs::create_dir_all(&dir).unwrap();
        Self {
            dir,
            names: Vec::new(),
        }
    }

    /// Adds a file; its name keeps the label for the failure listing.
    fn add(&mut self, label: &str, bytes: impl AsRef<[u8]>) {
        let clean: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .take(80)
            .collect();
        let name = format!("{:05}-{clean}", self.names.len());
        fs::write(self.dir.join(&name), bytes).unwrap();
        self.names.push(name);
    }
}

/// A verdict: the failing step (None when the proof holds) and the record hash found.
type Verdict = (Option<u8>, Option<String>);

fn step_number(s: Step) -> u8 {
    match s {
        Step::Shape => 0,
        Step::HeaderHash => 1,
        Step::Signature => 2,
        Step::Inclusion => 3,
        Step::Validation => 4,
        Step::RecordHash => 5,
    }
}

/// What `landql verify-proof` decides, from the library it calls.
fn rust_verdict(bytes: &[u8], key: &str, expect: &Expect) -> (Verdict, String) {
    let trusted = parse_public_key(key).unwrap();
    let Ok(text) = std::str::from_utf8(bytes) else {
        return ((Some(0), None), "not UTF-8".into());
    };
    let doc: Value = match serde_json::from_str(text) {
        Ok(d) => d,
        Err(e) => return ((Some(0), None), format!("not JSON: {e}")),
    };
    match verify_proof(&doc, &trusted, expect) {
        Ok(v) => ((None, Some(v.record_hash.to_hex())), "VALID".into()),
        Err(e) => ((Some(step_number(e.step)), None), e.to_string()),
    }
}

/// Node's verdicts over every file of `dir`, by file name.
fn node_verdicts(dir: &Path, key: &str, extra: &[&str]) -> HashMap<String, (Verdict, String)> {
    let node = std::env::var("LANDQL_NODE").unwrap_or_else(|_| "node".into());
    let cli = playground().join("test/verify-cli.mjs");
    let out = Command::new(&node)
        .arg(&cli)
        .args(["--key", key])
        .args(extra)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run Node ({node}): {e}. This test compares the browser's proof checker \
                 with the Rust one and needs Node 20 or later: install it, or point LANDQL_NODE \
                 at it"
            )
        });
    assert!(
        out.status.success(),
        "{} failed: {}",
        cli.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut verdicts = HashMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let file = Path::new(v["file"].as_str().unwrap());
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let step = v["step"].as_u64().map(|s| s as u8);
        let hash = v["hash"].as_str().map(str::to_string);
        let why = v["why"].as_str().unwrap_or("VALID").to_string();
        verdicts.insert(name, ((step, hash), why));
    }
    verdicts
}

fn require_node() {
    let node = std::env::var("LANDQL_NODE").unwrap_or_else(|_| "node".into());
    let out = Command::new(&node)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "Node is missing ({node}: {e}). This test runs the browser's proof checker under \
             Node 20 or later: install Node (CI has it), or set LANDQL_NODE to its path"
            )
        });
    let version = String::from_utf8_lossy(&out.stdout);
    let major: u32 = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= 20,
        "Node {version} is too old: the checker needs Node 20's WebCrypto Ed25519"
    );
}

/// Runs both verifiers over the corpus and lists every file where they disagree.
fn compare(corpus: &Corpus, key: &str, expect: &Expect, flags: &[&str]) -> BTreeMap<String, usize> {
    let node = node_verdicts(&corpus.dir, key, flags);
    let mut tally = BTreeMap::new();
    let mut disagree = Vec::new();
    // The files they disagree on outlive the temporary corpus, for replaying by hand.
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join("verifier-parity-disagreements");
    let _ = fs::remove_dir_all(&kept);
    for name in &corpus.names {
        let bytes = fs::read(corpus.dir.join(name)).unwrap();
        let (ours, why) = rust_verdict(&bytes, key, expect);
        let Some((theirs, their_why)) = node.get(name) else {
            disagree.push(format!("{name}: no verdict from Node"));
            continue;
        };
        if &ours != theirs {
            disagree.push(format!(
                "{name}:\n    rust {ours:?} ({why})\n    node {theirs:?} ({their_why})"
            ));
            fs::create_dir_all(&kept).unwrap();
            fs::write(kept.join(name), &bytes).unwrap();
        }
        let label = match ours.0 {
            None => "valid".to_string(),
            Some(s) => format!("step {s}"),
        };
        *tally.entry(label).or_insert(0) += 1;
    }
    assert!(
        disagree.is_empty(),
        "the verifiers disagree on {} of {} files (copied to {}):\n{}",
        disagree.len(),
        corpus.names.len(),
        kept.display(),
        disagree[..disagree.len().min(25)].join("\n")
    );
    tally
}

// ---------------------------------------------------------------------------------------
// Proofs from a devnet node

fn create(state: &str, tag: &str, i: usize, name: &str) -> Value {
    json!({
        "kind": "CreateLandRecord", "creator": format!("registrar@{state}"),
        "nonce": format!("{tag}-{i}"),
        "args": {
            "request_id": format!("{tag}-{i}"), "state": state, "district": "K.V.Rangareddy",
            "mandal": "Saroornagar", "village": "Balapur", "survey_no": format!("{tag}/{i}"),
            "khata_no": format!("{}", 1000 + i),
            "owners": [{"owner_ref": format!("ref-{tag}-{i}"), "name": name,
                        "father_name": "వెంకట రావు", "share_pct": 100}],
            "area_sq_m": 201 + i, "area_text": "240 sq.yds \"½\" \\ \u{2028}",
            "land_type": "Residential", "market_value": 4_500_000 + i
        }
    })
}

struct Devnet {
    url: String,
    http: reqwest::Client,
}

impl Devnet {
    /// Submits one batch (one block); returns the receipts.
    async fn submit(&self, channel: &str, proposals: Vec<Value>) -> Vec<Value> {
        let res = self
            .http
            .post(format!("{}/v1/channels/{channel}/transactions", self.url))
            .json(&proposals)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.text().await.unwrap());
        let receipts: Vec<Value> = res.json().await.unwrap();
        let blocks: Vec<&Value> = receipts.iter().map(|r| &r["block_number"]).collect();
        assert!(
            blocks.windows(2).all(|w| w[0] == w[1]),
            "one batch, one block"
        );
        receipts
    }

    /// The proof text exactly as the node sends it.
    async fn proof(&self, tx_id: &str) -> String {
        let res = self
            .http
            .get(format!("{}/v1/transactions/{tx_id}/proof", self.url))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success());
        res.text().await.unwrap()
    }
}

/// Real proofs: (label, text), from blocks of several sizes on three channels, with a
/// transfer, a status update, a linked document and an invalid (duplicate) create.
async fn devnet_proofs(data: &Path) -> Vec<(String, String)> {
    fs::create_dir_all(data).unwrap();
    fs::write(data.join("orderer.key"), "5a".repeat(32)).unwrap();
    let node = LedgerProcess::start(data, &["--batch-timeout-ms", "20", "--regional", "KA"]);
    let d = Devnet {
        url: node.url.clone(),
        http: reqwest::Client::new(),
    };
    let names = ["Ravi Kumar", "లక్ష్మి దేవి", "ಲಕ್ಷ್ಮಿ", "अनिल", "Sita 😀 Rao"];
    let mut out = Vec::new();
    let mut ids = Vec::new();
    let primary = "land-registry-primary";
    for (b, n) in [1usize, 2, 3, 5, 7, 8, 13].into_iter().enumerate() {
        let batch = (0..n)
            .map(|i| create("TS", &format!("b{b}"), i, names[i % names.len()]))
            .collect();
        let receipts = d.submit(primary, batch).await;
        ids.extend(
            receipts
                .iter()
                .filter_map(|r| r["property_id"].as_str().map(String::from)),
        );
        for r in receipts {
            let label = format!(
                "devnet-primary-{}-{}-of-{n}",
                r["block_number"], r["tx_index"]
            );
            out.push((label, d.proof(r["tx_id"].as_str().unwrap()).await));
        }
    }
    // A regional channel, a single and a block of four; then follow-ups and documents.
    let ka = "land-registry-region-ka";
    for n in [1usize, 4] {
        let batch = (0..n)
            .map(|i| create("KA", &format!("ka{n}"), i, names[(i + 2) % 5]))
            .collect();
        for r in d.submit(ka, batch).await {
            let label = format!("devnet-ka-{}-{}-of-{n}", r["block_number"], r["tx_index"]);
            out.push((label, d.proof(r["tx_id"].as_str().unwrap()).await));
        }
    }
    let follow = vec![
        json!({"kind": "TransferLandRecord", "creator": "registrar@TS", "nonce": "t1",
               "args": {"property_id": ids[0], "owners": [
                   {"owner_ref": "ref-b", "name": "Anil Reddy", "share_pct": 60},
                   {"owner_ref": "ref-c", "name": "अनिल", "share_pct": 40}]}}),
        json!({"kind": "UpdateVerificationStatus", "creator": "verifier@TS", "nonce": "v1",
               "args": {"property_id": ids[1], "status": "verified", "note": "ok"}}),
    ];
    // The same parcel again (another request): committed as DUPLICATE_PARCEL (step 4).
    let mut dup = create("TS", "dup", 0, "Ravi Kumar");
    dup["args"]["survey_no"] = json!("b0/0");
    let follow = [follow, vec![dup]].concat();
    for r in d.submit(primary, follow).await {
        let label = format!(
            "devnet-follow-{}-{}-{}",
            r["block_number"], r["tx_index"], r["validation"]
        );
        out.push((label, d.proof(r["tx_id"].as_str().unwrap()).await));
    }
    let docs = (0..3)
        .map(|i| {
            json!({"kind": "LinkDocumentHash", "creator": "registrar@TS", "nonce": format!("d{i}"),
                   "args": {"property_id": ids[i], "doc_hash": format!("{:064x}", i + 1),
                            "doc_type": "SaleDeed"}})
        })
        .collect();
    for r in d.submit("land-registry-docs", docs).await {
        let label = format!("devnet-docs-{}-{}", r["block_number"], r["tx_index"]);
        out.push((label, d.proof(r["tx_id"].as_str().unwrap()).await));
    }
    out
}

// ---------------------------------------------------------------------------------------
// Mutations

/// A one-byte change, as `ledger::proof`'s own test makes them: letters and digits move to
/// a neighbour, anything else flips its lowest bit (which may leave invalid UTF-8).
fn flip(text: &[u8], i: usize) -> Vec<u8> {
    let mut b = text.to_vec();
    b[i] = match b[i] {
        b'0'..=b'8' | b'a'..=b'e' | b'A'..=b'Y' => b[i] + 1,
        b'9' => b'0',
        b'f' => b'a',
        b'g'..=b'z' => b'a' + (b[i] - b'a' + 1) % 26,
        b'Z' => b'A',
        other => other ^ 0x01,
    };
    b
}

/// Where `part` (serialised as the ledger does, JCS) sits in the proof text.
fn span(text: &str, part: &Value) -> std::ops::Range<usize> {
    let needle = String::from_utf8(value_to_jcs(part).unwrap()).unwrap();
    let at = text
        .find(&needle)
        .unwrap_or_else(|| panic!("{needle} not in the proof text"));
    at..at + needle.len()
}

#[derive(Clone, Debug)]
enum Seg {
    Key(String),
    Ix(usize),
}

fn label(path: &[Seg]) -> String {
    let parts: Vec<String> = path
        .iter()
        .map(|s| match s {
            Seg::Key(k) => k.clone(),
            Seg::Ix(i) => i.to_string(),
        })
        .collect();
    if parts.is_empty() {
        "root".into()
    } else {
        parts.join(".")
    }
}

fn all_paths(v: &Value, at: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                at.push(Seg::Key(k.clone()));
                all_paths(x, at, out);
                at.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                at.push(Seg::Ix(i));
                all_paths(x, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn at_mut<'a>(v: &'a mut Value, path: &[Seg]) -> &'a mut Value {
    path.iter().fold(v, |v, s| match s {
        Seg::Key(k) => &mut v[k.as_str()],
        Seg::Ix(i) => &mut v[*i],
    })
}

const MARK: &str = "\u{1}mark\u{1}";

/// The document with the value at `path` replaced by the raw JSON text `raw`.
fn splice(doc: &Value, path: &[Seg], raw: &str) -> String {
    let mut d = doc.clone();
    *at_mut(&mut d, path) = Value::String(MARK.into());
    let text = serde_json::to_string(&d).unwrap();
    text.replacen(&serde_json::to_string(MARK).unwrap(), raw, 1)
}

fn text(v: &Value) -> String {
    serde_json::to_string(v).unwrap()
}

/// An object's text from members in the given order (JCS must not care).
fn object_text<'a>(members: impl IntoIterator<Item = (&'a String, String)>) -> String {
    let inner: Vec<String> = members
        .into_iter()
        .map(|(k, v)| format!("{}:{v}", text(&Value::String(k.clone()))))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// Every string as \u escapes (UTF-16, surrogate pairs for the rest): the same string.
fn escaped(s: &str) -> String {
    let units: String = s.encode_utf16().map(|u| format!("\\u{u:04X}")).collect();
    format!("\"{units}\"")
}

fn raw_wrapped(v: &Value) -> String {
    format!("{{\"{RAW_TOKEN}\":{}}}", text(&Value::String(text(v))))
}

/// Systematic edits of every value of `doc`: (label, text).
fn edits(doc: &Value) -> Vec<(String, String)> {
    let mut paths = Vec::new();
    all_paths(doc, &mut Vec::new(), &mut paths);
    let mut out = Vec::new();
    for path in &paths {
        let mut d = doc.clone();
        let v = at_mut(&mut d, path).clone();
        let name = label(path);
        let mut raw =
            |what: &str, r: String| out.push((format!("{name}={what}"), splice(doc, path, &r)));
        for (what, r) in [
            ("null", "null"),
            ("true", "true"),
            ("zero", "0"),
            ("empty-string", "\"\""),
            ("empty-array", "[]"),
            ("empty-object", "{}"),
        ] {
            raw(what, r.to_string());
        }
        raw("raw-value", raw_wrapped(&v));
        raw("pretty", serde_json::to_string_pretty(&v).unwrap());
        match &v {
            Value::Number(n) => {
                let s = n.to_string();
                for (what, r) in [
                    ("dot0", format!("{s}.0")),
                    ("e0", format!("{s}e0")),
                    ("scaled", format!("{s}0e-1")),
                    ("negative", format!("-{s}")),
                    ("minus-zero", "-0".into()),
                    ("u64-max", "18446744073709551615".into()),
                    ("u64-max+1", "18446744073709551616".into()),
                    ("beyond-i64", "-9223372036854775809".into()),
                    ("2^53+1", "9007199254740993".into()),
                    ("huge", "1e400".into()),
                    ("tiny", "1e-400".into()),
                    ("nearly", format!("{s}.000000000000000000001")),
                    ("long-digits", format!("{s}{}", "0".repeat(25))),
                    ("as-string", format!("\"{s}\"")),
                    ("leading-zero", format!("0{s}")),
                    ("plus", format!("+{s}")),
                ] {
                    raw(what, r);
                }
                if let Some(u) = n.as_u64() {
                    raw("plus-one", (u + 1).to_string());
                    if u > 0 {
                        raw("minus-one", (u - 1).to_string());
                    }
                    raw("exp-form", format!("{}e{}", u as f64 / 10f64.powi(3), 3));
                }
            }
            Value::String(s) => {
                raw("escaped", escaped(s));
                raw("upper", text(&Value::String(s.to_ascii_uppercase())));
                raw("space", text(&Value::String(format!("{s} "))));
                let mut chars: Vec<char> = s.chars().collect();
                if let Some(last) = chars.len().checked_sub(1) {
                    chars[last] = if chars[last] == 'a' { 'b' } else { 'a' };
                    raw(
                        "last-char",
                        text(&Value::String(chars.into_iter().collect())),
                    );
                }
                raw("lone-surrogate", "\"\\ud800\"".into());
                raw(
                    "solidus",
                    text(&Value::String(s.clone())).replacen('/', "\\/", 1),
                );
            }
            Value::Object(m) => {
                raw(
                    "reversed",
                    object_text(m.iter().rev().map(|(k, x)| (k, text(x)))),
                );
                let extra = |k: &str, x: &str| {
                    let mut inner = text(&v);
                    inner.pop();
                    format!(
                        "{inner}{}{}:{x}}}",
                        if m.is_empty() { "" } else { "," },
                        text(&json!(k))
                    )
                };
                raw("added", extra("zz", "1"));
                raw(
                    "added-unicode",
                    extra("\u{e000}\u{1f600}", "[1.5,-0.0,1e21]"),
                );
                raw("added-raw-token-later", extra(RAW_TOKEN, "\"1\""));
                if let Some((k, x)) = m.iter().next() {
                    // Duplicate members: the last one counts.
                    let mut body = text(&v);
                    body.pop();
                    raw(
                        "dup-same",
                        format!("{body},{}:{}}}", text(&json!(k)), text(x)),
                    );
                    raw(
                        "dup-last-differs",
                        format!("{body},{}:\"x\"}}", text(&json!(k))),
                    );
                    let rest: Vec<(&String, String)> =
                        m.iter().map(|(k, x)| (k, text(x))).collect();
                    let mut first_differs = vec![(k, "\"x\"".to_string())];
                    first_differs.extend(rest);
                    raw("dup-first-differs", object_text(first_differs));
                }
            }
            Value::Array(a) if !a.is_empty() => {
                let mut b = a.clone();
                b.pop();
                raw("drop-last", text(&Value::Array(b)));
                let mut b = a.clone();
                b.insert(0, a[0].clone());
                raw("dup-first", text(&Value::Array(b)));
                let mut b = a.clone();
                b.reverse();
                raw("reversed", text(&Value::Array(b)));
            }
            _ => {}
        }
        // Removed from its parent.
        if let Some((last, parent)) = path.split_last() {
            let mut d = doc.clone();
            match (last, at_mut(&mut d, parent)) {
                (Seg::Key(k), Value::Object(m)) => {
                    m.remove(k);
                }
                (Seg::Ix(i), Value::Array(a)) => {
                    a.remove(*i);
                }
                _ => unreachable!(),
            }
            out.push((format!("{name}=removed"), text(&d)));
        }
    }
    out
}

/// Damage to the text as a whole: (label, bytes).
fn text_damage(t: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |l: &str, b: Vec<u8>| out.push((l.to_string(), b));
    for cut in (0..t.len()).step_by(97).chain([t.len() - 1]) {
        add(&format!("truncated-{cut}"), t.as_bytes()[..cut].to_vec());
    }
    for (l, s) in [
        ("empty", ""),
        ("space", " "),
        ("words", "this is not a proof"),
        ("null", "null"),
        ("array", "[]"),
        ("object", "{}"),
        ("string", "\"proof\""),
        ("number", "1"),
        ("html", "<html><body>502 Bad Gateway</body></html>"),
    ] {
        add(l, s.as_bytes().to_vec());
    }
    add("bom", format!("\u{feff}{t}").into_bytes());
    add("trailing-space", format!("\n {t} \r\n\t").into_bytes());
    add("trailing-garbage", format!("{t}x").into_bytes());
    add("trailing-comma", format!("{t},").into_bytes());
    add("two-documents", format!("{t}{t}").into_bytes());
    add("form-feed", format!("{t}\u{c}").into_bytes());
    let doc: Value = serde_json::from_str(t).unwrap();
    add(
        "pretty",
        serde_json::to_string_pretty(&doc).unwrap().into_bytes(),
    );
    add("raw-value-whole", raw_wrapped(&doc).into_bytes());
    add(
        "raw-value-with-member",
        format!(
            "{{\"{RAW_TOKEN}\":{},\"x\":1}}",
            text(&Value::String(t.into()))
        )
        .into_bytes(),
    );
    add(
        "raw-value-nested",
        raw_wrapped(&serde_json::from_str(&raw_wrapped(&doc)).unwrap()).into_bytes(),
    );
    add(
        "raw-value-not-string",
        format!("{{\"{RAW_TOKEN}\":{t}}}").into_bytes(),
    );
    let with = |field: &str| {
        let mut s = t.to_string();
        s.pop();
        format!("{s},\"zz\":{field}}}")
    };
    // serde_json refuses the 128th level of nesting; the document itself is the first.
    for depth in [126, 127] {
        add(
            &format!("nested-{depth}"),
            with(&format!("{}{}", "[".repeat(depth), "]".repeat(depth))).into_bytes(),
        );
    }
    add("lone-surrogate", with("\"\\udc00\"").into_bytes());
    add("lead-then-other", with("\"\\ud800\\u0041\"").into_bytes());
    add("surrogate-pair", with("\"\\ud83d\\ude00\"").into_bytes());
    add("control-char", with("\"a\u{1}b\"").into_bytes());
    add("delete-char", with("\"a\u{7f}b\u{2028}\"").into_bytes());
    add("bad-escape", with("\"\\x41\"").into_bytes());
    add("uppercase-escape", with("\"\\u00E9\"").into_bytes());
    add("nan", with("NaN").into_bytes());
    add("single-quotes", with("'a'").into_bytes());
    add("big-exponent", with("1e99999999999").into_bytes());
    add("zero-big-exponent", with("0e99999999999").into_bytes());
    add("negative-big-exponent", with("1e-99999999999").into_bytes());
    let mut bad = t.as_bytes().to_vec();
    let at = t.find("Balapur").unwrap();
    bad[at + 2] = 0xff;
    add("invalid-utf8", bad);
    let tel = t.find('వ').unwrap();
    add(
        "cut-utf8",
        [&t.as_bytes()[..tel + 1], &t.as_bytes()[tel + 3..]].concat(),
    );
    out
}

/// Signs proofs over any transactions and header, with the fuzz world's key.
struct Forger {
    key: OrdererKey,
}

impl Forger {
    /// A proof of `txs[index]`, signed. `txs` are raw JSON texts (kept as they are in the
    /// document); `header` edits the header after tx_root and tx_count are set; `doc` edits
    /// the finished document's text.
    fn proof(
        &self,
        txs: &[String],
        index: usize,
        header: impl FnOnce(&mut Value),
        doc: impl FnOnce(String) -> String,
    ) -> String {
        let values: Vec<Value> = txs
            .iter()
            .map(|t| serde_json::from_str(t).unwrap())
            .collect();
        let leaves: Vec<Hash32> = values
            .iter()
            .map(|v| merkle::leaf_hash(&value_to_jcs(v).unwrap()))
            .collect();
        let mut h = json!({
            "channel": "land-registry-primary", "number": 7, "prev_hash": "0".repeat(64),
            "timestamp": 1_767_225_600_000u64, "tx_count": txs.len(),
            "tx_root": merkle::root(&leaves).to_hex()
        });
        header(&mut h);
        let header_hash = hash_jcs(&Canonical(&h)).unwrap();
        let sig = self.key.sign(&header_hash);
        let member = |name: &str| match h.get(name) {
            Some(v) => format!(
                ",\"{}\":{}",
                if name == "number" {
                    "block_number"
                } else {
                    name
                },
                text(v)
            ),
            None => String::new(),
        };
        let path = merkle::audit_path(&leaves, index).unwrap_or_default();
        doc(format!(
            "{{\"audit_path\":{}{}{},\"header\":{},\"header_hash\":\"{header_hash}\",\"signature\":{},\"tree_size\":{},\"tx\":{},\"tx_index\":{index}}}",
            text(&json!(path)),
            member("number"),
            member("channel"),
            text(&h),
            text(&json!(sig)),
            txs.len(),
            txs[index],
        ))
    }
}

fn tx(writes: &str, event: &str, validation: &str) -> String {
    format!(
        "{{\"tx_id\":\"{}\",\"kind\":\"CreateLandRecord\",\"creator\":\"registrar@TS\",\"timestamp\":1767225600000,\"args\":{{}},\"writes\":{writes},\"event\":{event},\"validation\":{validation}}}",
        "ab".repeat(32)
    )
}

/// Signed proofs that reach steps 3 to 5 with odd headers and transactions: (label, text).
fn forged(f: &Forger) -> Vec<(String, String)> {
    let rec = r#"{"property_id":"K1","owners":[{"name":"రవి","share_pct":100}],"area_sq_m":201}"#;
    let w1 = format!(r#"[{{"key":"K1","value":{rec}}}]"#);
    let ev = |id: &str| format!(r#"{{"type":"PropertyCreated","id":{id},"t":1,"tx":"x"}}"#);
    let good = tx(&w1, &ev("\"K1\""), "\"VALID\"");
    let filler = |i: usize| tx("[]", "null", &format!("\"F{i}\""));
    let mut out = Vec::new();
    let one = |t: &str| vec![t.to_string()];
    let mut add = |l: &str, txs: Vec<String>, index: usize| {
        out.push((l.to_string(), f.proof(&txs, index, |_| {}, |d| d)));
    };
    add("forged-good", one(&good), 0);
    for n in [2usize, 3, 6, 9, 16, 17] {
        let mut txs: Vec<String> = (0..n).map(filler).collect();
        for i in [0, n / 2, n - 1] {
            txs[i] = good.clone();
            add(&format!("forged-good-{i}-of-{n}"), txs.clone(), i);
            add(
                &format!("forged-filler-{i}-of-{n}"),
                txs.clone(),
                (i + 1) % n,
            );
        }
    }
    // Step 4.
    for (l, v) in [
        ("missing", None),
        ("lower", Some("\"valid\"")),
        ("space", Some("\"VALID \"")),
        ("number", Some("1")),
        ("null", Some("null")),
        ("escaped", Some("\"\\u0056ALID\"")),
    ] {
        let t = match v {
            Some(v) => tx(&w1, &ev("\"K1\""), v),
            None => tx(&w1, &ev("\"K1\""), "\"VALID\"").replace(",\"validation\":\"VALID\"", ""),
        };
        add(&format!("forged-validation-{l}"), one(&t), 0);
    }
    // Step 5: which key, which write.
    let two = format!(r#"[{{"key":"K1","value":1}},{{"key":"K2","value":{rec}}}]"#);
    let raw_write = format!(r#"[{{"{RAW_TOKEN}":"{{\"key\":\"K1\",\"value\":3}}"}}]"#);
    for (l, writes, event) in [
        ("event-names-second", two.as_str(), ev("\"K2\"")),
        ("event-names-none", two.as_str(), ev("\"K9\"")),
        ("no-event-two", two.as_str(), "null".to_string()),
        ("no-event-one", w1.as_str(), "null".to_string()),
        ("event-elsewhere-one", w1.as_str(), ev("\"K9\"")),
        ("event-id-number", w1.as_str(), ev("7")),
        ("event-array", w1.as_str(), "[\"K1\"]".to_string()),
        ("write-without-key", r#"[{"value":1}]"#, "null".to_string()),
        ("write-key-number", r#"[{"key":1,"value":1}]"#, ev("1")),
        ("write-without-value", r#"[{"key":"K1"}]"#, ev("\"K1\"")),
        ("value-null", r#"[{"key":"K1","value":null}]"#, ev("\"K1\"")),
        ("writes-object", r#"{"key":"K1","value":1}"#, ev("\"K1\"")),
        ("writes-empty", "[]", ev("\"K1\"")),
        (
            "writes-not-objects",
            r#"[1,"K1",{"key":"K1","value":2}]"#,
            ev("\"K1\""),
        ),
        (
            "same-key-twice",
            r#"[{"key":"K1","value":1},{"key":"K1","value":2}]"#,
            ev("\"K1\""),
        ),
        ("raw-value-write", raw_write.as_str(), ev("\"K1\"")),
    ] {
        add(
            &format!("forged-{l}"),
            one(&tx(writes, &event, "\"VALID\"")),
            0,
        );
    }
    // Canonical JSON of hashed values: numbers, escapes, UTF-16 member order.
    let raw_inside = format!(r#"{{"x":{{"{RAW_TOKEN}":" {{\"b\":1.0,\"a\":-0}} "}}}}"#);
    let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    for (l, value) in [
        ("numbers", "[1.5,1e21,1e-7,-0.0,-0,100,9007199254740993,18446744073709551615,18446744073709551616,-9223372036854775808,-9223372036854775809,0.1,333333333.3333333,5e-324,1.7976931348623157e308,1e22,1e-6,123456789012345678901234567890,0.30000000000000004,1E+2,12.5e-3]"),
        ("long-fractions", "[3.14159265358979323846264338327950288,0.000000000000000000000000000000000001234567890123456789,18446744073709551615.5,1844674407370955161.5,184467440737095516155,98765432109876543210e-30,4.9406564584124654e-324,2.2250738585072011e-308,9007199254740993.0,2.4703282292062328e-324,1.2345678901234567e-300,-0.0e5]"),
        ("strings", r#"["a\"b\\c\n\u0001\u001f/\u007f\u2028\u00e9","\ud83d\ude00","ల","\/"]"#),
        ("keys", r#"{"\u20ac":1,"\r":2,"\ufb33":3,"1":4,"\ud83d\ude00":5,"\u0080":6,"\u00f6":7,"\ue000":8,"":9}"#),
        ("duplicates", r#"{"a":1,"a":2,"b":{"c":1,"c":[3]}}"#),
        ("raw-value-inside", raw_inside.as_str()),
        ("deep", deep.as_str()),
    ] {
        let writes = format!(r#"[{{"key":"K1","value":{value}}}]"#);
        add(&format!("forged-jcs-{l}"), one(&tx(&writes, &ev("\"K1\""), "\"VALID\"")), 0);
    }
    // Headers and documents edited around a correctly signed header: (label, header edit
    // before signing, document text edit after).
    type HeaderEdit = fn(&mut Value);
    type DocEdit = fn(String) -> String;
    #[rustfmt::skip]
    let cases: &[(&str, HeaderEdit, DocEdit)] = &[
        ("extra-member", |h| h["zz"] = json!({"a": [1, 2]}), |d| d),
        // Equal as floats on both sides: serde_json compares numbers within a kind.
        ("number-float", |h| h["number"] = json!(7.0), |d| d),
        ("number-float-in-doc", |_| {}, |d| d.replacen("\"block_number\":7", "\"block_number\":7.0", 1)),
        ("number-float-in-header", |h| h["number"] = json!(7.0), |d| d.replacen("\"block_number\":7.0", "\"block_number\":7", 1)),
        // -0 is a float to serde_json, as -0.0 is, and the two are equal.
        ("number-minus-zero", |h| h["number"] = json!(-0.0), |d| d.replacen("\"block_number\":-0.0", "\"block_number\":-0", 1)),
        ("number-missing", |h| drop(h.as_object_mut().unwrap().remove("number")), |d| d),
        ("channel-object", |h| h["channel"] = json!({"b": 1, "a": 2}), |d| d),
        ("channel-missing-in-doc", |_| {}, |d| d.replacen(",\"channel\":\"land-registry-primary\"", "", 1)),
        ("tx-count-float", |h| h["tx_count"] = json!(3.0), |d| d),
        ("tx-count-missing", |h| drop(h.as_object_mut().unwrap().remove("tx_count")), |d| d),
        ("tx-root-missing", |h| drop(h.as_object_mut().unwrap().remove("tx_root")), |d| d),
        ("tx-root-upper", |h| h["tx_root"] = json!(h["tx_root"].as_str().unwrap().to_uppercase()), |d| d),
        ("tx-root-other", |h| h["tx_root"] = json!("1".repeat(64)), |d| d),
        ("tree-size-4", |h| h["tx_count"] = json!(4), |d| d.replacen("\"tree_size\":3", "\"tree_size\":4", 1)),
        ("tree-size-0", |h| h["tx_count"] = json!(0), |d| d.replacen("\"tree_size\":3", "\"tree_size\":0", 1)),
        ("tx-index-3", |_| {}, |d| d.replacen("\"tx_index\":0", "\"tx_index\":3", 1)),
        ("tx-index-2", |_| {}, |d| d.replacen("\"tx_index\":0", "\"tx_index\":2", 1)),
        ("tx-index-huge", |_| {}, |d| d.replacen("\"tx_index\":0", "\"tx_index\":18446744073709551615", 1)),
        // The document starts `{"audit_path":[`: drop the first hash, or add one.
        ("path-short", |_| {}, |d| d.replacen(&d[14..15 + 67], "[", 1)),
        ("path-long", |_| {}, |d| d.replacen("\"audit_path\":[", &format!("\"audit_path\":[\"{}\",", "2".repeat(64)), 1)),
        ("signature-as-array", |_| {}, |d| {
            let at = d.find("\"signature\":").unwrap() + 12;
            let end = at + d[at..].find('}').unwrap() + 1;
            let sig: Value = serde_json::from_str(&d[at..end]).unwrap();
            format!("{}[{},{},{}]{}", &d[..at], sig["alg"], sig["key"], sig["sig"], &d[end..])
        }),
        ("signature-upper-hex", |_| {}, |d| {
            let at = d.find("\"sig\":\"").unwrap() + 7;
            format!("{}{}{}", &d[..at], d[at..at + 128].to_uppercase(), &d[at + 128..])
        }),
        ("signature-key-upper", |_| {}, |d| {
            let at = d.find("\"key\":\"0d75").unwrap() + 7;
            format!("{}{}{}", &d[..at], d[at..at + 64].to_uppercase(), &d[at + 64..])
        }),
        ("signature-extra-member", |_| {}, |d| d.replacen("{\"alg\":", "{\"note\":1,\"alg\":", 1)),
        ("signature-alg-lower", |_| {}, |d| d.replacen("\"Ed25519\"", "\"ed25519\"", 1)),
    ];
    let txs = vec![good.clone(), filler(1), filler(2)];
    for (l, header, doc) in cases {
        out.push((format!("forged-header-{l}"), f.proof(&txs, 0, header, doc)));
    }
    out
}

// ---------------------------------------------------------------------------------------
// The test

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_checker_agrees_with_landql_verify_proof() {
    require_node();
    let tmp = tempfile::tempdir().unwrap();
    let key = OrdererKey::from_secret(SECRET).public_hex();
    let mut corpus = Corpus::new(tmp.path().join("corpus"));

    // The fuzz seeds, as checked in.
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/proof");
    let mut seed_files: Vec<PathBuf> = fs::read_dir(&seeds)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    seed_files.sort();
    assert!(!seed_files.is_empty(), "no seeds in {}", seeds.display());
    for f in &seed_files {
        corpus.add(
            &f.file_name().unwrap().to_string_lossy(),
            fs::read(f).unwrap(),
        );
    }

    // Real proofs from a devnet node trusting the same key.
    let proofs = devnet_proofs(&tmp.path().join("ledger")).await;
    assert_eq!(
        fs::read_to_string(tmp.path().join("ledger/orderer.pub"))
            .unwrap()
            .trim(),
        key
    );
    let sizes: Vec<u64> = proofs
        .iter()
        .map(|(_, t)| {
            serde_json::from_str::<Value>(t).unwrap()["tree_size"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(sizes.contains(&1) && sizes.contains(&13) && sizes.contains(&7));
    let mut devnet = Corpus::new(tmp.path().join("devnet"));
    for (l, t) in &proofs {
        corpus.add(l, t);
        devnet.add(l, t);
    }

    // One-byte changes in the record, the audit path, the header and the signature.
    let pick = |prefix: &str| {
        proofs
            .iter()
            .find(|(l, _)| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no proof {prefix}"))
            .1
            .clone()
    };
    let base = pick("devnet-primary-7-10-of-13");
    let bases = [
        (base.clone(), 1),
        (pick("devnet-ka-1-0-of-1"), 3),
        (pick("devnet-docs-"), 5),
        (pick("devnet-primary-4-4-of-5"), 5),
    ];
    for (b, (t, every)) in bases.iter().enumerate() {
        let doc: Value = serde_json::from_str(t).unwrap();
        for (part, v) in [
            ("record", &doc["tx"]["writes"][0]["value"]),
            ("path", &doc["audit_path"]),
            ("header", &doc["header"]),
            ("signature", &doc["signature"]),
        ] {
            for i in span(t, v).step_by(*every) {
                corpus.add(&format!("flip{b}-{part}-{i}"), flip(t.as_bytes(), i));
            }
        }
    }

    // Every value of a proof edited, and the text damaged as a whole.
    let doc: Value = serde_json::from_str(&base).unwrap();
    for (l, t) in edits(&doc) {
        corpus.add(&format!("edit-{l}"), t);
    }
    for (l, b) in text_damage(&base) {
        corpus.add(&format!("text-{l}"), b);
    }

    // Re-signed proofs with odd headers and transactions.
    let forger = Forger {
        key: OrdererKey::from_secret(SECRET),
    };
    for (l, t) in forged(&forger) {
        corpus.add(&l, t);
    }
    // The same proofs against a key that did not sign them.
    let other = OrdererKey::from_secret([7; 32]).public_hex();
    let mut foreign = Corpus::new(tmp.path().join("foreign"));
    for (l, t) in proofs.iter().take(5) {
        foreign.add(l, t);
    }

    let tally = compare(&corpus, &key, &Expect::default(), &[]);
    eprintln!("{} files: {tally:?}", corpus.names.len());
    for want in [
        "valid", "step 0", "step 1", "step 2", "step 3", "step 4", "step 5",
    ] {
        assert!(
            tally.get(want).copied().unwrap_or(0) >= 5,
            "the corpus reaches {want} too rarely: {tally:?}"
        );
    }
    let tally = compare(&foreign, &other, &Expect::default(), &[]);
    assert_eq!(tally.get("step 2"), Some(&5));

    // What step 5 checks when the verifier names the property and the record hash.
    let base_doc: Value = serde_json::from_str(&base).unwrap();
    let id = base_doc["tx"]["writes"][0]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let hash = hash_jcs(&Canonical(&base_doc["tx"]["writes"][0]["value"])).unwrap();
    let expect = Expect {
        key: Some(id.clone()),
        record_hash: Some(hash),
    };
    let tally = compare(
        &devnet,
        &key,
        &expect,
        &["--property-id", &id, "--record-hash", &hash.to_hex()],
    );
    assert_eq!(tally.get("valid"), Some(&1), "{tally:?}");
    let expect = Expect {
        key: Some(id.clone()),
        record_hash: None,
    };
    compare(&devnet, &key, &expect, &["--property-id", &id]);
    let wrong = ledger::canonical::sha256(b"not the record");
    let expect = Expect {
        key: None,
        record_hash: Some(wrong),
    };
    let tally = compare(&devnet, &key, &expect, &["--record-hash", &wrong.to_hex()]);
    assert_eq!(tally.get("valid"), None);

    // And the binary says what the library says (a sample: one process per file).
    for name in corpus.names.iter().step_by(97) {
        let path = corpus.dir.join(name);
        let bytes = fs::read(&path).unwrap();
        if std::str::from_utf8(&bytes).is_err() {
            continue;
        }
        let ((step, _), _) = rust_verdict(&bytes, &key, &Expect::default());
        let out = landql()
            .arg("verify-proof")
            .arg(&path)
            .args(["--orderer-key", &key])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        match step {
            None => assert_eq!(out.status.code(), Some(0), "{name}: {said}"),
            Some(s) => {
                assert_eq!(out.status.code(), Some(1), "{name}: {said}");
                assert!(said.contains(&format!("step {s} ")), "{name}: {said}");
            }
        }
    }

    if std::env::var_os("LANDQL_WRITE_VERIFY_FIXTURES").is_some() {
        let dir = playground().join("test/fixtures");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("devnet-primary-10-of-13.json"), &base).unwrap();
    }
}
