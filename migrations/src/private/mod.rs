//! A private PostgreSQL server, started from the installed server binaries.
//!
//! `landql dev` and every test need a database without asking the user to set one up. This
//! module runs a cluster of their own: `initdb` once into a data directory, `postgres`
//! listening on a unix socket only (no TCP port to collide on, no network exposure), and the
//! `landql` database created in it. The same handle stops and starts the server again on the
//! same data directory and socket, so tests can take PostgreSQL away mid-sync and bring it
//! back while pools keep their URL.
//!
//! Traps handled here (see `design/system.md`, "The private PostgreSQL"):
//! - as root, the server runs as the `postgres` system user (it drops to its uid/gid);
//! - that user must reach the data directory through every parent, else we fall back to a
//!   private directory under the system temp dir and say so;
//! - a unix socket path may not exceed 107 bytes, so a long data directory gets its socket
//!   in a short directory under the system temp dir;
//! - a `postmaster.pid` left by a killed server must not stop the next start.
//!
//! # Replicas
//!
//! [`PrivatePostgres::replica`] and [`PrivatePostgres::temporary_replica`] make a streaming
//! replica of a running cluster, so that `landql dev` and the tests can exercise the
//! primary/replica split (writes to the primary, reads from replicas that lag behind it)
//! against the real thing. They use only PostgreSQL's own machinery: `pg_basebackup -X
//! stream -R` copies the primary through the replication protocol on its unix socket and
//! writes `standby.signal` and `primary_conninfo`, and the copy then runs as a hot standby
//! fed by WAL streaming from the primary's walsender. There is no replication of our own
//! (no trigger, no copying of rows, no polling of the primary) that could differ from what
//! a production replica does: lag, read-only errors, conflicts with recovery and promotion
//! behave as they would there. PostgreSQL 15's defaults suffice (`wal_level = replica`,
//! `max_wal_senders = 10`, and `initdb`'s `pg_hba.conf` has `local replication all trust`);
//! a standby is started with `hot_standby_feedback = on`, so that the primary's vacuum
//! does not remove rows its queries still read (which would have recovery cancel them).
//! Each replica takes one of the ten walsenders (`pg_basebackup` two more while it copies).
//! No replication slot is kept (a forgotten slot would hold the primary's WAL forever): a
//! replica that is down while its primary removes WAL it has not received yet (at a
//! checkpoint: every 15 minutes or 4 GB of WAL here, at shutdown, and for each new
//! replica's base backup) cannot catch up and must be made again.
//! [`PrivatePostgres::promote`] turns a replica into a primary, and
//! [`PrivatePostgres::kill`] crashes any cluster, for failure tests.

mod account;
mod binaries;
mod replica;

use std::io;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};
use tempfile::TempDir;

use account::Account;
use binaries::{Binaries, SERVER_PACKAGE};

/// The database landql keeps its read model in, created on first start.
pub const DATABASE: &str = "landql";

/// The superuser `initdb` creates; connections authenticate as it (trust, socket only).
const SUPERUSER: &str = "postgres";

/// The port only names the socket file (`.s.PGSQL.5432`); nothing listens on TCP.
const PORT: u16 = 5432;

/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// How long `pg_ctl` may take to start or stop the server on a loaded, shared machine.
const PG_CTL_TIMEOUT_SECS: u32 = 120;

/// How long to keep retrying the first connection after `pg_ctl` says the server is ready.
const CONNECT_WAIT: Duration = Duration::from_secs(30);

/// The log file `pg_ctl` points the server's output at, inside the data directory.
const LOG_FILE: &str = "landql-server.log";

/// The file whose presence makes the server start as a standby.
const STANDBY_SIGNAL: &str = "standby.signal";

const MIB: u64 = 1 << 20;

/// Server settings for a machine with `ram` bytes of memory (`None`: unknown). PostgreSQL's
/// defaults suit a small shared host: 128 MB of shared buffers and a checkpoint after every
/// 1 GB of WAL. The sync worker's catch-up writes a million properties with eight indexes
/// and their history; with the defaults the indexes outgrow the buffers, backends write
/// dirty pages themselves, and checkpoints every few seconds make each first change of a
/// page log the whole page again. So: a sixteenth of the memory for shared buffers (at least
/// the default, at most 1 GB — a newcomer's laptop runs an editor and a browser beside it),
/// checkpoints at most every 4 GB of WAL or 15 minutes, and room for index builds. Memory
/// not touched is not used: an idle test cluster stays small whatever the setting.
fn sized_for(ram: Option<u64>) -> String {
    let shared = shared_buffers(ram);
    format!(
        " -c shared_buffers={}MB -c max_wal_size=4GB -c min_wal_size=256MB \
         -c checkpoint_timeout=15min -c maintenance_work_mem=256MB",
        shared / MIB
    )
}

/// Shared buffers for a machine with `ram` bytes, in bytes (see [`sized_for`]).
fn shared_buffers(ram: Option<u64>) -> u64 {
    ram.map_or(128 * MIB, |ram| (ram / 16).clamp(128 * MIB, 1024 * MIB))
}

/// `MemTotal` from `/proc/meminfo`, in bytes.
fn total_memory_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Why a private PostgreSQL could not be set up, started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// No `initdb`/`pg_ctl`/`postgres` found; says which package to install.
    #[error(
        "no PostgreSQL server binaries (initdb, pg_ctl, postgres) were found in {searched}; \
         install the Debian package {SERVER_PACKAGE} (apt-get install {SERVER_PACKAGE}) \
         or set LANDQL_PG_BIN_DIR to their directory"
    )]
    BinariesNotFound {
        /// Where we looked.
        searched: String,
    },
    /// No `pg_basebackup` of the server's major version, which replicas are made with.
    #[error(
        "no pg_basebackup of PostgreSQL {major} was found in {searched}; install the Debian \
         package postgresql-client-{major} (apt-get install postgresql-client-{major})"
    )]
    BasebackupNotFound {
        /// Where we looked.
        searched: String,
        /// The server's major version.
        major: u32,
    },
    /// Running as root, but there is no unprivileged user to run the server as.
    #[error(
        "PostgreSQL refuses to run as root and there is no `{user}` system user to run it as; \
         install the Debian package {package}, which creates it, or run landql as another user"
    )]
    NoServerUser {
        /// The user looked for.
        user: &'static str,
        /// The package that creates it.
        package: &'static str,
    },
    /// The data directory holds a cluster of another major version than the binaries.
    #[error(
        "the cluster in {data_dir} was made by PostgreSQL {cluster}, but the server binaries \
         found are PostgreSQL {binaries}; install postgresql-{cluster} or use another data \
         directory"
    )]
    VersionMismatch {
        /// The data directory.
        data_dir: PathBuf,
        /// Major version in its `PG_VERSION`.
        cluster: u32,
        /// Major version of the binaries.
        binaries: u32,
    },
    /// A file system operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What we were doing.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// `initdb`, `pg_ctl` or `pg_basebackup` exited with an error.
    #[error("{program} failed ({status}): {detail}")]
    Command {
        /// The program and its verb, e.g. `pg_ctl start`, `pg_basebackup`.
        program: String,
        /// Its exit status.
        status: String,
        /// Its stderr, and the end of the server log when there is one.
        detail: String,
    },
    /// [`PrivatePostgres::promote`] on a cluster that is not a standby.
    #[error("the cluster in {} is not a standby (it has no standby.signal); only a replica can be promoted", data_dir.display())]
    NotStandby {
        /// The cluster's data directory.
        data_dir: PathBuf,
    },
    /// [`PrivatePostgres::replica`] was given the primary's own data directory.
    #[error("a replica needs a data directory of its own, not its primary's ({})", data_dir.display())]
    SameDataDir {
        /// The primary's data directory.
        data_dir: PathBuf,
    },
    /// The server started but did not accept connections in time, or creating the
    /// `landql` database failed.
    #[error("the private PostgreSQL on {} is not usable: {source}", socket_dir.display())]
    Connect {
        /// The socket directory we connected to.
        socket_dir: PathBuf,
        /// The last error.
        source: sqlx::Error,
    },
}

/// How to start a private PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Look for `initdb`, `pg_ctl` and `postgres` only in this directory. `None`: `PATH`,
    /// then `/usr/lib/postgresql/*/bin`, newest first.
    pub bin_dir: Option<PathBuf>,
    /// `true`: fsync on, as a database should be. `false` (throwaway clusters): skip fsync
    /// in `initdb` and the server, which makes tests several times faster and loses nothing
    /// unless the machine itself crashes.
    pub durable: bool,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            bin_dir: None,
            durable: true,
        }
    }
}

impl PgOptions {
    /// The defaults, with `bin_dir` from `LANDQL_PG_BIN_DIR` when that is set and not empty.
    pub fn from_env() -> Self {
        let bin_dir = std::env::var_os("LANDQL_PG_BIN_DIR")
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from);
        PgOptions {
            bin_dir,
            ..PgOptions::default()
        }
    }
}

/// A PostgreSQL server of our own on a data directory, reachable through a unix socket.
///
/// Dropping the handle stops the server (fast shutdown) and, for [`temporary`] clusters
/// and [`temporary_replica`]s, removes their files. A replica's handle is independent of
/// its primary's; a replica whose primary is gone keeps serving what it has and retries
/// the connection until the primary is back.
///
/// [`temporary`]: PrivatePostgres::temporary
/// [`temporary_replica`]: PrivatePostgres::temporary_replica
#[derive(Debug)]
pub struct PrivatePostgres {
    bins: Binaries,
    account: Account,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    durable: bool,
    running: bool,
    // Declared after everything the running server uses: `Drop::drop` stops the server
    // first, then these remove the socket directory and the throwaway cluster.
    _socket_tmp: Option<TempDir>,
    _temp_root: Option<TempDir>,
}

impl PrivatePostgres {
    /// Starts (creating on first use) a cluster in `data_dir`, with the binaries found on
    /// `PATH` or in `/usr/lib/postgresql/*/bin` (or `LANDQL_PG_BIN_DIR`).
    pub async fn start(data_dir: &Path) -> Result<Self, PgError> {
        Self::start_with(data_dir, PgOptions::from_env()).await
    }

    /// [`start`](Self::start) with explicit options.
    pub async fn start_with(data_dir: &Path, options: PgOptions) -> Result<Self, PgError> {
        Self::open(data_dir, options, None).await
    }

    /// A throwaway cluster in its own directory under the system temp dir, removed when the
    /// handle is dropped. Not durable (see [`PgOptions::durable`]). Every call gets its own
    /// directories, so tests may run them in parallel.
    pub async fn temporary() -> Result<Self, PgError> {
        let root = temp_root(&Account::detect()?)?;
        let data_dir = root.path().join("data");
        let options = PgOptions {
            durable: false,
            ..PgOptions::from_env()
        };
        Self::open(&data_dir, options, Some(root)).await
    }

    /// A URL for the `landql` database that sqlx and libpq understand, with the socket
    /// directory as `host`. It stays valid across [`stop`](Self::stop) and
    /// [`restart`](Self::restart).
    pub fn database_url(&self) -> String {
        // The socket directory is made of URL-safe characters (see `choose_socket_dir`).
        format!(
            "postgres://{SUPERUSER}@localhost:{PORT}/{DATABASE}?host={}",
            self.socket_dir.display()
        )
    }

    /// The cluster's data directory: the one asked for, or the fallback under the system
    /// temp dir when the server user could not reach it.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Whether the server is up (as far as this handle knows).
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Whether the cluster is a standby: its data directory holds `standby.signal`, which
    /// `pg_basebackup -R` writes for a [`replica`](Self::replica) and the server removes
    /// when it is [promoted](Self::promote). Answers from the files, running or not.
    pub fn is_standby(&self) -> bool {
        self.data_dir.join(STANDBY_SIGNAL).exists()
    }

    /// Stops the server with a fast shutdown (open sessions are rolled back and
    /// disconnected) and waits until it is gone. Stopping a stopped server is a no-op.
    pub async fn stop(&mut self) -> Result<(), PgError> {
        if !self.running {
            return Ok(());
        }
        let started = Instant::now();
        let output = run(self.pg_ctl_stop()).await?;
        self.running = false;
        self.stop_result(output)?;
        tracing::info!(data_dir = %self.data_dir.display(), elapsed_ms = started.elapsed().as_millis() as u64, "private PostgreSQL stopped");
        Ok(())
    }

    /// Starts the server again on the same data directory and socket (stopping it first if
    /// it is running), so [`database_url`](Self::database_url) and pools made from it keep
    /// working.
    pub async fn restart(&mut self) -> Result<(), PgError> {
        self.stop().await?;
        self.start_server().await?;
        self.ensure_database().await
    }

    /// Crashes the server, for failure tests: SIGKILL to the postmaster named in
    /// `postmaster.pid`, then to each of its child processes (which would otherwise linger
    /// until they notice, holding the shared memory the next start checks), as when the
    /// server or its machine dies. Returns once they are gone. Nothing is flushed or shut
    /// down cleanly; the lock file stays behind, and [`restart`](Self::restart) runs crash
    /// recovery (a standby then resumes streaming from its primary). Killing a server that
    /// is not running is a no-op.
    pub async fn kill(&mut self) -> Result<(), PgError> {
        let pid_file = self.data_dir.join("postmaster.pid");
        let pid = match read_lock_file(&pid_file) {
            Some((pid, _)) if process_state(pid) == ProcessState::Postgres => pid,
            _ => {
                self.running = false;
                return Ok(());
            }
        };
        let signal_error = |source| io_error("cannot signal the server of", &self.data_dir, source);
        // Stopped first, so it forks no child between our listing its children and its death.
        send_signal(pid, libc::SIGSTOP).map_err(signal_error)?;
        let children = children_of(pid);
        send_signal(pid, libc::SIGKILL).map_err(signal_error)?;
        self.running = false;
        for &child in &children {
            send_signal(child, libc::SIGKILL).map_err(signal_error)?;
        }
        let deadline = Instant::now() + CONNECT_WAIT;
        let mut alive: Vec<i32> = std::iter::once(pid).chain(children).collect();
        loop {
            alive.retain(|&pid| process_state(pid) == ProcessState::Postgres);
            if alive.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                tracing::warn!(?alive, data_dir = %self.data_dir.display(), "killed PostgreSQL processes are still alive");
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::info!(pid, data_dir = %self.data_dir.display(), "private PostgreSQL killed");
        Ok(())
    }

    async fn open(
        requested: &Path,
        options: PgOptions,
        temp_root: Option<TempDir>,
    ) -> Result<Self, PgError> {
        let requested = std::path::absolute(requested)
            .map_err(|source| io_error("cannot resolve", requested, source))?;
        let bins = binaries::find(options.bin_dir.as_deref(), cluster_major(&requested))?;
        let mut pg = Self::prepare(&requested, bins, options.durable, temp_root)?;
        pg.boot().await?;
        Ok(pg)
    }

    /// A handle on `requested` (absolute), its directories made and given to the server
    /// user, nothing started yet.
    fn prepare(
        requested: &Path,
        bins: Binaries,
        durable: bool,
        temp_root: Option<TempDir>,
    ) -> Result<Self, PgError> {
        let account = Account::detect()?;
        let data_dir = prepare_data_dir(&account, requested)?;
        let (socket_dir, socket_tmp) = choose_socket_dir(&account, &data_dir)?;
        Ok(PrivatePostgres {
            bins,
            account,
            data_dir,
            socket_dir,
            durable,
            running: false,
            _socket_tmp: socket_tmp,
            _temp_root: temp_root,
        })
    }

    /// `initdb` if needed, start, and make sure the `landql` database is there.
    async fn boot(&mut self) -> Result<(), PgError> {
        self.init_cluster().await?;
        self.start_server().await?;
        self.ensure_database().await
    }

    /// Runs `initdb` unless the data directory already holds a cluster.
    async fn init_cluster(&self) -> Result<(), PgError> {
        if let Some(cluster) = cluster_major(&self.data_dir) {
            if cluster != self.bins.major {
                return Err(PgError::VersionMismatch {
                    data_dir: self.data_dir.clone(),
                    cluster,
                    binaries: self.bins.major,
                });
            }
            return Ok(());
        }
        let started = Instant::now();
        let mut initdb = self.account.command(&self.bins.initdb());
        initdb
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-locale"])
            .arg("--no-instructions");
        if !self.durable {
            initdb.arg("--no-sync");
        }
        let output = run(initdb).await?;
        if !output.status.success() {
            return Err(command_error("initdb", &output, None));
        }
        tracing::info!(
            data_dir = %self.data_dir.display(),
            bin_dir = %self.bins.dir.display(),
            major = self.bins.major,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "initdb created a new cluster"
        );
        Ok(())
    }

    /// `pg_ctl start -w`: returns once the server accepts connections.
    async fn start_server(&mut self) -> Result<(), PgError> {
        self.clear_stale_locks().await?;
        let started = Instant::now();
        let mut server_options = format!(
            "-c listen_addresses='' -c port={PORT} -c unix_socket_directories={} \
             -c unix_socket_permissions=0700 -c max_connections=100",
            self.socket_dir.display()
        );
        server_options.push_str(&sized_for(total_memory_bytes()));
        if self.is_standby() {
            // Tell the primary which rows our queries still see, so its vacuum does not
            // remove them and recovery need not cancel those queries.
            server_options.push_str(" -c hot_standby_feedback=on");
        }
        // Last, so that they win: the operator's own settings (`-c name=value …`).
        if let Some(extra) = std::env::var_os("LANDQL_PG_OPTIONS") {
            server_options.push(' ');
            server_options.push_str(&extra.to_string_lossy());
        }
        if !self.durable {
            server_options.push_str(" -c fsync=off");
        }
        let mut pg_ctl = self.account.command(&self.bins.pg_ctl());
        pg_ctl
            .arg("start")
            .arg("-D")
            .arg(&self.data_dir)
            .arg("-l")
            .arg(self.data_dir.join(LOG_FILE))
            .args(["-w", "-s", "-t", &PG_CTL_TIMEOUT_SECS.to_string()])
            .arg("-o")
            .arg(server_options);
        let output = run(pg_ctl).await?;
        if !output.status.success() {
            let log = log_tail(&self.data_dir.join(LOG_FILE));
            return Err(command_error("pg_ctl start", &output, Some(log)));
        }
        self.running = true;
        tracing::info!(
            data_dir = %self.data_dir.display(),
            socket_dir = %self.socket_dir.display(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "private PostgreSQL started"
        );
        Ok(())
    }

    /// Makes sure a `postmaster.pid` left behind cannot stop the start.
    ///
    /// PostgreSQL itself ignores a lock file whose pid is dead, and then still checks that
    /// no old backend holds the shared memory, so that case is left to it. Two cases are
    /// ours: the pid is a live `postgres` (a server orphaned by a killed earlier run of this
    /// program: stop it, the data directory is private to this handle), and the pid has
    /// been reused by an unrelated live process (common in containers, where pids are
    /// small): replace it by a pid that cannot exist, so PostgreSQL goes on to its own
    /// shared-memory check instead of refusing.
    async fn clear_stale_locks(&self) -> Result<(), PgError> {
        let pid_file = self.data_dir.join("postmaster.pid");
        if let Some((pid, contents)) = read_lock_file(&pid_file) {
            match process_state(pid) {
                ProcessState::Gone => {}
                ProcessState::Postgres => {
                    tracing::warn!(
                        pid,
                        data_dir = %self.data_dir.display(),
                        "a PostgreSQL server left by an earlier run is still running on this data directory; stopping it"
                    );
                    let output = run(self.pg_ctl_stop()).await?;
                    self.stop_result(output)?;
                }
                ProcessState::Other => {
                    tracing::info!(pid, file = %pid_file.display(), "stale postmaster.pid names a reused pid; neutralising it");
                    let rest = contents.split_once('\n').map_or("", |(_, rest)| rest);
                    let neutral = format!("{}\n{rest}", i32::MAX);
                    std::fs::write(&pid_file, neutral)
                        .map_err(|source| io_error("cannot rewrite", &pid_file, source))?;
                }
            }
        }
        let socket_lock = self.socket_dir.join(format!(".s.PGSQL.{PORT}.lock"));
        if let Some((pid, _)) = read_lock_file(&socket_lock) {
            if process_state(pid) == ProcessState::Other {
                tracing::info!(pid, file = %socket_lock.display(), "removing a stale socket lock file");
                std::fs::remove_file(&socket_lock)
                    .map_err(|source| io_error("cannot remove", &socket_lock, source))?;
            }
        }
        Ok(())
    }

    fn pg_ctl_stop(&self) -> std::process::Command {
        let mut pg_ctl = self.account.command(&self.bins.pg_ctl());
        pg_ctl.arg("stop").arg("-D").arg(&self.data_dir).args([
            "-m",
            "fast",
            "-w",
            "-s",
            "-t",
            &PG_CTL_TIMEOUT_SECS.to_string(),
        ]);
        pg_ctl
    }

    /// A failed `pg_ctl stop` is fine when there is no server left to stop (it was killed,
    /// or never came up).
    fn stop_result(&self, output: Output) -> Result<(), PgError> {
        let server_gone = match read_lock_file(&self.data_dir.join("postmaster.pid")) {
            None => true,
            Some((pid, _)) => process_state(pid) != ProcessState::Postgres,
        };
        if output.status.success() || server_gone {
            return Ok(());
        }
        Err(command_error("pg_ctl stop", &output, None))
    }

    /// Creates the `landql` database if it is missing, retrying the first connection for a
    /// while: `pg_ctl -w` reports ready when the postmaster does, which on a loaded machine
    /// can be a moment before the socket accepts sessions. A standby cannot create anything:
    /// its databases are its primary's (copied by `pg_basebackup`, then replayed).
    async fn ensure_database(&self) -> Result<(), PgError> {
        let options = PgConnectOptions::new()
            .socket(&self.socket_dir)
            .port(PORT)
            .username(SUPERUSER)
            .database("postgres")
            .disable_statement_logging();
        let deadline = Instant::now() + CONNECT_WAIT;
        let mut conn = loop {
            match options.connect().await {
                Ok(conn) => break conn,
                Err(err) if Instant::now() < deadline => {
                    tracing::debug!(error = %err, "private PostgreSQL not accepting connections yet");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(source) => return Err(self.connect_error(source)),
            }
        };
        let (in_recovery, exists): (bool, bool) = sqlx::query_as(
            "SELECT pg_is_in_recovery(), EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
        )
        .bind(DATABASE)
        .fetch_one(&mut conn)
        .await
        .map_err(|source| self.connect_error(source))?;
        if !exists && in_recovery {
            tracing::warn!(
                database = DATABASE,
                data_dir = %self.data_dir.display(),
                "this standby has no landql database and cannot create one; it appears once its primary has it"
            );
        } else if !exists {
            let created = sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {DATABASE}")))
                .execute(&mut conn)
                .await;
            match created {
                Ok(_) => tracing::info!(database = DATABASE, "created the database"),
                // Someone else created it between our check and now: fine.
                Err(sqlx::Error::Database(err)) if err.code().as_deref() == Some("42P04") => {}
                Err(source) => return Err(self.connect_error(source)),
            }
        }
        conn.close()
            .await
            .map_err(|source| self.connect_error(source))
    }

    fn connect_error(&self, source: sqlx::Error) -> PgError {
        PgError::Connect {
            socket_dir: self.socket_dir.clone(),
            source,
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        // Blocking is acceptable here: Drop cannot await, and a fast shutdown of a private
        // server takes well under a second.
        match self.pg_ctl_stop().output() {
            Ok(output) => {
                if let Err(err) = self.stop_result(output) {
                    tracing::warn!(data_dir = %self.data_dir.display(), error = %err, "stopping the private PostgreSQL on drop failed");
                }
            }
            Err(err) => {
                tracing::warn!(data_dir = %self.data_dir.display(), error = %err, "could not run pg_ctl stop on drop")
            }
        }
        self.running = false;
    }
}

/// A fresh directory under the system temp dir for a throwaway cluster, private to the
/// server user (root can still remove it afterwards).
fn temp_root(account: &Account) -> Result<TempDir, PgError> {
    let root = tempfile::Builder::new()
        .prefix("landql-pg-")
        .permissions(private_mode())
        .tempdir()
        .map_err(|source| {
            io_error(
                "cannot create a temporary directory in",
                std::env::temp_dir(),
                source,
            )
        })?;
    account
        .own(root.path())
        .map_err(|source| io_error("cannot chown", root.path(), source))?;
    Ok(root)
}

/// Creates the data directory and hands it to the server user; falls back to a private
/// directory under the system temp dir when that user cannot reach it.
fn prepare_data_dir(account: &Account, requested: &Path) -> Result<PathBuf, PgError> {
    std::fs::create_dir_all(requested)
        .map_err(|source| io_error("cannot create the data directory", requested, source))?;
    own_data_dir(account, requested)?;
    if account.can_use_dir(requested) {
        return Ok(requested.to_path_buf());
    }

    // A stable name, so the next start with the same data directory finds its cluster.
    let fallback = std::env::temp_dir().join(format!("landql-pg-{:016x}", fnv1a(requested)));
    tracing::warn!(
        requested = %requested.display(),
        fallback = %fallback.display(),
        "the postgres user cannot reach the data directory through its parents; using a private directory under the system temp dir instead"
    );
    create_private_dir(account, &fallback)?;
    own_data_dir(account, &fallback)?;
    if !account.can_use_dir(&fallback) {
        return Err(io_error(
            "the postgres user cannot use",
            &fallback,
            io::Error::from(io::ErrorKind::PermissionDenied),
        ));
    }
    Ok(fallback)
}

/// Gives the directory to the server user: recursively when it is empty or holds a cluster
/// (whoever made it), only the directory itself otherwise (we do not chown a user's files;
/// `initdb` will then say the directory is not empty).
fn own_data_dir(account: &Account, dir: &Path) -> Result<(), PgError> {
    let is_cluster = dir.join("PG_VERSION").exists();
    let is_empty = std::fs::read_dir(dir)
        .map(|mut entries| entries.next().is_none())
        .unwrap_or(false);
    let result = if is_cluster || is_empty {
        account.own_tree(dir).map(|changed| {
            if changed && is_cluster {
                tracing::warn!(data_dir = %dir.display(), "gave an existing cluster to the postgres user");
            }
        })
    } else {
        account.own(dir)
    };
    result.map_err(|source| io_error("cannot chown", dir, source))
}

/// Creates `dir` with mode 0700, refusing a symlink or a directory of a foreign user (the
/// name under the shared temp dir is predictable).
fn create_private_dir(account: &Account, dir: &Path) -> Result<(), PgError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
        Err(source) => return Err(io_error("cannot create", dir, source)),
    }
    let meta =
        std::fs::symlink_metadata(dir).map_err(|source| io_error("cannot inspect", dir, source))?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let server_uid = match *account {
        Account::Drop { uid, .. } => uid,
        Account::Current => me,
    };
    if !meta.is_dir() || (meta.uid() != me && meta.uid() != server_uid) {
        return Err(io_error(
            "refusing to use a directory we do not own:",
            dir,
            io::Error::from(io::ErrorKind::PermissionDenied),
        ));
    }
    Ok(())
}

/// The socket goes in the data directory when its path fits and needs no quoting (stable,
/// easy to find for `psql -h`); otherwise in a fresh short directory under the system temp
/// dir, kept for the handle's lifetime so its URL survives restarts.
fn choose_socket_dir(
    account: &Account,
    data_dir: &Path,
) -> Result<(PathBuf, Option<TempDir>), PgError> {
    if socket_dir_fits(data_dir) {
        return Ok((data_dir.to_path_buf(), None));
    }
    let mut tmp = tempfile::Builder::new()
        .prefix("lq-pg-")
        .permissions(private_mode())
        .tempdir()
        .map_err(|source| {
            io_error(
                "cannot create a socket directory in",
                std::env::temp_dir(),
                source,
            )
        })?;
    if !socket_dir_fits(tmp.path()) {
        // TMPDIR itself is long or odd; /tmp is neither.
        tmp = tempfile::Builder::new()
            .prefix("lq-pg-")
            .permissions(private_mode())
            .tempdir_in("/tmp")
            .map_err(|source| io_error("cannot create a socket directory in", "/tmp", source))?;
    }
    account
        .own(tmp.path())
        .map_err(|source| io_error("cannot chown", tmp.path(), source))?;
    tracing::info!(
        data_dir = %data_dir.display(),
        socket_dir = %tmp.path().display(),
        "data directory path too long or unusual for a unix socket; using a short socket directory"
    );
    Ok((tmp.path().to_path_buf(), Some(tmp)))
}

/// rwx for the owner only: with trust authentication, whoever reaches the socket is
/// superuser, so only the server user (and root) may enter our directories.
fn private_mode() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o700)
}

/// Whether `dir/.s.PGSQL.<port>` fits in `sun_path` and `dir` can go unquoted into the
/// server's options and unencoded into a URL.
fn socket_dir_fits(dir: &Path) -> bool {
    let Some(dir) = dir.to_str() else {
        return false;
    };
    let plain = dir
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-'));
    plain && dir.len() + format!("/.s.PGSQL.{PORT}").len() <= MAX_SOCKET_PATH
}

/// The major version in `data_dir/PG_VERSION`, if a cluster is there.
fn cluster_major(data_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(data_dir.join("PG_VERSION"))
        .ok()?
        .trim()
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// The pid on the first line of a PostgreSQL lock file, with the whole contents.
fn read_lock_file(path: &Path) -> Option<(i32, String)> {
    let contents = std::fs::read_to_string(path).ok()?;
    let pid = contents
        .lines()
        .next()?
        .trim()
        .trim_start_matches('-')
        .parse()
        .ok()?;
    Some((pid, contents))
}

#[derive(Debug, PartialEq, Eq)]
enum ProcessState {
    /// No such process.
    Gone,
    /// A live `postgres` process.
    Postgres,
    /// The pid is taken by something else: another program, or a dead process not yet
    /// reaped (a zombie, which `kill(pid, 0)` and so PostgreSQL's own lock check still
    /// count as alive).
    Other,
}

fn process_state(pid: i32) -> ProcessState {
    if pid <= 0 {
        return ProcessState::Gone;
    }
    match read_stat(pid) {
        None => ProcessState::Gone,
        Some(stat) if matches!(stat.state, 'Z' | 'X') => ProcessState::Other,
        Some(stat) if stat.comm == "postgres" => ProcessState::Postgres,
        Some(_) => ProcessState::Other,
    }
}

/// The fields of `/proc/<pid>/stat` we use.
struct Stat {
    comm: String,
    state: char,
    ppid: i32,
}

fn read_stat(pid: i32) -> Option<Stat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid …"; comm may itself hold spaces and parentheses.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some(Stat { comm, state, ppid })
}

/// The pids of the processes whose parent is `parent`.
fn children_of(parent: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| read_stat(pid).is_some_and(|stat| stat.ppid == parent))
        .collect()
}

/// Sends `signal` to the one process `pid`; one that is already gone is fine.
fn send_signal(pid: i32, signal: libc::c_int) -> io::Result<()> {
    if pid <= 0 {
        // 0 and negative pids name process groups, or every process we may signal.
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: kill(2) has no memory-safety preconditions; pid > 0 names a single process.
    if unsafe { libc::kill(pid, signal) } == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        return Ok(());
    }
    Err(err)
}

/// FNV-1a of a path: a stable, dependency-free name for the fallback directory.
fn fnv1a(path: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str()
        .as_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
        })
}

async fn run(command: std::process::Command) -> Result<Output, PgError> {
    let program = PathBuf::from(command.get_program());
    tokio::process::Command::from(command)
        .output()
        .await
        .map_err(|source| io_error("cannot run", program, source))
}

fn command_error(program: &str, output: &Output, log: Option<String>) -> PgError {
    let mut detail = String::from_utf8_lossy(&output.stderr).trim().to_string();
    if let Some(log) = log.filter(|log| !log.is_empty()) {
        detail.push_str("\nserver log:\n");
        detail.push_str(&log);
    }
    PgError::Command {
        program: program.to_string(),
        status: output.status.to_string(),
        detail,
    }
}

/// The last lines of the server log, for errors.
fn log_tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

fn io_error(what: &'static str, path: impl Into<PathBuf>, source: io::Error) -> PgError {
    PgError::Io {
        what,
        path: path.into(),
        source,
    }
}

#[cfg(test)]
mod tests;
