// The property page against a running landql (LANDQL_URL) and its devnet (LANDQL_LEDGER_URL):
// a record changed on the ledger after the page was built shows its new version (live, and
// after a reload) with honest provenance; unknown and malformed IDs are explained; owner
// listings say which role they need, and work with a citizen's token (LANDQL_TOKEN).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { BASE, TOKEN, assertAccessible, assertClean, changeOnLedger, gql, launch, open, screenshots, ask } from "./browser.mjs";

let browser;
/** A record pending verification (this test verifies it on the ledger), and a second record. */
let pending;


before(async () => {
  browser = await launch();
  const r = await ask(`{ properties(first: 20, filter: { verificationStatus: PENDING }, orderBy: UPDATED_AT_DESC) { nodes { id owners { owner { id } } } } }`);
  // A record with one owner keeps the owner test simple; any pending record will do otherwise.
  const nodes = r.properties.nodes;
  assert.ok(nodes.length > 0, "no pending record to change");
  pending = (nodes.find((n) => n.owners.length === 1) ?? nodes[0]).id;
});

after(async () => browser?.close());

/** The record and its full history have been drawn. */
async function loaded(page) {
  await page.locator(".timeline .tl-item").first().waitFor();
  await page.waitForFunction(() => !document.querySelector("#history-box [role=status]"));
}

test("a change made on the ledger after the page was built shows in the timeline and badge", async () => {
  const { page, context, problems } = await open(browser, `/property/${pending}`);
  await loaded(page);
  const before = await page.locator(".tl-item").count();
  assert.equal(await page.locator(".prop-actions .badge").innerText(), "Pending");
  // The provenance badge says where the answer came from, in words.
  assert.match(await page.locator("#prov-badge").innerText(), /Replica, up to date|Replica, \d+ blocks? behind|Read from the ledger|Stale/);

  await changeOnLedger(pending, "verified");
  // The replica applies it (asked directly, not through the page)…
  for (let i = 0; ; i++) {
    const d = await ask(`query ($id: ID!) { property(id: $id, consistency: REPLICA) { verificationStatus } }`, { id: pending });
    if (d.property.verificationStatus === "VERIFIED") break;
    assert.ok(i < 100, "the replica did not apply the change within 20 s");
    await new Promise((r) => setTimeout(r, 200));
  }
  // …and the open page follows by itself (propertyChanged subscription).
  await page.locator(".tl-item").nth(before).waitFor({ timeout: 20_000 });
  await page.locator(".change-note", { hasText: "Verification status changed" }).waitFor();
  assert.equal(await page.locator(".prop-actions .badge").innerText(), "Verified");

  // After a reload: the new version on top, marked current, with what it changed and where
  // on the chain; the badge and provenance agree with it.
  await page.reload();
  await loaded(page);
  assert.equal(await page.locator(".tl-item").count(), before + 1);
  const top = page.locator(".tl-item").first();
  assert.equal(await top.getAttribute("data-event"), "VerificationUpdated");
  assert.match(await top.innerText(), /Verification status changed[\s\S]*current[\s\S]*Status: Pending\s*→?\s*Verified[\s\S]*Block \d+/);
  assert.ok(await top.evaluate((el) => el.classList.contains("current")));
  assert.equal(await page.locator(".prop-actions .badge").innerText(), "Verified");
  const block = Number((await top.getAttribute("data-block")) ?? "-1");
  const details = await page.locator("#prov-details").innerText();
  assert.match(details, new RegExp(`Block\\s+${block.toLocaleString("en-IN")}`), details);
  assert.match(await page.locator("#prov-badge").innerText(), /Replica, up to date|Replica, \d+ blocks? behind|Read from the ledger/);
  // The verify button goes to the verifier with this ID.
  assert.equal(await page.getByRole("link", { name: "Verify on the chain" }).getAttribute("href"), `/verify?id=${encodeURIComponent(pending)}`);
  assertClean(problems);
  await context.close();
});

test("the timeline pages through every version", async () => {
  const data = await ask(`query ($id: ID!) { property(id: $id) { history { totalCount } } }`, { id: pending });
  const total = data.property.history.totalCount;
  assert.ok(total >= 2, "the changed record has at least two versions");
  // Ask for one version per page (rewriting the page's own requests), so that the page must
  // follow the cursors to the end.
  const { page, context, problems } = await open(browser, null);
  await page.route("**/graphql", async (route) => {
    const body = route.request().postDataJSON();
    if (body?.variables?.first === 20 && /Property|History/.test(body.query)) body.variables.first = 1;
    await route.continue({ postData: JSON.stringify(body) });
  });
  await page.goto(`${BASE}/property/${pending}`);
  await loaded(page);
  await page.waitForFunction((n) => document.querySelectorAll(".tl-item").length === n, total);
  const events = await page.locator(".tl-item").evaluateAll((els) => els.map((e) => e.getAttribute("data-event")));
  assert.equal(events.at(-1), "PropertyCreated", "the oldest version is last");
  assert.match(await page.locator("#history-box").innerText(), new RegExp(`${total} versions`));
  assertClean(problems);
  await context.close();
});

test("the record's fields: rupees, area, owners with shares, documents, location", async () => {
  const { page, context, problems } = await open(browser, `/property/${pending}`);
  await loaded(page);
  const d = await ask(`query ($id: ID!) { property(id: $id) { marketValue areaSqM owners { sharePct owner { name } } location { village } } }`, { id: pending });
  const text = await page.locator("main").innerText();
  // ₹ with Indian grouping: 4500000 → ₹45,00,000.
  const rupees = `₹${d.property.marketValue.toLocaleString("en-IN")}`;
  assert.ok(text.includes(rupees), `market value shown as ${rupees}`);
  assert.ok(text.includes(`${d.property.areaSqM.toLocaleString("en-IN")} sq m`));
  for (const o of d.property.owners) assert.ok(text.includes(o.owner.name) && text.includes(`${o.sharePct}%`));
  assert.ok(text.includes(d.property.location.village));
  await assertAccessible(page, "property");
  assertClean(problems);
  await context.close();
});

test("an unknown ID says there is no such property", async () => {
  const { page, context, problems } = await open(browser, "/property/LRI-IND-TS-2026-03-99999");
  await page.locator("h1", { hasText: "No property with this ID" }).waitFor();
  assert.match(await page.locator("main").innerText(), /LRI-IND-TS-2026-03-99999/);
  await assertAccessible(page, "unknown property");
  assertClean(problems);
  await context.close();
});

test("a malformed ID gets the API's explanation of what is wrong", async () => {
  const { page, context, problems } = await open(browser, `/property/${encodeURIComponent("LRI-IND-TS-20X6-03-00567")}`);
  await page.locator("h1", { hasText: "This is not a valid property ID" }).waitFor();
  assert.match(await page.getByRole("alert").innerText(), /year "20X6" must be four digits/);
  assertClean(problems);
  await context.close();
});

test("owner listings say which role they need; a citizen's token opens them", async () => {
  const { page, context, problems } = await open(browser, `/property/${pending}`);
  await loaded(page);
  const owner = page.locator(".owner-card").first();
  await owner.getByRole("button", { name: "Other properties of this owner" }).click();
  const role = owner.locator(".role-needed");
  await role.waitFor();
  assert.match(await role.innerText(), /Sign in as a citizen to list everything this owner holds/);
  // The token box is where the message points, and has focus.
  assert.equal(await page.evaluate(() => document.activeElement?.id), "token");
  if (TOKEN) {
    await page.locator("#token").fill(TOKEN);
    await page.getByRole("button", { name: "Use this token" }).click();
    await owner.locator(`.holdings a[href="/property/${pending}"]`).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem("landql.token")), TOKEN);
    await page.getByRole("button", { name: "Forget token" }).click();
    assert.equal(await page.evaluate(() => sessionStorage.getItem("landql.token")), null);
  }
  assertClean(problems);
  await context.close();
});

test("screenshots at phone and desktop widths", async () => {
  await screenshots(browser, `/property/${pending}`, "property", loaded);
  await screenshots(browser, "/property/LRI-IND-TS-2026-03-99999", "property-unknown", (p) => p.locator("h1", { hasText: "No property" }).waitFor());
});
