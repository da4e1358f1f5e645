// An anonymous scraper, to measure how fast a caller with no token can list owner names,
// as fast as the anonymous rate limit lets it (waiting out each 429's Retry-After), for at
// most SECONDS seconds, then prints what it got and what that rate means for a registry of
// RECORDS properties. Two ways to walk the registry:
//
//   pages     page `properties` as deep as the API lets it (the plain way);
//   villages  ask `locations` for every state, district, mandal and village, and page each
//             village's `properties` (narrowed to one village, the way a person looks a
//             parcel up — which the first-page bound for anonymous callers allows).
//
//   node scrape.mjs http://127.0.0.1:8080/graphql [SECONDS=30] [RECORDS=1000000] [pages|villages]
//
// Plain Node (fetch); no packages. Sends traffic only to the URL given: run it against
// a server on this machine.
const [url, secondsArg = '30', recordsArg = '1000000', mode = 'pages'] = process.argv.slice(2);
if (!url || !['pages', 'villages'].includes(mode)) {
  console.error('usage: node scrape.mjs URL-of-the-graphql-endpoint [SECONDS] [RECORDS] [pages|villages]');
  process.exit(2);
}
const seconds = Number(secondsArg);
const records = Number(recordsArg);
const PAGE = `query Page($filter: PropertyFilter, $after: String) {
  properties(filter: $filter, after: $after) {
    nodes { id owners { owner { name } } }
    pageInfo { endCursor hasNextPage }
  }
}`;
const LOCATIONS = `query L($state: String, $district: String, $mandal: String) {
  locations(state: $state, district: $district, mandal: $mandal) { name }
}`;

const started = Date.now();
const deadline = started + seconds * 1000;
const tally = { requests: 0, pages: 0, properties: 0, names: 0, refused: 0 };
const distinct = new Set();
let stoppedBy = 'the end of the list';

/** Thrown to stop the walk: the clock ran out or the API answered an error. */
class Stop extends Error {}

/** One GraphQL request, waiting out 429s; its data, or a Stop. */
async function ask(query, variables) {
  for (;;) {
    if (Date.now() >= deadline) throw new Stop('time');
    tally.requests += 1;
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
      body: JSON.stringify({ query, variables }),
    });
    if (res.status === 429) {
      tally.refused += 1;
      const wait = Number(res.headers.get('retry-after') ?? '1');
      await new Promise((r) => setTimeout(r, Math.max(wait, 0.05) * 1000));
      continue;
    }
    const body = await res.json();
    if (body.errors || !body.data) throw new Stop(`an error: ${JSON.stringify(body.errors ?? body).slice(0, 400)}`);
    return body.data;
  }
}

/** Pages `properties` under `filter` to its end. */
async function pageAll(filter) {
  let after = null;
  for (;;) {
    const page = (await ask(PAGE, { filter, after })).properties;
    tally.pages += 1;
    for (const node of page.nodes) {
      tally.properties += 1;
      for (const o of node.owners) {
        tally.names += 1;
        distinct.add(o.owner.name);
      }
    }
    if (!page.pageInfo.hasNextPage) return;
    after = page.pageInfo.endCursor;
  }
}

/** Every village, state by state, paged as it is found. */
async function walkVillages() {
  const names = async (vars) => (await ask(LOCATIONS, vars)).locations.map((l) => l.name);
  for (const state of await names({})) {
    for (const district of await names({ state })) {
      for (const mandal of await names({ state, district })) {
        for (const village of await names({ state, district, mandal })) {
          await pageAll({ state, district, mandal, village });
        }
      }
    }
  }
}

try {
  await (mode === 'villages' ? walkVillages() : pageAll(null));
} catch (e) {
  if (!(e instanceof Stop)) throw e;
  stoppedBy = e.message;
}
const elapsed = (Date.now() - started) / 1000;
const perSecond = tally.properties / elapsed;
console.log(
  JSON.stringify(
    {
      mode,
      elapsed_s: Number(elapsed.toFixed(1)),
      stopped_by: stoppedBy,
      requests: tally.requests,
      pages: tally.pages,
      properties: tally.properties,
      owner_names: tally.names,
      distinct_names: distinct.size,
      answers_429: tally.refused,
      properties_per_s: Number(perSecond.toFixed(1)),
      names_per_property: Number((tally.names / Math.max(tally.properties, 1)).toFixed(2)),
      // Only a run that the clock or the list's end stopped says how long the whole takes.
      [`minutes_for_${records}_properties`]:
        stoppedBy.startsWith('an error') || perSecond === 0 ? null : Number((records / perSecond / 60).toFixed(1)),
    },
    null,
    2,
  ),
);
