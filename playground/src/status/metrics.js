// @ts-check
// The /status page's arithmetic, with nothing of the page in it (Node imports this very file
// in test/status-metrics.test.mjs): reading the Prometheus / OpenMetrics text landql serves at
// /metrics, and what Prometheus itself would compute from two scrapes of it — a counter's
// rate and a histogram's quantile over the interval between them. Series names are those of
// deploy/METRICS.md.

/** @typedef {{ name: string, labels: Record<string, string>, value: number }} Sample */
/** @typedef {{ at: number, samples: Sample[] }} Scrape */
/** @typedef {(labels: Record<string, string>) => boolean} Filter */

const all = () => true;

/**
 * Parses an exposition in the text format (classic or OpenMetrics): one sample per line,
 * `name{label="value",…} value [timestamp]`; comments and `# EOF` are skipped. A line that
 * does not parse throws, naming the line, rather than being skipped: a page that silently
 * drops series would show wrong numbers.
 * @param {string} text
 * @returns {Sample[]}
 */
export function parseExposition(text) {
  /** @type {Sample[]} */
  const out = [];
  const lines = text.split("\n");
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n].trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    if (!m) throw new Error(`line ${n + 1}: no metric name: ${line}`);
    const name = m[1];
    let i = name.length;
    /** @type {Record<string, string>} */
    const labels = {};
    if (line[i] === "{") {
      i++;
      for (;;) {
        while (line[i] === " " || line[i] === ",") i++;
        if (line[i] === "}") {
          i++;
          break;
        }
        const l = /^([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"/.exec(line.slice(i));
        if (!l) throw new Error(`line ${n + 1}: a label that does not parse: ${line}`);
        i += l[0].length;
        let value = "";
        for (;;) {
          const c = line[i++];
          if (c === undefined) throw new Error(`line ${n + 1}: an unclosed label value: ${line}`);
          if (c === '"') break;
          if (c === "\\") {
            const e = line[i++];
            value += e === "n" ? "\n" : e;
          } else value += c;
        }
        labels[l[1]] = value;
      }
    }
    const rest = line.slice(i).trim().split(/\s+/);
    const value = parseValue(rest[0]);
    if (value === null) throw new Error(`line ${n + 1}: not a number: ${line}`);
    out.push({ name, labels, value });
  }
  return out;
}

/** @param {string | undefined} s */
function parseValue(s) {
  if (s === undefined || s === "") return null;
  if (s === "+Inf" || s === "Inf") return Infinity;
  if (s === "-Inf") return -Infinity;
  if (s === "NaN") return NaN;
  const v = Number(s);
  return Number.isNaN(v) ? null : v;
}

/**
 * The sum of the series `name` that pass `filter`; null when there is none.
 * @param {Scrape} scrape
 * @param {string} name
 * @param {Filter} [filter]
 */
export function sum(scrape, name, filter = all) {
  let total = null;
  for (const s of scrape.samples) if (s.name === name && filter(s.labels)) total = (total ?? 0) + s.value;
  return total;
}

/**
 * The largest of the series `name` that pass `filter`; null when there is none.
 * @param {Scrape} scrape
 * @param {string} name
 * @param {Filter} [filter]
 */
export function max(scrape, name, filter = all) {
  let m = null;
  for (const s of scrape.samples) if (s.name === name && filter(s.labels)) m = m === null ? s.value : Math.max(m, s.value);
  return m;
}

/** Identity of a series: its labels, sorted. @param {Record<string, string>} labels */
function key(labels) {
  return JSON.stringify(Object.keys(labels).sort().map((k) => [k, labels[k]]));
}

/**
 * How much the counters `name` (passing `filter`) grew between two scrapes: summed over the
 * series, each taken from zero when it is new or was reset (the process restarted), as
 * Prometheus's `increase` does. Null when `name` is in neither scrape.
 * @param {Scrape} prev
 * @param {Scrape} cur
 * @param {string} name
 * @param {Filter} [filter]
 */
export function increase(prev, cur, name, filter = all) {
  /** @type {Map<string, number>} */
  const before = new Map();
  for (const s of prev.samples) if (s.name === name && filter(s.labels)) before.set(key(s.labels), s.value);
  let total = null;
  for (const s of cur.samples) {
    if (s.name !== name || !filter(s.labels)) continue;
    const b = before.get(key(s.labels));
    total = (total ?? 0) + (b === undefined || s.value < b ? s.value : s.value - b);
  }
  if (total === null && before.size > 0) total = 0;
  return total;
}

/**
 * Per second, between two scrapes (see `increase`). Null when `name` is missing or the
 * scrapes are not in order.
 * @param {Scrape} prev
 * @param {Scrape} cur
 * @param {string} name
 * @param {Filter} [filter]
 */
export function rate(prev, cur, name, filter = all) {
  const seconds = (cur.at - prev.at) / 1000;
  const inc = increase(prev, cur, name, filter);
  if (inc === null || !(seconds > 0)) return null;
  return inc / seconds;
}

/**
 * The `q`-quantile (0…1) of what the histogram `name` (its `name_bucket` series, summed over
 * the other labels) observed between two scrapes, interpolated within the bucket as
 * Prometheus's `histogram_quantile` does: linearly, from 0 in the first bucket; the upper
 * bound of the last finite bucket when the rank falls in +Inf. Null when nothing was
 * observed in between (no requests: no latency) or there is no such histogram.
 * @param {number} q
 * @param {Scrape} prev
 * @param {Scrape} cur
 * @param {string} name
 * @param {Filter} [filter]
 */
export function quantile(q, prev, cur, name, filter = all) {
  /** @type {Map<number, number>} */
  const buckets = new Map();
  for (const le of new Set(cur.samples.filter((s) => s.name === `${name}_bucket`).map((s) => s.labels.le))) {
    const bound = parseValue(le);
    if (bound === null || Number.isNaN(bound)) continue;
    const inc = increase(prev, cur, `${name}_bucket`, (l) => l.le === le && filter(l));
    if (inc !== null) buckets.set(bound, (buckets.get(bound) ?? 0) + inc);
  }
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  if (bounds.length < 2 || bounds[bounds.length - 1] !== Infinity) return null;
  const total = /** @type {number} */ (buckets.get(Infinity));
  if (!(total > 0)) return null;
  const rank = q * total;
  let below = 0;
  let lower = 0;
  for (let i = 0; i < bounds.length; i++) {
    const upper = bounds[i];
    // Cumulative counts; a later bucket below an earlier one (scrapes racing observations)
    // is taken as equal.
    const count = Math.max(/** @type {number} */ (buckets.get(upper)), below);
    if (count >= rank) {
      if (upper === Infinity) return bounds[i - 1];
      if (i === 0 && upper <= 0) return upper;
      return lower + ((upper - lower) * (rank - below)) / (count - below || 1);
    }
    below = count;
    lower = upper;
  }
  return bounds[bounds.length - 2];
}
