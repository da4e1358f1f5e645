// Shared by the browser tests: Debian's Chromium driven by playwright-core, against the
// landql named by LANDQL_URL (the Rust test `tests/browser.rs` starts one and runs these;
// by hand: `LANDQL_URL=http://127.0.0.1:8080 npm run e2e` against `landql dev`).
//
// Every page opened through `open` is watched: a request to any other origin fails the test
// (the pages must work offline), and so does a console error or an uncaught exception.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

export const BASE = (process.env.LANDQL_URL ?? "http://127.0.0.1:8080").replace(/\/$/, "");
const ORIGIN = new URL(BASE).origin;
export const OUT = new URL("../e2e-output/", import.meta.url).pathname;
mkdirSync(OUT, { recursive: true });

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/** Launch Chromium the way this machine allows (root, no sandbox, no background network). */
export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * A new page at `path` with the watchers attached. Returns `{ page, problems }`; call
 * `assertClean(problems)` at the end of the test.
 */
export async function open(browser, path, { width = 1280, height = 900, locale, headers } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, locale, extraHTTPHeaders: headers });
  const page = await context.newPage();
  const problems = [];
  page.on("request", (req) => {
    const url = req.url();
    if (url.startsWith("data:") || url.startsWith("blob:")) return;
    if (new URL(url).origin !== ORIGIN && !url.startsWith(ORIGIN.replace(/^http/, "ws")))
      problems.push(`request left the origin: ${url}`);
  });
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(`console error: ${msg.text()}`);
  });
  page.on("pageerror", (err) => problems.push(`uncaught: ${err.message}`));
  if (path != null) await page.goto(BASE + path);
  return { page, context, problems };
}

/** Fails with every problem seen (requests off the origin, console errors). */
export function assertClean(problems, { allow = [] } = {}) {
  const left = problems.filter((p) => !allow.some((re) => re.test(p)));
  assert.deepEqual(left, [], left.join("\n"));
}

/** axe-core over the page: no serious or critical violation. */
export async function assertAccessible(page, name) {
  // Evaluated, not injected as a <script>: the pages' CSP refuses inline scripts.
  await page.evaluate(AXE);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
    }));
  });
  const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(bad, [], `${name}: accessibility violations\n${JSON.stringify(bad, null, 2)}`);
}

/** Screenshots at phone and desktop widths into e2e-output/ (kept by CI as test output). */
export async function screenshots(browser, path, name, ready) {
  for (const width of [360, 1280]) {
    const { page, context, problems } = await open(browser, path, { width, height: width === 360 ? 780 : 900 });
    if (ready) await ready(page);
    await page.screenshot({ path: `${OUT}${name}-${width}.png`, fullPage: true });
    // Nothing may overflow a phone's width.
    if (width === 360) {
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(overflow <= 360, `${name}: page is ${overflow}px wide at 360px`);
    }
    assertClean(problems);
    await context.close();
  }
}

/** POST a GraphQL query from the test itself (to find fixtures). */
export async function gql(query, variables = {}, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${BASE}/graphql`, { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  const body = await res.json();
  if (body.errors?.length) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

/** The devnet's HTTP API beside the landql under test (LANDQL_LEDGER_URL). */
export const LEDGER = (process.env.LANDQL_LEDGER_URL ?? "http://127.0.0.1:7050").replace(/\/$/, "");
/** A citizen's token for the landql under test (LANDQL_TOKEN), as `landql dev` prints one. */
export const TOKEN = process.env.LANDQL_TOKEN ?? "";

/**
 * Change a property on the ledger: a verification-status update proposed by the state's
 * verifier. Resolves once the ledger has committed it (its receipt); the replica follows.
 */
export async function changeOnLedger(id, status = "verified") {
  const state = id.split("-")[2];
  const channel = process.env.LANDQL_CHANNEL ?? "land-registry-primary";
  const proposal = {
    kind: "UpdateVerificationStatus",
    creator: `verifier@${state}`,
    nonce: `e2e-${Date.now()}-${Math.random()}`,
    args: { property_id: id, status, note: "browser test" },
  };
  const res = await fetch(`${LEDGER}/v1/channels/${channel}/transactions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(proposal),
  });
  const body = await res.json();
  assert.ok(res.ok, `ledger refused the proposal: ${JSON.stringify(body)}`);
  return body;
}

/**
 * The test's own queries: with the citizen token when there is one (a higher rate limit than
 * anonymous, which the pages under test share with other clients on this address), and
 * waiting out a RATE_LIMITED refusal rather than failing on it.
 */
export async function ask(query, variables = {}) {
  for (let i = 0; ; i++) {
    try {
      return await gql(query, variables, TOKEN || undefined);
    } catch (e) {
      if (i >= 10 || !/RATE_LIMITED/.test(e.message)) throw e;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}
