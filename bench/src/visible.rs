//! Commit → visible: how long after the ledger's receipt a new record can be read — from a
//! database (its row is there: what a node reading that replica serves) or from an API
//! node's search (its index follower has indexed it). `bench regions` asks each region's
//! replica; `bench follow` asks the primary and the node's search side by side.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use devnet::generate::{proposal_state, Generator};
use ledger::client::{HttpLedger, Ledger};
use ledger::model::{channels, Validation};
use migrations::sqlx;
use serde_json::{json, Value};

/// Longest a commit may take to become visible before the probe gives up.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Where a probe looks for the records committed.
pub enum Look {
    /// One statement a tick for every record not seen yet. (Asking a node's GraphQL
    /// `property` instead cost a request per probe per poll, and each miss fell through to
    /// the primary: with probes outstanding that polling became the heaviest load of
    /// `bench regions` and slowed the very replication it measured.)
    Database(sqlx::PgPool),
    /// One GraphQL request a tick to the node at `base`: a `search` for each record's ID
    /// (at most [`SEARCHES_PER_TICK`], as aliases), found when its first hit is the record.
    Search { http: reqwest::Client, base: String },
}

/// Aliases in one search request (the server's default alias limit is 30).
pub const SEARCHES_PER_TICK: usize = 25;

impl Look {
    /// Which of `ids` can be read now. An error (the database or node down or busy) finds
    /// nothing: the next tick asks again, and [`LIMIT`] still applies.
    async fn found(&self, ids: &[String]) -> Vec<String> {
        match self {
            Look::Database(pool) => {
                sqlx::query_scalar("SELECT id FROM properties WHERE id = ANY($1)")
                    .bind(ids)
                    .fetch_all(pool)
                    .await
                    .unwrap_or_default()
            }
            Look::Search { http, base } => {
                let ids = &ids[..ids.len().min(SEARCHES_PER_TICK)];
                let query = search_query(ids.len());
                let variables: serde_json::Map<String, Value> = ids
                    .iter()
                    .enumerate()
                    .map(|(i, id)| (format!("t{i}"), Value::String(id.clone())))
                    .collect();
                let answer = async {
                    http.post(format!("{base}/graphql"))
                        .json(&json!({ "query": query, "variables": variables }))
                        .send()
                        .await?
                        .json::<Value>()
                        .await
                };
                let Ok(body) = answer.await else {
                    return Vec::new();
                };
                ids.iter()
                    .enumerate()
                    .filter(|(i, id)| {
                        body["data"][format!("s{i}")]["hits"][0]["property"]["id"].as_str()
                            == Some(id.as_str())
                    })
                    .map(|(_, id)| id.clone())
                    .collect()
            }
        }
    }
}

/// `n` searches as aliases `s0…`, each for its variable `t0…`.
fn search_query(n: usize) -> String {
    let vars: Vec<String> = (0..n).map(|i| format!("$t{i}: String!")).collect();
    let fields: Vec<String> = (0..n)
        .map(|i| format!("s{i}: search(text: $t{i}, first: 1) {{ hits {{ property {{ id }} }} }}"))
        .collect();
    format!(
        "query Probe({}) {{ {} }}",
        vars.join(", "),
        fields.join(" ")
    )
}

/// One create from `gen` submitted every `every` until `stop`; from its receipt, each of `looks` is
/// asked every 10 ms for all the probes it does not show yet, until it shows the record.
/// Returns per look the milliseconds of each probe seen, the probes not seen within
/// [`LIMIT`], and how many probes were committed.
pub async fn probe(
    ledger_url: String,
    mut gen: Generator,
    looks: Vec<Look>,
    every: Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<(Vec<Vec<f64>>, Vec<u64>, u64)> {
    let ledger = HttpLedger::new(&ledger_url, Duration::from_secs(10))
        .with_context(|| format!("a client of {ledger_url}"))?;
    let info = ledger.info().await.context("the ledger's channels")?;
    let regional: Vec<String> = info.channels.iter().map(|c| c.name.clone()).collect();
    let ledger = Arc::new(ledger);
    // Per region: probe ID → when its receipt came.
    type Pending = Arc<Mutex<BTreeMap<String, Instant>>>;
    let pending: Vec<Pending> = looks.iter().map(|_| Pending::default()).collect();
    let submitting = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut pollers = Vec::new();
    for (look, pending) in looks.into_iter().zip(&pending) {
        let (pending, submitting) = (pending.clone(), submitting.clone());
        pollers.push(tokio::spawn(async move {
            let (mut seen, mut missed) = (Vec::new(), 0u64);
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            loop {
                tick.tick().await;
                let ids: Vec<String> = {
                    let p = pending.lock().unwrap_or_else(|p| p.into_inner());
                    if p.is_empty() && !submitting.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    p.keys().cloned().collect()
                };
                if ids.is_empty() {
                    continue;
                }
                let found = look.found(&ids).await;
                let mut p = pending.lock().unwrap_or_else(|p| p.into_inner());
                for id in found {
                    if let Some(t) = p.remove(&id) {
                        seen.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                }
                let before = p.len();
                p.retain(|_, t| t.elapsed() <= LIMIT);
                missed += (before - p.len()) as u64;
            }
            (seen, missed)
        }));
    }
    // Each submission runs on its own, so that a slow one does not delay the next.
    let mut running = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(every);
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        tick.tick().await;
        let p = gen.create();
        let channel = proposal_state(&p)
            .map(channels::regional)
            .filter(|c| regional.contains(c))
            .unwrap_or_else(|| channels::PRIMARY.to_string());
        let (ledger, pending) = (ledger.clone(), pending.clone());
        running.spawn(async move {
            let receipts = match ledger.submit(&channel, std::slice::from_ref(&p)).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "probe submission failed");
                    return false;
                }
            };
            let Some(id) = receipts
                .first()
                .filter(|r| r.validation == Validation::Valid)
                .and_then(|r| r.property_id.clone())
            else {
                return false;
            };
            let now = Instant::now();
            for p in &pending {
                p.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id.clone(), now);
            }
            true
        });
    }
    let probes = running
        .join_all()
        .await
        .into_iter()
        .filter(|ok| *ok)
        .count() as u64;
    submitting.store(false, std::sync::atomic::Ordering::Relaxed);
    let mut visible = Vec::new();
    let mut timeouts = Vec::new();
    for poller in pollers {
        let (seen, missed) = poller.await.context("a commit → visible poller")?;
        visible.push(seen);
        timeouts.push(missed);
    }
    Ok((visible, timeouts, probes))
}

#[cfg(test)]
mod tests {
    use super::search_query;

    #[test]
    fn searches_are_aliased_one_per_id() {
        assert_eq!(
            search_query(2),
            "query Probe($t0: String!, $t1: String!) { \
             s0: search(text: $t0, first: 1) { hits { property { id } } } \
             s1: search(text: $t1, first: 1) { hits { property { id } } } }"
        );
    }
}
