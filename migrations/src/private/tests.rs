use std::os::unix::fs::{MetadataExt, PermissionsExt};

use sqlx::{Connection, PgConnection};

use super::*;

/// A temp dir the `postgres` user can enter.
fn open_tempdir() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn quick() -> PgOptions {
    PgOptions {
        durable: false,
        ..PgOptions::from_env()
    }
}

fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

async fn connect(pg: &PrivatePostgres) -> PgConnection {
    PgConnection::connect(&pg.database_url()).await.unwrap()
}

#[test]
fn settings_are_sized_for_the_machine() {
    let gib = 1024 * MIB;
    assert_eq!(
        shared_buffers(None),
        128 * MIB,
        "unknown memory: the default"
    );
    assert_eq!(
        shared_buffers(Some(gib)),
        128 * MIB,
        "never below the default"
    );
    assert_eq!(shared_buffers(Some(8 * gib)), 512 * MIB);
    assert_eq!(shared_buffers(Some(24 * gib)), gib, "at most 1 GB");
    let settings = sized_for(Some(8 * gib));
    assert!(settings.contains("shared_buffers=512MB"), "{settings}");
    assert!(settings.contains("max_wal_size=4GB"), "{settings}");
}

#[tokio::test]
async fn temporary_cluster_serves_landql_and_is_removed_on_drop() {
    let pg = PrivatePostgres::temporary().await.unwrap();
    let data_dir = pg.data_dir().to_path_buf();
    let mut conn = connect(&pg).await;
    let (database, user): (String, String) =
        sqlx::query_as("SELECT current_database(), current_user::text")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!((database.as_str(), user.as_str()), (DATABASE, SUPERUSER));
    let listen: String = sqlx::query_scalar("SHOW listen_addresses")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(listen, "", "no TCP listener");
    // Sized for the machine, not PostgreSQL's small defaults (see `sized_for`).
    let max_wal: String = sqlx::query_scalar("SHOW max_wal_size")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(max_wal, "4GB");
    let shared: i64 = sqlx::query_scalar(
        "SELECT setting::bigint * 8192 FROM pg_settings WHERE name = 'shared_buffers'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(shared as u64, shared_buffers(total_memory_bytes()));
    if is_root() {
        let owner = std::fs::metadata(&data_dir).unwrap().uid();
        assert_ne!(owner, 0, "as root the cluster belongs to the postgres user");
    }
    conn.close().await.unwrap();
    drop(pg);
    assert!(!data_dir.exists(), "{} left behind", data_dir.display());
}

#[tokio::test]
async fn stop_and_restart_keep_the_data_and_the_url() {
    let dir = open_tempdir();
    let data = dir.path().join("pg");
    let mut pg = PrivatePostgres::start_with(&data, quick()).await.unwrap();
    assert_eq!(pg.data_dir(), data);
    let url = pg.database_url();
    let mut conn = connect(&pg).await;
    sqlx::raw_sql("CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    pg.stop().await.unwrap();
    assert!(!pg.is_running());
    assert!(
        PgConnection::connect(&url).await.is_err(),
        "server should be down"
    );
    pg.stop().await.unwrap(); // stopping twice is fine

    pg.restart().await.unwrap();
    assert_eq!(pg.database_url(), url);
    let mut conn = connect(&pg).await;
    let n: i32 = sqlx::query_scalar("SELECT n FROM kept")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 42);
    conn.close().await.unwrap();
    drop(pg);

    // A new handle on the same directory reuses the cluster (no second initdb).
    let pg = PrivatePostgres::start_with(&data, quick()).await.unwrap();
    let mut conn = connect(&pg).await;
    let n: i32 = sqlx::query_scalar("SELECT n FROM kept")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 42);
    conn.close().await.unwrap();
}

#[tokio::test]
async fn long_data_dir_gets_a_short_socket_dir() {
    let dir = open_tempdir();
    let mut data = dir.path().to_path_buf();
    for part in ["a".repeat(40), "b".repeat(40), "c".repeat(40)] {
        data.push(part);
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    data.push("pg");
    assert!(data.as_os_str().len() + "/.s.PGSQL.5432".len() > MAX_SOCKET_PATH);
    let pg = PrivatePostgres::start_with(&data, quick()).await.unwrap();
    assert_eq!(pg.data_dir(), data);
    let url = pg.database_url();
    assert!(
        !url.contains("aaaa"),
        "socket must not be under the long path: {url}"
    );
    let mut conn = connect(&pg).await;
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    conn.close().await.unwrap();
}

#[tokio::test]
async fn missing_binaries_fail_with_one_sentence_naming_the_package() {
    let empty = tempfile::tempdir().unwrap();
    let dir = open_tempdir();
    let options = PgOptions {
        bin_dir: Some(empty.path().to_path_buf()),
        durable: false,
    };
    let err = PrivatePostgres::start_with(&dir.path().join("pg"), options)
        .await
        .unwrap_err();
    assert!(matches!(err, PgError::BinariesNotFound { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("postgresql-15"), "{message}");
    assert!(!message.contains('\n'), "{message}");
    assert_eq!(message.matches("; ").count(), 1, "one sentence: {message}");
    assert!(
        !dir.path().join("pg").exists(),
        "nothing created before the binaries are found"
    );
}

/// A postmaster killed with SIGKILL leaves its postmaster.pid; the next start must work.
#[tokio::test]
async fn killed_server_does_not_block_the_next_start() {
    let dir = open_tempdir();
    let data = dir.path().join("pg");
    let mut pg = PrivatePostgres::start_with(&data, quick()).await.unwrap();
    let (pid, _) = read_lock_file(&data.join("postmaster.pid")).unwrap();
    // SAFETY: plain syscall on a pid we just read from the server's own lock file.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    // Wait until the postmaster is gone (its backends follow on their own).
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_state(pid) == ProcessState::Postgres && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        data.join("postmaster.pid").exists(),
        "the lock file stays behind"
    );
    let started = Instant::now();
    pg.restart().await.unwrap();
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "restart after SIGKILL"
    );
    let mut conn = connect(&pg).await;
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    conn.close().await.unwrap();
}

/// A lock file whose pid now belongs to an unrelated live process (pid reuse after a
/// reboot or in a container) must not stop the start either.
#[tokio::test]
async fn lock_file_naming_a_reused_pid_does_not_block_the_start() {
    let dir = open_tempdir();
    let data = dir.path().join("pg");
    let mut pg = PrivatePostgres::start_with(&data, quick()).await.unwrap();
    let pid_file = data.join("postmaster.pid");
    let (_, contents) = read_lock_file(&pid_file).unwrap();
    pg.stop().await.unwrap();
    assert!(!pid_file.exists());
    // Our own pid: alive, and not a postgres.
    let rest = contents.split_once('\n').unwrap().1;
    std::fs::write(&pid_file, format!("{}\n{rest}", std::process::id())).unwrap();
    pg.restart().await.unwrap();
    let mut conn = connect(&pg).await;
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    conn.close().await.unwrap();
}

/// As root, a data directory the postgres user cannot reach (here: under a 0700 root-owned
/// directory) moves to a private directory under the system temp dir.
#[tokio::test]
async fn unreachable_data_dir_falls_back_to_the_temp_dir() {
    if !is_root() {
        eprintln!("skipped: only root hands the cluster to another user");
        return;
    }
    let locked = tempfile::tempdir().unwrap();
    std::fs::set_permissions(locked.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let requested = locked.path().join("pg");
    let pg = PrivatePostgres::start_with(&requested, quick())
        .await
        .unwrap();
    let fallback = pg.data_dir().to_path_buf();
    assert_ne!(fallback, requested);
    assert!(
        fallback.starts_with(std::env::temp_dir()),
        "{}",
        fallback.display()
    );
    let mut conn = connect(&pg).await;
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    conn.close().await.unwrap();
    drop(pg);
    // The same request finds the same fallback (and its cluster) again.
    let pg = PrivatePostgres::start_with(&requested, quick())
        .await
        .unwrap();
    assert_eq!(pg.data_dir(), fallback);
    drop(pg);
    std::fs::remove_dir_all(&fallback).unwrap();
}

#[test]
fn socket_dir_rules() {
    assert!(socket_dir_fits(Path::new("/tmp/landql-pg-abc123/data")));
    assert!(!socket_dir_fits(Path::new("/tmp/with space")));
    assert!(!socket_dir_fits(Path::new(&format!("/{}", "x".repeat(93)))));
    assert!(socket_dir_fits(Path::new(&format!("/{}", "x".repeat(92)))));
}
