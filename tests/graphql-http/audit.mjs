// The graphql-http conformance audit (GraphQL-over-HTTP) against a running landql API.
//
//   node audit.mjs http://127.0.0.1:8080/graphql
//
// It runs as an ordinary anonymous client of a server with its default settings: no token,
// and its requests spaced to stay under the anonymous rate limit (20 a second by default;
// AUDIT_RATE sets the pace), so that no answer is a 429 that the audit would misread.
//
// Prints every result (ok, notice, warn, error) with its id and, for a failure, the reason
// and the response's status, content type and body; exits 1 if any result is a warning or
// an error (notices are the spec's MAYs: printed, not failed), 2 on bad usage.
// tests/graphql_http.rs starts a real `landql serve` and runs this against it.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs URL-of-the-graphql-endpoint');
  process.exit(2);
}

const rate = Number(process.env.AUDIT_RATE ?? '10');
if (!(rate > 0)) {
  console.error(`AUDIT_RATE must be a positive number of requests a second, not ${process.env.AUDIT_RATE}`);
  process.exit(2);
}
let next = 0;
const paced = async (input, init) => {
  const now = Date.now();
  const at = Math.max(now, next);
  next = at + 1000 / rate;
  if (at > now) await new Promise((resolve) => setTimeout(resolve, at - now));
  return fetch(input, init);
};

const results = await auditServer({ url, fetchFn: paced });
const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
for (const result of results) {
  counts[result.status] += 1;
  console.log(`${result.status.padEnd(6)} ${result.id} ${result.name}`);
  if (result.status !== 'ok') {
    const res = result.response;
    let body = '';
    try {
      body = await res.text();
    } catch (e) {
      body = `(body unreadable: ${e})`;
    }
    console.log(`       reason: ${result.reason}`);
    console.log(
      `       response: ${res.status} ${res.headers.get('content-type') ?? '(no content-type)'} ${body.slice(0, 300)}`,
    );
  }
}
console.log(
  `graphql-http audit: ${counts.ok} ok, ${counts.notice} notice, ${counts.warn} warn, ${counts.error} error`,
);
process.exit(counts.warn + counts.error > 0 ? 1 : 0);
