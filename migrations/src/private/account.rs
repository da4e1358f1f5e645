//! Who runs `initdb`, `pg_ctl` and `postgres`, and the file ownership that follows from it.
//!
//! PostgreSQL refuses to run as root. When this process is root (CI, containers) the server
//! runs as the `postgres` system user instead: its commands drop to that uid/gid right
//! before `exec` (like `runuser -u postgres --`, without the PAM session and the extra
//! process), and the directories it writes are chowned to it. Otherwise everything runs as
//! the current user and nothing is chowned.

use std::ffi::CString;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use super::{binaries::SERVER_PACKAGE, PgError};

/// The system user that owns and runs the cluster when this process is root.
const SERVER_USER: &str = "postgres";

/// The account the server processes run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Account {
    /// Run as this process's own user.
    Current,
    /// This process is root: drop to this uid/gid (the `postgres` system user).
    Drop { uid: u32, gid: u32 },
}

impl Account {
    /// `Drop` to the `postgres` user when the effective uid is 0, else `Current`.
    pub(crate) fn detect() -> Result<Self, PgError> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(Account::Current);
        }
        match lookup_user(SERVER_USER) {
            Some((uid, gid)) if uid != 0 => Ok(Account::Drop { uid, gid }),
            _ => Err(PgError::NoServerUser {
                user: SERVER_USER,
                package: SERVER_PACKAGE,
            }),
        }
    }

    /// A command for `program` that runs as this account, from `/` (the dropped user may not
    /// be able to enter our working directory, and every path we pass is absolute).
    pub(crate) fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command.current_dir("/").env("LC_ALL", "C");
        if let Account::Drop { uid, gid } = *self {
            // std also clears the supplementary groups (setgroups(0)) when a root process
            // sets a uid, so no root group leaks into the server.
            command.uid(uid).gid(gid);
        }
        command
    }

    /// Gives `path` (not its contents) to the server user; a no-op for `Current`.
    pub(crate) fn own(&self, path: &Path) -> io::Result<()> {
        match *self {
            Account::Current => Ok(()),
            Account::Drop { uid, gid } => std::os::unix::fs::lchown(path, Some(uid), Some(gid)),
        }
    }

    /// Gives `root` and everything under it to the server user, if `root` is not already
    /// its (an existing cluster made by another user, e.g. copied in as root).
    pub(crate) fn own_tree(&self, root: &Path) -> io::Result<bool> {
        let Account::Drop { uid, .. } = *self else {
            return Ok(false);
        };
        if std::fs::symlink_metadata(root)?.uid() == uid {
            return Ok(false);
        }
        let mut stack = vec![root.to_path_buf()];
        while let Some(path) = stack.pop() {
            self.own(&path)?;
            if std::fs::symlink_metadata(&path)?.is_dir() {
                for entry in std::fs::read_dir(&path)? {
                    stack.push(entry?.path());
                }
            }
        }
        Ok(true)
    }

    /// Whether the server user can enter and write `dir`, which needs search permission on
    /// every parent as well. Checked by running `test` as that user, because root's own
    /// `access(2)` answers for root.
    pub(crate) fn can_use_dir(&self, dir: &Path) -> bool {
        match self {
            Account::Current => true,
            Account::Drop { .. } => self
                .command(Path::new("test"))
                .arg("-x")
                .arg(dir)
                .arg("-a")
                .arg("-w")
                .arg(dir)
                .status()
                .map(|status| status.success())
                .unwrap_or(false),
        }
    }
}

/// uid and gid of a user, from the system's user database (NSS, not just /etc/passwd).
fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let name = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid value for an out-parameter.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the duration of the call and buf's length is passed.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return None;
    }
    Some((pwd.pw_uid, pwd.pw_gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_drops_to_postgres() {
        let account = Account::detect().unwrap();
        // SAFETY: no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        assert_eq!(matches!(account, Account::Drop { .. }), root, "{account:?}");
        assert_eq!(lookup_user("no-such-user-landql"), None);
    }
}
