//! `landql fabric verify` on block files Fabric peers wrote (fabric/testdata, from Fabric's
//! own test data): its findings are the ones Fabric's `ledgerutil verify` reports for them
//! (Fabric's `internal/ledgerutil/testdata/sample_verifications/*.json`), plus the orderer
//! signature checks, and its exit status says intact (0), damaged (1) or unreadable (2).

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::{json, Value};

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fabric/testdata")
        .join(name)
}

fn landql(args: &[&str], files: &[PathBuf]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_landql"))
        .arg("fabric")
        .arg("verify")
        .args(args)
        .args(files)
        .output()
        .expect("run landql")
}

/// The exit code and the parsed JSON output.
fn verify(args: &[&str], files: &[PathBuf]) -> (i32, Value) {
    let out = landql(args, files);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().expect("exit code"), json)
}

#[test]
fn intact_files_exit_0_with_every_signature_verified() {
    let (code, out) = verify(
        &[],
        &[
            testdata("sample_prod.blockfile"),
            testdata("mychannel_genesis.block"),
        ],
    );
    assert_eq!(code, 0, "{out:#}");
    assert_eq!(out[0]["blocks"], 8);
    assert_eq!(out[0]["results"], json!([]));
    // Block 0 is the config block that the others' signatures are checked against.
    assert_eq!(out[0]["signaturesVerified"], 7);
    assert_eq!(out[0]["signaturesUnchecked"], 1);
    assert_eq!(out[1]["blocks"], 1);
    assert_eq!(out[1]["results"], json!([]));
}

#[test]
fn bad_ledger_gets_ledgerutils_findings() {
    // hash_error_blocks.json in Fabric's ledgerutil tests.
    let expected = json!([
        {"blockNum": 0, "valid": false, "errors": ["DataHash mismatch"]},
        {"blockNum": 1, "valid": false, "errors": ["PreviousHash mismatch"]}
    ]);
    for args in [&[][..], &["--ledgerutil"][..]] {
        let (code, out) = verify(args, &[testdata("sample_bad_ledger.blockfile")]);
        assert_eq!(code, 1, "{args:?}: {out:#}");
        assert_eq!(out[0]["results"], expected, "{args:?}");
    }
    // Blocks 0 and 1 (config blocks) are damaged, so the intact config block 2 is the trust
    // anchor: the signatures of blocks 3 to 9 verify, the first three are not checked.
    let (_, out) = verify(&[], &[testdata("sample_bad_ledger.blockfile")]);
    assert_eq!(out[0]["signaturesVerified"], 7);
    assert_eq!(out[0]["signaturesUnchecked"], 3);
}

#[test]
fn glued_transactions_get_ledgerutils_findings_and_a_bad_signature() {
    // glued_together.json in Fabric's ledgerutil tests.
    let ledgerutil = json!([{"blockNum": 8, "valid": false,
        "errors": ["transaction 0 has 3183 trailing bytes", "DataHash mismatch"]}]);
    let file = testdata("glued_together.blockfile");
    let (code, out) = verify(&["--ledgerutil"], std::slice::from_ref(&file));
    assert_eq!(code, 1);
    assert_eq!(out[0]["results"], ledgerutil);
    assert!(out[0].get("signaturesVerified").is_none());
    // With signatures: the forged block 8 carries block 7's orderer signature.
    let (code, out) = verify(&[], &[file]);
    assert_eq!(code, 1);
    let errors = &out[0]["results"][0]["errors"];
    assert_eq!(errors[0], ledgerutil[0]["errors"][0]);
    assert_eq!(errors[1], ledgerutil[0]["errors"][1]);
    assert_eq!(errors[2], "orderer signature 0: signature does not verify");
    assert_eq!(out[0]["signaturesVerified"], 7);
}

#[test]
fn a_damaged_file_among_intact_ones_exits_1() {
    let (code, out) = verify(
        &[],
        &[
            testdata("sample_prod.blockfile"),
            testdata("sample_bad_ledger.blockfile"),
        ],
    );
    assert_eq!(code, 1);
    assert_eq!(out.as_array().unwrap().len(), 2);
}

#[test]
fn unreadable_and_malformed_files_exit_2_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let torn = dir.path().join("torn.blockfile");
    let whole = std::fs::read(testdata("sample_prod.blockfile")).unwrap();
    std::fs::write(&torn, &whole[..whole.len() - 10]).unwrap();
    let junk = dir.path().join("junk.block");
    std::fs::write(&junk, b"not a block").unwrap();
    for (file, message) in [
        (dir.path().join("missing"), "cannot read"),
        (torn, "is not a Fabric block file: truncated at byte"),
        (junk, "is not a serialized Fabric block"),
    ] {
        let out = landql(&[], &[testdata("sample_prod.blockfile"), file.clone()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", file.display());
        assert!(stderr.contains(message), "{}: {stderr}", file.display());
        assert!(out.stdout.is_empty(), "nothing printed for a bad file");
    }
    // No file at all is a usage error.
    assert_eq!(landql(&[], &[]).status.code(), Some(2));
}
