#!/usr/bin/env node
// The browser's proof checker (src/verify/proof.js) as a command, for the parity test with
// `landql verify-proof` (tests/verifier_parity.rs):
//
//   node test/verify-cli.mjs --key HEX [--property-id ID] [--record-hash HEX] FILE|DIR...
//
// prints one JSON line per file (a directory stands for its files, sorted by name):
// `{"file", "ok", "step", "hash"}` — `step` is the failing step (0–5) or null, `hash` the
// record hash step 5 found (null unless ok). The file is read as bytes, so a file that is
// not UTF-8 is a step-0 failure, as a browser upload is. Exit status: 0 when every file
// was checked (whatever the verdicts), 2 on a usage error.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { verifyProof } from "../src/verify/proof.js";

const args = process.argv.slice(2);
// `node --test test/` runs every .mjs under test/ — this one too, without arguments.
if (args.length === 0 && process.env.NODE_TEST_CONTEXT) process.exit(0);

/** @type {{ ordererKey?: string, key?: string, recordHash?: string }} */
const opts = {};
const files = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === "--key") opts.ordererKey = args[++i];
  else if (a === "--property-id") opts.key = args[++i];
  else if (a === "--record-hash") opts.recordHash = args[++i];
  else if (a.startsWith("--")) usage(`unknown option ${a}`);
  else if (statSync(a).isDirectory()) files.push(...readdirSync(a).sort().map((f) => join(a, f)));
  else files.push(a);
}
if (!opts.ordererKey) usage("--key is required");

for (const file of files) {
  const v = await verifyProof(readFileSync(file), { ordererKey: opts.ordererKey, key: opts.key, recordHash: opts.recordHash });
  if (v.error) usage(v.error);
  process.stdout.write(`${JSON.stringify({ file, ok: v.ok, step: v.failedStep, hash: v.recordHash ?? null, why: v.why ?? null })}\n`);
}

/** @param {string} why */
function usage(why) {
  process.stderr.write(`verify-cli: ${why}\nusage: node test/verify-cli.mjs --key HEX [--property-id ID] [--record-hash HEX] FILE|DIR...\n`);
  process.exit(2);
}
