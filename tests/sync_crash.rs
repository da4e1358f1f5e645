//! What must survive (design/targets.md), with real processes: `landql sync` children against
//! an in-process devnet and a private PostgreSQL.
//!
//! - SIGKILL of the worker at random moments during a catch-up, many times, then a run to the
//!   end: the read model equals the ledger record for record, history has no duplicate and
//!   no gap, the change log no gap;
//! - PostgreSQL stopped and restarted mid-sync: the same worker process waits, resumes and
//!   finishes;
//! - two workers: the second waits as hot standby; when the leader is SIGKILLed it takes over
//!   and finishes.

mod sync_support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use migrations::sqlx::PgPool;
use sync_support::*;
use tokio::process::{Child, Command};

/// Starts `landql sync` with small batches, logging to `log`.
fn spawn_sync(ledger_url: &str, database_url: &str, log: &Path) -> Child {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    Command::new(env!("CARGO_BIN_EXE_landql"))
        .args([
            "sync",
            "--ledger",
            ledger_url,
            "--database-url",
            database_url,
            "--batch-max-events",
            "300",
            "--batch-window-ms",
            "20",
            // ~22 000 events: kills land before, during and after a bulk catch-up.
            "--bulk-min-events",
            "2000",
        ])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("log file"))
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .expect("spawning landql sync")
}

async fn kill9(child: &mut Child) {
    child.start_kill().expect("SIGKILL");
    let _ = child.wait().await;
}

/// SIGTERM (graceful shutdown) and wait; the worker must exit 0.
async fn terminate(child: &mut Child, log: &Path) {
    let pid = child.id().expect("running") as libc::pid_t;
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("the worker exits after SIGTERM")
        .expect("wait");
    assert!(
        status.success(),
        "worker exited with {status}:\n{}",
        read_log(log)
    );
}

/// Blocks applied so far, over all channels.
async fn applied(pool: &PgPool) -> i64 {
    checkpoints(pool)
        .await
        .map(|c| c.values().map(|b| b + 1).sum())
        .unwrap_or(0)
}

/// A small xorshift generator for kill moments; its seed is printed.
struct Rand(u64);
impl Rand {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// How often `needle` occurs in the log file.
fn count(log: &Path, needle: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches(needle)
        .count()
}

fn log_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.log"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing_and_applies_nothing_twice() {
    let devnet = seeded_devnet(15_000, 31).await;
    let (pg, pool) = database().await;
    let url = pg.database_url();
    let logs = tempfile::tempdir().unwrap();
    let log = log_path(logs.path(), "sync");
    let total = total_blocks(&devnet.node);
    let indexes = secondary_indexes(&pool).await;

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("kill schedule seed {seed}");
    let mut rng = Rand(seed);
    let mut mid_catch_up = 0;
    let mut progress = Vec::new();
    for round in 0..12 {
        let mut child = spawn_sync(&devnet.url, &url, &log);
        // Kill at a random moment of this worker's writing: after it took the leader lock
        // (connecting and migrating are not what is under test), 0–250 ms into its work
        // (the bulk catch-up applies a few dozen blocks a second even in a debug build).
        let started = Instant::now();
        while count(&log, "leader lock taken") <= round {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no start:\n{}",
                read_log(&log)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.below(250))).await;
        kill9(&mut child).await;
        let at = applied(&pool).await;
        progress.push(at);
        if at < total {
            mid_catch_up += 1;
        }
    }
    println!("blocks applied after each kill (of {total}): {progress:?}");
    if std::env::var_os("SYNC_CRASH_DEBUG").is_some() {
        println!("{}", std::fs::read_to_string(&log).unwrap_or_default());
    }
    assert!(
        mid_catch_up >= 8,
        "most kills must land during the catch-up: {progress:?} of {total}"
    );
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");

    let mut child = spawn_sync(&devnet.url, &url, &log);
    wait_synced(&devnet.node, &pool, Duration::from_secs(120)).await;
    wait_indexes_built(&pool, Duration::from_secs(60)).await;
    assert_matches_ledger(&devnet.node, &pool).await;
    terminate(&mut child, &log).await;
    // Whatever the kills interrupted, every secondary index is back as it was defined.
    let after = secondary_indexes(&pool).await;
    assert_eq!(
        indexes.iter().map(|(n, (d, _))| (n, d)).collect::<Vec<_>>(),
        after.iter().map(|(n, (d, _))| (n, d)).collect::<Vec<_>>()
    );
    assert!(
        count(&log, "secondary indexes dropped") > 0,
        "no bulk catch-up happened:\n{}",
        read_log(&log)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_mid_sync_is_waited_out() {
    let devnet = seeded_devnet(6_000, 32).await;
    let (mut pg, pool) = database().await;
    let url = pg.database_url();
    let logs = tempfile::tempdir().unwrap();
    let log = log_path(logs.path(), "sync");
    let total = total_blocks(&devnet.node);

    let mut child = spawn_sync(&devnet.url, &url, &log);
    wait_for_progress(&pool, &log).await;
    let before = applied(&pool).await;
    pg.stop().await.expect("stopping PostgreSQL");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the worker died with PostgreSQL:\n{}",
        read_log(&log)
    );
    pg.restart().await.expect("restarting PostgreSQL");
    println!("PostgreSQL stopped after {before} of {total} blocks");
    assert!(
        before < total,
        "the catch-up ended before PostgreSQL was stopped"
    );

    wait_synced(&devnet.node, &pool, Duration::from_secs(120)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the worker exited:\n{}",
        read_log(&log)
    );
    assert_matches_ledger(&devnet.node, &pool).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("resuming from the stored checkpoints"),
        "{}",
        read_log(&log)
    );
    terminate(&mut child, &log).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_takes_over_when_the_leader_is_killed() {
    let devnet = seeded_devnet(6_000, 33).await;
    let (pg, pool) = database().await;
    let url = pg.database_url();
    let logs = tempfile::tempdir().unwrap();
    let (log_a, log_b) = (log_path(logs.path(), "a"), log_path(logs.path(), "b"));
    let total = total_blocks(&devnet.node);

    let mut a = spawn_sync(&devnet.url, &url, &log_a);
    wait_for_progress(&pool, &log_a).await;
    let mut b = spawn_sync(&devnet.url, &url, &log_b);
    let started = Instant::now();
    while !std::fs::read_to_string(&log_b)
        .unwrap_or_default()
        .contains("hot standby")
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "B never waited:\n{}",
            read_log(&log_b)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let at_kill = applied(&pool).await;
    kill9(&mut a).await;
    println!("leader killed after {at_kill} of {total} blocks");
    assert!(at_kill < total, "the leader finished before it was killed");

    wait_synced(&devnet.node, &pool, Duration::from_secs(120)).await;
    let text_b = std::fs::read_to_string(&log_b).unwrap();
    assert!(text_b.contains("leader lock taken"), "{}", read_log(&log_b));
    assert_matches_ledger(&devnet.node, &pool).await;
    terminate(&mut b, &log_b).await;
}

/// Blocks on all channels of the node: what a finished catch-up has applied.
fn total_blocks(node: &devnet::Node) -> i64 {
    node.info().channels.iter().map(|c| c.height as i64).sum()
}

/// Waits until the worker writing `log` has applied a couple of blocks.
async fn wait_for_progress(pool: &PgPool, log: &Path) {
    let started = Instant::now();
    while applied(pool).await < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no progress:\n{}",
            read_log(log)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
