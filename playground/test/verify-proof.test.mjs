// Unit tests of the browser's proof checker (src/verify/proof.js) on fixture proofs (see
// fixtures/README.md). Parity with `landql verify-proof` over thousands of documents is
// tests/verifier_parity.rs; this file pins the behaviour a reader of the page relies on.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { JNum, jcs, parseJson, serdeNumber, verifyProof } from "../src/verify/proof.js";

const fixture = (name) => readFileSync(new URL(`fixtures/${name}`, import.meta.url), "utf8");
const KEY = fixture("fuzz-orderer.pub").trim();
const PRIMARY = fixture("fuzz-primary-2-of-4.json");
const SINGLE = fixture("fuzz-ka-single.json");
const INVALID = fixture("fuzz-invalid-duplicate.json");
const DEVNET = fixture("devnet-primary-10-of-13.json");

const check = (text, opts = {}) => verifyProof(text, { ordererKey: KEY, ...opts });

/** Where a part of the proof (found by path) sits in its text: the proofs are JCS text. */
function span(text, ...path) {
  let v = parseJson(text);
  for (const p of path) v = typeof p === "number" ? v[p] : v.get(p);
  const part = jcs(v);
  const at = text.indexOf(part);
  assert.ok(at >= 0, `${path.join(".")} not found`);
  return [at, at + part.length];
}

/** One character changed, as the Rust tests change bytes: letters and digits to a neighbour,
 *  other ASCII by its lowest bit, anything else to "_". */
function flip(text, i) {
  const c = text[i];
  const code = c.charCodeAt(0);
  const next =
    c === "9" ? "0" : c === "f" ? "a" : c === "z" ? "a" : c === "Z" ? "A"
    : /[0-9a-yA-Y]/.test(c) ? String.fromCharCode(code + 1)
    : code < 128 ? String.fromCharCode(code ^ 1)
    : "_";
  return text.slice(0, i) + next + text.slice(i + 1);
}

test("the fixtures verify, and report the record hash of the write", async () => {
  for (const [text, key, size] of [
    [PRIMARY, "LRI-IND-AP-2026-02-00001", 4n],
    [SINGLE, "LRI-IND-KA-2026-01-00001", 1n],
    [DEVNET, parseJson(DEVNET).get("tx").get("writes")[0].get("key"), 13n],
  ]) {
    const v = await check(text);
    assert.equal(v.ok, true, v.why);
    assert.equal(v.failedStep, null);
    assert.equal(v.key, key);
    assert.deepEqual(v.steps.map((s) => s.status), ["pass", "pass", "pass", "pass", "pass", "pass"]);
    assert.equal(parseJson(text).get("tree_size").int, size);
    // Step 5's hash is sha256(JCS(value)), and naming it (and the key) still passes.
    const again = await check(text, { key, recordHash: v.recordHash });
    assert.equal(again.ok, true, again.why);
    assert.equal(v.steps[1].expected, v.steps[1].actual);
    assert.equal(v.steps[3].expected, v.steps[3].actual);
  }
  const v = await check(PRIMARY);
  // As `landql verify-proof` reports it for this seed.
  assert.equal(v.recordHash, "04b2f5f0d19a053c927e6f6c4d8675b9fd5d6ec41e337c210f10812b7d0b04fb");
});

test("one changed character in the record, audit path, header or signature names its step", async () => {
  for (const text of [PRIMARY, DEVNET]) {
    for (const [part, path, step] of [
      ["record", ["tx", "writes", 0, "value"], 3],
      ["audit path", ["audit_path"], 3],
      ["header", ["header"], 1],
      ["signature", ["signature", "sig"], 2],
    ]) {
      const [from, to] = span(text, ...path);
      // Every 7th character of the part (the Rust parity test changes every one).
      for (let i = from + 1; i < to - 1; i += 7) {
        const v = await check(flip(text, i));
        assert.equal(v.ok, false, `${part} at ${i} went unnoticed`);
        const got = v.failedStep;
        // A change that breaks the JSON (a quote) is a shape error; a header change that
        // keeps the hash's input (none here) would pass; anything else fails at its step.
        assert.ok(got === step || got === 0, `${part} at ${i}: step ${got} (${v.why})`);
        if (got === step) assert.equal(v.steps[step].status, "fail");
      }
    }
  }
});

test("each step fails on its own kind of damage", async () => {
  const doc = JSON.parse(PRIMARY);
  const edit = (f) => {
    const d = structuredClone(doc);
    f(d);
    return JSON.stringify(d);
  };
  const cases = [
    [edit((d) => (d.header.timestamp += 1)), 1, /sha256\(JCS\(header\)\)/],
    [edit((d) => (d.block_number += 1)), 1, /do not match the signed header/],
    [edit((d) => (d.signature.key = "ab".repeat(32))), 2, /not the trusted orderer key/],
    [edit((d) => (d.signature.alg = "none")), 2, /algorithm/],
    [edit((d) => (d.signature.sig = d.signature.sig.slice(2))), 2, /128 hex/],
    [edit((d) => (d.tx_index = 1)), 3, /audit path leads/],
    [edit((d) => (d.tree_size = 5)), 3, /tx_count/],
    [edit((d) => d.audit_path.pop()), 3, /cannot place leaf/],
    [edit((d) => (d.audit_path[0] = "zz")), 3, /other than a hash/],
    // The leaf covers the validation code: changing it breaks inclusion first.
    [edit((d) => (d.tx.validation = "BAD_ARGUMENT")), 3, /audit path leads/],
    [INVALID, 4, /DUPLICATE_PARCEL, not VALID/],
    [edit((d) => delete d.signature), 0, /missing field "signature"/],
    [edit((d) => delete d.header.tx_root), 1, /sha256/],
    [edit((d) => (d.tx_index = -1)), 0, /non-negative integer/],
    [edit((d) => (d.audit_path = "none")), 0, /must be an array/],
    [PRIMARY.replace('"tx_index":2', '"tx_index":2.0'), 0, /non-negative integer/],
    ["[1]", 0, /JSON object/],
    ['{"header":{}}', 0, /missing field "tx"/],
    ["this is not a proof", 0, /not JSON/],
    [PRIMARY.slice(0, 500), 0, /not JSON/],
    ["", 0, /not JSON/],
  ];
  for (const [text, step, why] of cases) {
    const v = await check(text);
    assert.equal(v.failedStep, step, `${why}: ${v.why}`);
    assert.match(v.why, why);
    assert.equal(v.steps[step].status, "fail");
    assert.ok(v.steps.slice(step + 1).every((s) => s.status === "skip" || step === 0));
  }
  // Step 5: the caller names a key or a record hash the transaction did not write.
  let v = await check(PRIMARY, { key: "LRI-IND-TS-2026-00-00001" });
  assert.equal(v.failedStep, 5);
  assert.match(v.why, /writes nothing under LRI-IND-TS-2026-00-00001/);
  v = await check(PRIMARY, { recordHash: "0".repeat(64) });
  assert.equal(v.failedStep, 5);
  assert.equal(v.steps[5].expected, "0".repeat(64));
});

test("a key other than the signer's fails step 2; an unusable key is an error, not a verdict", async () => {
  const other = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"; // RFC 8032 test 1
  let v = await verifyProof(PRIMARY, { ordererKey: other });
  assert.equal(v.failedStep, 2);
  assert.equal(v.steps[2].expected, other);
  assert.equal(v.steps[2].actual, KEY);
  v = await verifyProof(PRIMARY, { ordererKey: ` ${KEY.toUpperCase()}\n` });
  assert.equal(v.ok, true, "hex of either case, surrounding space trimmed");
  for (const bad of ["", "abc", "zz".repeat(32), undefined]) {
    v = await verifyProof(PRIMARY, { ordererKey: bad });
    assert.equal(v.ok, false);
    assert.equal(v.failedStep, null);
    assert.match(v.error, /64 hex digits/);
  }
  // 32 bytes that are not a point of the curve: refused as the Rust side refuses them.
  v = await verifyProof(PRIMARY, { ordererKey: "02" + "00".repeat(31) });
  assert.match(v.error ?? "", /not a valid Ed25519 public key/);
  v = await verifyProof(PRIMARY, { ordererKey: KEY, recordHash: "XYZ" });
  assert.match(v.error, /record hash/);
});

test("what JCS does not care about passes: member order, spacing, escapes, raw values", async () => {
  const doc = JSON.parse(PRIMARY);
  const reversed = (v) =>
    Array.isArray(v) ? v.map(reversed) : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reversed(x)])) : v;
  for (const text of [
    JSON.stringify(reversed(doc)),
    JSON.stringify(doc, null, 2),
    `\n ${PRIMARY}\t\r\n`,
    PRIMARY.replace('"Ed25519"', '"\\u0045d25519"'),
    `{"$serde_json::private::RawValue":${JSON.stringify(PRIMARY)}}`,
    PRIMARY.replace(/^\{/, '{"zz":[1.5,-0.0,1e21,"\\ud83d\\ude00"],'),
  ]) {
    const v = await check(text);
    assert.equal(v.ok, true, `${v.why}: ${text.slice(0, 60)}`);
  }
  // Bytes: strict UTF-8, no BOM.
  assert.equal((await check(new TextEncoder().encode(PRIMARY))).ok, true);
  assert.equal((await check(new TextEncoder().encode(`\ufeff${PRIMARY}`))).failedStep, 0);
  const bad = new TextEncoder().encode(PRIMARY);
  bad[PRIMARY.indexOf("Balapur")] = 0xff;
  assert.match((await check(bad)).why, /not UTF-8/);
});

test("JCS and numbers as serde_json and RFC 8785 have them", () => {
  // RFC 8785 §3.2.3: members sorted by UTF-16 code units.
  const keys = parseJson('{"\\u20ac":1,"\\r":2,"\\ufb33":3,"1":4,"\\ud83d\\ude00":5,"\\u0080":6,"\\u00f6":7}');
  assert.equal(jcs(keys), '{"\\r":2,"1":4,"\u0080":6,"ö":7,"€":1,"😀":5,"דּ":3}');
  assert.equal(jcs(parseJson("[1.5, 1e21, 1e-7, -0.0, 100, 9007199254740993, 0.1, 333333333.3333333]")), "[1.5,1e+21,1e-7,0,100,9007199254740992,0.1,333333333.3333333]");
  assert.equal(jcs(parseJson('"a\\"b\\\\c\\n\\u0001/ల\\u007f"')), '"a\\"b\\\\c\\n\\u0001/ల\u007f"');
  // serde_json's kinds: u64, i64, else f64 (and -0 is a float).
  const kind = (s) => serdeNumber(s)?.kind ?? "refused";
  assert.deepEqual(
    ["1", "1.0", "1e0", "-0", "-1", "18446744073709551615", "18446744073709551616", "-9223372036854775808", "-9223372036854775809", "1e400", "0e99999999999"].map(kind),
    ["pos", "float", "float", "float", "neg", "pos", "float", "neg", "float", "refused", "float"],
  );
  assert.equal(serdeNumber("18446744073709551615").int, 18446744073709551615n);
  assert.ok(serdeNumber("7") instanceof JNum);
  // The last duplicate member wins; nesting stops at 128; lone surrogates are refused.
  assert.equal(jcs(parseJson('{"a":1,"a":2}')), '{"a":2}');
  assert.doesNotThrow(() => parseJson("[".repeat(127) + "]".repeat(127)));
  assert.throws(() => parseJson("[".repeat(128) + "]".repeat(128)), /recursion/);
  assert.throws(() => parseJson('"\\udc00"'), /surrogate/);
  assert.throws(() => parseJson("[1,]"), /trailing comma/);
  assert.throws(() => parseJson("01"), /trailing/);
});

test("never throws, whatever the input", async () => {
  let seed = 7;
  const rand = (n) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  for (let k = 0; k < 300; k++) {
    let text = PRIMARY;
    for (let j = 0; j <= rand(3); j++) {
      const i = rand(text.length);
      const pick = ['"', "{", "}", "[", "]", ",", ":", "0", "-", "e", ".", "\\", "x", ""][rand(14)];
      text = text.slice(0, i) + pick + text.slice(i + (rand(2) ? 1 : 0));
    }
    const v = await check(text);
    assert.equal(typeof v.ok, "boolean");
    if (!v.ok) assert.ok(v.failedStep !== null && v.why);
  }
});
