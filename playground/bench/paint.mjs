// The paint measurement of `landql bench pages`: type each query of QUERIES (a JSON file of
// strings) into /search of LANDQL_URL one key at a time, and time the last key to the frame
// that shows that query's results. Prints one JSON line:
// { paint_ms: [...], api_ms: [...], failures: [...], key_delay_ms, loaded: {page: {files, bytes}} }.
// `loaded` is what each page really fetched once it settled (network idle): every resource,
// compressed as sent (encodedBodySize), including what it loads after the HTML (GraphiQL's
// editor and workers), but not what waits for a user action.
//
// "Shown" is read from the page itself: the results list carries the text its results answer
// (`#results[data-q]`) and `aria-busy="false"` once they are in. The paint is the first
// moment after the frame that drew them (a requestAnimationFrame callback, then a message
// posted from it, which runs after that frame is painted). The baseline is the very request
// the page sent for the query, replayed by Node with fetch: what the page adds beyond it is
// the debounce, rendering and the paint.
import { readFileSync } from "node:fs";
import { BASE, launch } from "../e2e/browser.mjs";

const KEY_DELAY_MS = 120;
const queries = JSON.parse(readFileSync(process.env.QUERIES, "utf8"));

const browser = await launch();
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
await page.addInitScript(() => {
  // Every key's time, and when the results for a text were first painted.
  window.__lastKey = 0;
  window.__painted = {};
  document.addEventListener("keydown", () => (window.__lastKey = performance.now()), true);
  const watch = () => {
    const list = document.getElementById("results");
    if (!list) return void setTimeout(watch, 10);
    new MutationObserver(() => {
      const q = list.dataset.q;
      if (!q || list.getAttribute("aria-busy") !== "false" || q in window.__painted) return;
      requestAnimationFrame(() => {
        const ch = new MessageChannel();
        ch.port1.onmessage = () => {
          if (!(q in window.__painted)) window.__painted[q] = performance.now();
        };
        ch.port2.postMessage(0);
      });
    }).observe(list, { attributes: true, attributeFilter: ["data-q", "aria-busy"] });
  };
  watch();
});
const sent = new Map();
page.on("request", (req) => {
  if (req.method() === "POST" && req.url().endsWith("/graphql")) {
    const body = req.postData();
    try {
      const text = JSON.parse(body).variables?.text;
      if (typeof text === "string") sent.set(text.trim(), body);
    } catch {
      // not a search
    }
  }
});
await page.goto(`${BASE}/search`);
await page.waitForSelector("#q");

const paint_ms = [];
const api_ms = [];
const failures = [];
// One warm-up query first: the first search after start reads the index from disk.
for (const [i, q] of [queries[0], ...queries].entries()) {
  await page.fill("#q", "");
  await page.evaluate(() => (window.__painted = {}));
  await page.focus("#q");
  await page.keyboard.type(q, { delay: KEY_DELAY_MS });
  try {
    await page.waitForFunction((q) => q.trim() in window.__painted, q, { timeout: 10_000 });
  } catch {
    failures.push(q);
    continue;
  }
  const ms = await page.evaluate((q) => window.__painted[q.trim()] - window.__lastKey, q);
  if (i === 0) continue;
  paint_ms.push(ms);
  const body = sent.get(q.trim());
  if (body) {
    const t0 = performance.now();
    const res = await fetch(`${BASE}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body });
    await res.json();
    api_ms.push(performance.now() - t0);
  }
}
const loaded = {};
for (const path of ["/", "/search", "/verify", "/graphiql"]) {
  const p = await context.newPage();
  await p.goto(`${BASE}${path}`, { waitUntil: "networkidle" });
  await p.waitForTimeout(1000);
  loaded[path] = await p.evaluate(() => {
    const entries = [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")];
    const assets = entries.filter((e) => !e.name.includes("/graphql"));
    return { files: assets.length, bytes: assets.reduce((n, e) => n + (e.encodedBodySize || 0), 0) };
  });
  await p.close();
}
await browser.close();
console.log(JSON.stringify({ paint_ms, api_ms, failures, key_delay_ms: KEY_DELAY_MS, loaded }));
