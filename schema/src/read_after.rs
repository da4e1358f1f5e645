//! Read your own writes: a client that has just written — a block on a channel, as the
//! ledger's receipt says — asks for reads at least that fresh (`X-Landql-Read-After:
//! CHANNEL:BLOCK[,…]` on the API). Such a request is served by a database that has applied
//! those blocks: the one reads go to now if it has, else another usable one that has (the
//! primary last), waiting up to a bound for one to catch up; failing that, its property
//! lookups are read from the ledger and everything else from the primary.
//!
//! The choice is made once per request ([`Services::plan_read_after`]) and held in a task
//! local around its execution ([`scoped`]), which the router's `pick` honours; the property
//! cache is skipped for it (an entry may predate the write), and it gets DataLoaders of its
//! own (shared ones batch with other requests, which read where reads go).

use std::future::Future;
use std::time::{Duration, Instant};

use crate::routing::Served;
use crate::services::Services;

/// The blocks a request must see: (channel, block) pairs, each at least applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadAfter(Vec<(String, i64)>);

impl ReadAfter {
    /// `CHANNEL:BLOCK[,CHANNEL:BLOCK…]`, as receipts give them.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut blocks = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((channel, block)) = part.rsplit_once(':') else {
                return Err(format!(
                    "\"{part}\" is not CHANNEL:BLOCK (e.g. land-registry-primary:120)"
                ));
            };
            let block: i64 = block
                .trim()
                .parse()
                .ok()
                .filter(|b| *b >= 0)
                .ok_or_else(|| format!("\"{block}\" in \"{part}\" is not a block number"))?;
            if channel.trim().is_empty() {
                return Err(format!("\"{part}\" names no channel"));
            }
            blocks.push((channel.trim().to_string(), block));
        }
        if blocks.is_empty() {
            return Err("name at least one CHANNEL:BLOCK".into());
        }
        Ok(ReadAfter(blocks))
    }

    /// Whether `checkpoints` (channel, last block applied) cover every block asked for.
    fn met_by(&self, checkpoints: &[(String, i64)]) -> bool {
        self.0.iter().all(|(channel, block)| {
            checkpoints
                .iter()
                .any(|(c, applied)| c == channel && applied >= block)
        })
    }
}

/// Where a request that asked to read after some blocks reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadPlan {
    /// The database every statement of the request goes to.
    pub(crate) database: Option<Served>,
    /// No database had applied the blocks in time: property lookups read the ledger.
    pub(crate) ledger: bool,
}

impl ReadPlan {
    /// Whether the request's property lookups go to the ledger.
    pub fn reads_ledger(&self) -> bool {
        self.ledger
    }
}

tokio::task_local! {
    static PLAN: ReadPlan;
}

/// Runs `fut` (a request's execution) under `plan`.
pub async fn scoped<F: Future>(plan: ReadPlan, fut: F) -> F::Output {
    PLAN.scope(plan, fut).await
}

/// The plan of the request this task runs, if it asked to read after some blocks.
pub(crate) fn current() -> Option<ReadPlan> {
    PLAN.try_with(|p| *p).ok()
}

/// Runs `fut` under the plan of the calling task, if any: for work a request spawns.
pub(crate) fn inherit<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    let plan = current();
    async move {
        match plan {
            Some(plan) => PLAN.scope(plan, fut).await,
            None => fut.await,
        }
    }
}

/// How often a database is asked again while the request waits for it to catch up.
const POLL: Duration = Duration::from_millis(20);

impl Services {
    /// Chooses where a request that must see `after` reads: see the module docs. Waits at
    /// most `Config::read_after_wait`.
    pub async fn plan_read_after(&self, after: &ReadAfter) -> ReadPlan {
        let router = self.0.db.router();
        let deadline = Instant::now() + self.0.config.read_after_wait;
        loop {
            for served in router.candidates() {
                match router.checkpoints(served).await {
                    Ok(applied) if after.met_by(&applied) => {
                        return ReadPlan {
                            database: Some(served),
                            ledger: false,
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "checkpoints unreadable while planning a read-after")
                    }
                }
            }
            if Instant::now() + POLL > deadline {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        tracing::info!(
            ?after,
            "no database applied the blocks in time; reading the ledger"
        );
        ReadPlan {
            database: router.primary_if_up(),
            ledger: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_receipts_blocks_and_refuses_the_rest() {
        let r = ReadAfter::parse("land-registry-primary:120, land-registry-region-ka:7")
            .expect("two blocks");
        assert_eq!(
            r.0,
            vec![
                ("land-registry-primary".to_string(), 120),
                ("land-registry-region-ka".to_string(), 7)
            ]
        );
        for (bad, says) in [
            ("", "at least one"),
            ("land-registry-primary", "not CHANNEL:BLOCK"),
            ("land-registry-primary:x", "not a block number"),
            ("land-registry-primary:-1", "not a block number"),
            (":4", "names no channel"),
        ] {
            let e = ReadAfter::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn met_when_every_channel_is_applied_that_far() {
        let r = ReadAfter::parse("a:5,b:2").expect("parse");
        let at = |a: i64, b: i64| vec![("a".to_string(), a), ("b".to_string(), b)];
        assert!(r.met_by(&at(5, 2)));
        assert!(r.met_by(&at(9, 3)));
        assert!(!r.met_by(&at(4, 9)));
        assert!(!r.met_by(&[("a".to_string(), 9)]));
    }
}
