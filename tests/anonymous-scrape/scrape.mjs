// An anonymous scraper, to measure how fast a caller with no token can list owner names:
// it pages `properties` as deep as the API lets it, as fast as the anonymous rate limit lets
// it (waiting out each 429's Retry-After), for at most SECONDS seconds, then prints what it
// got and what that rate means for a registry of RECORDS properties.
//
//   node scrape.mjs http://127.0.0.1:8080/graphql [SECONDS=30] [RECORDS=1000000]
//
// Plain Node (fetch); no packages. Sends traffic only to the URL given: run it against
// a server on this machine.
const [url, secondsArg = '30', recordsArg = '1000000'] = process.argv.slice(2);
if (!url) {
  console.error('usage: node scrape.mjs URL-of-the-graphql-endpoint [SECONDS] [RECORDS]');
  process.exit(2);
}
const seconds = Number(secondsArg);
const records = Number(recordsArg);
const query = `query Page($after: String) {
  properties(after: $after) {
    nodes { id owners { owner { name } } }
    pageInfo { endCursor hasNextPage }
  }
}`;

const started = Date.now();
const deadline = started + seconds * 1000;
let after = null;
let pages = 0;
let properties = 0;
let names = 0;
const distinct = new Set();
let refused = 0;
let stoppedBy = 'time';
while (Date.now() < deadline) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query, variables: { after } }),
  });
  if (res.status === 429) {
    refused += 1;
    const wait = Number(res.headers.get('retry-after') ?? '1');
    await new Promise((r) => setTimeout(r, Math.max(wait, 0.05) * 1000));
    continue;
  }
  const body = await res.json();
  if (body.errors || !body.data) {
    stoppedBy = `an error: ${JSON.stringify(body.errors ?? body).slice(0, 300)}`;
    break;
  }
  const page = body.data.properties;
  pages += 1;
  for (const node of page.nodes) {
    properties += 1;
    for (const o of node.owners) {
      names += 1;
      distinct.add(o.owner.name);
    }
  }
  if (!page.pageInfo.hasNextPage) {
    stoppedBy = 'the end of the list';
    break;
  }
  after = page.pageInfo.endCursor;
}
const elapsed = (Date.now() - started) / 1000;
const perSecond = properties / elapsed;
console.log(
  JSON.stringify(
    {
      elapsed_s: Number(elapsed.toFixed(1)),
      stopped_by: stoppedBy,
      pages,
      properties,
      owner_names: names,
      distinct_names: distinct.size,
      answers_429: refused,
      properties_per_s: Number(perSecond.toFixed(1)),
      names_per_property: Number((names / Math.max(properties, 1)).toFixed(2)),
      // Only a run that the clock or the list's end stopped says how long the whole takes.
      [`minutes_for_${records}_properties`]:
        stoppedBy.startsWith('an error') || perSecond === 0 ? null : Number((records / perSecond / 60).toFixed(1)),
    },
    null,
    2,
  ),
);
