// The paint measurement of `landql bench pages`: type each query of QUERIES (a JSON file of
// strings) into /search of LANDQL_URL one key at a time, and time the last key to the frame
// that shows that query's results. Prints one JSON line:
// { paint_ms, req_ms, api_ms, failures, key_delay_ms, loaded: {page: {files, bytes}} }.
// req_ms is the page's own request for the final text (the first time the server sees it),
// api_ms the same request replayed afterwards by Node (warm).
// `loaded` is what each page really fetched once it settled (network idle): every resource,
// compressed as sent (encodedBodySize), including what it loads after the HTML (GraphiQL's
// editor and workers), but not what waits for a user action.
//
// "Shown" is read from the page itself: the results list carries the text its results answer
// (`#results[data-q]`) and `aria-busy="false"` once they are in. The paint is the first
// moment after the frame that drew them (a requestAnimationFrame callback, then a message
// posted from it, which runs after that frame is painted). The baselines are the page's own
// request for the query, and the very same request replayed by Node with fetch: what the
// page adds beyond the first is the debounce, rendering and the paint.
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
  // `input`, not `keydown`: a character outside the keyboard's layout (Telugu, Kannada,
  // Devanagari) is typed as text input with no key event.
  document.addEventListener("input", () => (window.__lastKey = performance.now()), true);
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
/** The page's own request for a text: how long it took, send to last byte (ms). */
const took = new Map();
page.on("requestfinished", (req) => {
  try {
    const text = JSON.parse(req.postData() ?? "").variables?.text;
    if (typeof text === "string") took.set(text.trim(), req.timing().responseEnd);
  } catch {
    // not a search
  }
});
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
const req_ms = [];
/** [text, paint ms, its request's ms] per query, for the report's slowest. */
const per = [];
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
  if (took.has(q.trim())) req_ms.push(took.get(q.trim()));
  per.push([q, ms, took.get(q.trim()) ?? null]);
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
const slowest = per.sort((a, b) => b[1] - a[1]).slice(0, 5);
console.log(JSON.stringify({ paint_ms, req_ms, api_ms, failures, key_delay_ms: KEY_DELAY_MS, loaded, slowest }));
