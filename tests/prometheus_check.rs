//! The operator's files in `deploy/` against a running system: a `landql dev` (few records,
//! its own PostgreSQL, free ports), a little load of every kind — property reads, searches,
//! verifications, bad requests, a page that does not exist, ledger submissions, a burst past
//! the anonymous rate limit — and Debian's `prometheus` scraping its three endpoints every
//! second with the rules of `deploy/prometheus/alerts.yml` loaded, from a configuration made
//! of `deploy/prometheus/prometheus.yml` with the test's ports. Then, through Prometheus's
//! HTTP API:
//!
//! - every job of the configuration is up, and every alert rule loaded with health "ok";
//! - every alert rule's BASE (the rule is `BASE COMPARISON NUMBER`, see alerts.yml) and every
//!   expression of every panel of `deploy/grafana/landql.json` (template variables
//!   substituted) evaluates without error and returns at least one series;
//! - every series any of them names exists, with every label its matchers use, and with the
//!   value an equality matcher asks for (except the values listed in
//!   [`VALUES_ONLY_ON_FAILURE`]): `or vector(0)` in a rule cannot hide a misspelt name.
//!
//! Series that cannot exist on a dev stack are listed in [`CANNOT_EXIST_ON_DEV`] with the
//! reason, which is printed when they are skipped. And `promtool check metrics` lints each
//! endpoint's exposition (the API's, the sync worker's and the ledger's `/metrics`), and
//! `promtool check rules` / `test rules` run on the files as committed.
//!
//! Every problem found is collected and reported at the end, all at once, so one run says
//! everything that is wrong. Needs `prometheus` and `promtool` (Debian: `apt-get install
//! prometheus`); without them the test fails saying so — CI installs them.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const RECORDS: u64 = 300;

/// What a Grafana template variable stands for here. A minute of one-second scrapes.
const TEMPLATE_VARIABLES: &[(&str, &str)] = &[
    ("$__rate_interval", "1m"),
    ("$__interval", "1s"),
    ("$__range", "5m"),
];

/// Series that cannot exist on a `landql dev` stack, and why: expressions naming them are
/// checked for syntax only.
const CANNOT_EXIST_ON_DEV: &[(&str, &str)] = &[
    (
        "landql_api_replica_lag_seconds",
        "exported only when the API node reads a hot standby; landql dev reads its own primary",
    ),
    (
        "landql_api_replica_lag_bytes",
        "exported only when the API node reads a hot standby; landql dev reads its own primary",
    ),
    (
        "landql_api_database_usable",
        "exported only by a node that routes between replicas; landql dev (without --regions) \
         reads its own primary",
    ),
];

/// Label values that appear only when something fails, so a healthy stack has no series
/// with them (the label itself must still exist on the series).
const VALUES_ONLY_ON_FAILURE: &[(&str, &str)] = &[("class", "5xx"), ("outcome", "internal_errors")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_finds_every_series_the_alert_rules_and_the_dashboard_name() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let deploy = root.join("deploy");
    for tool in ["prometheus", "promtool"] {
        assert!(
            Command::new(tool).arg("--version").output().is_ok(),
            "`{tool}` is not installed: this test runs Debian's Prometheus server and promtool \
             (apt-get install prometheus; CI installs it)"
        );
    }
    let mut problems = Problems::default();

    // The files as committed.
    let alerts = deploy.join("prometheus").join("alerts.yml");
    problems.promtool(&["check", "rules"], &alerts, None);
    problems.promtool(
        &["test", "rules"],
        &deploy.join("prometheus").join("alerts.test.yml"),
        None,
    );
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy.join("grafana").join("landql.json"))
            .expect("deploy/grafana/landql.json"),
    )
    .expect("deploy/grafana/landql.json is JSON");
    let panels = panel_expressions(&dashboard);
    assert!(
        panels.len() > 20,
        "the dashboard has only {} expressions",
        panels.len()
    );

    // landql dev, on free ports.
    let data = tempfile::tempdir().expect("temp dir");
    let (api_port, ledger_port, sync_port) = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let help = common::landql()
        .args(["dev", "--help"])
        .output()
        .expect("landql dev --help");
    let serves_sync_metrics =
        String::from_utf8_lossy(&help.stdout).contains("--sync-metrics-listen");
    let mut dev = common::landql();
    dev.args(["dev", "--records", &RECORDS.to_string(), "--data"])
        .arg(data.path())
        .args(["--listen", &format!("127.0.0.1:{api_port}")])
        .args(["--ledger-listen", &format!("127.0.0.1:{ledger_port}")]);
    if serves_sync_metrics {
        dev.args(["--sync-metrics-listen", &format!("127.0.0.1:{sync_port}")]);
    } else {
        problems.push(
            "`landql dev` has no --sync-metrics-listen: the sync worker's metrics are not served \
             (deploy/METRICS.md); started without it",
        );
    }
    let mut dev = Dev(dev
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start landql dev"));
    let stdout = dev.0.stdout.take().expect("stdout");
    let banner = tokio::task::spawn_blocking(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("search index") {
                return true;
            }
        }
        false
    });
    let up = tokio::time::timeout(Duration::from_secs(300), banner)
        .await
        .expect("landql dev comes up within 5 minutes")
        .expect("reader");
    assert!(
        up,
        "landql dev exited before printing its URLs (its log is above)"
    );
    let api = format!("http://127.0.0.1:{api_port}");
    let ledger = format!("http://127.0.0.1:{ledger_port}");
    let sync = format!("http://127.0.0.1:{sync_port}");
    let client = reqwest::Client::new();
    let first = common::caught_up(&client, &api, RECORDS as i64, Duration::from_secs(180)).await;

    // Prometheus, scraping every second, before the load so that its rates see it.
    let prom_dir = tempfile::tempdir().expect("temp dir");
    let prom_port = common::free_port();
    let config = prometheus_config(
        &deploy,
        prom_dir.path(),
        &[
            ("127.0.0.1:8080", api_port),
            ("127.0.0.1:9101", sync_port),
            ("127.0.0.1:7050", ledger_port),
        ],
    );
    let prom = Prometheus::start(prom_dir.path(), &config, prom_port);
    prom.wait_ready(&client).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    load(&client, &api, &ledger, &first, &mut problems).await;
    common::caught_up(&client, &api, RECORDS as i64, Duration::from_secs(120)).await;
    // A few scrapes after the load, and a rule evaluation on them.
    tokio::time::sleep(Duration::from_secs(6)).await;

    // Every job is up.
    let up = prom.query(&client, "up").await.expect("query up");
    for job in ["landql-api", "landql-sync", "landql-ledger"] {
        let value = up
            .iter()
            .find(|s| s["metric"]["job"] == job)
            .map(|s| s["value"][1].as_str().unwrap_or("").to_string());
        if value.as_deref() != Some("1") {
            problems.push(format!(
                "Prometheus cannot scrape the {job} job (up = {}): see {}/targets",
                value.as_deref().unwrap_or("no series"),
                prom.url
            ));
        }
    }

    // Each endpoint's exposition, linted: asked for without naming OpenMetrics (as `curl`
    // does), each answers the classic text format promtool reads; Prometheus's own scrapes
    // above asked for OpenMetrics.
    for (name, base) in [("API", &api), ("sync worker", &sync), ("ledger", &ledger)] {
        let url = format!("{base}/metrics");
        match client.get(&url).send().await {
            Ok(r) if r.status().is_success() => {
                let content_type = r
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                if !content_type.starts_with("text/plain; version=0.0.4") {
                    problems.push(format!(
                        "the {name}'s {url} answers {content_type:?} to a client that did not ask \
                         for OpenMetrics"
                    ));
                }
                let text = r.text().await.expect("metrics text");
                problems.promtool(&["check", "metrics"], Path::new(&url), Some(&text));
                for series in ["process_cpu_seconds_total", "process_resident_memory_bytes"] {
                    if !text.lines().any(|l| l.starts_with(series)) {
                        problems.push(format!("the {name}'s {url} has no {series}"));
                    }
                }
            }
            Ok(r) => problems.push(format!("the {name}'s {url} answers {}", r.status())),
            Err(e) => problems.push(format!("the {name}'s {url} does not answer: {e}")),
        }
    }

    // The rules as Prometheus loaded them.
    let rules = prom.rules(&client).await;
    let in_file = std::fs::read_to_string(&alerts)
        .expect("alerts.yml")
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert:"))
        .count();
    assert_eq!(
        rules.len(),
        in_file,
        "Prometheus loaded {} of the {in_file} alert rules",
        rules.len()
    );
    let mut checker = Checker::new(&prom, &client);
    for rule in &rules {
        let name = rule["name"].as_str().unwrap_or("?");
        let query = rule["query"].as_str().unwrap_or("");
        if rule["health"] != "ok" {
            problems.push(format!(
                "alert {name}: Prometheus evaluates it with health {}: {}",
                rule["health"], rule["lastError"]
            ));
        }
        match split_comparison(query) {
            Ok(base) => {
                checker
                    .check(&format!("alert {name}"), base, &mut problems)
                    .await
            }
            Err(e) => problems.push(format!("alert {name}: {e}: {query}")),
        }
    }

    // Every panel's expressions.
    for (title, expr) in &panels {
        match substitute(expr) {
            Ok(expr) => {
                checker
                    .check(&format!("panel \"{title}\""), &expr, &mut problems)
                    .await
            }
            Err(e) => problems.push(format!("panel \"{title}\": {e}")),
        }
    }

    let missing = checker.missing;
    drop(prom);
    drop(dev);
    problems.report(&missing);
}

/// Queries, properties, verifications, bad requests, ledger submissions and a burst past the
/// anonymous rate limit (20 per second), paced below it otherwise.
async fn load(
    client: &reqwest::Client,
    api: &str,
    ledger: &str,
    first: &Value,
    problems: &mut Problems,
) {
    let node = &first["data"]["properties"]["edges"][0]["node"];
    let id = node["id"].as_str().expect("a property id").to_string();
    let name = node["owners"][0]["owner"]["name"]
        .as_str()
        .expect("an owner name")
        .to_string();
    let gql = |query: &str, vars: Value| {
        client
            .post(format!("{api}/graphql"))
            .json(&json!({"query": query, "variables": vars}))
            .send()
    };
    let pace = || tokio::time::sleep(Duration::from_millis(120));
    for _ in 0..5 {
        let v = gql(
            "query Property($id: ID!) { property(id: $id) { id } }",
            json!({"id": id}),
        )
        .await
        .expect("POST");
        answered(
            problems,
            "property(id)",
            v.json().await.expect("JSON"),
            &["property", "id"],
        );
        pace().await;
        let v = gql(
            "query Search($t: String!) { search(text: $t, first: 3) { total } }",
            json!({"t": name}),
        )
        .await
        .expect("POST");
        answered(
            problems,
            "search",
            v.json().await.expect("JSON"),
            &["search", "total"],
        );
        pace().await;
    }
    for _ in 0..3 {
        let v = gql(
            "query Verify($id: ID!) { verifyProperty(id: $id) { outcome } }",
            json!({"id": id}),
        )
        .await
        .expect("POST");
        answered(
            problems,
            "verifyProperty",
            v.json().await.expect("JSON"),
            &["verifyProperty", "outcome"],
        );
        pace().await;
        let v: Value = gql("query Bad { noSuchField }", json!({}))
            .await
            .expect("POST")
            .json()
            .await
            .expect("JSON");
        if v["errors"].as_array().is_none_or(|e| e.is_empty()) {
            problems.push(format!(
                "load: a query of a field that does not exist was not refused: {v}"
            ));
        }
        pace().await;
        let status = client
            .get(format!("{api}/no-such-page"))
            .send()
            .await
            .expect("GET")
            .status();
        if status != 404 {
            problems.push(format!("load: GET /no-such-page answered {status}"));
        }
        pace().await;
    }
    // Ledger submissions: the devnet's realistic mix, invalid transactions included.
    let out = tokio::task::spawn_blocking({
        let ledger = ledger.to_string();
        move || {
            common::landql()
                .args([
                    "load",
                    "--ledger",
                    &ledger,
                    "--rate",
                    "100",
                    "--duration",
                    "3",
                ])
                .stderr(Stdio::inherit())
                .output()
        }
    })
    .await
    .expect("runner")
    .expect("landql load");
    assert!(
        out.status.success(),
        "landql load failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The mix makes invalid transactions only when its follow-ups race; one transfer that
    // names a transaction other than the record's last is refused by the chaincode every time.
    stale_transfer(ledger, &id, problems).await;
    // A burst past the anonymous rate limit.
    let burst = (0..60).map(|_| gql("{ __typename }", json!({})));
    let statuses = futures::future::join_all(burst).await;
    let limited = statuses
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|r| r.status() == 429))
        .count();
    if limited == 0 {
        problems.push("load: 60 anonymous requests at once were none of them rate limited");
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

/// Submits a transfer of `id` that names the zero hash as its last transaction: committed
/// as invalid, so the invalid-transaction series exist.
async fn stale_transfer(ledger: &str, id: &str, problems: &mut Problems) {
    use ledger::client::{HttpLedger, Ledger};
    use ledger::model::{channels, Proposal, TxKind, Validation};
    let client = HttpLedger::new(ledger, Duration::from_secs(10)).expect("ledger client");
    let stale = Proposal {
        kind: TxKind::TransferLandRecord,
        creator: "registrar@KA".into(),
        nonce: "prometheus-check-stale".into(),
        args: json!({"property_id": id, "expected_tx": ledger::Hash32::ZERO,
                     "owners": [{"owner_ref": "new", "name": "Lakshmi", "share_pct": 100}]}),
    };
    match client.submit(channels::PRIMARY, &[stale]).await {
        Ok(r) if r.first().is_some_and(|r| r.validation != Validation::Valid) => {}
        Ok(r) => problems.push(format!("load: a stale transfer was not refused: {r:?}")),
        Err(e) => problems.push(format!("load: submitting a stale transfer: {e}")),
    }
}

/// A problem unless `v` has data at `path`.
fn answered(problems: &mut Problems, what: &str, v: Value, path: &[&str]) {
    let mut at = &v["data"];
    for p in path {
        at = &at[*p];
    }
    if at.is_null() {
        problems.push(format!("load: {what} did not answer: {v}"));
    }
}

/// `deploy/prometheus/prometheus.yml` with the test's ports for the dev defaults, scraping
/// and evaluating every second, and alerts.yml by its path.
fn prometheus_config(deploy: &Path, dir: &Path, ports: &[(&str, u16)]) -> PathBuf {
    let mut text = std::fs::read_to_string(deploy.join("prometheus").join("prometheus.yml"))
        .expect("deploy/prometheus/prometheus.yml");
    let alerts = deploy.join("prometheus").join("alerts.yml");
    let mut swaps: Vec<(String, String)> = ports
        .iter()
        .map(|(from, port)| (format!("\"{from}\""), format!("\"127.0.0.1:{port}\"")))
        .collect();
    swaps.push(("scrape_interval: 15s".into(), "scrape_interval: 1s".into()));
    swaps.push((
        "evaluation_interval: 15s".into(),
        "evaluation_interval: 1s".into(),
    ));
    swaps.push(("- alerts.yml".into(), format!("- {}", alerts.display())));
    for (from, to) in swaps {
        assert_eq!(
            text.matches(&from).count(),
            1,
            "deploy/prometheus/prometheus.yml should have `{from}` exactly once (the test swaps it for `{to}`)"
        );
        text = text.replace(&from, &to);
    }
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, text).expect("write prometheus.yml");
    path
}

/// Every panel's expressions (rows' panels too), with the panel's title.
fn panel_expressions(dashboard: &Value) -> Vec<(String, String)> {
    fn walk(panels: &Value, out: &mut Vec<(String, String)>) {
        for p in panels.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("?").to_string();
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push((title.clone(), e.to_string()));
                }
            }
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// `expr` with Grafana's template variables replaced; an unknown one is an error.
fn substitute(expr: &str) -> Result<String, String> {
    let mut e = expr.to_string();
    for (var, value) in TEMPLATE_VARIABLES {
        e = e.replace(var, value);
    }
    match e.find('$') {
        Some(at) => Err(format!(
            "unknown template variable at `{}` (the test knows {:?})",
            &e[at..],
            TEMPLATE_VARIABLES.iter().map(|v| v.0).collect::<Vec<_>>()
        )),
        None => Ok(e),
    }
}

/// BASE of a rule `BASE COMPARISON NUMBER`: the comparison is the last one outside any
/// brackets and string, its right side a number.
fn split_comparison(expr: &str) -> Result<&str, String> {
    let b = expr.as_bytes();
    let (mut depth, mut i, mut found) = (0i32, 0, None);
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' => i = skip_string(b, i),
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            b'=' | b'!' | b'>' | b'<' if depth == 0 => {
                let two = b.get(i + 1) == Some(&b'=');
                if b[i] != b'=' && b[i] != b'!' || two {
                    found = Some((i, if two { 2 } else { 1 }));
                }
                if two {
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    let (at, len) = found.ok_or("not `BASE COMPARISON NUMBER`: no comparison outside brackets")?;
    let right = expr[at + len..].trim();
    let right = right.strip_prefix("bool").unwrap_or(right).trim();
    right
        .parse::<f64>()
        .map_err(|_| format!("not `BASE COMPARISON NUMBER`: `{right}` is not a number"))?;
    Ok(expr[..at].trim())
}

fn skip_string(b: &[u8], start: usize) -> usize {
    let quote = b[start];
    let mut i = start + 1;
    while i < b.len() && b[i] != quote {
        if b[i] == b'\\' {
            i += 1;
        }
        i += 1;
    }
    i
}

/// A series selector in an expression: the metric's name and its label matchers.
#[derive(Debug, Clone, PartialEq)]
struct Selector {
    name: String,
    matchers: Vec<Matcher>,
}

/// A label matcher: (label, operator, value).
type Matcher = (String, String, String);

/// Every series selector `expr` names, and the labels its `by (…)`, `on (…)` and the like
/// group or match on. PromQL's own words (functions, aggregations, set operators) are told
/// apart from metric names by what follows them.
fn selectors(expr: &str) -> Result<(Vec<Selector>, BTreeSet<String>), String> {
    const LISTS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    // Operators, and the aggregations (which may be followed by `by (…)` rather than `(`).
    const WORDS: &[&str] = &[
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "inf",
        "nan",
        "Inf",
        "NaN",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    let b = expr.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut out = Vec::new();
    let mut grouping = BTreeSet::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\'' {
            i = skip_string(b, i) + 1;
        } else if c == b'[' {
            // A range or subquery duration.
            while i < b.len() && b[i] != b']' {
                i += 1;
            }
            i += 1;
        } else if c.is_ascii_digit() || c == b'.' {
            while i < b.len() && (ident(b[i]) || b[i] == b'.') {
                i += 1;
            }
        } else if c == b'{' {
            return Err(format!(
                "a selector without a metric name at `{}`",
                &expr[i..]
            ));
        } else if ident(c) {
            let start = i;
            while i < b.len() && ident(b[i]) {
                i += 1;
            }
            let word = &expr[start..i];
            let mut j = i;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            let next = b.get(j).copied();
            if LISTS.contains(&word) {
                if next == Some(b'(') {
                    let close = j + expr[j..].find(')').ok_or("an unclosed label list")?;
                    grouping.extend(
                        expr[j + 1..close]
                            .split(',')
                            .map(str::trim)
                            .filter(|l| !l.is_empty())
                            .map(String::from),
                    );
                    i = close + 1;
                }
            } else if WORDS.contains(&word) || next == Some(b'(') {
                // An operator, or a function or aggregation (its arguments are scanned on).
            } else {
                let mut sel = Selector {
                    name: word.to_string(),
                    matchers: Vec::new(),
                };
                if next == Some(b'{') {
                    let (matchers, end) = matchers(expr, j)?;
                    sel.matchers = matchers;
                    i = end;
                }
                out.push(sel);
            }
        } else {
            i += 1;
        }
    }
    Ok((out, grouping))
}

/// The matchers of the `{…}` at `open`, and the index after its `}`.
fn matchers(expr: &str, open: usize) -> Result<(Vec<Matcher>, usize), String> {
    let b = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = open + 1;
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
            i += 1;
        }
        match b.get(i) {
            None => return Err(format!("an unclosed selector at `{}`", &expr[open..])),
            Some(b'}') => return Ok((out, i + 1)),
            _ => {}
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let label = expr[start..i].to_string();
        let op_start = i;
        while i < b.len() && matches!(b[i], b'=' | b'!' | b'~') {
            i += 1;
        }
        let op = expr[op_start..i].to_string();
        if label.is_empty() || !["=", "!=", "=~", "!~"].contains(&op.as_str()) {
            return Err(format!(
                "a label matcher that does not parse at `{}`",
                &expr[start..]
            ));
        }
        if !matches!(b.get(i), Some(b'"') | Some(b'\'')) {
            return Err(format!(
                "a label value that is not quoted at `{}`",
                &expr[start..]
            ));
        }
        let end = skip_string(b, i);
        out.push((label, op, expr[i + 1..end.min(b.len())].to_string()));
        i = end + 1;
    }
}

/// Evaluates expressions and their selectors, asking Prometheus each question once.
struct Checker<'a> {
    prom: &'a Prometheus,
    client: &'a reqwest::Client,
    known: BTreeMap<String, bool>,
    /// Series (or `name{label}` / `name{label="value"}`) asked for and not found.
    missing: BTreeSet<String>,
    skipped: BTreeSet<&'static str>,
}

impl<'a> Checker<'a> {
    fn new(prom: &'a Prometheus, client: &'a reqwest::Client) -> Self {
        Checker {
            prom,
            client,
            known: BTreeMap::new(),
            missing: BTreeSet::new(),
            skipped: BTreeSet::new(),
        }
    }

    /// `expr` (of `what`) evaluates, returns a series, and names only series that exist.
    async fn check(&mut self, what: &str, expr: &str, problems: &mut Problems) {
        let (sels, grouping) = match selectors(expr) {
            Ok(s) => s,
            Err(e) => return problems.push(format!("{what}: {e}: {expr}")),
        };
        if sels.is_empty() {
            return problems.push(format!("{what}: names no series: {expr}"));
        }
        let result = match self.prom.query(self.client, expr).await {
            Ok(r) => r,
            Err(e) => return problems.push(format!("{what}: Prometheus refuses `{expr}`: {e}")),
        };
        let mut skip = None;
        for sel in &sels {
            if let Some((name, reason)) = CANNOT_EXIST_ON_DEV.iter().find(|(n, _)| *n == sel.name) {
                if self.skipped.insert(*name) {
                    eprintln!("SKIPPED {name}: {reason}");
                }
                skip = Some(*name);
                continue;
            }
            let mut missing = Vec::new();
            if !self.exists(&sel.name, "").await {
                missing.push(sel.name.clone());
            } else {
                for (label, op, value) in &sel.matchers {
                    if label == "__name__" {
                        continue;
                    }
                    if !self.exists(&sel.name, &format!("{label}!=\"\"")).await {
                        missing.push(format!("{}{{{label}}}", sel.name));
                    } else if op == "="
                        && !VALUES_ONLY_ON_FAILURE.contains(&(label.as_str(), value.as_str()))
                        && !self
                            .exists(&sel.name, &format!("{label}=\"{value}\""))
                            .await
                    {
                        missing.push(format!("{}{{{label}=\"{value}\"}}", sel.name));
                    }
                }
            }
            for m in missing {
                problems.push(format!("{what}: no series {m} on the running stack"));
                self.missing.insert(m);
            }
        }
        // The labels it groups or matches on are on some series it names.
        let names: BTreeSet<&str> = sels.iter().map(|s| s.name.as_str()).collect();
        if skip.is_none() && names.iter().all(|n| !self.missing.contains(*n)) {
            let any = names.iter().copied().collect::<Vec<_>>().join("|");
            for label in &grouping {
                let q = format!("count({{__name__=~\"{any}\",{label}!=\"\"}})");
                if !self.found(&q).await {
                    problems.push(format!(
                        "{what}: groups or matches on `{label}`, which no series of {any} has"
                    ));
                    self.missing.insert(format!("{any}{{{label}}}"));
                }
            }
        }
        if result.is_empty() {
            match skip {
                Some(name) => eprintln!("SKIPPED the emptiness check of {what}: it names {name}"),
                None => problems.push(format!(
                    "{what}: returns no series on the running stack: {expr}"
                )),
            }
        }
    }

    async fn exists(&mut self, name: &str, matcher: &str) -> bool {
        let q = format!(
            "count({{__name__=\"{name}\"{}{matcher}}})",
            if matcher.is_empty() { "" } else { "," }
        );
        self.found(&q).await
    }

    /// Whether the query `q` returns a series (asked once).
    async fn found(&mut self, q: &str) -> bool {
        if let Some(&known) = self.known.get(q) {
            return known;
        }
        let found = !self
            .prom
            .query(self.client, q)
            .await
            .unwrap_or_else(|e| panic!("{q}: {e}"))
            .is_empty();
        self.known.insert(q.to_string(), found);
        found
    }
}

/// Everything found wrong, reported at the end.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn push(&mut self, p: impl Into<String>) {
        self.0.push(p.into());
    }

    /// `promtool ARGS FILE`, or `promtool ARGS` reading `stdin` (FILE only names it then).
    fn promtool(&mut self, args: &[&str], file: &Path, stdin: Option<&str>) {
        let mut cmd = Command::new("promtool");
        cmd.args(args);
        if stdin.is_none() {
            cmd.arg(file);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run promtool");
        let mut input = child.stdin.take().expect("stdin");
        input
            .write_all(stdin.unwrap_or("").as_bytes())
            .expect("write to promtool");
        drop(input);
        let out = child.wait_with_output().expect("promtool");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // `check metrics` says nothing when the exposition is clean.
        if !out.status.success() || (stdin.is_some() && !said.trim().is_empty()) {
            self.push(format!(
                "promtool {} {} ({}):\n{}",
                args.join(" "),
                file.display(),
                out.status,
                said.trim_end()
            ));
        }
    }

    fn report(self, missing: &BTreeSet<String>) {
        if self.0.is_empty() {
            return;
        }
        let mut msg = format!("{} problems:\n", self.0.len());
        for p in &self.0 {
            msg.push_str(&format!("- {p}\n"));
        }
        if !missing.is_empty() {
            msg.push_str(&format!(
                "\nseries named in deploy/ that the running stack does not export ({}):\n",
                missing.len()
            ));
            for m in missing {
                msg.push_str(&format!("  {m}\n"));
            }
        }
        panic!("{msg}");
    }
}

/// `landql dev`, stopped with Ctrl-C (so that its PostgreSQL stops too) when dropped.
struct Dev(Child);

impl Drop for Dev {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Debian's Prometheus server on a temporary directory; killed when dropped.
struct Prometheus {
    child: Child,
    url: String,
}

impl Prometheus {
    fn start(dir: &Path, config: &Path, port: u16) -> Self {
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start prometheus");
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn wait_ready(&self, client: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = client.get(format!("{}/-/ready", self.url)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "prometheus did not become ready (its log is above)"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// An instant query's series, or Prometheus's error.
    async fn query(&self, client: &reqwest::Client, q: &str) -> Result<Vec<Value>, String> {
        let v: Value = client
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", q)])
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        if v["status"] != "success" {
            return Err(format!("{}: {}", v["errorType"], v["error"]));
        }
        match v["data"]["resultType"].as_str() {
            Some("vector") => Ok(v["data"]["result"].as_array().cloned().unwrap_or_default()),
            Some("scalar") => Ok(vec![v["data"]["result"].clone()]),
            other => Err(format!("a {other:?} result")),
        }
    }

    /// Every alerting rule loaded.
    async fn rules(&self, client: &reqwest::Client) -> Vec<Value> {
        let v: Value = client
            .get(format!("{}/api/v1/rules?type=alert", self.url))
            .send()
            .await
            .expect("GET /api/v1/rules")
            .json()
            .await
            .expect("rules JSON");
        v["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn rules_split_at_their_last_comparison_outside_brackets() {
    assert_eq!(
        split_comparison("up{job=~\"landql-.*\"} == 0"),
        Ok("up{job=~\"landql-.*\"}")
    );
    assert_eq!(
        split_comparison("(sum(x{a!=\">\"}) or vector(0)) / sum(rate(y[5m])) > 0.05"),
        Ok("(sum(x{a!=\">\"}) or vector(0)) / sum(rate(y[5m]))")
    );
    assert_eq!(split_comparison("x > bool 1e6"), Ok("x"));
    assert!(split_comparison("x > y").is_err());
    assert!(split_comparison("sum(rate(x[5m]))").is_err());
}

#[test]
fn selectors_are_told_from_promql_words() {
    let (s, grouping) = selectors(
        "histogram_quantile(0.95, sum by (channel, le) (rate(a_bucket{k=\"v\", j=~\"x.*\"}[1m]))) \
         / on (channel) group_left b or vector(0) and up{job!='z'} offset 5m",
    )
    .unwrap();
    let names: Vec<_> = s.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a_bucket", "b", "up"]);
    assert_eq!(
        s[0].matchers,
        [
            ("k".into(), "=".into(), "v".into()),
            ("j".into(), "=~".into(), "x.*".into())
        ]
    );
    assert_eq!(s[2].matchers, [("job".into(), "!=".into(), "z".into())]);
    assert_eq!(grouping.into_iter().collect::<Vec<_>>(), ["channel", "le"]);
    assert!(selectors("{__name__=\"x\"}").is_err());
    assert!(selectors("x{a=b}").is_err());
}

#[test]
fn template_variables_are_substituted_and_unknown_ones_refused() {
    assert_eq!(
        substitute("rate(x[$__rate_interval])"),
        Ok("rate(x[1m])".into())
    );
    assert!(substitute("x{job=\"$job\"}").is_err());
}
