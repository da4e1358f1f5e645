// `/status`: the dashboard's top row for people without Grafana — throughput, latency
// p50/p95/p99, error rate, health and the replica's lag — as live charts, from this API
// node's own `/metrics` (same origin), read every few seconds. Rates and quantiles are over
// the interval between two scrapes (src/status/metrics.js), so the first scrape shows the
// gauges only and says it is waiting for a second one. Series: deploy/METRICS.md.
import { h, replace } from "../shared/dom";
import { applyStatic, onLangChange, strings, t } from "../shared/i18n";
import { mountLayout } from "../shared/layout";
import { max, parseExposition, quantile, rate, sum, type Scrape } from "./metrics.js";
import "./status.css";

strings({
  en: {
    "status.title": "Service status",
    "status.lede":
      "Live figures of this API node, read from its own /metrics every few seconds: the same numbers an operator's dashboard shows.",
    "status.throughput": "Requests per second",
    "status.latency": "Latency",
    "status.errors": "Error rate",
    "status.health": "Health",
    "status.lag": "Replica lag",
    "status.waiting": "Waiting for a second scrape…",
    "status.loading": "Reading /metrics…",
    "status.unavailable": "Metrics unavailable: {msg}",
    "status.updated": "Updated {time}, every {s} s",
    "status.noRequests": "no requests in the interval",
    "status.ready": "Ready",
    "status.notReady": "Not ready",
    "status.database": "Database",
    "status.ledger": "Ledger",
    "status.up": "reachable",
    "status.down": "unreachable",
    "status.unknown": "not reported",
    "status.current": "Up to date with the chain",
    "status.behind1": "1 block behind the chain",
    "status.behind": "{n} blocks behind the chain",
    "status.errorsOf": "5xx and internal errors, of all responses",
    "status.chart": "{what}: the last {n} readings",
    "status.peak": "peak {v}",
  },
  te: {
    "status.title": "సేవ స్థితి",
    "status.lede": "ఈ API నోడ్ యొక్క ప్రత్యక్ష గణాంకాలు, కొన్ని సెకన్లకు ఒకసారి దాని /metrics నుండి చదివినవి: ఆపరేటర్ డ్యాష్‌బోర్డ్ చూపే అవే సంఖ్యలు.",
    "status.throughput": "సెకనుకు అభ్యర్థనలు",
    "status.latency": "ప్రతిస్పందన సమయం",
    "status.errors": "లోపాల రేటు",
    "status.health": "ఆరోగ్యం",
    "status.lag": "ప్రతి వెనుకబాటు",
    "status.waiting": "రెండవ రీడింగ్ కోసం వేచి ఉంది…",
    "status.loading": "/metrics చదువుతోంది…",
    "status.unavailable": "గణాంకాలు అందుబాటులో లేవు: {msg}",
    "status.updated": "{time}కి నవీకరించబడింది, ప్రతి {s} సెకన్లకు",
    "status.noRequests": "ఈ వ్యవధిలో అభ్యర్థనలు లేవు",
    "status.ready": "సిద్ధంగా ఉంది",
    "status.notReady": "సిద్ధంగా లేదు",
    "status.database": "డేటాబేస్",
    "status.ledger": "లెడ్జర్",
    "status.up": "అందుబాటులో ఉంది",
    "status.down": "అందుబాటులో లేదు",
    "status.unknown": "నివేదించబడలేదు",
    "status.current": "చైన్‌తో తాజాగా ఉంది",
    "status.behind1": "చైన్ కంటే 1 బ్లాక్ వెనుక",
    "status.behind": "చైన్ కంటే {n} బ్లాక్‌లు వెనుక",
    "status.errorsOf": "అన్ని ప్రతిస్పందనలలో 5xx మరియు అంతర్గత లోపాలు",
    "status.chart": "{what}: చివరి {n} రీడింగ్‌లు",
    "status.peak": "గరిష్ఠం {v}",
  },
  kn: {
    "status.title": "ಸೇವೆಯ ಸ್ಥಿತಿ",
    "status.lede": "ಈ API ನೋಡ್‌ನ ನೇರ ಅಂಕಿಅಂಶಗಳು, ಕೆಲವು ಸೆಕೆಂಡುಗಳಿಗೊಮ್ಮೆ ಅದರ /metrics ನಿಂದ ಓದಿದವು: ನಿರ್ವಾಹಕರ ಡ್ಯಾಶ್‌ಬೋರ್ಡ್ ತೋರಿಸುವ ಅದೇ ಸಂಖ್ಯೆಗಳು.",
    "status.throughput": "ಸೆಕೆಂಡಿಗೆ ವಿನಂತಿಗಳು",
    "status.latency": "ಪ್ರತಿಕ್ರಿಯೆ ಸಮಯ",
    "status.errors": "ದೋಷ ದರ",
    "status.health": "ಆರೋಗ್ಯ",
    "status.lag": "ಪ್ರತಿಯ ಹಿನ್ನಡೆ",
    "status.waiting": "ಎರಡನೇ ಓದುವಿಕೆಗಾಗಿ ಕಾಯಲಾಗುತ್ತಿದೆ…",
    "status.loading": "/metrics ಓದಲಾಗುತ್ತಿದೆ…",
    "status.unavailable": "ಅಂಕಿಅಂಶಗಳು ಲಭ್ಯವಿಲ್ಲ: {msg}",
    "status.updated": "{time}ಕ್ಕೆ ನವೀಕರಿಸಲಾಗಿದೆ, ಪ್ರತಿ {s} ಸೆಕೆಂಡಿಗೆ",
    "status.noRequests": "ಈ ಅವಧಿಯಲ್ಲಿ ವಿನಂತಿಗಳಿಲ್ಲ",
    "status.ready": "ಸಿದ್ಧವಾಗಿದೆ",
    "status.notReady": "ಸಿದ್ಧವಾಗಿಲ್ಲ",
    "status.database": "ಡೇಟಾಬೇಸ್",
    "status.ledger": "ಲೆಡ್ಜರ್",
    "status.up": "ಸಂಪರ್ಕದಲ್ಲಿದೆ",
    "status.down": "ಸಂಪರ್ಕವಿಲ್ಲ",
    "status.unknown": "ವರದಿಯಾಗಿಲ್ಲ",
    "status.current": "ಚೈನ್‌ನೊಂದಿಗೆ ನವೀಕೃತವಾಗಿದೆ",
    "status.behind1": "ಚೈನ್‌ಗಿಂತ 1 ಬ್ಲಾಕ್ ಹಿಂದೆ",
    "status.behind": "ಚೈನ್‌ಗಿಂತ {n} ಬ್ಲಾಕ್‌ಗಳು ಹಿಂದೆ",
    "status.errorsOf": "ಎಲ್ಲಾ ಪ್ರತಿಕ್ರಿಯೆಗಳಲ್ಲಿ 5xx ಮತ್ತು ಆಂತರಿಕ ದೋಷಗಳು",
    "status.chart": "{what}: ಕೊನೆಯ {n} ಓದುವಿಕೆಗಳು",
    "status.peak": "ಗರಿಷ್ಠ {v}",
  },
  hi: {
    "status.title": "सेवा की स्थिति",
    "status.lede": "इस API नोड के लाइव आँकड़े, हर कुछ सेकंड में इसके अपने /metrics से पढ़े गए: वही संख्याएँ जो ऑपरेटर का डैशबोर्ड दिखाता है।",
    "status.throughput": "प्रति सेकंड अनुरोध",
    "status.latency": "प्रतिक्रिया समय",
    "status.errors": "त्रुटि दर",
    "status.health": "स्वास्थ्य",
    "status.lag": "प्रति का पिछड़ना",
    "status.waiting": "दूसरी रीडिंग की प्रतीक्षा…",
    "status.loading": "/metrics पढ़ रहे हैं…",
    "status.unavailable": "आँकड़े उपलब्ध नहीं: {msg}",
    "status.updated": "{time} पर अद्यतन, हर {s} सेकंड",
    "status.noRequests": "इस अंतराल में कोई अनुरोध नहीं",
    "status.ready": "तैयार",
    "status.notReady": "तैयार नहीं",
    "status.database": "डेटाबेस",
    "status.ledger": "लेजर",
    "status.up": "उपलब्ध",
    "status.down": "अनुपलब्ध",
    "status.unknown": "सूचित नहीं",
    "status.current": "चेन के साथ अद्यतन",
    "status.behind1": "चेन से 1 ब्लॉक पीछे",
    "status.behind": "चेन से {n} ब्लॉक पीछे",
    "status.errorsOf": "सभी प्रतिक्रियाओं में 5xx और आंतरिक त्रुटियाँ",
    "status.chart": "{what}: पिछली {n} रीडिंग",
    "status.peak": "अधिकतम {v}",
  },
});

/** How often /metrics is read. */
const EVERY_MS = 3000;
/** Points kept per chart: five minutes. */
const KEEP = 100;

/** One point of the charts: the interval's figures (null = not known for it). */
interface Point {
  at: number;
  rps: number | null;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  errors: number | null;
  lag: number | null;
}

const REQUESTS = "landql_api_requests_total";
const DURATION = "landql_api_request_duration_seconds";
const HTTP = "landql_api_http_responses_total";

/** The figures between two scrapes (and the gauges of the later one). */
export function point(prev: Scrape, cur: Scrape): Point {
  const responses = rate(prev, cur, HTTP);
  const failed =
    (rate(prev, cur, HTTP, (l) => l.class === "5xx") ?? 0) +
    (rate(prev, cur, REQUESTS, (l) => l.outcome === "internal_errors") ?? 0);
  return {
    at: cur.at,
    rps: rate(prev, cur, REQUESTS),
    p50: quantile(0.5, prev, cur, DURATION),
    p95: quantile(0.95, prev, cur, DURATION),
    p99: quantile(0.99, prev, cur, DURATION),
    errors: responses ? failed / responses : responses === 0 ? 0 : null,
    lag: max(cur, "landql_api_lag_seconds"),
  };
}

export function mountStatus(): void {
  const main = mountLayout("status");
  const note = h("p", { class: "muted small", id: "status-note", role: "status" });
  const tiles = h("div", { class: "tiles", id: "tiles" });
  replace(main, h("h1", { "data-i18n": "status.title" }), h("p", { class: "lede", "data-i18n": "status.lede" }), note, tiles);
  applyStatic(main);

  let prev: Scrape | null = null;
  let last: Scrape | null = null;
  let error: string | null = null;
  const points: Point[] = [];

  const render = () => {
    document.title = `${t("status.title")} — landql`;
    const time = last ? new Date(last.at).toLocaleTimeString() : "";
    replace(
      note,
      error
        ? h("span", { class: "error" }, t("status.unavailable", { msg: error }))
        : !last
          ? t("status.loading")
          : !prev
            ? t("status.waiting")
            : t("status.updated", { time, s: EVERY_MS / 1000 }),
    );
    if (!last) {
      replace(tiles);
      return;
    }
    const now = points[points.length - 1];
    const fmtMs = (s: number | null | undefined) => (s == null ? "—" : duration(s));
    const waiting = points.length === 0;
    const pending = h("p", { class: "muted small" }, t("status.waiting"));
    replace(
      tiles,
      tile("throughput", t("status.throughput"), waiting || now.rps == null ? "—" : count(now.rps), [
        waiting ? pending : chart(t("status.throughput"), [points.map((p) => p.rps)], "count"),
      ]),
      tile(
        "latency",
        t("status.latency"),
        waiting ? "—" : now.p95 == null ? "—" : `p95 ${fmtMs(now.p95)}`,
        waiting
          ? [pending]
          : [
              h(
                "p",
                { class: "small", id: "latency-figures" },
                now.p50 == null
                  ? t("status.noRequests")
                  : [
                      h("span", { class: "k0" }, `p50 ${fmtMs(now.p50)}`),
                      " · ",
                      h("span", { class: "k1" }, `p95 ${fmtMs(now.p95)}`),
                      " · ",
                      h("span", { class: "k2" }, `p99 ${fmtMs(now.p99)}`),
                    ],
              ),
              chart(t("status.latency"), [points.map((p) => p.p50), points.map((p) => p.p95), points.map((p) => p.p99)], "seconds"),
            ],
      ),
      tile("errors", t("status.errors"), waiting || now.errors == null ? "—" : percent(now.errors), [
        h("p", { class: "muted small" }, t("status.errorsOf")),
        waiting ? pending : chart(t("status.errors"), [points.map((p) => p.errors)], "ratio"),
      ]),
      health(last),
      tile("lag", t("status.lag"), lagFigure(last), [
        h("p", { class: "small", id: "lag-blocks" }, lagBlocks(last)),
        waiting ? null : chart(t("status.lag"), [points.map((p) => p.lag)], "seconds"),
      ]),
    );
  };
  onLangChange(render);
  render();

  const scrape = async () => {
    try {
      const res = await fetch("/metrics", { headers: { accept: "text/plain" }, cache: "no-store" });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const cur = { at: Date.now(), samples: parseExposition(await res.text()) };
      if (last) {
        prev = last;
        points.push(point(prev, cur));
        if (points.length > KEEP) points.shift();
      }
      last = cur;
      error = null;
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
    }
    render();
    window.setTimeout(scrape, EVERY_MS);
  };
  void scrape();
}

function tile(id: string, title: string, figure: string, body: (Node | null)[]): HTMLElement {
  return h("section", { class: "card tile", id: `tile-${id}`, "aria-label": title }, h("h2", {}, title), h("p", { class: "figure" }, figure), body);
}

/** Ready, database and ledger from the gauges: known from the first scrape. */
function health(s: Scrape): HTMLElement {
  const g = (name: string) => sum(s, name);
  const ready = g("landql_api_ready");
  const row = (label: string, v: number | null) =>
    h(
      "li",
      { class: v == null ? "muted" : v >= 1 ? "ok" : "error" },
      `${label}: `,
      v == null ? t("status.unknown") : v >= 1 ? t("status.up") : t("status.down"),
    );
  return tile("health", t("status.health"), ready == null ? t("status.unknown") : ready >= 1 ? t("status.ready") : t("status.notReady"), [
    h("ul", { class: "plain" }, row(t("status.database"), g("landql_api_database_up")), row(t("status.ledger"), g("landql_api_ledger_up"))),
  ]);
}

/** The replica's lag in seconds, the worst channel's. */
function lagFigure(s: Scrape): string {
  const secs = max(s, "landql_api_lag_seconds");
  return secs == null ? t("status.unknown") : `${secs.toFixed(secs < 10 ? 1 : 0)} s`;
}

function lagBlocks(s: Scrape): string {
  const blocks = max(s, "landql_api_lag_blocks");
  if (blocks == null) return "";
  return blocks === 0 ? t("status.current") : blocks === 1 ? t("status.behind1") : t("status.behind", { n: blocks });
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag: string, attrs: Record<string, string | number>): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/**
 * Lines over the readings so far (at most the last five minutes), scaled to their largest
 * value (a ratio to at least 1 %, so a quiet error rate stays a flat line), which is written
 * under the chart; gaps where a value is unknown.
 */
function chart(label: string, lines: (number | null)[][], kind: "count" | "seconds" | "ratio"): HTMLElement {
  const W = 300;
  const H = 80;
  const values = lines.flat().filter((v): v is number => v != null && Number.isFinite(v));
  const top = Math.max(kind === "ratio" ? 0.01 : 1e-9, ...values);
  const root = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    preserveAspectRatio: "none",
    class: "chart",
    role: "img",
    "aria-label": t("status.chart", { what: label, n: lines[0]?.length ?? 0 }),
  });
  root.appendChild(svg("line", { x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5, class: "axis" }));
  lines.forEach((line, n) => {
    const step = W / Math.max(line.length - 1, 1);
    let d = "";
    let run = 0;
    line.forEach((v, i) => {
      if (v == null || !Number.isFinite(v)) {
        run = 0;
        return;
      }
      const x = i * step;
      const y = H - 2 - (v / top) * (H - 6);
      // A point with no neighbour is drawn as a short dash, so the first reading shows.
      const lone = run === 0 && (i + 1 >= line.length || line[i + 1] == null || !Number.isFinite(line[i + 1]!));
      // The only reading so far spans the chart.
      const half = line.length === 1 ? W : 8;
      d += run === 0 ? `M${(lone ? Math.max(x - half, 0) : x).toFixed(1)} ${y.toFixed(1)} ` : "";
      d += run > 0 || lone ? `L${(lone ? Math.min(x + half, W) : x).toFixed(1)} ${y.toFixed(1)} ` : "";
      run++;
    });
    if (d) root.appendChild(svg("path", { d, class: `series s${n}` }));
  });
  // The highest reading, not the scale: "peak 1 %" over an error rate that stayed at 0 would
  // report errors that never happened.
  const highest = Math.max(0, ...values);
  const peak = kind === "ratio" ? percent(highest) : kind === "seconds" ? duration(highest) : count(highest);
  return h("div", { class: "chart-wrap" }, root, h("p", { class: "muted small peak" }, t("status.peak", { v: peak })));
}

function percent(r: number): string {
  return `${(r * 100).toFixed(2)} %`;
}

function duration(s: number): string {
  return s < 1 ? `${(s * 1000).toFixed(s < 0.01 ? 2 : 1)} ms` : `${s.toFixed(2)} s`;
}

function count(n: number): string {
  return n.toFixed(n < 10 ? 2 : 0);
}
