//! Streaming replicas of a private PostgreSQL, made by `pg_basebackup` (see the module
//! documentation of [`super`], "Replicas").

use std::path::Path;
use std::time::Instant;

use tempfile::TempDir;

use super::{
    cluster_major, command_error, io_error, log_tail, private_mode, run, temp_root, Account,
    PgError, PrivatePostgres, LOG_FILE, PG_CTL_TIMEOUT_SECS, PORT, SUPERUSER,
};

/// Files `pg_basebackup` copies from the primary that are not the replica's: the primary's
/// socket lock (when its socket lives in its data directory; it names the primary's live
/// postmaster, so the replica would refuse to start) and its server log.
fn primary_only_files() -> [String; 2] {
    [format!(".s.PGSQL.{PORT}.lock"), LOG_FILE.to_string()]
}

impl PrivatePostgres {
    /// A streaming replica of this (running) cluster in `data_dir`, started, with a socket
    /// directory of its own.
    ///
    /// When `data_dir` holds no cluster yet, `pg_basebackup -X stream -R -c fast` copies
    /// this one into it through the replication protocol on its socket, as the server user;
    /// the copy is a hot standby (`standby.signal`) that streams WAL from this cluster
    /// (`primary_conninfo`). When `data_dir` already holds a cluster (a replica made
    /// earlier), it is just started, and a standby resumes streaming where it stopped.
    /// The replica is durable when this cluster is, and runs the same binaries.
    ///
    /// Errors: [`PgError::Command`] with `pg_basebackup`'s stderr when the copy fails (this
    /// cluster is stopped, `data_dir` is not empty, …), [`PgError::SameDataDir`] for this
    /// cluster's own data directory, and the errors of [`start`](Self::start).
    pub async fn replica(&self, data_dir: &Path) -> Result<PrivatePostgres, PgError> {
        self.open_replica(data_dir, self.durable, None).await
    }

    /// A throwaway streaming replica of this (running) cluster in its own directory under
    /// the system temp dir, removed when the handle is dropped; not durable, like
    /// [`temporary`](Self::temporary). Otherwise as [`replica`](Self::replica).
    pub async fn temporary_replica(&self) -> Result<PrivatePostgres, PgError> {
        let root = temp_root(&Account::detect()?)?;
        let data_dir = root.path().join("data");
        self.open_replica(&data_dir, false, Some(root)).await
    }

    /// Promotes a standby to a primary that takes writes (`pg_ctl promote -w`): it stops
    /// following its primary, leaves recovery and removes `standby.signal`. Returns once
    /// it accepts writes. [`PgError::NotStandby`] when the cluster is not a standby (see
    /// [`is_standby`](Self::is_standby)); [`PgError::Command`] when `pg_ctl promote` fails,
    /// e.g. because the server is not running.
    pub async fn promote(&mut self) -> Result<(), PgError> {
        if !self.is_standby() {
            return Err(PgError::NotStandby {
                data_dir: self.data_dir.clone(),
            });
        }
        let started = Instant::now();
        let mut pg_ctl = self.account.command(&self.bins.pg_ctl());
        pg_ctl.arg("promote").arg("-D").arg(&self.data_dir).args([
            "-w",
            "-s",
            "-t",
            &PG_CTL_TIMEOUT_SECS.to_string(),
        ]);
        let output = run(pg_ctl).await?;
        if !output.status.success() {
            let log = log_tail(&self.data_dir.join(LOG_FILE));
            return Err(command_error("pg_ctl promote", &output, Some(log)));
        }
        tracing::info!(
            data_dir = %self.data_dir.display(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "private PostgreSQL replica promoted"
        );
        Ok(())
    }

    async fn open_replica(
        &self,
        data_dir: &Path,
        durable: bool,
        temp_root: Option<TempDir>,
    ) -> Result<PrivatePostgres, PgError> {
        let requested = std::path::absolute(data_dir)
            .map_err(|source| io_error("cannot resolve", data_dir, source))?;
        if requested == self.data_dir {
            return Err(PgError::SameDataDir {
                data_dir: self.data_dir.clone(),
            });
        }
        let mut replica = Self::prepare(&requested, self.bins.clone(), durable, temp_root)?;
        // The same fallback under the temp dir as ours, when the server user cannot reach
        // either: starting "the cluster already there" would stop us.
        if replica.data_dir == self.data_dir {
            return Err(PgError::SameDataDir {
                data_dir: self.data_dir.clone(),
            });
        }
        if cluster_major(&replica.data_dir).is_none() {
            self.base_backup_into(&replica).await?;
        }
        replica.boot().await?;
        Ok(replica)
    }

    /// `pg_basebackup` of this cluster into the (empty) data directory of `replica`.
    async fn base_backup_into(&self, replica: &PrivatePostgres) -> Result<(), PgError> {
        let data_dir = &replica.data_dir;
        // pg_basebackup keeps the mode of an existing directory, and the server refuses to
        // start in one that others may read.
        std::fs::set_permissions(data_dir, private_mode())
            .map_err(|source| io_error("cannot chmod", data_dir, source))?;
        let started = Instant::now();
        let mut backup = self.account.command(&self.bins.pg_basebackup()?);
        backup
            .arg("--pgdata")
            .arg(data_dir)
            .arg("--host")
            .arg(&self.socket_dir)
            .args(["--port", &PORT.to_string(), "--username", SUPERUSER])
            // Never prompt (trust needs no password), stream the WAL written meanwhile
            // beside the copy, write standby.signal and primary_conninfo, and checkpoint
            // at once rather than waiting for the next one.
            .args([
                "--no-password",
                "--wal-method=stream",
                "--write-recovery-conf",
            ])
            .args(["--checkpoint=fast", "--label=landql replica"]);
        if !replica.durable {
            backup.arg("--no-sync");
        }
        let output = run(backup).await?;
        if !output.status.success() {
            return Err(command_error("pg_basebackup", &output, None));
        }
        for file in primary_only_files() {
            let path = data_dir.join(file);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(io_error("cannot remove", &path, source)),
            }
        }
        tracing::info!(
            primary = %self.data_dir.display(),
            replica = %data_dir.display(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "pg_basebackup made a replica"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests;
