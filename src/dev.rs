//! `landql dev`: the whole system in one process for a newcomer — a private PostgreSQL, the
//! devnet ledger seeded with demo records and its HTTP API, the sync worker, the search
//! index follower and the GraphQL API — wired from the crates, with progress while it seeds
//! and catches up. With `--regions`, the multi-region layout on one machine (`regions`).

mod regions;

pub use regions::{named_twice, parse_region};

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(clap::Args)]
pub struct DevArgs {
    /// Demo records to seed into a new ledger.
    #[arg(long, default_value_t = 20_000)]
    records: u64,
    /// Address of the GraphQL API, its pages, health and metrics.
    #[arg(long, env = "LANDQL_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Address of the devnet ledger's HTTP API (and its metrics, at /metrics).
    #[arg(long, env = "LANDQL_LEDGER_LISTEN", default_value = "127.0.0.1:7050")]
    ledger_listen: SocketAddr,
    /// Address of the sync worker's metrics (/metrics), as `landql sync --metrics-listen`.
    #[arg(
        long,
        env = "LANDQL_SYNC_METRICS_LISTEN",
        default_value = "127.0.0.1:9101"
    )]
    sync_metrics_listen: SocketAddr,
    /// Where the ledger and the private PostgreSQL keep their data.
    #[arg(long, env = "LANDQL_DATA", default_value = ".landql")]
    data: PathBuf,
    /// A database to use instead of the private PostgreSQL.
    #[arg(long, env = "DATABASE_URL", conflicts_with = "regions")]
    database_url: Option<String>,
    /// Run several regions, e.g. TS,AP,KA: one streaming replica of the private PostgreSQL
    /// per region (pg_basebackup) and one API node per region reading it, on --listen's
    /// port and the ones after it; a standby sync worker beside the leader.
    #[arg(long, value_delimiter = ',', value_parser = regions::parse_region)]
    regions: Vec<String>,
    /// Records with owner names an anonymous client may list a day, or `off`, as
    /// `landql serve --anonymous-list-quota`.
    #[arg(
        long,
        env = "LANDQL_ANONYMOUS_LIST_QUOTA",
        default_value = "5000",
        value_parser = crate::serve::parse_list_quota
    )]
    anonymous_list_quota: crate::serve::ListQuota,
    /// A reverse proxy whose X-Forwarded-For names the client, as `landql serve
    /// --trusted-proxy` (for a local proxy in front of the pages, or a test that acts as
    /// several clients).
    #[arg(
        long = "trusted-proxy",
        env = "LANDQL_TRUSTED_PROXY",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<api::TrustedProxies>,
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

pub async fn run(
    args: DevArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    // Settings first: a region named twice fails before anything starts.
    regions::api_addresses(args.listen, &args.regions)?;
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("creating {}", args.data.display()))?;
    let data = std::fs::canonicalize(&args.data)?;

    // 1. PostgreSQL: the private one unless a database was named.
    let mut private = None;
    let database_url = match &args.database_url {
        Some(url) => url.clone(),
        None => {
            eprintln!(
                "starting a private PostgreSQL in {}",
                data.join("pg").display()
            );
            let pg = migrations::PrivatePostgres::start(&data.join("pg")).await?;
            let url = pg.database_url();
            private = Some(pg);
            url
        }
    };
    let pool = migrations::connect(&database_url).await?;
    migrations::migrate(&pool).await?;

    // 2. The ledger: seeded once, then opened.
    let ledger_dir = data.join("ledger");
    let seeded = ledger_dir.join("channels").exists();
    if !seeded {
        let pb = bar(args.records, "seeding");
        let opts = devnet::seed::SeedOptions {
            records: args.records,
            ..Default::default()
        };
        let dir = ledger_dir.clone();
        let pb2 = pb.clone();
        let report = tokio::task::spawn_blocking(move || {
            devnet::seed::seed(&dir, &opts, |done| pb2.set_position(done))
        })
        .await??;
        pb.finish_with_message("seeded");
        eprintln!(
            "seeded {} records in {} transactions ({} invalid, for realism)",
            report.records, report.transactions, report.invalid
        );
    }
    let dir = ledger_dir.clone();
    let (node, _) = tokio::task::spawn_blocking(move || {
        devnet::Node::start(&dir, devnet::DevnetConfig::default())
    })
    .await??;
    let listener = tokio::net::TcpListener::bind(args.ledger_listen)
        .await
        .with_context(|| format!("listening on {} for the ledger", args.ledger_listen))?;
    // Bound now, served once the replica has caught up: a port in use fails before the wait.
    let mut api_listeners = Vec::new();
    for addr in regions::api_addresses(args.listen, &args.regions)? {
        api_listeners.push(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr} for the API"))?,
        );
    }
    let ledger_url = format!("http://{}", args.ledger_listen);
    let heights: u64 = node.info().channels.iter().map(|c| c.height).sum();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut stopped = stop_rx.clone();
    let ledger_task = tokio::spawn(devnet::serve(node, listener, async move {
        let _ = stopped.wait_for(|s| *s).await;
    }));

    // 3. The sync worker, with a bar until it has caught up.
    let mut stopped = stop_rx.clone();
    let sync_opts = sync::SyncOptions {
        metrics_listen: Some(args.sync_metrics_listen),
        ..sync::SyncOptions::new(&ledger_url, &database_url)
    };
    let standby_opts = sync::SyncOptions {
        metrics_listen: None,
        ..sync_opts.clone()
    };
    let sync_task = tokio::spawn(sync::run(sync_opts, async move {
        let _ = stopped.wait_for(|s| *s).await;
    }));
    // With regions, a standby worker waits to take over should the leader stop.
    let standby = (!args.regions.is_empty()).then(|| {
        let mut stopped = stop_rx.clone();
        tokio::spawn(sync::run(standby_opts, async move {
            let _ = stopped.wait_for(|s| *s).await;
        }))
    });
    let pb = bar(heights, "syncing");
    loop {
        let done: i64 = migrations::sqlx::query_scalar(
            "SELECT coalesce(sum(block_number + 1), 0)::bigint FROM checkpoints",
        )
        .fetch_one(&pool)
        .await
        .unwrap_or(0);
        pb.set_position(done.max(0) as u64);
        if done as u64 >= heights || sync_task.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    pb.finish_with_message("in sync");

    // 4. With regions, a streaming replica of the private PostgreSQL per region.
    let replicas = match &private {
        Some(pg) if !args.regions.is_empty() => regions::replicas(pg, &data, &args.regions).await?,
        _ => Vec::new(),
    };

    // 5. The API (one node per region): its index follower and the GraphQL API. Tokens: a
    //    random HS256 secret for this session only, and example tokens for two roles, so
    //    the signed-in fields can be tried from the pages right away.
    let secret = api::auth::random_secret();
    let day = Duration::from_secs(24 * 3600);
    let citizen =
        api::auth::issue_hs256(secret.as_bytes(), schema::Role::Citizen, "dev-citizen", day)?;
    let registrar = api::auth::issue_hs256(
        secret.as_bytes(),
        schema::Role::Registrar,
        "dev-registrar",
        day,
    )?;
    let opts = api::Options {
        auth: api::Auth::hs256(secret.as_bytes(), api::TokenRules::default())?,
        anonymous_list_quota: args.anonymous_list_quota.0,
        trusted_proxies: args.trusted_proxies.iter().cloned().collect(),
        ..api::Options::default()
    };
    let mut api_tasks = Vec::new();
    let mut followers = Vec::new();
    let mut index_dirs = Vec::new();
    for (i, api_listener) in api_listeners.into_iter().enumerate() {
        let region = args.regions.get(i);
        let index_dir = match region {
            None => data.join("index"),
            Some(r) => data.join(format!("index-{r}")),
        };
        // The follower rebuilds from `properties` when needed, then follows the change log.
        let index = std::sync::Arc::new(
            search_index::follower::open_or_reset(&index_dir)
                .with_context(|| format!("opening the search index in {}", index_dir.display()))?,
        );
        // A region's index follows its own replica's change log, woken by the primary;
        // while that replica is down, the other regions' and then the primary's.
        let (follow, fallbacks, wake) = match replicas.get(i) {
            Some(r) => {
                let within = |r: &regions::RegionReplica| {
                    migrations::connect_lazy_within(&r.pg.database_url(), Duration::from_secs(1))
                };
                let mut others = replicas
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, r)| within(r))
                    .collect::<Result<Vec<_>, _>>()?;
                others.push(pool.clone());
                (within(r)?, others, Some(pool.clone()))
            }
            None => (pool.clone(), Vec::new(), None),
        };
        let mut stopped = stop_rx.clone();
        followers.push(tokio::spawn(search_index::follower::follow(
            index.clone(),
            follow,
            search_index::follower::FollowOptions {
                wake,
                fallbacks,
                ..Default::default()
            },
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            },
        )));
        index_dirs.push(index_dir);
        let reads = match region {
            None => schema::Databases::primary_only(
                migrations::connect_for_requests(&database_url, opts.request_timeout).await?,
            ),
            Some(home) => {
                regions::databases(&database_url, &replicas, home, opts.request_timeout).await?
            }
        };
        let ledger_client = ledger::client::HttpLedger::new(&ledger_url, Duration::from_secs(2))
            .context("ledger client")?;
        let services = schema::Services::start_routed(
            reads,
            pool.clone(),
            std::sync::Arc::new(ledger_client),
            Some(index),
            schema::Config::default(),
        )
        .await
        .context("starting the API services")?;
        let router = api::router(api::schema(services.clone(), &opts), services, opts.clone());
        let mut stopped = stop_rx.clone();
        api_tasks.push(tokio::spawn(api::serve(api_listener, router, async move {
            let _ = stopped.wait_for(|s| *s).await;
        })));
    }

    let api = format!("http://{}", args.listen);
    let ws = format!("ws://{}", args.listen);
    // The banner goes out in one write, and a stdout that is gone (`landql dev | head`, a
    // test that stopped reading) is not a reason to stop the system, as a `println!` that
    // panics on the broken pipe would.
    let index = index_dirs[0].display();
    let sync_metrics = args.sync_metrics_listen;
    let regions = match &private {
        Some(pg) if !args.regions.is_empty() => {
            regions::banner(pg, &pool, args.listen, &args.regions, &replicas).await
        }
        _ => String::new(),
    };
    let banner = format!(
        "
landql dev is running (Ctrl-C stops it):
  pages             {api}/   (search {api}/search, verify {api}/verify)
  GraphiQL          {api}/graphiql
  GraphQL           POST {api}/graphql   (JSON: {{\"query\": …}})
                    GET  {api}/graphql?query=…   (queries only)
                    WS   {ws}/graphql   (subscriptions, graphql-transport-ws)
  health            {api}/healthz   ready: {api}/readyz
  metrics           API {api}/metrics   sync http://{sync_metrics}/metrics   ledger {ledger_url}/metrics
  ledger HTTP API   {ledger_url}/v1/info   (landql load --ledger {ledger_url})
  PostgreSQL        {database_url}
  tokens (24 h; paste into GraphiQL's headers or a page's token box, or send
          Authorization: Bearer <token>; this session's secret is random):
    citizen         {citizen}
    registrar       {registrar}
  search index      {index}   (landql search \"ravi kumar\" --index-dir {index})
{regions}
"
    );
    let mut out = std::io::stdout();
    if let Err(e) = out.write_all(banner.as_bytes()).and_then(|()| out.flush()) {
        tracing::warn!(error = %e, "could not print the URLs to standard output");
    }

    let result = tokio::select! {
        () = shutdown => Ok(()),
        r = sync_task => match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(anyhow::Error::from(e)),
            Err(e) => Err(e.into()),
        },
    };
    tracing::info!("stopping");
    let _ = stop_tx.send(true);
    for task in api_tasks {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "API"),
            Err(e) => tracing::error!(error = %e, "API task"),
        }
    }
    let _ = ledger_task.await;
    if let Some(standby) = standby {
        let _ = standby.await;
    }
    for follower in followers {
        if let Ok(Err(e)) = follower.await {
            tracing::error!(error = %e, "search index follower");
        }
    }
    // Replicas first: a primary stopped before its standbys makes them wait for it.
    for mut pg in replicas.into_iter().map(|r| r.pg).rev() {
        pg.stop().await?;
    }
    if let Some(mut pg) = private {
        pg.stop().await?;
    }
    result
}
