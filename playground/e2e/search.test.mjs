// The citizen search page against a running landql (LANDQL_URL): any script and spelling,
// facets with right counts, survey numbers, ID jumps, keyboard-only use, URL state, honest
// empty and failed states, accessibility, and no overflow on a 360-px phone.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { BASE, OUT, TOKEN, assertAccessible, assertClean, gql, launch, open, screenshots, ask } from "./browser.mjs";

let browser;
/** A record with an owner's name in Telugu, found by its Telugu name and by a Latin variant. */
let fx;


const SEARCH = `query ($text: String!, $filter: PropertyFilter) { search(text: $text, filter: $filter, first: 20) {
  total hits { property { id surveyNo verificationStatus location { village mandal district }
  owners { owner { name } } } } } }`;

/** Telugu word → its Latin spelling, from the names the demo data is generated from. */
function teluguToLatin() {
  const tsv = readFileSync(new URL("../../devnet/data/names.tsv", import.meta.url), "utf8");
  const map = new Map();
  for (const line of tsv.split("\n").slice(1)) {
    const [, latin, telugu] = line.split("\t");
    if (latin && telugu) map.set(telugu, latin);
  }
  return map;
}

/** Another common Latin spelling of a name word (Lakshmi → Laxmi, Reddy → Reddi, …). */
function variant(word) {
  const w = word.toLowerCase();
  for (const [re, to] of [[/ksh/, "x"], [/ee/, "i"], [/y$/, "i"], [/sh/, "s"], [/v/, "w"], [/i$/, "ee"], [/u$/, "oo"]]) {
    if (re.test(w)) return w.replace(re, to);
  }
  return w;
}

const ids = (r) => r.search.hits.map((x) => x.property.id);

before(async () => {
  browser = await launch();
  // Find a record whose owner's name is written in Telugu with words we can transliterate,
  // and which both its Telugu name and a Latin variant (with its village) put on page one.
  const te = teluguToLatin();
  for (const probe of ["రెడ్డి", "లక్ష్మి", "శ్రీనివాస్", "వెంకట", "రావు"]) {
    const r = await ask(SEARCH, { text: probe });
    for (const hit of r.search.hits) {
      const p = hit.property;
      const name = p.owners[0].owner.name;
      const words = name.split(/\s+/);
      if (words.length < 2 || !words.every((w) => te.has(w))) continue;
      const latin = words.map((w) => variant(te.get(w))).join(" ");
      const teQuery = `${name} ${p.location.village}`;
      const laQuery = `${latin} ${p.location.village}`;
      const [a, b] = [await ask(SEARCH, { text: teQuery }), await ask(SEARCH, { text: laQuery })];
      if (ids(a).includes(p.id) && ids(b).includes(p.id)) {
        fx = { id: p.id, name, latin, teQuery, laQuery, survey: p.surveyNo, village: p.location.village };
        break;
      }
    }
    if (fx) break;
  }
  assert.ok(fx, "no record with a Telugu owner name found by both spellings");
});

after(async () => browser?.close());

/** Type into the box as a person would, and wait for the answer to that text. */
async function type(page, text) {
  const q = page.locator("#q");
  await q.fill("");
  await q.pressSequentially(text, { delay: 20 });
  await waitSettled(page);
}

/** No request in flight, and the results shown are the answer to the text in the box. */
async function waitSettled(page) {
  await page.waitForFunction(() => {
    const r = document.querySelector("#results");
    const q = document.querySelector("#q");
    return r && q && r.getAttribute("aria-busy") === "false" && document.querySelector(".spinner")?.hidden && r.dataset.q === q.value.trim();
  });
}

test("a Telugu name and its Latin spelling variant find the same record", async () => {
  const { page, context, problems } = await open(browser, "/search");
  await type(page, fx.teQuery);
  await page.locator(`a.hit[data-id="${fx.id}"]`).waitFor();
  // The Telugu words are marked in the owner's name, and the URL holds the text.
  const marks = await page.locator(`a.hit[data-id="${fx.id}"] .hit-owners mark`).allTextContents();
  // Ranges count characters (Unicode scalar values): each whole Telugu word is marked, no
  // more and no less.
  assert.deepEqual(marks.map((m) => m.replace(/\s*\(.*\)$/, "")), fx.name.split(/\s+/), `marks in ${fx.name}`);
  assert.equal(new URL(page.url()).searchParams.get("q"), fx.teQuery);

  await type(page, fx.laQuery);
  const hit = page.locator(`a.hit[data-id="${fx.id}"]`);
  await hit.waitFor();
  // Latin letters meeting a Telugu record: marked as a match across scripts or spellings,
  // and said so in words (title and screen-reader text), not by colour alone.
  const kinds = await hit.locator(".hit-owners mark").evaluateAll((ms) => ms.map((m) => [m.className, m.title]));
  assert.ok(kinds.length > 0, "the variant's words are highlighted in the Telugu name");
  assert.ok(kinds.every(([c, title]) => /^m-/.test(c) && title), JSON.stringify(kinds));
  assert.ok(kinds.some(([c]) => c !== "m-exact"), `a Latin query cannot match Telugu letters exactly: ${JSON.stringify([fx, kinds])}`);
  assert.match(await page.locator("#status").innerText(), /\d+ records?/);
  assertClean(problems);
  await context.close();
});

test("a facet narrows the results and its count is the new total; chips and Back undo it", async () => {
  const { page, context, problems } = await open(browser, "/search?q=reddy");
  await waitSettled(page);
  const totalOf = async () => Number((await page.locator("#status strong").innerText()).replace(/\D/g, ""));
  const before = await totalOf();

  // State → district: each click's count becomes the total, and the next level appears.
  for (const facet of ["state", "district"]) {
    const btn = page.locator(`button.facet-v[data-facet="${facet}"]`).first();
    const label = await btn.getAttribute("aria-label");
    const count = Number((await btn.locator(".count").innerText()).replace(/\D/g, ""));
    await btn.click();
    await waitSettled(page);
    assert.equal(await totalOf(), count, `${label}: facet count = new total`);
    assert.ok(count <= before, "the facet narrowed the results");
    await page.locator(`button.chip[data-chip="${facet}"]`).waitFor();
  }
  const url = new URL(page.url());
  assert.ok(url.searchParams.get("state") && url.searchParams.get("district"), `filters in the URL: ${url.search}`);
  await page.locator('button.facet-v[data-facet="mandal"]').first().waitFor();

  // Land type: toggled on, the total is its count and every hit has that type.
  const lt = page.locator('button.facet-v[data-facet="landType"]').first();
  const ltCount = Number((await lt.locator(".count").innerText()).replace(/\D/g, ""));
  await lt.click();
  await waitSettled(page);
  assert.equal(await totalOf(), ltCount);
  assert.equal(await lt.getAttribute("aria-pressed"), "true");

  // Back undoes the last filter; the chip removes one; the page reads the URL again.
  await page.goBack();
  await waitSettled(page);
  assert.equal(await page.locator('button.chip[data-chip="landType"]').count(), 0);
  await page.locator('button.chip[data-chip="district"]').click();
  await waitSettled(page);
  assert.equal(new URL(page.url()).searchParams.get("district"), null);
  assert.equal(await page.locator('button.chip[data-chip="state"]').count(), 1);
  assertClean(problems);
  await context.close();
});

test("a survey number with its village finds the parcel", async () => {
  const { page, context, problems } = await open(browser, "/search");
  await type(page, `${fx.survey} ${fx.village}`);
  const hit = page.locator(`a.hit[data-id="${fx.id}"]`);
  await hit.waitFor();
  assert.equal((await hit.locator(".survey mark").innerText()).replace(/\s*\(.*\)$/, ""), fx.survey);
  assertClean(problems);
  await context.close();
});

test("an ID typed in another form, then Enter, opens its property page", async () => {
  const { page, context, problems } = await open(browser, "/search");
  // The encoded form in lower case: LRI-IND-AP-2019-02-00027 → lri-ind-ap-2019-0200027.
  const [, , st, year, shard, seq] = fx.id.split("-");
  const typed = `lri-ind-${st.toLowerCase()}-${year}-${shard}${seq}`;
  await page.locator("#q").fill(typed);
  await page.locator("#id-note").filter({ hasText: /property ID/ }).waitFor();
  await page.locator("#q").press("Enter");
  await page.waitForURL(`**/property/${fx.id}`);
  await page.locator("h1", { hasText: fx.id }).waitFor();
  assertClean(problems);
  await context.close();
});

test("keyboard only: / focuses the box, arrows move through results, Enter opens one", async () => {
  const { page, context, problems } = await open(browser, "/search");
  await page.locator("h1").click(); // focus away from the box
  await page.keyboard.press("/");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "q");
  await page.keyboard.type("lakshmi", { delay: 20 });
  await waitSettled(page);
  await page.locator("a.hit").nth(1).waitFor();
  await page.keyboard.press("ArrowDown");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "hit-0");
  await page.keyboard.press("ArrowDown");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "hit-1");
  await page.keyboard.press("ArrowUp");
  await page.keyboard.press("ArrowUp");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "q", "ArrowUp from the first result returns to the box");
  // Tab reaches the results too, after the box's button and the facets.
  for (let i = 0; i < 40 && !(await page.evaluate(() => document.activeElement?.classList.contains("hit"))); i++) await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "hit-0", "Tab reaches the first result");
  await page.keyboard.press("Escape");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "q", "Esc returns to the box");
  await page.keyboard.press("ArrowDown");
  const id = await page.evaluate(() => document.activeElement?.getAttribute("data-id"));
  await page.keyboard.press("Enter");
  await page.waitForURL(`**/property/${id}`);
  await page.locator("h1.prop-title", { hasText: id }).waitFor();
  assertClean(problems);
  await context.close();
});

test("no results: says so and suggests what to try", async () => {
  const { page, context, problems } = await open(browser, "/search");
  await type(page, "zqxvbk wqpfjh");
  await page.locator(".empty").waitFor();
  assert.match(await page.locator(".empty").innerText(), /No records match “zqxvbk wqpfjh”[\s\S]*fewer words[\s\S]*another spelling[\s\S]*village/);
  assert.match(await page.locator("#status").innerText(), /0 records/);
  assertClean(problems);
  await context.close();
});

test("a failed request says so, and Try again recovers", async () => {
  const { page, context, problems } = await open(browser, "/search");
  await page.route("**/graphql", (route) => route.abort());
  await page.locator("#q").pressSequentially("ravi", { delay: 20 });
  const alert = page.getByRole("alert");
  await alert.waitFor();
  assert.match(await alert.innerText(), /Search failed: The server could not be reached/);
  await page.unroute("**/graphql");
  await alert.getByRole("button").click();
  await page.locator("a.hit").first().waitFor();
  assert.equal(await page.getByRole("alert").count(), 0);
  // The aborted request is the one console error a browser logs for it.
  assertClean(problems, { allow: [/Failed to load resource/] });
  await context.close();
});

test("labels switch language; results load; further pages need narrowing or a token", async () => {
  const { page, context, problems } = await open(browser, "/search?q=reddy");
  await waitSettled(page);
  const shown = await page.locator("a.hit").count();
  // The page searches anonymously: past the first page of a search that names no village
  // or survey number, the API answers NARROW_OR_SIGN_IN (schema/src/list_depth.rs), and the
  // page says how to narrow, in the reader's language, in place of the button.
  await page.locator("button.more").click();
  const note = page.locator("p.narrow");
  await note.waitFor();
  assert.match(await note.innerText(), /narrow the results to a village .* or sign in/);
  assert.equal(await page.locator("button.more").isVisible(), false);
  assert.equal(await page.locator('div.alert[role="alert"]').count(), 0, "not shown as a failure");
  assert.equal(await page.locator("a.hit").count(), shown);
  await page.selectOption("#lang", "te");
  assert.equal(await page.locator("h1").innerText(), "భూమి రికార్డులు వెతకండి");
  assert.match(await page.locator("#status").innerText(), /రికార్డులు/);
  assert.match(await note.innerText(), /గ్రామాన్ని/);
  await page.selectOption("#lang", "en");
  assertClean(problems);
  await context.close();
});

test("past the daily allowance an anonymous reader is told so, in their language, and property pages still open", async () => {
  // A client of its own, so the other tests' allowance is not spent: tests/browser.rs runs
  // landql dev with --trusted-proxy 127.0.0.1, so X-Forwarded-For names the client.
  const headers = { "x-forwarded-for": "198.51.100.23" };
  const query = `{ ${Array.from({ length: 10 }, (_, i) => `p${i}: properties(first: 20) { nodes { id } }`).join(" ")} }`;
  let refused;
  for (let i = 0; i < 200 && !refused; i++) {
    const res = await fetch(`${BASE}/graphql`, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify({ query }) });
    const body = await res.json();
    if (res.status === 429) await new Promise((r) => setTimeout(r, 1000));
    else refused = body.errors?.find((e) => e.extensions?.code === "DAILY_LIST_LIMIT");
  }
  assert.ok(refused, "the address's allowance ran out");
  assert.ok(refused.extensions.retryAfter > 0, JSON.stringify(refused));
  const id = (await ask("{ properties(first: 1) { nodes { id } } }")).properties.nodes[0].id;

  const { page, context, problems } = await open(browser, "/search?q=reddy", { headers });
  const alert = page.getByRole("alert");
  await alert.waitFor();
  assert.match(await alert.innerText(), /Today's limit of search results .* has been reached .* property ID; sign in to search more/);
  assert.equal(await alert.getByRole("button").count(), 0, "asking again would not help: no retry button");
  assert.equal(await page.locator("a.hit").count(), 0);
  assert.equal(await page.locator("#status").innerText(), "", "no stale 'Searching…' beside the alert");
  await page.setViewportSize({ width: 360, height: 800 });
  await page.screenshot({ path: `${OUT}search-daily-limit-360.png`, fullPage: true });
  await page.selectOption("#lang", "hi");
  assert.match(await alert.innerText(), /आज के खोज परिणामों की सीमा/);
  await page.selectOption("#lang", "en");
  // What the message promises: a parcel's page opens by its ID from the same address.
  await page.goto(`${BASE}/property/${id}`);
  await page.locator("h1.prop-title", { hasText: id }).waitFor();
  assertClean(problems);
  await context.close();
});

test("accessible, clean, and fits a phone", async () => {
  const { page, context, problems } = await open(browser, "/search?q=laxmi%20reddy");
  await waitSettled(page);
  await page.locator('button.facet-v[data-facet="state"]').first().click();
  await waitSettled(page);
  await assertAccessible(page, "search with results and a filter");
  await page.emulateMedia({ colorScheme: "dark" });
  await assertAccessible(page, "search, dark");
  await page.emulateMedia({ colorScheme: "light" });
  await type(page, "zqxvbk");
  await assertAccessible(page, "search without results");
  assertClean(problems);
  await context.close();
  await screenshots(browser, "/search?q=laxmi%20reddy", "search", waitSettled);
  await screenshots(browser, "/search", "search-empty");
});
