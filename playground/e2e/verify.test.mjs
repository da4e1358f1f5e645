// The verifier page in Chromium against a running landql: a real proof fetched by ID passes
// every step; a proof with one character changed in the record, the audit path, the header
// or the signature fails at the step that catches it; bad input gets a clear message; the
// page works offline on a saved proof. The orderer key comes from LANDQL_ORDERER_KEY (the
// ledger's `orderer.pub`; the Rust runner sets it).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { jcs, parseJson } from "../src/verify/proof.js";
import { assertAccessible, assertClean, gql, launch, open, screenshots } from "./browser.mjs";

const KEY = (process.env.LANDQL_ORDERER_KEY ?? "").trim();
let browser;
let id;
let proof;

before(async () => {
  assert.match(KEY, /^[0-9a-fA-F]{64}$/, "set LANDQL_ORDERER_KEY to the ledger's orderer public key (hex)");
  browser = await launch();
  // A property whose proof has an audit path to tamper with (a transaction alone in its
  // block has none: other suites' updates make such blocks).
  const data = await gql("{ properties(first: 20) { edges { node { id } } } }");
  for (const { node } of data.properties.edges) {
    const v = await gql("query ($id: ID!) { verifyProperty(id: $id) { proof { json auditPath } } }", { id: node.id });
    if (v.verifyProperty.proof?.auditPath.length) {
      id = node.id;
      proof = v.verifyProperty.proof.json;
      break;
    }
  }
  assert.ok(proof, "no property among the first 20 has a proof with an audit path");
});

after(async () => {
  await browser?.close();
});

/** The page at `path` with the trusted key typed in. */
async function withKey(path = "/verify") {
  const opened = await open(browser, path);
  await opened.page.fill("#orderer-key", KEY);
  return opened;
}

/** Checks `text` as a pasted proof and waits for the verdict. */
async function paste(page, text) {
  await page.fill("#proof-text", text);
  await page.click("#check-paste");
  await page.waitForSelector("#verdict[data-ok]");
}

/** The proof with one character changed inside the part at `path` (found as its JCS text). */
function tamper(path, pick) {
  let v = parseJson(proof);
  for (const p of path) v = typeof p === "number" ? v[p] : v.get(p);
  const part = jcs(v);
  const at = proof.indexOf(part);
  assert.ok(at >= 0, `${path.join(".")} is not in the proof text`);
  const i = at + pick(part);
  const c = proof[i];
  const next = c === "9" ? "0" : c === "f" ? "a" : c === "z" ? "a" : String.fromCharCode(c.charCodeAt(0) + 1);
  return proof.slice(0, i) + next + proof.slice(i + 1);
}

test("a real proof fetched by ID passes every step", async () => {
  const { page, context, problems } = await open(browser, `/verify?id=${encodeURIComponent(id)}`);
  // Without a key the page fetches the proof but asks for the key before checking.
  await page.waitForSelector("#verdict.error");
  assert.match(await page.textContent("#verdict"), /orderer key you trust/);
  await page.fill("#orderer-key", KEY);
  await page.click("#check-key");
  await page.waitForSelector('#verdict[data-ok="true"]');
  const statuses = await page.$$eval("li.step", (els) => els.map((e) => e.getAttribute("data-status")));
  assert.deepEqual(statuses, ["pass", "pass", "pass", "pass", "pass", "pass"]);
  assert.match(await page.textContent("#verdict"), new RegExp(`under ${id}`));
  assert.match(await page.textContent("#result-body"), /fetched from this server/);
  // A compared hash: shortened, whole in its title and on focus.
  const hash = page.locator('li.step[data-step="1"] code.hash').first();
  const full = await hash.getAttribute("title");
  assert.match(full, /^[0-9a-f]{64}$/);
  assert.notEqual(await hash.textContent(), full);
  await hash.focus();
  assert.equal(await hash.textContent(), full);
  await assertAccessible(page, "verify (passing)");
  // The proof can be saved, byte for byte, for checking offline later.
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download-proof")]);
  assert.equal(download.suggestedFilename(), `proof-${id}.json`);
  const saved = await download.createReadStream();
  let text = "";
  for await (const chunk of saved) text += chunk;
  assert.equal(text, proof);
  assertClean(problems);
  await context.close();
});

test("one changed character names the failing step", async () => {
  const { page, context, problems } = await withKey();
  const cases = [
    ["record", tamper(["tx", "writes", 0, "value"], (s) => s.indexOf('"village":"') + 11), 3],
    ["audit path", tamper(["audit_path", 0], () => 5), 3],
    ["header", tamper(["header"], (s) => s.indexOf('"timestamp":') + 14), 1],
    ["signature", tamper(["signature", "sig"], () => 9), 2],
  ];
  for (const [part, text, step] of cases) {
    await paste(page, text);
    assert.equal(await page.getAttribute("#verdict", "data-ok"), "false", part);
    assert.equal(await page.getAttribute("#verdict", "data-failed-step"), String(step), part);
    assert.match(await page.textContent("#verdict"), new RegExp(`fails at step ${step}`), part);
    assert.equal(await page.getAttribute(`li.step[data-step="${step}"]`, "data-status"), "fail", part);
    const later = await page.$$eval(`li.step`, (els, s) => els.filter((e) => Number(e.dataset.step) > s).map((e) => e.dataset.status), step);
    assert.deepEqual(later, Array(5 - step).fill("skip"), `${part}: later steps are not checked`);
    assert.ok(await page.isVisible('li.step[data-step="5"]'), "steps not reached are shown too");
  }
  await assertAccessible(page, "verify (failing)");
  // The same through a file upload.
  await page.setInputFiles("#proof-file", { name: "tampered.json", mimeType: "application/json", buffer: Buffer.from(cases[3][1]) });
  await page.waitForSelector('#verdict[data-failed-step="2"]');
  assert.match(await page.textContent("#result-body"), /tampered\.json/);
  assertClean(problems);
  await context.close();
});

test("bad input gets a clear message: not JSON, no key, unknown and malformed IDs", async () => {
  const { page, context, problems } = await open(browser, "/verify");
  await page.fill("#proof-text", proof);
  await page.click("#check-paste");
  await page.waitForSelector("#verdict.error");
  assert.match(await page.textContent("#verdict"), /Enter the orderer key/);
  assert.equal(await page.getAttribute("#orderer-key", "aria-invalid"), "true");
  await page.fill("#orderer-key", "not a key");
  await page.click("#check-key");
  await page.waitForSelector("#verdict.error");
  assert.match(await page.textContent("#verdict"), /64 hex digits/);

  await page.fill("#orderer-key", KEY);
  await paste(page, "this is not a proof");
  assert.equal(await page.getAttribute("#verdict", "data-failed-step"), "0");
  assert.match(await page.textContent("#verdict"), /not JSON/);

  await page.fill("#property-id", "LRI-IND-TS-2026-09-99999");
  await page.click("#fetch-proof");
  await page.waitForFunction(() => /no property/.test(document.querySelector("#verdict")?.textContent ?? ""));
  await page.fill("#property-id", "LRI-XX");
  await page.click("#fetch-proof");
  await page.waitForFunction(() => /refused this property ID/.test(document.querySelector("#verdict")?.textContent ?? ""));
  assert.match(await page.textContent("#verdict"), /LRI-IND-/, "the API's own message is shown");
  await page.fill("#property-id", "  ");
  await page.click("#fetch-proof");
  await page.waitForFunction(() => /Enter a property ID/.test(document.querySelector("#verdict")?.textContent ?? ""));
  await assertAccessible(page, "verify (errors)");
  assertClean(problems);
  await context.close();
});

test("the key named in the proof is marked as not independent; a key can be remembered", async () => {
  const { page, context, problems } = await open(browser, "/verify");
  await page.fill("#proof-text", proof);
  await page.click("#check-paste");
  await page.waitForSelector("#verdict.error");
  await page.click("#key-from-proof");
  await page.waitForSelector('#verdict[data-ok="true"]');
  assert.match(await page.textContent("#verdict"), /Not independent/);
  assert.equal(await page.isDisabled("#pin-key"), true, "a key from the proof cannot be remembered");

  await page.fill("#orderer-key", KEY);
  await page.click("#pin-key");
  assert.match(await page.textContent("#key-note"), /Remembered/);
  await page.goto(page.url().split("?")[0] + `?id=${encodeURIComponent(id)}`);
  await page.waitForSelector('#verdict[data-ok="true"]');
  assert.equal((await page.inputValue("#orderer-key")).toLowerCase(), KEY.toLowerCase());
  assert.doesNotMatch(await page.textContent("#verdict"), /Not independent/);
  await page.click("#forget-key");
  assert.equal(await page.evaluate(() => localStorage.getItem("landql.verify.ordererKey")), null);
  assertClean(problems);
  await context.close();
});

test("works offline on a saved proof, and in Telugu", async () => {
  const { page, context, problems } = await withKey();
  await context.setOffline(true);
  await paste(page, proof);
  assert.equal(await page.getAttribute("#verdict", "data-ok"), "true");
  await context.setOffline(false);
  await page.selectOption("#lang", "te");
  assert.equal(await page.textContent("h1"), "ఆస్తి యొక్క లెడ్జర్ రుజువును ధృవీకరించండి");
  assert.match(await page.textContent("#verdict"), /రుజువు సరైనది/);
  await page.selectOption("#lang", "en");
  assertClean(problems);
  await context.close();
});

test("screenshots at phone and desktop width", async () => {
  await screenshots(browser, `/verify?id=${encodeURIComponent(id)}`, "verify", async (page) => {
    await page.waitForSelector("#verdict.error");
    await page.fill("#orderer-key", KEY);
    await page.click("#check-key");
    await page.waitForSelector('#verdict[data-ok="true"]');
  });
  await screenshots(browser, "/verify", "verify-tampered", async (page) => {
    await page.fill("#orderer-key", KEY);
    await paste(page, tamper(["signature", "sig"], () => 9));
  });
});
