// The landing page against a running landql (LANDQL_URL): what the site is, the way to the
// other pages, and the replica's freshness per ledger channel, kept live.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { assertAccessible, assertClean, gql, launch, open, screenshots } from "./browser.mjs";

let browser;
before(async () => {
  browser = await launch();
});
after(async () => browser?.close());

test("says what this is and links to search, verify and GraphiQL", async () => {
  const { page, context, problems } = await open(browser, "/");
  assert.match(await page.locator("h1").innerText(), /Land records/);
  assert.match(await page.locator("main").innerText(), /land registry kept on a permissioned ledger/);
  for (const [name, href] of [["Search your records", "/search"], ["Check a record against the chain", "/verify"], ["For developers: GraphiQL", "/graphiql"]])
    assert.equal(await page.getByRole("link", { name }).getAttribute("href"), href);
  await assertAccessible(page, "landing");
  assertClean(problems);
  await context.close();
});

test("shows each channel's freshness: indexed block, chain height, blocks behind; live", async () => {
  const { _meta } = await gql(`{ _meta { channels { channel indexedBlock chainHeight lagBlocks } } }`);
  assert.ok(_meta.channels.length > 0, "the server reports channels");
  const { page, context, problems } = await open(browser, "/");
  for (const c of _meta.channels) {
    const row = page.locator(`#freshness tr[data-channel="${c.channel}"]`);
    await row.waitFor();
    const cells = await row.locator("th, td").allInnerTexts();
    assert.equal(cells[0], c.channel);
    // The page may have seen a newer block than our query did; never an older one.
    assert.ok(Number(cells[1].replace(/\D/g, "")) >= c.indexedBlock, `${c.channel} indexed block ${cells[1]}`);
    assert.match(cells[3], /Up to date|\d+ blocks? behind|Chain height unknown/);
  }
  assert.match(await page.locator("#search-fresh").innerText(), /Search index: (up to date|[\d,]+ changes behind|not available)/);
  // Kept current by the progress subscription (or, failing that, by polling).
  await page.locator("#fresh-note", { hasText: /Live|Updated/ }).waitFor();
  // Labels follow the language picker.
  await page.selectOption("#lang", "hi");
  assert.equal(await page.locator("#freshness th").first().innerText(), "चैनल");
  await page.selectOption("#lang", "en");
  assertClean(problems);
  await context.close();
});

test("screenshots at phone and desktop widths", async () => {
  await screenshots(browser, "/", "landing", (p) => p.locator("#freshness table").waitFor());
});
