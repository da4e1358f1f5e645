//! A whole read side in one test process, for the tests of the crates above the sync worker
//! (schema, api) and of the binary: a seeded devnet served over HTTP, a private PostgreSQL,
//! the sync worker, a search index, and the schema over them. Everything real.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::Request;
use devnet::seed::{seed, SeedOptions};
use devnet::{DevnetConfig, Node};
use ledger::client::{HttpLedger, Ledger};
use ledger::model::{Proposal, TxKind};
use migrations::{PgPool, PrivatePostgres};
use schema::{Config, LandqlSchema, Services};
use serde_json::{json, Value};
use tempfile::TempDir;

pub const PRIMARY: &str = "land-registry-primary";

/// A devnet node serving its HTTP API on 127.0.0.1; both stop when it is dropped.
pub struct Devnet {
    pub node: Node,
    pub url: String,
    pub dir: TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Devnet {
    /// Stops serving the HTTP API; the node itself keeps running and keeps its data.
    pub fn stop_serving(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        self.stop_serving();
        self.node.stop();
    }
}

/// Seeds a ledger with `records` records (every kind of transaction, invalid ones and
/// documents included; `seed_no` picks which) and serves it.
pub async fn seeded_devnet(records: u64, seed_no: u64) -> Devnet {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let opts = SeedOptions {
            records,
            seed: seed_no,
            ..SeedOptions::default()
        };
        seed(&path, &opts, |_| {}).expect("seeding")
    })
    .await
    .expect("seed task");
    serve_dir(dir).await
}

/// Opens the ledger in `dir` and serves it on 127.0.0.1 (blocks are cut after 5 ms, so
/// live transactions show up quickly).
pub async fn serve_dir(dir: TempDir) -> Devnet {
    let path = dir.path().to_path_buf();
    let cfg = DevnetConfig {
        batch_timeout: Duration::from_millis(5),
        ..DevnetConfig::default()
    };
    let (node, _) = tokio::task::spawn_blocking(move || Node::start(&path, cfg))
        .await
        .expect("start task")
        .expect("starting the node");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(devnet::serve(node.clone(), listener, async move {
        let _ = rx.await;
    }));
    Devnet {
        node,
        url,
        dir,
        stop: Some(tx),
    }
}

/// A throwaway private PostgreSQL with the read model migrated.
pub async fn database() -> (PrivatePostgres, PgPool) {
    let pg = PrivatePostgres::temporary()
        .await
        .expect("private PostgreSQL");
    let pool = migrations::connect(&pg.database_url())
        .await
        .expect("connect");
    migrations::migrate(&pool).await.expect("migrate");
    (pg, pool)
}

pub struct World {
    pub devnet: Devnet,
    pub pg: PrivatePostgres,
    pub pool: PgPool,
    stop_sync: Option<tokio::sync::oneshot::Sender<()>>,
    sync_task: Option<tokio::task::JoinHandle<Result<(), sync::SyncError>>>,
    pub index_dir: TempDir,
    /// The index the schema searches (rebuilt once at the start; run a follower on it, or
    /// rebuild it again, to see later changes).
    pub index: Arc<search_index::SearchIndex>,
    pub services: Services,
    pub schema: LandqlSchema,
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(s) = self.stop_sync.take() {
            let _ = s.send(());
        }
    }
}

/// A world over `records` seeded records, synced and indexed.
pub async fn world(records: u64, config: Config) -> World {
    let devnet = seeded_devnet(records, 7).await;
    let (pg, pool) = database().await;
    let (stop_sync, sync_task) = spawn_sync(&devnet.url, &pg.database_url());
    let started = Instant::now();
    while behind(&devnet.node, &pool).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not synced within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let index_dir = tempfile::tempdir().expect("temp dir");
    let index = Arc::new(search_index::follower::open_or_reset(index_dir.path()).expect("index"));
    search_index::follower::rebuild(&index, &pool)
        .await
        .expect("rebuild");
    let ledger: Arc<dyn Ledger> =
        Arc::new(HttpLedger::new(&devnet.url, Duration::from_secs(2)).expect("client"));
    let services = Services::start(pool.clone(), ledger, Some(index.clone()), config)
        .await
        .expect("services");
    World {
        devnet,
        pool,
        stop_sync: Some(stop_sync),
        sync_task: Some(sync_task),
        schema: schema::build(services.clone()),
        services,
        index_dir,
        index,
        pg,
    }
}

/// Blocks the replica lacks, summed over channels.
async fn behind(node: &Node, pool: &PgPool) -> u64 {
    let cps: Vec<(String, i64)> =
        migrations::sqlx::query_as("SELECT channel, block_number FROM checkpoints")
            .fetch_all(pool)
            .await
            .unwrap_or_default();
    sync::blocks_behind(&node.info(), &cps)
}

fn spawn_sync(
    ledger_url: &str,
    database_url: &str,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), sync::SyncError>>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    // Small batches and a short window: the tests' ledgers are small and their waits short.
    let opts = sync::SyncOptions {
        batch_max_events: 700,
        batch_window: Duration::from_millis(10),
        ..sync::SyncOptions::new(ledger_url, database_url)
    };
    let task = tokio::spawn(sync::run(opts, async move {
        let _ = rx.await;
    }));
    (tx, task)
}

impl World {
    pub fn start_sync(&mut self) {
        let (tx, task) = spawn_sync(&self.devnet.url, &self.pg.database_url());
        self.stop_sync = Some(tx);
        self.sync_task = Some(task);
    }

    pub async fn stop_sync(&mut self) {
        if let Some(s) = self.stop_sync.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.sync_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(20), t).await;
        }
    }

    /// Stops serving the ledger's HTTP API (the node itself keeps its data).
    pub fn stop_ledger(&mut self) {
        self.devnet.stop_serving();
    }

    pub fn ledger(&self) -> HttpLedger {
        HttpLedger::new(&self.devnet.url, Duration::from_secs(10)).expect("client")
    }

    pub async fn wait_synced(&self, limit: Duration) {
        let start = Instant::now();
        while behind(&self.devnet.node, &self.pool).await > 0 {
            assert!(start.elapsed() < limit, "not synced within {limit:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs a query; the response as JSON (`data`, `errors`).
    pub async fn query(&self, q: &str) -> Value {
        self.query_vars(q, json!({})).await
    }

    /// Runs a query as an admin (roles are the API's tests; here every field is open).
    pub async fn query_vars(&self, q: &str, vars: Value) -> Value {
        let req = Request::new(q)
            .variables(async_graphql::Variables::from_json(vars))
            .data(schema::Principal::signed_in(
                schema::Role::Admin,
                "schema-tests",
            ));
        let resp = self.schema.execute(req).await;
        serde_json::to_value(&resp).expect("response serialises")
    }

    /// Runs a query that must succeed; its `data`.
    pub async fn data(&self, q: &str) -> Value {
        let v = self.query(q).await;
        assert!(v.get("errors").is_none(), "query failed: {v}\n{q}");
        v["data"].clone()
    }

    /// The first error's code.
    pub async fn error_code(&self, q: &str) -> (String, String) {
        let v = self.query(q).await;
        let e = &v["errors"][0];
        (
            e["extensions"]["code"]
                .as_str()
                .unwrap_or("<none>")
                .to_string(),
            e["message"].as_str().unwrap_or("").to_string(),
        )
    }

    /// Some property IDs of the replica, in ID order.
    pub async fn ids(&self, n: i64) -> Vec<String> {
        migrations::sqlx::query_scalar("SELECT id FROM properties ORDER BY id LIMIT $1")
            .bind(n)
            .fetch_all(&self.pool)
            .await
            .expect("ids")
    }
}

/// A new record on the primary channel.
pub fn create(tag: &str, i: u64) -> Proposal {
    Proposal {
        kind: TxKind::CreateLandRecord,
        creator: "registrar@TS".into(),
        nonce: format!("{tag}-{i}"),
        args: json!({
            "request_id": format!("{tag}-{i}"), "state": "TS", "district": "Warangal",
            "mandal": "Hanamkonda", "village": "Kazipet", "survey_no": format!("{tag}/{i}"),
            "owners": [{"owner_ref": format!("{tag}-o{i}"), "name": "Ravi Kumar", "share_pct": 100}],
            "area_sq_m": 4047, "area_text": "1 acre", "land_type": "Agricultural", "market_value": 900000
        }),
    }
}

/// A transfer of `id` to a new owner.
pub fn transfer(id: &str, owner: &str, nonce: &str) -> Proposal {
    let state = id
        .parse::<ledger::PropertyId>()
        .map_or("TS".to_string(), |p| p.state().to_string());
    Proposal {
        kind: TxKind::TransferLandRecord,
        creator: format!("registrar@{state}"),
        nonce: nonce.into(),
        args: json!({"property_id": id,
                     "owners": [{"owner_ref": owner, "name": "Lakshmi Devi", "share_pct": 100}]}),
    }
}
