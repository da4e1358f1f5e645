//! Waiting until the read model has every block of the chain: the one check every
//! benchmark above the ledger makes before it measures (and `bench sync` times).

use std::time::{Duration, Instant};

use anyhow::bail;
use ledger::client::{HttpLedger, Ledger};
use ledger::model::ChainInfo;
use migrations::sqlx::{self, PgPool};

/// Where the chain's heights are read: the node in this process, or a ledger over HTTP.
pub enum Tip<'a> {
    Node(&'a devnet::Node),
    Http(HttpLedger),
}

impl Tip<'_> {
    /// The ledger at `url`.
    pub fn http(url: &str) -> anyhow::Result<Tip<'static>> {
        Ok(Tip::Http(HttpLedger::new(url, Duration::from_secs(5))?))
    }

    pub async fn info(&self) -> anyhow::Result<ChainInfo> {
        Ok(match self {
            Tip::Node(node) => node.info(),
            Tip::Http(ledger) => ledger.info().await?,
        })
    }
}

/// Blocks of the chain `pool`'s read model has not applied, summed over channels.
pub async fn blocks_behind(tip: &Tip<'_>, pool: &PgPool) -> anyhow::Result<u64> {
    let info = tip.info().await?;
    let checkpoints: Vec<(String, i64)> =
        sqlx::query_as("SELECT channel, block_number FROM checkpoints")
            .fetch_all(pool)
            .await?;
    Ok(sync::blocks_behind(&info, &checkpoints))
}

/// How long and how to wait.
pub struct Wait {
    /// Give up after this long.
    pub limit: Duration,
    /// Look again after this long.
    pub every: Duration,
    /// Also wait for the indexes a bulk catch-up dropped to be built again (part of a
    /// catch-up's time).
    pub indexes_built: bool,
}

/// Waits until every channel's checkpoint in `pool` is at `tip`'s height (and, with
/// [`Wait::indexes_built`], no dropped index is left); the seconds it took. `alive` is
/// asked each time round and stops the wait with its error (the worker has died).
pub async fn wait_synced(
    tip: &Tip<'_>,
    pool: &PgPool,
    wait: &Wait,
    mut alive: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut last_log = Instant::now();
    loop {
        alive()?;
        let behind = blocks_behind(tip, pool).await?;
        let unbuilt: i64 = if wait.indexes_built {
            sqlx::query_scalar("SELECT count(*) FROM sync_dropped_indexes")
                .fetch_one(pool)
                .await?
        } else {
            0
        };
        if behind == 0 && unbuilt == 0 {
            return Ok(started.elapsed().as_secs_f64());
        }
        if last_log.elapsed() > Duration::from_secs(10) {
            tracing::info!(blocks_behind = behind, unbuilt_indexes = unbuilt, "syncing");
            last_log = Instant::now();
        }
        if started.elapsed() > wait.limit {
            bail!("not synced after {:?}", wait.limit);
        }
        tokio::time::sleep(wait.every).await;
    }
}
