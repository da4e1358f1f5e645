// Unit tests of the /status page's arithmetic (src/status/metrics.js): parsing the exposition
// landql serves, and rates and quantiles between two scrapes as Prometheus computes them.
import assert from "node:assert/strict";
import { test } from "node:test";
import { increase, max, parseExposition, quantile, rate, sum } from "../src/status/metrics.js";

const OM = `# HELP landql_api_requests GraphQL operations.
# TYPE landql_api_requests counter
landql_api_requests_total{operation="Property",type="query",outcome="ok"} 10
landql_api_requests_total{operation="anonymous",type="query",outcome="internal_errors"} 2
# HELP landql_api_ready 1 when ready.
# TYPE landql_api_ready gauge
landql_api_ready 1
landql_api_lag_seconds{channel="land-registry-primary"} 0.5
landql_api_lag_seconds{channel="land-registry-docs"} 3.25
odd_labels{a="quote \\" and backslash \\\\ and newline \\n",b=""} -Inf
with_timestamp 7 1700000000000
# EOF
`;

const scrape = (at, text) => ({ at, samples: parseExposition(text) });

test("parses OpenMetrics and classic samples, labels with escapes, special values", () => {
  const s = parseExposition(OM);
  assert.equal(s.length, 7);
  assert.deepEqual(s[0], {
    name: "landql_api_requests_total",
    labels: { operation: "Property", type: "query", outcome: "ok" },
    value: 10,
  });
  assert.deepEqual(s[5].labels, { a: 'quote " and backslash \\ and newline \n', b: "" });
  assert.equal(s[5].value, -Infinity);
  assert.equal(s[6].value, 7);
  assert.ok(Number.isNaN(parseExposition("x NaN")[0].value));
  assert.equal(parseExposition('x{le="+Inf"} +Inf')[0].value, Infinity);
});

test("refuses a line it cannot read, naming it", () => {
  assert.throws(() => parseExposition("ok 1\nbroken{a=1} 2"), /line 2: a label that does not parse/);
  assert.throws(() => parseExposition('x{a="open} 1'), /line 1: an unclosed label value/);
  assert.throws(() => parseExposition("x one"), /line 1: not a number/);
  assert.throws(() => parseExposition("{a=\"b\"} 1"), /line 1: no metric name/);
});

test("sum and max over the series of a name, filtered; null when there is none", () => {
  const s = scrape(0, OM);
  assert.equal(sum(s, "landql_api_requests_total"), 12);
  assert.equal(sum(s, "landql_api_requests_total", (l) => l.outcome === "internal_errors"), 2);
  assert.equal(max(s, "landql_api_lag_seconds"), 3.25);
  assert.equal(sum(s, "no_such_series"), null);
  assert.equal(max(s, "no_such_series"), null);
});

test("rates between two scrapes: per series, new series from zero, resets as restarts", () => {
  const a = scrape(1000, 'c{k="x"} 10\nc{k="y"} 100\n');
  const b = scrape(3000, 'c{k="x"} 16\nc{k="y"} 4\nc{k="z"} 2\n');
  // x grew by 6; y was reset (the process restarted) and counted 4 since; z is new: 2.
  assert.equal(increase(a, b, "c"), 12);
  assert.equal(rate(a, b, "c"), 6);
  assert.equal(rate(a, b, "c", (l) => l.k === "x"), 3);
  assert.equal(rate(a, b, "missing"), null);
  assert.equal(rate(b, a, "c"), null, "scrapes out of order");
  // A counter that vanished (its process gone) grew by nothing known: 0, not null.
  assert.equal(increase(a, scrape(2000, "other 1"), "c"), 0);
});

/** A histogram scrape: cumulative counts per upper bound. */
const hist = (at, counts) =>
  scrape(
    at,
    Object.entries(counts)
      .map(([le, n]) => `h_bucket{op="q",le="${le}"} ${n}`)
      .join("\n"),
  );

test("quantiles interpolate within the bucket, as histogram_quantile does", () => {
  const a = hist(0, { "0.1": 0, "0.5": 0, "1.0": 0, "+Inf": 0 });
  // In the interval: 50 at ≤ 0.1 s, 40 in (0.1, 0.5], 10 in (0.5, 1.0].
  const b = hist(5000, { "0.1": 50, "0.5": 90, "1.0": 100, "+Inf": 100 });
  assert.equal(quantile(0.5, a, b, "h"), 0.1);
  assert.ok(Math.abs(quantile(0.25, a, b, "h") - 0.05) < 1e-12, "from 0 in the first bucket");
  assert.ok(Math.abs(quantile(0.7, a, b, "h") - 0.3) < 1e-12);
  assert.ok(Math.abs(quantile(0.95, a, b, "h") - 0.75) < 1e-12);
  assert.equal(quantile(0.99, a, b, "h"), 0.95);
});

test("a rank in +Inf is the last finite bound; nothing observed is null", () => {
  const a = hist(0, { "0.5": 10, "1": 10, "+Inf": 10 });
  const b = hist(1000, { "0.5": 10, "1": 10, "+Inf": 20 });
  assert.equal(quantile(0.99, a, b, "h"), 1);
  assert.equal(quantile(0.5, b, b, "h"), null, "no observations between the scrapes");
  assert.equal(quantile(0.5, a, b, "nothing"), null);
});

test("quantiles sum the buckets of every series first", () => {
  const two = (at, x, y) =>
    scrape(
      at,
      [
        `h_bucket{op="a",le="1"} ${x}`,
        `h_bucket{op="a",le="+Inf"} ${x}`,
        `h_bucket{op="b",le="1"} 0`,
        `h_bucket{op="b",le="+Inf"} ${y}`,
      ].join("\n"),
    );
  // 10 fast (op a) and 10 slow (op b, above every finite bound): the median is at the 1 s bound.
  assert.equal(quantile(0.5, two(0, 0, 0), two(1000, 10, 10), "h"), 1);
  assert.equal(quantile(0.5, two(0, 0, 0), two(1000, 10, 10), "h", (l) => l.op === "a"), 0.5);
});
