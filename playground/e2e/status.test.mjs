// The status page against a running landql (LANDQL_URL): live figures from the node's own
// /metrics — throughput, latency p50/p95/p99, error rate, health, replica lag — after two
// scrapes, and its honest states before the second scrape and when /metrics fails.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { BASE, ask, assertAccessible, assertClean, launch, open, screenshots } from "./browser.mjs";

let browser;
before(async () => {
  browser = await launch();
});
after(async () => browser?.close());

/** GraphQL traffic while `f` runs, so that the interval between two scrapes has requests. */
async function withTraffic(f) {
  let on = true;
  const traffic = (async () => {
    while (on) {
      await ask(`query StatusPageTest { _meta { changeLogSeq } }`);
      await new Promise((r) => setTimeout(r, 150));
    }
  })();
  try {
    return await f();
  } finally {
    on = false;
    await traffic;
  }
}

test("shows throughput, latency, error rate, health and lag after two scrapes", async () => {
  await withTraffic(async () => {
    const { page, context, problems } = await open(browser, "/status");
    assert.match(await page.locator("h1").innerText(), /Service status/);
    await page.locator("#status-note", { hasText: /Updated/ }).waitFor({ timeout: 15000 });
    const figure = async (id) => (await page.locator(`#tile-${id} .figure`).innerText()).trim();
    assert.match(await figure("throughput"), /^\d+(\.\d+)?$/);
    assert.ok(Number(await figure("throughput")) > 0, "requests were made between the scrapes");
    assert.match(await page.locator("#latency-figures").innerText(), /^p50 [\d.]+ m?s · p95 [\d.]+ m?s · p99 [\d.]+ m?s$/);
    assert.match(await figure("errors"), /^\d+\.\d\d %$/);
    assert.equal(await figure("health"), "Ready");
    assert.match(await page.locator("#tile-health").innerText(), /Database: reachable/);
    assert.match(await figure("lag"), /^[\d.]+ s$/);
    assert.match(await page.locator("#lag-blocks").innerText(), /^(Up to date with the chain|1 block behind the chain|\d+ blocks behind the chain)$/);
    // Charts are drawn once there are points.
    assert.ok((await page.locator("#tile-throughput svg.chart path").count()) >= 1);
    // Labels follow the language picker.
    await page.selectOption("#lang", "te");
    assert.equal(await page.locator("#tile-health h2").innerText(), "ఆరోగ్యం");
    await page.selectOption("#lang", "en");
    await assertAccessible(page, "status");
    assertClean(problems);
    await context.close();
  });
});

test("says it waits for a second scrape while it has one", async () => {
  const { page, context, problems } = await open(browser, null);
  let n = 0;
  // The second and later scrapes never answer.
  await page.route("**/metrics", (route) => (n++ === 0 ? route.continue() : new Promise(() => {})));
  await page.goto(`${BASE}/status`);
  await page.locator("#status-note", { hasText: "Waiting for a second scrape" }).waitFor();
  // Gauges are known from one scrape; rates are not.
  await page.locator("#tile-health .figure").waitFor();
  assert.equal((await page.locator("#tile-throughput .figure").innerText()).trim(), "—");
  assertClean(problems);
  await context.close();
});

test("says the metrics are unavailable when /metrics fails", async () => {
  const { page, context, problems } = await open(browser, null);
  await page.route("**/metrics", (route) => route.fulfill({ status: 503, body: "down" }));
  await page.goto(`${BASE}/status`);
  await page.locator("#status-note", { hasText: "Metrics unavailable: HTTP 503" }).waitFor();
  // The browser logs the failed fetch itself; nothing else may go wrong.
  assertClean(problems, { allow: [/status of 503/] });
  await context.close();
});

test("screenshots at phone and desktop widths", async () => {
  await withTraffic(() =>
    screenshots(browser, "/status", "status", (p) => p.locator("#status-note", { hasText: /Updated/ }).waitFor({ timeout: 15000 })),
  );
});
