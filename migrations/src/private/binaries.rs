//! Finding the PostgreSQL server binaries (`initdb`, `pg_ctl`, `postgres`).
//!
//! Debian puts them in `/usr/lib/postgresql/<major>/bin`, off `PATH`; other systems (and
//! this project's CI image) link them onto `PATH`. We look on `PATH` first so an operator can
//! pick a build by ordering `PATH`, then fall back to the newest Debian directory. An explicit
//! directory (`LANDQL_PG_BIN_DIR`, or [`super::PgOptions::bin_dir`]) is the only place looked
//! at when given, so a test or an operator gets exactly what they asked for.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::PgError;

/// The Debian package that provides the server binaries, named in the error when none exist.
pub(crate) const SERVER_PACKAGE: &str = "postgresql-15";

/// The three programs a private cluster needs, all from one directory.
const PROGRAMS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

/// A directory holding `initdb`, `pg_ctl` and `postgres` of one PostgreSQL major version.
#[derive(Debug, Clone)]
pub(crate) struct Binaries {
    pub(crate) dir: PathBuf,
    pub(crate) major: u32,
}

impl Binaries {
    pub(crate) fn initdb(&self) -> PathBuf {
        self.dir.join("initdb")
    }

    pub(crate) fn pg_ctl(&self) -> PathBuf {
        self.dir.join("pg_ctl")
    }

    /// `pg_basebackup` of the same installation, which only replicas need, so it is not
    /// looked for when choosing the directory. Debian ships it in the server's directory
    /// (from `postgresql-client-<major>`, which the server package depends on), but a
    /// directory of links to the three server programs (this project's CI image puts them on
    /// `PATH`) lacks it: then it is looked for where `pg_ctl` really lives, then in Debian's
    /// directory for this major version. Never `/usr/bin/pg_basebackup`, Debian's wrapper
    /// that may pick another major version.
    pub(crate) fn pg_basebackup(&self) -> Result<PathBuf, PgError> {
        const PROGRAM: &str = "pg_basebackup";
        let mut dirs = vec![self.dir.clone()];
        if let Some(real) = std::fs::canonicalize(self.pg_ctl())
            .ok()
            .and_then(|pg_ctl| pg_ctl.parent().map(Path::to_path_buf))
        {
            dirs.push(real);
        }
        dirs.push(PathBuf::from(format!(
            "/usr/lib/postgresql/{}/bin",
            self.major
        )));
        dirs.dedup();
        dirs.iter()
            .map(|dir| dir.join(PROGRAM))
            .find(|path| is_executable(path))
            .ok_or_else(|| PgError::BasebackupNotFound {
                searched: dirs
                    .iter()
                    .map(|dir| dir.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                major: self.major,
            })
    }
}

/// Finds the server binaries.
///
/// `explicit`: look only there. Otherwise every `PATH` entry that has all three programs, then
/// `/usr/lib/postgresql/*/bin` newest first. When `wanted_major` is given (an existing
/// cluster's `PG_VERSION`), the first candidate of that major version wins, because a cluster
/// can only be run by the major version that created it; otherwise the first candidate wins.
pub(crate) fn find(
    explicit: Option<&Path>,
    wanted_major: Option<u32>,
) -> Result<Binaries, PgError> {
    let dirs: Vec<PathBuf> = match explicit {
        Some(dir) => vec![dir.to_path_buf()],
        None => {
            let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
                .map(|path| std::env::split_paths(&path).collect())
                .unwrap_or_default();
            dirs.extend(debian_bin_dirs(Path::new("/usr/lib/postgresql")));
            dirs
        }
    };
    let searched = match explicit {
        Some(dir) => dir.display().to_string(),
        None => "PATH and /usr/lib/postgresql/*/bin".to_string(),
    };

    let mut candidates = Vec::new();
    for dir in dirs.iter().filter(|dir| has_programs(dir)) {
        match major_version(dir) {
            Some(major) => candidates.push(Binaries {
                dir: dir.clone(),
                major,
            }),
            None => {
                tracing::debug!(dir = %dir.display(), "pg_ctl --version gave no version; skipped")
            }
        }
    }
    let chosen = match wanted_major {
        Some(major) => candidates
            .iter()
            .find(|bins| bins.major == major)
            .or(candidates.first()),
        None => candidates.first(),
    };
    chosen
        .cloned()
        .ok_or(PgError::BinariesNotFound { searched })
}

/// `/usr/lib/postgresql/<major>/bin` directories, highest major first.
fn debian_bin_dirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut versions: Vec<(u32, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by_key(|(major, _)| std::cmp::Reverse(*major));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

fn has_programs(dir: &Path) -> bool {
    PROGRAMS
        .iter()
        .all(|program| is_executable(&dir.join(program)))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The major version from `pg_ctl --version` ("pg_ctl (PostgreSQL) 15.8 (Debian 15.8-1)").
fn major_version(dir: &Path) -> Option<u32> {
    let output = Command::new(dir.join("pg_ctl"))
        .arg("--version")
        .output()
        .ok()?;
    parse_major(&String::from_utf8_lossy(&output.stdout))
}

pub(crate) fn parse_major(version_line: &str) -> Option<u32> {
    let after = version_line.split(')').nth(1)?.trim_start();
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_major_versions() {
        assert_eq!(
            parse_major("pg_ctl (PostgreSQL) 15.8 (Debian 15.8-1.pgdg120+1)\n"),
            Some(15)
        );
        assert_eq!(parse_major("pg_ctl (PostgreSQL) 16beta2"), Some(16));
        assert_eq!(parse_major("garbage"), None);
    }

    #[test]
    fn empty_dir_names_the_package() {
        let empty = tempfile::tempdir().unwrap();
        let err = find(Some(empty.path()), None).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(SERVER_PACKAGE), "{message}");
        assert!(
            message.contains(&empty.path().display().to_string()),
            "{message}"
        );
    }

    #[test]
    fn finds_pg_basebackup_beside_the_real_server() {
        let bins = find(None, None).expect("PostgreSQL server binaries are installed here");
        let pg_basebackup = bins
            .pg_basebackup()
            .expect("pg_basebackup is installed here");
        let output = Command::new(&pg_basebackup)
            .arg("--version")
            .output()
            .unwrap();
        let version = String::from_utf8_lossy(&output.stdout);
        assert_eq!(parse_major(&version), Some(bins.major), "{version}");

        let empty = tempfile::tempdir().unwrap();
        let nowhere = Binaries {
            dir: empty.path().to_path_buf(),
            major: 1,
        };
        let err = nowhere.pg_basebackup().unwrap_err();
        let message = err.to_string();
        assert!(message.contains("postgresql-client-1 "), "{message}");
        assert!(
            message.contains(&empty.path().display().to_string()),
            "{message}"
        );
    }

    #[test]
    fn finds_the_installed_server() {
        let bins = find(None, None).expect("PostgreSQL server binaries are installed here");
        assert!(bins.major >= 15, "{bins:?}");
    }
}
