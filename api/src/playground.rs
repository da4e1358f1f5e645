//! `/`: a self-contained page until the real playground exists — example queries
//! filled with live data, the SDL, and a small form that runs a query (POST /graphql) or a
//! subscription (WebSocket, graphql-transport-ws) and shows the JSON. Everything is inline:
//! no CDN, no external assets, so it works on an offline machine, and a Content-Security-
//! Policy says so to the browser.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;

use crate::AppState;

/// Used in the examples when the replica holds no property yet.
const PLACEHOLDER_ID: &str = "LRI-IND-TS-2026-03-00567";

#[derive(Serialize)]
struct Example {
    title: &'static str,
    query: &'static str,
    variables: serde_json::Value,
}

/// A property that exists, for the examples: (id, state, district).
async fn live_property(state: &AppState) -> Option<(String, String, String)> {
    let resp = state
        .schema
        .execute("{ properties(first: 1) { edges { node { id location { state district } } } } }")
        .await;
    let data = resp.data.into_json().ok()?;
    let node = data.pointer("/properties/edges/0/node")?;
    Some((
        node.get("id")?.as_str()?.to_string(),
        node.pointer("/location/state")?.as_str()?.to_string(),
        node.pointer("/location/district")?.as_str()?.to_string(),
    ))
}

fn examples(id: &str, state: &str, district: &str) -> Vec<Example> {
    vec![
        Example {
            title: "A property by ID, with provenance",
            query: r#"query PropertyById($id: ID!) {
  property(id: $id) {
    id state year surveyNo khataNo areaSqM areaText landType marketValue
    verificationStatus createdAt updatedAt
    location { state district mandal village }
    owners { sharePct owner { id name fatherName } }
    documents { docType docHash linkedAt txId }
    provenance { source channel blockNumber txId recordHash indexedAt replicaLagBlocks stale }
  }
}"#,
            variables: serde_json::json!({ "id": id }),
        },
        Example {
            title: "Properties of a district, a page at a time",
            query: r#"query DistrictPage($state: String!, $district: String!, $after: String) {
  properties(filter: { state: $state, district: $district },
             orderBy: MARKET_VALUE_DESC, first: 10, after: $after) {
    totalCount
    edges {
      cursor
      node {
        id surveyNo marketValue
        location { mandal village }
        owners { sharePct owner { name } }
        documents { docType }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}"#,
            variables: serde_json::json!({ "state": state, "district": district }),
        },
        Example {
            title: "Citizen search: a name in Latin letters",
            query: SEARCH,
            variables: serde_json::json!({ "text": "Venkatesh" }),
        },
        Example {
            title: "Citizen search: the same name in Telugu script",
            query: SEARCH,
            variables: serde_json::json!({ "text": "వెంకటేష్" }),
        },
        Example {
            title: "Property counts by location (districts of a state)",
            query: r#"query Locations($state: String) {
  locations(state: $state) { name level properties }
}"#,
            variables: serde_json::json!({ "state": state }),
        },
        Example {
            title: "Verify a property against the ledger, with its proof",
            query: r#"query Verify($id: ID!) {
  verifyProperty(id: $id) {
    propertyId outcome replicaRecordHash ledgerRecordHash chainHeight checkedAt
    ledgerVersion { channel blockNumber txIndex txId }
    proof { blockNumber headerHash auditPath json }
  }
}"#,
            variables: serde_json::json!({ "id": id }),
        },
        Example {
            title: "Everything its owners hold (needs a token: citizen or above)",
            query: r#"query Holdings($id: ID!) {
  property(id: $id) {
    id
    owners {
      owner {
        id name
        properties(first: 20) { totalCount edges { node { id location { village } } } }
      }
    }
  }
}"#,
            variables: serde_json::json!({ "id": id }),
        },
        Example {
            title: "Sync errors (needs a registrar or admin token)",
            query: r#"{
  _meta {
    hasIndexingErrors
    syncErrors(first: 10) {
      edges { node { id channel blockNumber txIndex txId error createdAt } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"#,
            variables: serde_json::json!({}),
        },
        Example {
            title: "How fresh is the replica (_meta)",
            query: r#"{
  _meta {
    changeLogSeq searchIndexSeq hasIndexingErrors
    channels { channel indexedBlock chainHeight lagBlocks lagSeconds indexedAt }
  }
}"#,
            variables: serde_json::json!({}),
        },
        Example {
            title: "Subscription: the replica's progress (WebSocket)",
            query: r#"subscription Progress {
  progress {
    changeLogSeq searchIndexSeq
    channels { channel indexedBlock chainHeight lagBlocks }
  }
}"#,
            variables: serde_json::json!({}),
        },
        Example {
            title: "Subscription: changes to one property (WebSocket)",
            query: r#"subscription Watch($id: ID!) {
  propertyChanged(id: $id) {
    event blockNumber txId
    property { id verificationStatus owners { owner { name } } }
  }
}"#,
            variables: serde_json::json!({ "id": id }),
        },
    ]
}

const SEARCH: &str = r#"query Search($text: String!) {
  search(text: $text, first: 5) {
    total
    hits {
      score
      property { id location { district village } owners { owner { name } } }
      highlights { field text ranges }
    }
    facets { field values { value count } }
    pageInfo { hasNextPage endCursor }
  }
}"#;

/// `GET /`.
pub(crate) async fn page(State(state): State<AppState>) -> impl IntoResponse {
    let (id, st, district) = live_property(&state).await.unwrap_or_else(|| {
        (
            PLACEHOLDER_ID.to_string(),
            "TS".to_string(),
            "Hyderabad".to_string(),
        )
    });
    let examples = serde_json::to_string(&examples(&id, &st, &district))
        .unwrap_or_else(|_| "[]".into())
        // Inside <script>, "</script>" in a string would end the element.
        .replace('<', "\\u003c");
    let html = TEMPLATE
        .replace("{{EXAMPLES}}", &examples)
        .replace("{{SDL}}", &escape(&state.sdl));
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const TEMPLATE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>landql — GraphQL API</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1d232a; background: #f6f7f9; }
  header { background: #17324d; color: #fff; padding: .8rem 1.2rem; }
  header h1 { margin: 0; font-size: 1.2rem; }
  header p { margin: .2rem 0 0; opacity: .85; font-size: .9rem; }
  main { display: grid; grid-template-columns: 18rem 1fr; gap: 1rem; padding: 1rem 1.2rem; }
  nav button { display: block; width: 100%; text-align: left; margin: 0 0 .35rem; padding: .45rem .6rem;
    border: 1px solid #c9d1da; background: #fff; border-radius: 4px; cursor: pointer; font: inherit; }
  nav button:hover { background: #eaf1f8; }
  textarea, pre { font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; }
  textarea, #token { width: 100%; box-sizing: border-box; border: 1px solid #c9d1da; border-radius: 4px; padding: .5rem; }
  #query { height: 18rem; } #variables { height: 4.5rem; }
  .row { display: flex; gap: .6rem; align-items: center; margin: .5rem 0; }
  .run { background: #17324d; color: #fff; border: 0; padding: .5rem 1.2rem; border-radius: 4px; font: inherit; cursor: pointer; }
  .stop { background: #fff; border: 1px solid #c9d1da; padding: .5rem 1rem; border-radius: 4px; font: inherit; cursor: pointer; }
  #status { color: #56606b; font-size: .9rem; }
  pre { background: #fff; border: 1px solid #c9d1da; border-radius: 4px; padding: .6rem; overflow: auto; }
  #result { min-height: 8rem; max-height: 32rem; }
  details pre { max-height: 40rem; }
  code { background: #e9edf1; padding: 0 .25rem; border-radius: 3px; }
  section { padding: 0 1.2rem 1.2rem; }
</style>
</head>
<body>
<header>
  <h1>landql — GraphQL API</h1>
  <p>The read side of the land registry. Queries: <code>POST /graphql</code> (JSON) or
  <code>GET /graphql?query=…</code>; subscriptions: WebSocket at <code>/graphql</code>
  (graphql-transport-ws). Also <code>/healthz</code>, <code>/readyz</code>, <code>/metrics</code>.</p>
</header>
<main>
  <nav id="examples" aria-label="Examples"></nav>
  <div>
    <label for="query">Query</label>
    <textarea id="query" spellcheck="false"></textarea>
    <label for="variables">Variables (JSON)</label>
    <textarea id="variables" spellcheck="false">{}</textarea>
    <label for="token">Bearer token (optional; <code>landql dev</code> prints some)</label>
    <input id="token" type="text" spellcheck="false" autocomplete="off" placeholder="anonymous">
    <div class="row">
      <button class="run" id="run">Run</button>
      <button class="stop" id="stop" hidden>Stop subscription</button>
      <span id="status"></span>
    </div>
    <pre id="result" aria-live="polite"></pre>
  </div>
</main>
<section>
  <details>
    <summary>Schema (SDL)</summary>
    <pre>{{SDL}}</pre>
  </details>
</section>
<script>
"use strict";
const EXAMPLES = {{EXAMPLES}};
const $ = (id) => document.getElementById(id);
let socket = null;

function load(ex) {
  $("query").value = ex.query;
  $("variables").value = JSON.stringify(ex.variables, null, 2);
  $("result").textContent = "";
  $("status").textContent = "";
}

for (const ex of EXAMPLES) {
  const b = document.createElement("button");
  b.textContent = ex.title;
  b.addEventListener("click", () => load(ex));
  $("examples").appendChild(b);
}
if (EXAMPLES.length) load(EXAMPLES[0]);

function stop() {
  if (socket) { socket.close(); socket = null; }
  $("stop").hidden = true;
}

async function run() {
  stop();
  let variables;
  try { variables = JSON.parse($("variables").value || "{}"); }
  catch (e) { $("result").textContent = "Variables are not JSON: " + e.message; return; }
  const query = $("query").value;
  if (/^\s*subscription\b/.test(query.replace(/#[^\n]*/g, ""))) return subscribe(query, variables);
  $("status").textContent = "running…";
  const started = performance.now();
  try {
    const headers = { "Content-Type": "application/json",
                      "Accept": "application/graphql-response+json, application/json" };
    const token = $("token").value.trim();
    if (token) headers["Authorization"] = "Bearer " + token;
    const r = await fetch("/graphql", {
      method: "POST",
      headers,
      body: JSON.stringify({ query, variables }),
    });
    const text = await r.text();
    let shown = text;
    try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (_) {}
    $("result").textContent = shown;
    $("status").textContent = "HTTP " + r.status + " in " + Math.round(performance.now() - started) + " ms";
  } catch (e) {
    $("result").textContent = "Request failed: " + e.message;
    $("status").textContent = "";
  }
}

function subscribe(query, variables) {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/graphql";
  const ws = new WebSocket(url, "graphql-transport-ws");
  socket = ws;
  $("stop").hidden = false;
  $("result").textContent = "";
  $("status").textContent = "connecting…";
  let n = 0;
  const token = $("token").value.trim();
  const init = token ? { Authorization: "Bearer " + token } : {};
  ws.onopen = () => ws.send(JSON.stringify({ type: "connection_init", payload: init }));
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type === "connection_ack") {
      ws.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query, variables } }));
      $("status").textContent = "subscribed; waiting for events…";
    } else if (msg.type === "ping") {
      ws.send(JSON.stringify({ type: "pong" }));
    } else if (msg.type === "next" || msg.type === "error") {
      n += 1;
      $("result").textContent = JSON.stringify(msg.payload, null, 2) + "\n\n" + $("result").textContent;
      $("status").textContent = n + " message(s)";
    } else if (msg.type === "complete") {
      $("status").textContent = "complete";
      stop();
    }
  };
  ws.onclose = (e) => { if (socket === ws) { $("status").textContent = "closed (" + e.code + (e.reason ? ": " + e.reason : "") + ")"; stop(); } };
}

$("run").addEventListener("click", run);
$("stop").addEventListener("click", stop);
document.addEventListener("keydown", (e) => { if ((e.ctrlKey || e.metaKey) && e.key === "Enter") run(); });
</script>
</body>
</html>
"##;
