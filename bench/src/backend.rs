//! The data every benchmark above the sync worker runs on (`bench api`, `bench limits`,
//! `bench pages`, `bench search`): a private devnet, PostgreSQL and sync worker, or an
//! existing synced pair.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use migrations::sqlx;

use crate::machine::set_mode;
use crate::synced::{wait_synced, Tip, Wait};

/// The data a benchmark of the API runs on: a private seeded and synced pair, or an
/// existing one.
#[derive(clap::Args)]
pub struct BackendArgs {
    /// Records to seed into the private ledger.
    #[arg(long, default_value_t = 100_000)]
    records: u64,
    /// Use this (already synced) database instead of a private one; needs --ledger.
    #[arg(long, requires = "ledger", hide_env_values = true)]
    database_url: Option<String>,
    /// The ledger that database was synced from.
    #[arg(long, requires = "database_url")]
    ledger: Option<String>,
    /// Where the temporary ledger, database and index go (default: the system temp dir).
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

/// What the ledger and database under test are, and how to stop them.
pub struct Backend {
    pub database_url: String,
    pub ledger_url: String,
    pub records_note: String,
    pub root: tempfile::TempDir,
    pub private: Option<Private>,
}

/// A devnet seeded into `dir/ledger` and served on loopback, a private PostgreSQL in
/// `dir/pg` with the read model, and the sync worker projecting the one into the other: the
/// data every benchmark above the sync worker runs on (`bench api`, `bench limits`,
/// `bench search`).
pub struct Private {
    pub pg: migrations::PrivatePostgres,
    pub database_url: String,
    pub ledger_url: String,
    /// "N records seeded (T transactions, B blocks)".
    pub note: String,
    stop: tokio::sync::watch::Sender<bool>,
    ledger: tokio::task::JoinHandle<std::io::Result<()>>,
    sync: tokio::task::JoinHandle<Result<(), sync::SyncError>>,
}

impl Private {
    /// Seeds `records` records into `dir/ledger` (which must not exist yet), starts
    /// everything, and returns while the worker catches up (see [`Private::wait_synced`]).
    pub async fn start(dir: &Path, records: u64) -> anyhow::Result<Private> {
        tracing::info!(records, "seeding the ledger");
        let ledger_dir = dir.join("ledger");
        let d = ledger_dir.clone();
        let seeded = tokio::task::spawn_blocking(move || {
            devnet::seed::seed(
                &d,
                &devnet::seed::SeedOptions {
                    records,
                    ..Default::default()
                },
                |_| {},
            )
        })
        .await?
        .context("seeding")?;
        let (node, _) = tokio::task::spawn_blocking(move || {
            devnet::Node::start(&ledger_dir, devnet::DevnetConfig::default())
        })
        .await?
        .context("starting the devnet node")?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let ledger_url = format!("http://{}", listener.local_addr()?);
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let mut rx = stop_rx.clone();
        let ledger = tokio::spawn(devnet::serve(node, listener, async move {
            let _ = rx.wait_for(|s| *s).await;
        }));

        let pg = migrations::PrivatePostgres::start_with(
            &dir.join("pg"),
            migrations::PgOptions::from_env(),
        )
        .await
        .context("starting PostgreSQL")?;
        let database_url = pg.database_url();
        let pool = migrations::connect(&database_url).await?;
        migrations::migrate(&pool).await?;
        pool.close().await;

        tracing::info!("syncing");
        let mut rx = stop_rx.clone();
        let sync = tokio::spawn(sync::run(
            sync::SyncOptions::new(&ledger_url, &database_url),
            async move {
                let _ = rx.wait_for(|s| *s).await;
            },
        ));
        Ok(Private {
            pg,
            database_url,
            ledger_url,
            note: format!(
                "{} records seeded ({} transactions, {} blocks)",
                seeded.records, seeded.transactions, seeded.blocks
            ),
            stop,
            ledger,
            sync,
        })
    }

    /// Waits until every channel's checkpoint is at the ledger's tip; the seconds it took.
    pub async fn wait_synced(&self, pool: &sqlx::PgPool) -> anyhow::Result<f64> {
        wait_for_worker(&self.ledger_url, Some(&self.sync), pool).await
    }

    /// Stops the ledger and the sync worker, leaving the database running.
    pub async fn stop_feeding(self) -> migrations::PrivatePostgres {
        let _ = self.stop.send(true);
        let _ = self.sync.await;
        let _ = self.ledger.await;
        self.pg
    }
}

/// Settles a bulk load as a replica in steady state would be — VACUUM (ANALYZE), then a
/// CHECKPOINT — so that autovacuum and the checkpointer do not pick it up in the middle of
/// the measurements.
pub async fn settle(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    tracing::info!("VACUUM (ANALYZE) and CHECKPOINT after the bulk load");
    // One statement each: several in one string would run as one transaction block, where
    // VACUUM may not.
    sqlx::raw_sql("VACUUM (ANALYZE)").execute(pool).await?;
    sqlx::raw_sql("CHECKPOINT").execute(pool).await?;
    Ok(())
}

impl Backend {
    pub async fn start(args: &BackendArgs) -> anyhow::Result<Backend> {
        let base = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
        let root = tempfile::Builder::new()
            .prefix("landql-bench-api-")
            .tempdir_in(&base)
            .with_context(|| format!("temporary directory in {}", base.display()))?;
        set_mode(root.path(), 0o711);
        if let (Some(db), Some(ledger)) = (&args.database_url, &args.ledger) {
            return Ok(Backend {
                database_url: db.clone(),
                ledger_url: ledger.clone(),
                records_note: "an existing database and ledger (--database-url, --ledger)".into(),
                root,
                private: None,
            });
        }
        let private = Private::start(root.path(), args.records).await?;
        Ok(Backend {
            database_url: private.database_url.clone(),
            ledger_url: private.ledger_url.clone(),
            records_note: private.note.clone(),
            root,
            private: Some(private),
        })
    }

    /// [`Backend::start`], then a pool on its database once synced, a private one settled
    /// ([`settle`]) for steady-state measurements.
    pub async fn start_settled(args: &BackendArgs) -> anyhow::Result<(Backend, sqlx::PgPool)> {
        let backend = Backend::start(args).await?;
        let pool = migrations::connect(&backend.database_url).await?;
        backend.wait_synced(&pool).await?;
        if backend.private.is_some() {
            settle(&pool).await?;
        }
        Ok((backend, pool))
    }

    /// Waits until every channel's checkpoint is at the ledger's tip.
    pub async fn wait_synced(&self, pool: &sqlx::PgPool) -> anyhow::Result<f64> {
        wait_for_worker(
            &self.ledger_url,
            self.private.as_ref().map(|p| &p.sync),
            pool,
        )
        .await
    }

    /// The private PostgreSQL's postmaster (first line of its postmaster.pid), whose process
    /// tree's CPU the report compares; `None` for an existing database.
    pub fn postmaster_pid(&self) -> Option<u32> {
        let p = self.private.as_ref()?;
        std::fs::read_to_string(p.pg.data_dir().join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    pub async fn stop(self) {
        if let Some(p) = self.private {
            let _ = p.stop_feeding().await.stop().await;
        }
        drop(self.root);
    }
}

/// Waits until `pool` has every block of the ledger at `ledger_url`; fails if `sync` (the
/// worker, when it runs here) stops first.
async fn wait_for_worker(
    ledger_url: &str,
    sync: Option<&tokio::task::JoinHandle<Result<(), sync::SyncError>>>,
    pool: &sqlx::PgPool,
) -> anyhow::Result<f64> {
    let wait = Wait {
        limit: Duration::from_secs(3 * 3600),
        every: Duration::from_millis(200),
        indexes_built: false,
    };
    wait_synced(&Tip::http(ledger_url)?, pool, &wait, || {
        if sync.is_some_and(|s| s.is_finished()) {
            anyhow::bail!("the sync worker stopped");
        }
        Ok(())
    })
    .await
}
