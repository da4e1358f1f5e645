//! Replicas against real servers: a temporary primary and replicas made by `pg_basebackup`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

use crate::private::{
    process_state, read_lock_file, read_stat, PgError, PrivatePostgres, ProcessState,
};

/// How long a row written on the primary may take to show on a replica. Streaming takes
/// milliseconds; the margin is for a loaded two-core machine.
const REPLICATION_WAIT: Duration = Duration::from_secs(30);

async fn connect(pg: &PrivatePostgres) -> PgConnection {
    PgConnection::connect(&pg.database_url()).await.unwrap()
}

async fn execute(pg: &PrivatePostgres, sql: &'static str) {
    let mut conn = connect(pg).await;
    sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

async fn in_recovery(pg: &PrivatePostgres) -> bool {
    let mut conn = connect(pg).await;
    let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    in_recovery
}

/// Polls `pg` until `parcels` holds exactly the ids `want`, in order; returns how long that
/// took. The table itself may not have arrived yet.
async fn wait_for_parcels(pg: &PrivatePostgres, want: &[i32]) -> Duration {
    let started = Instant::now();
    let mut conn = connect(pg).await;
    loop {
        let ids: Result<Vec<i32>, _> = sqlx::query_scalar("SELECT id FROM parcels ORDER BY id")
            .fetch_all(&mut conn)
            .await;
        let last = match ids {
            Ok(ids) if ids == want => break,
            other => format!("{other:?}"),
        };
        assert!(
            started.elapsed() < REPLICATION_WAIT,
            "{} did not get parcels {want:?} in {REPLICATION_WAIT:?}; last: {last}",
            pg.data_dir().display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    conn.close().await.unwrap();
    started.elapsed()
}

/// Polls the primary until `n` walsenders are streaming (not catching up, not backing up).
async fn wait_for_streaming(primary: &PrivatePostgres, n: i64) {
    let started = Instant::now();
    let mut conn = connect(primary).await;
    loop {
        let streaming: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        if streaming == n {
            break;
        }
        assert!(
            started.elapsed() < REPLICATION_WAIT,
            "{streaming} replicas streaming, not {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    conn.close().await.unwrap();
}

/// A temp dir the `postgres` user can enter.
fn open_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn hba_allows_local_replication(data_dir: &Path) -> bool {
    std::fs::read_to_string(data_dir.join("pg_hba.conf"))
        .unwrap()
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .any(|fields| fields == ["local", "replication", "all", "trust"])
}

#[tokio::test]
async fn two_replicas_stream_from_the_primary_survive_a_crash_and_fail_over() {
    let mut primary = PrivatePostgres::temporary().await.unwrap();
    assert!(!primary.is_standby());
    assert!(
        hba_allows_local_replication(primary.data_dir()),
        "initdb -A trust lets the socket's users replicate"
    );
    let mut r1 = primary.temporary_replica().await.unwrap();
    let mut r2 = primary.temporary_replica().await.unwrap();
    assert!(r1.is_standby() && r2.is_standby());
    assert!(r1.is_running() && r2.is_running());
    let urls = [primary.database_url(), r1.database_url(), r2.database_url()];
    assert!(
        urls[0] != urls[1] && urls[1] != urls[2] && urls[0] != urls[2],
        "each its own socket: {urls:?}"
    );
    assert!(!in_recovery(&primary).await);
    assert!(in_recovery(&r1).await && in_recovery(&r2).await);
    // Fed by WAL streaming, from the primary's walsenders.
    wait_for_streaming(&primary, 2).await;
    let mut conn = connect(&r1).await;
    let feedback: String = sqlx::query_scalar("SHOW hot_standby_feedback")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(feedback, "on");
    conn.close().await.unwrap();

    execute(
        &primary,
        "CREATE TABLE parcels (id int PRIMARY KEY, owner text NOT NULL);
         INSERT INTO parcels VALUES (1, 'alice')",
    )
    .await;
    for replica in [&r1, &r2] {
        let took = wait_for_parcels(replica, &[1]).await;
        tracing::info!(took_ms = took.as_millis() as u64, "row replicated");
    }
    let mut conn = connect(&r2).await;
    let owner: String = sqlx::query_scalar("SELECT owner FROM parcels WHERE id = 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(owner, "alice");

    // A standby refuses writes.
    let err = sqlx::query("INSERT INTO parcels VALUES (2, 'mallory')")
        .execute(&mut conn)
        .await
        .unwrap_err();
    let db_err = err.as_database_error().expect("a database error");
    assert_eq!(
        db_err.code().as_deref(),
        Some("25006"),
        "read_only_sql_transaction: {db_err}"
    );
    assert!(db_err.message().contains("read-only"), "{db_err}");
    conn.close().await.unwrap();

    // A crashed replica comes back and catches up with what it missed.
    let pid_file = r1.data_dir().join("postmaster.pid");
    let (pid, _) = read_lock_file(&pid_file).unwrap();
    r1.kill().await.unwrap();
    assert!(!r1.is_running());
    assert_ne!(process_state(pid), ProcessState::Postgres);
    assert!(pid_file.exists(), "a crash leaves its lock file");
    assert!(PgConnection::connect(&r1.database_url()).await.is_err());
    r1.kill().await.unwrap(); // killing a dead server is a no-op
    wait_for_streaming(&primary, 1).await;
    execute(
        &primary,
        "INSERT INTO parcels VALUES (2, 'bob'), (3, 'carol')",
    )
    .await;
    r1.restart().await.unwrap();
    assert!(r1.is_standby());
    assert!(in_recovery(&r1).await);
    wait_for_parcels(&r1, &[1, 2, 3]).await;
    wait_for_streaming(&primary, 2).await;

    // A promoted replica takes writes of its own; the other keeps following the primary.
    r2.promote().await.unwrap();
    assert!(!r2.is_standby());
    assert!(!in_recovery(&r2).await);
    execute(&r2, "INSERT INTO parcels VALUES (100, 'dave')").await;
    wait_for_parcels(&r2, &[1, 2, 3, 100]).await;
    execute(&primary, "INSERT INTO parcels VALUES (4, 'erin')").await;
    wait_for_parcels(&r1, &[1, 2, 3, 4]).await;
    wait_for_parcels(&primary, &[1, 2, 3, 4]).await;

    let err = primary.promote().await.unwrap_err();
    assert!(matches!(err, PgError::NotStandby { .. }), "{err:?}");
    assert!(err.to_string().contains("not a standby"), "{err}");
}

#[tokio::test]
async fn replica_in_a_data_dir_is_reopened_and_outlives_a_crashed_primary() {
    let mut primary = PrivatePostgres::temporary().await.unwrap();
    let dir = open_tempdir();
    let data = dir.path().join("replica");
    let replica = primary.replica(&data).await.unwrap();
    assert_eq!(replica.data_dir(), data);
    assert!(replica.is_standby());
    execute(
        &primary,
        "CREATE TABLE parcels (id int PRIMARY KEY); INSERT INTO parcels VALUES (1)",
    )
    .await;
    wait_for_parcels(&replica, &[1]).await;
    drop(replica);
    assert!(
        data.join("PG_VERSION").exists(),
        "a replica in a data dir stays"
    );

    // Written while the replica is down; a new handle starts the cluster already there
    // (pg_basebackup would refuse the non-empty directory) and it streams what it missed.
    execute(&primary, "INSERT INTO parcels VALUES (2)").await;
    let replica = primary.replica(&data).await.unwrap();
    assert!(replica.is_standby());
    wait_for_parcels(&replica, &[1, 2]).await;

    // The primary crashes and comes back: the replica reconnects by itself.
    primary.kill().await.unwrap();
    primary.restart().await.unwrap();
    execute(&primary, "INSERT INTO parcels VALUES (3)").await;
    wait_for_parcels(&replica, &[1, 2, 3]).await;
    assert!(in_recovery(&replica).await);

    let err = primary.replica(primary.data_dir()).await.unwrap_err();
    assert!(matches!(err, PgError::SameDataDir { .. }), "{err:?}");
    assert!(primary.is_running());
    wait_for_parcels(&primary, &[1, 2, 3]).await;
}

#[tokio::test]
async fn base_backup_of_a_stopped_primary_fails_with_its_stderr() {
    let mut primary = PrivatePostgres::temporary().await.unwrap();
    primary.stop().await.unwrap();
    let dir = open_tempdir();
    let data = dir.path().join("replica");
    let err = primary.replica(&data).await.unwrap_err();
    let PgError::Command {
        program, detail, ..
    } = &err
    else {
        panic!("expected a command error, got {err:?}");
    };
    assert_eq!(program, "pg_basebackup");
    assert!(detail.contains("pg_basebackup: error"), "{detail}");
    assert!(detail.contains("connection to server"), "{detail}");
    assert!(
        !data.join("PG_VERSION").exists(),
        "nothing half-copied is taken for a cluster next time"
    );

    // Once the primary is back, the same directory makes a replica.
    primary.restart().await.unwrap();
    let replica = primary.replica(&data).await.unwrap();
    assert!(in_recovery(&replica).await);
}

#[test]
fn reads_the_parent_from_proc_stat() {
    let stat = read_stat(std::process::id() as i32).unwrap();
    // SAFETY: getppid has no preconditions.
    assert_eq!(stat.ppid, unsafe { libc::getppid() });
    assert!(matches!(stat.state, 'R' | 'S'), "{}", stat.state);
    assert!(read_stat(i32::MAX).is_none());
}
