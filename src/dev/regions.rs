//! `landql dev --regions TS,AP,KA`: the multi-region layout on one machine — one hot standby
//! of the private PostgreSQL per region, made with `pg_basebackup` and fed by WAL streaming
//! (PostgreSQL's own replication, as in production), and one API node per region reading
//! its region's replica first, the others next, the primary last.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use migrations::{sqlx, PgPool, PrivatePostgres};

/// A region's replica, running.
pub struct RegionReplica {
    pub region: String,
    pub pg: PrivatePostgres,
}

/// `--regions`' names: letters, digits, '-' and '_'.
pub fn parse_region(s: &str) -> Result<String, String> {
    let r = s.trim();
    if r.is_empty()
        || !r
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "\"{r}\" is not a region name: letters, digits, '-' and '_' only"
        ));
    }
    Ok(r.to_string())
}

/// The first region named a second time, if any: every region is named once, whichever
/// flag names it (`dev --regions`, `serve --replica-url`).
pub fn named_twice<'a>(regions: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen = std::collections::BTreeSet::new();
    regions.into_iter().find(|r| !seen.insert(*r))
}

/// Where the API nodes listen: `listen` alone, or one port per region from `listen`'s on.
pub fn api_addresses(listen: SocketAddr, regions: &[String]) -> anyhow::Result<Vec<SocketAddr>> {
    if let Some(r) = named_twice(regions.iter().map(String::as_str)) {
        anyhow::bail!("--regions names {r} twice; name each region once");
    }
    (0..regions.len().max(1))
        .map(|i| {
            let port = u16::try_from(i)
                .ok()
                .and_then(|i| listen.port().checked_add(i))
                .with_context(|| {
                    format!("--listen {listen}: no port {i} above it for the next region")
                })?;
            Ok(SocketAddr::new(listen.ip(), port))
        })
        .collect()
}

/// Starts each region's replica in `data/pg-<region>`, making it with `pg_basebackup` from
/// `primary` the first time.
pub async fn replicas(
    primary: &PrivatePostgres,
    data: &Path,
    regions: &[String],
) -> anyhow::Result<Vec<RegionReplica>> {
    // The private PostgreSQL keeps no replication slot (a forgotten one would hold WAL
    // forever); instead the primary keeps its last GB of WAL, so that a replica stopped
    // with `landql dev` (or killed) can catch up when it starts again.
    let pool = migrations::connect(&primary.database_url()).await?;
    for sql in [
        "ALTER SYSTEM SET wal_keep_size = '1GB'",
        "SELECT pg_reload_conf()",
    ] {
        sqlx::query(sql)
            .execute(&pool)
            .await
            .with_context(|| format!("{sql} on the primary"))?;
    }
    pool.close().await;
    let mut out = Vec::with_capacity(regions.len());
    for region in regions {
        let dir = data.join(format!("pg-{region}"));
        eprintln!("starting the replica of {region} in {}", dir.display());
        let pg = primary
            .replica(&dir)
            .await
            .with_context(|| format!("the replica of {region} in {}", dir.display()))?;
        out.push(RegionReplica {
            region: region.clone(),
            pg,
        });
    }
    Ok(out)
}

/// The databases the node of `home` reads: every region's replica (its own first, by the
/// router's preference) and the primary.
pub async fn databases(
    primary_url: &str,
    replicas: &[RegionReplica],
    home: &str,
    statement_timeout: Duration,
) -> anyhow::Result<schema::Databases> {
    let primary = migrations::connect_for_requests(primary_url, statement_timeout).await?;
    let replicas = replicas
        .iter()
        .map(|r| {
            Ok(schema::Replica {
                region: r.region.clone(),
                pool: migrations::connect_lazy_for_requests(
                    &r.pg.database_url(),
                    statement_timeout,
                    Duration::from_secs(1),
                )?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(schema::Databases {
        primary,
        replicas,
        home: Some(home.to_string()),
    })
}

/// The banner's lines for the regions: each node's URL, its replica and how far that
/// replica trails the primary.
pub async fn banner(
    primary: &PrivatePostgres,
    primary_pool: &PgPool,
    listen: SocketAddr,
    regions: &[String],
    replicas: &[RegionReplica],
) -> String {
    let head: Option<String> = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(primary_pool)
        .await
        .ok();
    let streaming: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
            .fetch_one(primary_pool)
            .await
            .unwrap_or(0);
    let mut out = format!(
        "  regions           {} (primary {}; {streaming} replicas streaming from it)\n",
        regions.join(", "),
        primary.data_dir().display()
    );
    let addresses = api_addresses(listen, regions).unwrap_or_default();
    for ((r, addr), replica) in regions.iter().zip(addresses).zip(replicas) {
        let state = replica_state(&replica.pg, head.as_deref()).await;
        out.push_str(&format!(
            "    {r:<15} API http://{addr}/   replica {} ({state})\n",
            replica.pg.data_dir().display()
        ));
    }
    out
}

/// "streaming, N bytes behind", or what went wrong asking.
async fn replica_state(pg: &PrivatePostgres, head: Option<&str>) -> String {
    let asked = async {
        let pool = migrations::connect(&pg.database_url()).await?;
        let (standby, behind): (bool, Option<f64>) = sqlx::query_as(
            "SELECT pg_is_in_recovery(), \
             pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn())::float8",
        )
        .bind(head)
        .fetch_one(&pool)
        .await?;
        pool.close().await;
        anyhow::Ok((standby, behind))
    };
    match asked.await {
        Ok((true, Some(b))) => format!("hot standby, {} bytes behind", b.max(0.0) as u64),
        Ok((true, None)) => "hot standby".into(),
        Ok((false, _)) => "not a standby".into(),
        Err(e) => format!("not answering: {e:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_port_per_region_each_region_once() {
        let listen: SocketAddr = "127.0.0.1:8080".parse().expect("address");
        let r = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(api_addresses(listen, &[]).expect("one"), vec![listen]);
        let three = api_addresses(listen, &r(&["TS", "AP", "KA"])).expect("three");
        let ports: Vec<u16> = three.iter().map(|a| a.port()).collect();
        assert_eq!(ports, [8080, 8081, 8082]);
        let twice = api_addresses(listen, &r(&["TS", "TS"]))
            .unwrap_err()
            .to_string();
        assert!(twice.contains("names TS twice"), "{twice}");
        let top: SocketAddr = "127.0.0.1:65535".parse().expect("address");
        assert!(api_addresses(top, &r(&["TS", "AP"])).is_err());
        assert!(parse_region("A P").is_err());
        assert_eq!(parse_region(" KA "), Ok("KA".to_string()));
    }
}
