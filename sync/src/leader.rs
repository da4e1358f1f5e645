//! The leader's connection to the primary: the session that holds the leader lock, and
//! what the worker asks of it before and between batches — migration, the lock, the pinned
//! orderer key, the stored checkpoints, a ping while idle.
//!
//! The connection that holds the lock (`pg_try_advisory_lock`, see `worker`) is the one that
//! writes: the batch writer (`writer`) and the bulk catch-up's index statements (`bulk`) run
//! on [`Leader::conn`]. If it drops, the lock and any open batch go together, so a worker
//! that lost leadership cannot commit anything afterwards.

use std::collections::HashMap;

use ledger::Hash32;
use migrations::sqlx::postgres::PgConnection;
use migrations::sqlx::{self, Connection, Row};

/// A channel's checkpoint: the last applied block and its header hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    pub block: u64,
    pub hash: Hash32,
}

/// The leader's connection to the primary (the leader once [`Leader::try_lock`] says so).
pub(crate) struct Leader {
    conn: PgConnection,
}

impl Leader {
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        let conn = PgConnection::connect(url).await?;
        Ok(Self { conn })
    }

    /// Brings the schema up to date (sqlx serialises concurrent migrators with its own lock),
    /// on a connection of its own.
    pub async fn migrate(url: &str) -> Result<(), migrations::DbError> {
        let pool =
            migrations::connect_with(url, migrations::pool_options().max_connections(1)).await?;
        let r = migrations::migrate(&pool).await;
        pool.close().await;
        r
    }

    /// `pg_try_advisory_lock` on this session: `true` once this worker is the leader.
    pub async fn try_lock(&mut self, key: i64) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut self.conn)
            .await
    }

    /// The connection that holds the lock. Everything the leader writes goes through it, so
    /// nothing is written once the lock is lost.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// The pinned orderer key, pinning `presented` if none is.
    pub async fn pin_key(&mut self, presented: &str) -> Result<String, sqlx::Error> {
        sqlx::query("INSERT INTO sync_trust (orderer_key) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(presented)
            .execute(&mut self.conn)
            .await?;
        sqlx::query_scalar("SELECT orderer_key FROM sync_trust")
            .fetch_one(&mut self.conn)
            .await
    }

    /// The stored checkpoints; a hash that does not parse is reported as `Err` text.
    #[allow(clippy::type_complexity)]
    pub async fn checkpoints(
        &mut self,
    ) -> Result<HashMap<String, Result<Checkpoint, String>>, sqlx::Error> {
        let rows = sqlx::query("SELECT channel, block_number, block_hash FROM checkpoints")
            .fetch_all(&mut self.conn)
            .await?;
        let mut out = HashMap::new();
        for row in rows {
            let channel: String = row.try_get(0)?;
            let block: i64 = row.try_get(1)?;
            let hash: String = row.try_get(2)?;
            let cp = match (u64::try_from(block), hash.parse::<Hash32>()) {
                (Ok(block), Ok(hash)) => Ok(Checkpoint { block, hash }),
                _ => Err(format!(
                    "stored checkpoint ({block}, {hash:?}) is not a block number and hash"
                )),
            };
            out.insert(channel, cp);
        }
        Ok(out)
    }

    /// A round trip, to notice a dead connection (and so a lost lock) while idle.
    pub async fn ping(&mut self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&mut self.conn).await?;
        Ok(())
    }
}
