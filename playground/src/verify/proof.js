// @ts-check
// ledger.md's offline proof check, in the browser (and in Node 20, which imports this very
// file): the same five steps, in the same order, with the same verdicts as
// `ledger::proof::verify_proof` and `landql verify-proof`. Nothing but the platform:
// WebCrypto (SHA-256, Ed25519), TextEncoder/TextDecoder and BigInt.
//
// Why there is a JSON parser here: the Rust verifier works on serde_json's `Value`, and
// `JSON.parse` loses what that keeps. serde_json tells `1` (an unsigned integer) from `1.0`
// and `-0` (floats) — so `"tx_index": 1.0` is refused as a shape error and `"number": 1.0`
// does not equal `"block_number": 1` — and keeps integers up to 2^64 exact, where JSON.parse
// rounds them to doubles. It also refuses what JSON.parse takes: lone surrogates, nesting
// deeper than 127, numbers that overflow a double, and an object whose first key is
// `$serde_json::private::RawValue` stands for the JSON inside its string value (serde_json's
// `raw_value` feature, which this build has on). Hashes are still over RFC 8785 bytes, where
// every number prints as the double it denotes, exactly as JCS asks.

/** serde_json's three kinds of number: `pos` (u64), `neg` (i64 < 0) and `float` (f64). */
export class JNum {
  /**
   * @param {"pos" | "neg" | "float"} kind
   * @param {bigint | null} int the exact value of an integer; null for a float
   * @param {number} f the double the number denotes (what JCS prints)
   */
  constructor(kind, int, f) {
    this.kind = kind;
    this.int = int;
    this.f = f;
  }
}

/** @typedef {null | boolean | string | JNum | JValue[] | Map<string, JValue>} JValue */

/**
 * One step's outcome, with the values it compared (for display).
 * @typedef {object} StepResult
 * @property {number} step 0 (document shape) to 5 (record hash)
 * @property {string} name
 * @property {"pass" | "fail" | "skip"} status `skip`: not reached, an earlier step failed
 * @property {string} [expected] what the step required (a hash, a key, "VALID")
 * @property {string} [actual] what the document gave
 * @property {string} [why] the failure, worded as the Rust verifier words it
 */

/**
 * @typedef {object} Verdict
 * @property {boolean} ok every step passed
 * @property {number | null} failedStep the failing step, 0–5; null when ok or on `error`
 * @property {string} [why] why that step failed
 * @property {string} [error] the check could not run (no usable trusted key, no WebCrypto)
 * @property {StepResult[]} steps all six steps, in order
 * @property {string} [channel]
 * @property {string} [blockNumber]
 * @property {string} [txId]
 * @property {string} [key] the key whose write step 5 checked
 * @property {string} [recordHash] sha256(JCS(value written under key))
 */

export const STEP_NAMES = [
  "document shape",
  "header hash",
  "orderer signature",
  "transaction inclusion",
  "validation code",
  "record hash",
];

const RAW_VALUE_TOKEN = "$serde_json::private::RawValue";
const U64_MAX = (1n << 64n) - 1n;
const I64_MIN_ABS = 1n << 63n;
/** serde_json refuses the 128th nested array or object. */
const MAX_DEPTH = 128;

// ---------------------------------------------------------------------------------------
// JSON as serde_json reads it

class ParseError extends Error {}

/**
 * Parses JSON text the way `serde_json::from_str::<Value>` does (see the top of the file).
 * Objects become Maps (the last of duplicate keys wins, as in serde_json). Throws
 * `ParseError` with a message and position.
 * @param {string} text
 * @returns {JValue}
 */
export function parseJson(text) {
  let i = 0;
  let depth = 0;
  const fail = (/** @type {string} */ what) => {
    throw new ParseError(`${what} at character ${i + 1}`);
  };
  const ws = () => {
    for (let c = text.charCodeAt(i); c === 32 || c === 9 || c === 10 || c === 13; c = text.charCodeAt(++i));
  };
  const str = () => {
    i++; // the opening quote
    let out = "";
    for (;;) {
      const c = text.charCodeAt(i);
      if (Number.isNaN(c)) fail("EOF while parsing a string");
      if (c === 34) {
        i++;
        return out;
      }
      if (c < 0x20) fail("control character in a string");
      if (c >= 0xd800 && c <= 0xdfff) {
        // Raw text from a JS string only (bytes are decoded as strict UTF-8 first).
        const d = text.charCodeAt(i + 1);
        if (c > 0xdbff || !(d >= 0xdc00 && d <= 0xdfff)) fail("unpaired surrogate");
        out += text.slice(i, i + 2);
        i += 2;
        continue;
      }
      if (c !== 92) {
        out += text[i++];
        continue;
      }
      const e = text[i + 1];
      i += 2;
      const simple = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" }[e ?? ""];
      if (simple !== undefined) out += simple;
      else if (e === "u") {
        const hex4 = () => {
          const h = text.slice(i, i + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(h)) fail("invalid \\u escape");
          i += 4;
          return parseInt(h, 16);
        };
        const n = hex4();
        if (n >= 0xdc00 && n <= 0xdfff) fail("lone surrogate in a \\u escape");
        if (n >= 0xd800 && n <= 0xdbff) {
          if (text[i] !== "\\" || text[i + 1] !== "u") fail("unexpected end of a surrogate pair");
          i += 2;
          const m = hex4();
          if (m < 0xdc00 || m > 0xdfff) fail("lone surrogate in a \\u escape");
          out += String.fromCharCode(n, m);
        } else out += String.fromCharCode(n);
      } else fail("invalid escape");
    }
  };
  const numRe = /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
  const num = () => {
    numRe.lastIndex = i;
    const m = numRe.exec(text);
    if (!m) return fail("invalid number");
    const n = serdeNumber(m[0]);
    if (n === null) fail("number out of range");
    i += m[0].length;
    return /** @type {JNum} */ (n);
  };
  /** @returns {JValue} */
  const value = () => {
    ws();
    const c = text[i];
    if (c === "{" || c === "[") {
      if (++depth >= MAX_DEPTH) fail("recursion limit exceeded");
      i++;
      const v = c === "{" ? object() : array();
      depth--;
      return v;
    }
    if (c === '"') return str();
    if (c === "-" || (c >= "0" && c <= "9")) return num();
    for (const [word, v] of /** @type {[string, JValue][]} */ ([["true", true], ["false", false], ["null", null]])) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    return fail(c === undefined ? "EOF while parsing a value" : "expected value");
  };
  const array = () => {
    /** @type {JValue[]} */
    const out = [];
    ws();
    if (text[i] === "]") {
      i++;
      return out;
    }
    for (;;) {
      out.push(value());
      ws();
      if (text[i] === ",") i++;
      else if (text[i] === "]") {
        i++;
        return out;
      } else fail("expected , or ]");
      ws();
      if (text[i] === "]") fail("trailing comma");
    }
  };
  /** @returns {JValue} */
  const object = () => {
    /** @type {Map<string, JValue>} */
    const out = new Map();
    ws();
    if (text[i] === "}") {
      i++;
      return out;
    }
    for (let first = true; ; first = false) {
      ws();
      if (text[i] !== '"') fail("expected a string key");
      const k = str();
      ws();
      if (text[i] !== ":") fail("expected :");
      i++;
      if (first && k === RAW_VALUE_TOKEN) {
        // serde_json (`raw_value`): the object is the JSON text held in this string.
        ws();
        if (text[i] !== '"') fail("invalid type: expected a raw value string");
        const inner = parseJson(str());
        ws();
        if (text[i] !== "}") fail(text[i] === "," ? "trailing comma" : "expected }");
        i++;
        return inner;
      }
      out.set(k, value());
      ws();
      if (text[i] === ",") {
        i++;
        ws();
        if (text[i] === "}") fail("trailing comma");
      } else if (text[i] === "}") {
        i++;
        return out;
      } else fail("expected , or }");
    }
  };
  const v = value();
  ws();
  if (i < text.length) fail("trailing characters");
  return v;
}

/**
 * The number serde_json reads from a JSON number lexeme (the workspace builds it with
 * `float_roundtrip`): a u64 while the digits fit, a negative one as an i64 when it fits,
 * anything else (fractions, exponents, integers beyond 64 bits, -0) as the correctly rounded
 * double — which is what JS's `Number(lexeme)` gives. JCS prints that double, and its bits
 * are hashed, so both sides must read the same one. Null when serde_json refuses the number
 * as out of range (a finite lexeme whose double overflows).
 * @param {string} lex a lexeme of JSON's number grammar
 * @returns {JNum | null}
 */
export function serdeNumber(lex) {
  if (/^-?[0-9]+$/.test(lex)) {
    const positive = lex[0] !== "-";
    const sig = BigInt(positive ? lex : lex.slice(1));
    if (positive && sig <= U64_MAX) return new JNum("pos", sig, Number(sig));
    if (!positive && sig !== 0n && sig <= I64_MIN_ABS) return new JNum("neg", -sig, Number(-sig));
  }
  const f = Number(lex);
  return Number.isFinite(f) ? new JNum("float", null, f) : null;
}

// ---------------------------------------------------------------------------------------
// RFC 8785 canonical JSON, hashes, hex

/**
 * RFC 8785 (JCS): members sorted by UTF-16 code units (JS's default string order), numbers
 * as ECMAScript prints the double, strings escaped as JSON.stringify escapes them (which is
 * what serde_json writes, too: `"`, `\`, and controls, with lower-case `\u00xx`).
 * @param {JValue} v
 * @returns {string}
 */
export function jcs(v) {
  if (v === null || v === true || v === false) return String(v);
  if (typeof v === "string") return JSON.stringify(v);
  if (v instanceof JNum) return String(v.f);
  if (Array.isArray(v)) return `[${v.map(jcs).join(",")}]`;
  const keys = [...v.keys()].sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${jcs(/** @type {JValue} */ (v.get(k)))}`).join(",")}}`;
}

const utf8 = new TextEncoder();

/** @param {Uint8Array} bytes */
export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", /** @type {BufferSource} */ (bytes)));
}

/** @param {Uint8Array} b */
export const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** @param {string} s hex digits of either case, even length */
const fromHex = (s) => Uint8Array.from(s.match(/../g) ?? [], (x) => parseInt(x, 16));

/** `Hash32::from_str`: exactly 64 lower-case hex digits. @param {JValue | undefined} v */
const asHash = (v) => (typeof v === "string" && /^[0-9a-f]{64}$/.test(v) ? v : null);

/** @param {...Uint8Array} parts */
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

/** sha256(JCS(v)) as hex. @param {JValue} v */
export const hashJcs = async (v) => toHex(await sha256(utf8.encode(jcs(v))));

/** RFC 9162 §2.1.3.2, as `merkle::root_from_path`: null when the path cannot fit. */
async function rootFromPath(/** @type {Uint8Array} */ leaf, /** @type {bigint} */ index, /** @type {bigint} */ size, /** @type {Uint8Array[]} */ path) {
  if (index >= size) return null;
  const node = (/** @type {Uint8Array} */ l, /** @type {Uint8Array} */ r) => sha256(concat(Uint8Array.of(1), l, r));
  let [f, s, r] = [index, size - 1n, leaf];
  for (const p of path) {
    if (s === 0n) return null;
    if ((f & 1n) === 1n || f === s) {
      r = await node(p, r);
      while ((f & 1n) === 0n && f !== 0n) {
        f >>= 1n;
        s >>= 1n;
      }
    } else r = await node(r, p);
    f >>= 1n;
    s >>= 1n;
  }
  return s === 0n ? r : null;
}

// ---------------------------------------------------------------------------------------
// Values as serde_json's `Value` answers

/** `Value::get(name)`: only objects have members. @param {JValue | undefined} v @param {string} name */
const get = (v, name) => (v instanceof Map ? v.get(name) : undefined);

/** `Value::as_u64`. @param {JValue | undefined} v */
const asU64 = (v) => (v instanceof JNum && v.kind === "pos" ? /** @type {bigint} */ (v.int) : null);

/** `Value == Value` (serde_json: numbers equal only within one kind). @returns {boolean} */
function same(/** @type {JValue | undefined} */ a, /** @type {JValue | undefined} */ b) {
  if (a === b) return true;
  if (a instanceof JNum && b instanceof JNum)
    return a.kind === b.kind && (a.kind === "float" ? a.f === b.f : a.int === b.int);
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, k) => same(x, b[k]));
  if (a instanceof Map && b instanceof Map) return a.size === b.size && [...a].every(([k, x]) => b.has(k) && same(x, b.get(k)));
  return false;
}

// ---------------------------------------------------------------------------------------
// Ed25519 keys

const P = (1n << 255n) - 19n;
/** @param {bigint} b @param {bigint} e */
const powMod = (b, e) => {
  let r = 1n;
  for (b %= P; e > 0n; e >>= 1n, b = (b * b) % P) if (e & 1n) r = (r * b) % P;
  return r;
};

/**
 * Whether 32 bytes decompress to a curve point, as `VerifyingKey::from_bytes` requires
 * (WebCrypto imports any 32 bytes). x² = (y² − 1)/(d·y² + 1) must have a root mod p.
 * @param {Uint8Array} bytes
 */
function isPoint(bytes) {
  const le = Array.from(bytes).reverse();
  le[0] &= 0x7f;
  const y = BigInt("0x" + toHex(Uint8Array.from(le))) % P;
  const d = (P - ((121665n * powMod(121666n, P - 2n)) % P)) % P;
  const y2 = (y * y) % P;
  const x2 = ((y2 - 1n + P) * powMod((d * y2 + 1n) % P, P - 2n)) % P;
  return x2 === 0n || powMod(x2, (P - 1n) / 2n) === 1n;
}

/**
 * Parses a trusted key as `signing::parse_public_key` does: 64 hex digits (surrounding
 * space trimmed), a valid Ed25519 point. Returns the lower-case hex, or throws with why.
 * @param {string} hex
 */
export function parseTrustedKey(hex) {
  const s = String(hex ?? "").trim();
  if (!/^[0-9a-fA-F]{64}$/.test(s)) throw new Error("the orderer key must be 64 hex digits");
  const bytes = fromHex(s);
  if (!isPoint(bytes)) throw new Error("the orderer key is not a valid Ed25519 public key");
  return toHex(bytes);
}

// ---------------------------------------------------------------------------------------
// The five steps

class Fail extends Error {
  /** @param {number} step @param {string} why @param {{expected?: string, actual?: string}} [seen] */
  constructor(step, why, seen = {}) {
    super(why);
    this.step = step;
    this.seen = seen;
  }
}

/** `field`: a missing member is a shape error, whatever step asks. */
const field = (/** @type {JValue | undefined} */ v, /** @type {string} */ name) => {
  const x = get(v, name);
  if (x === undefined) throw new Fail(0, `missing field ${JSON.stringify(name)}`);
  return x;
};

/** `hash_field`: missing → shape; not 64 lower-case hex → `step`. */
const hashField = (/** @type {JValue | undefined} */ v, /** @type {string} */ name, /** @type {number} */ step) => {
  const h = asHash(field(v, name));
  if (h === null) throw new Fail(step, `${JSON.stringify(name)} must be 64 lower-case hex digits`);
  return h;
};

/**
 * `serde_json::from_value::<Signature>`: an object with string members alg, key and sig
 * (others ignored) — or, as serde's derive also takes, an array of exactly those three.
 * @param {JValue} v
 */
function signatureOf(v) {
  const parts = Array.isArray(v) ? (v.length === 3 ? v : null) : v instanceof Map ? ["alg", "key", "sig"].map((k) => v.get(k)) : null;
  if (parts === null || !parts.every((p) => typeof p === "string"))
    throw new Fail(2, "signature is malformed: it needs the strings alg, key and sig");
  const [alg, key, sig] = /** @type {string[]} */ (parts);
  return { alg, key, sig };
}

/**
 * Checks a proof document against the orderer key the verifier trusts: ledger.md's steps 1–5
 * (and the shape checks, step 0), with `ledger::proof::verify_proof`'s verdicts. Never throws.
 *
 * @param {string | Uint8Array | ArrayBuffer} input the proof document as received
 * @param {{ ordererKey: string, key?: string | null, recordHash?: string | null }} opts
 *   `ordererKey`: the trusted key, 64 hex digits; `key`: the write to check (default: the
 *   property the transaction's event names); `recordHash`: the record hash it must have
 *   (default: any; the hash found is reported)
 * @returns {Promise<Verdict>}
 */
export async function verifyProof(input, opts) {
  /** @type {StepResult[]} */
  const steps = STEP_NAMES.map((name, step) => ({ step, name, status: "skip" }));
  /** @type {Verdict} */
  const verdict = { ok: false, failedStep: null, steps };
  const pass = (/** @type {number} */ step, /** @type {{expected?: string, actual?: string}} */ seen = {}) =>
    Object.assign(steps[step], { status: "pass" }, seen);

  let trusted;
  let trustedKey;
  try {
    trusted = parseTrustedKey(opts?.ordererKey);
    if (opts.recordHash != null && asHash(opts.recordHash) === null)
      throw new Error("the record hash to check must be 64 lower-case hex digits");
  } catch (e) {
    verdict.error = e instanceof Error ? e.message : String(e);
    return verdict;
  }
  try {
    trustedKey = await crypto.subtle.importKey("raw", fromHex(trusted), { name: "Ed25519" }, false, ["verify"]);
  } catch (e) {
    // No WebCrypto (not a secure context) or no Ed25519 in it (browsers before 2025).
    verdict.error = `this browser cannot check Ed25519 signatures (${e instanceof Error ? e.message : e})`;
    return verdict;
  }

  try {
    // 0. The text is JSON shaped like a proof.
    let text = input;
    if (typeof text !== "string") {
      try {
        text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(text);
      } catch {
        throw new Fail(0, "the file is not UTF-8 text");
      }
    }
    /** @type {JValue} */
    let doc;
    try {
      doc = parseJson(text);
    } catch (e) {
      throw new Fail(0, `the file is not JSON: ${e instanceof Error ? e.message : e}`);
    }
    if (!(doc instanceof Map)) throw new Fail(0, "a proof document is a JSON object");
    const header = field(doc, "header");
    const tx = field(doc, "tx");
    const u64 = (/** @type {string} */ name) => {
      const n = asU64(field(doc, name));
      if (n === null) throw new Fail(0, `${JSON.stringify(name)} must be a non-negative integer`);
      return n;
    };
    const txIndex = u64("tx_index");
    const treeSize = u64("tree_size");
    const path = field(doc, "audit_path");
    if (!Array.isArray(path)) throw new Fail(0, '"audit_path" must be an array');
    pass(0, { actual: `tx ${txIndex} of ${treeSize}, ${path.length} path hashes` });

    // 1. The header is the one that was hashed (and the summary fields agree with it).
    const claimed = hashField(doc, "header_hash", 1);
    const computed = await hashJcs(header);
    const seen1 = { expected: claimed, actual: computed };
    if (computed !== claimed)
      throw new Fail(1, `sha256(JCS(header)) is ${computed}, the proof says ${claimed}`, seen1);
    if (!same(get(doc, "block_number"), get(header, "number")) || !same(get(doc, "channel"), get(header, "channel")))
      throw new Fail(1, "channel and block_number do not match the signed header", seen1);
    pass(1, seen1);
    const channel = get(header, "channel");
    verdict.channel = typeof channel === "string" ? channel : "";
    verdict.blockNumber = String(asU64(get(header, "number")) ?? 0);

    // 2. The orderer signed that header hash — checked under the trusted key, not the one
    //    the document names.
    const sig = signatureOf(field(doc, "signature"));
    const seen2 = { expected: trusted, actual: sig.key };
    if (sig.alg !== "Ed25519") throw new Fail(2, `signature algorithm is ${JSON.stringify(sig.alg)}, expected Ed25519`, seen2);
    // eq_ignore_ascii_case: only A–Z fold.
    if (sig.key.replace(/[A-Z]/g, (c) => c.toLowerCase()) !== trusted)
      throw new Fail(2, `the block is signed by key ${sig.key}, not the trusted orderer key ${trusted}`, seen2);
    if (!/^[0-9a-fA-F]{128}$/.test(sig.sig)) throw new Fail(2, "signature is not 128 hex digits", seen2);
    const good = await crypto.subtle
      .verify({ name: "Ed25519" }, trustedKey, fromHex(sig.sig), fromHex(claimed))
      .catch(() => false);
    if (!good) throw new Fail(2, "the Ed25519 signature does not verify over the header hash", seen2);
    pass(2, seen2);

    // 3. The transaction is in the block the header commits to.
    const txCount = asU64(get(header, "tx_count"));
    if (txCount !== treeSize)
      throw new Fail(3, `tree_size ${treeSize} is not the header's tx_count ${txCount ?? "(none)"}`, {
        expected: String(txCount ?? "(none)"),
        actual: String(treeSize),
      });
    const txRoot = hashField(header, "tx_root", 3);
    const siblings = path.map(asHash);
    if (siblings.includes(null)) throw new Fail(3, "audit_path holds something other than a hash", { expected: txRoot });
    const leaf = await sha256(concat(Uint8Array.of(0), utf8.encode(jcs(tx))));
    const root = await rootFromPath(leaf, txIndex, treeSize, siblings.map((h) => fromHex(/** @type {string} */ (h))));
    if (root === null)
      throw new Fail(3, `an audit path of ${siblings.length} hashes cannot place leaf ${txIndex} in a tree of ${treeSize}`, {
        expected: txRoot,
      });
    const seen3 = { expected: txRoot, actual: toHex(root) };
    if (seen3.actual !== txRoot)
      throw new Fail(3, `the audit path leads to ${seen3.actual}, the header's tx_root is ${txRoot}`, seen3);
    pass(3, seen3);
    const txId = get(tx, "tx_id");
    verdict.txId = typeof txId === "string" ? txId : "";

    // 4. The transaction was valid.
    const validation = get(tx, "validation");
    const seen4 = { expected: "VALID", actual: typeof validation === "string" ? validation : "missing" };
    if (validation !== "VALID") throw new Fail(4, `validation is ${seen4.actual}, not VALID`, seen4);
    pass(4, seen4);

    // 5. It wrote the value being checked (by default: under the property its event names).
    const writes = get(tx, "writes");
    const list = Array.isArray(writes) ? writes : null;
    let key = opts.key ?? null;
    if (key === null) {
      const id = get(get(tx, "event"), "id");
      if (typeof id === "string" && list && list.some((w) => same(get(w, "key"), id))) key = id;
      else if (list && list.length === 1) {
        const k = get(list[0], "key");
        if (typeof k !== "string") throw new Fail(5, "the write has no key");
        key = k;
      } else throw new Fail(5, "say which key to check: the transaction names none");
    }
    const write = (list ?? []).find((w) => get(w, "key") === key);
    if (write === undefined) throw new Fail(5, `the transaction writes nothing under ${key}`, { expected: key });
    const value = get(write, "value");
    if (value === undefined) throw new Fail(5, `the write under ${key} has no value`, { expected: key });
    const recordHash = await hashJcs(value);
    const seen5 = { expected: opts.recordHash ?? undefined, actual: recordHash };
    if (opts.recordHash != null && opts.recordHash !== recordHash)
      throw new Fail(5, `the ledger wrote record hash ${recordHash} under ${key}, not ${opts.recordHash}`, seen5);
    pass(5, seen5);
    Object.assign(verdict, { ok: true, key, recordHash });
  } catch (e) {
    const f = e instanceof Fail ? e : new Fail(0, `unexpected: ${e}`);
    Object.assign(steps[f.step], { status: "fail", why: f.message }, f.seen);
    Object.assign(verdict, { failedStep: f.step, why: f.message });
  }
  return verdict;
}

/** "step 3 (transaction inclusion)", as the Rust verifier names a step. @param {number} step */
export const describeStep = (step) => `step ${step} (${STEP_NAMES[step]})`;
