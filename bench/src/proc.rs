//! What a process has used, from `/proc`: CPU time, major page faults, resident memory, and
//! its children. Every figure is 0 (or empty) when it cannot be read, so a report shows a
//! zero rather than failing a long run at its end.

/// A process whose `/proc` files are read: this one, or another by its ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proc {
    This,
    Pid(u32),
}

impl Proc {
    fn file(self, name: &str) -> String {
        match self {
            Proc::This => format!("/proc/self/{name}"),
            Proc::Pid(pid) => format!("/proc/{pid}/{name}"),
        }
    }

    /// Its `/proc/<pid>/stat` as it stands.
    pub fn stat(self) -> Stat {
        Stat::parse(&std::fs::read_to_string(self.file("stat")).unwrap_or_default())
    }

    /// User + system CPU seconds used so far.
    pub fn cpu_secs(self) -> f64 {
        self.stat().cpu_secs()
    }

    /// Major page faults so far: pages it had to wait on the disk for.
    pub fn major_faults(self) -> f64 {
        self.stat().major_faults()
    }

    /// A KiB field (`VmHWM`, `VmRSS`, `RssAnon`, ...) of its `/proc/<pid>/status`.
    pub fn status_kib(self, field: &str) -> u64 {
        status_kib(
            &std::fs::read_to_string(self.file("status")).unwrap_or_default(),
            field,
        )
    }

    /// Peak resident set (`VmHWM`) in KiB.
    pub fn peak_rss_kib(self) -> u64 {
        self.status_kib("VmHWM")
    }
}

/// The numeric fields of a `/proc/<pid>/stat` after the command name, by index from the
/// state (field 3) on.
#[derive(Debug, Clone, Default)]
pub struct Stat {
    fields: Vec<f64>,
}

impl Stat {
    pub fn parse(text: &str) -> Stat {
        // The command name (field 2) may hold spaces and parentheses; the fields after its
        // last ')' are plain.
        let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
        Stat {
            fields: rest
                .split_whitespace()
                .map(|v| v.parse().unwrap_or(0.0))
                .collect(),
        }
    }

    fn field(&self, i: usize) -> f64 {
        self.fields.get(i).copied().unwrap_or(0.0)
    }

    /// The parent's ID (field 4).
    pub fn parent(&self) -> Option<u32> {
        let p = self.field(1);
        (p > 0.0).then_some(p as u32)
    }

    /// Major page faults (field 12).
    pub fn major_faults(&self) -> f64 {
        self.field(9)
    }

    /// User + system CPU seconds (fields 14 and 15, in the kernel's USER_HZ of 100 ticks
    /// per second).
    pub fn cpu_secs(&self) -> f64 {
        (self.field(11) + self.field(12)) / 100.0
    }
}

/// A KiB field of a `/proc/<pid>/status` text; 0 if absent.
fn status_kib(status: &str, field: &str) -> u64 {
    let prefix = format!("{field}:");
    status
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `pid` and every process below it, from the parent IDs in /proc/*/stat.
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut links = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(p) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(parent) = Proc::Pid(p).stat().parent() {
                links.push((p, parent));
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let cur = tree[i];
        tree.extend(links.iter().filter(|(_, pp)| *pp == cur).map(|(p, _)| *p));
        i += 1;
    }
    tree
}

/// CPU seconds of a process tree (e.g. PostgreSQL: the postmaster and its backends).
pub fn tree_cpu_secs(pid: u32) -> f64 {
    process_tree(pid)
        .into_iter()
        .map(|p| Proc::Pid(p).cpu_secs())
        .sum()
}

/// Major page faults of every process on the machine so far.
pub fn machine_major_faults() -> f64 {
    std::fs::read_to_string("/proc/vmstat")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("pgmajfault "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_count_from_the_state_and_survive_spaces_in_the_name() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        // utime stime …
        let stat = Stat::parse(
            "4242 (landql (serve)) S 1 4242 4242 0 -1 4194560 900 0 37 0 250 50 0 0 20 0 3\n",
        );
        assert_eq!(stat.major_faults(), 37.0);
        assert_eq!(stat.cpu_secs(), 3.0);
        assert_eq!(stat.parent(), Some(1));
        assert_eq!(Proc::Pid(u32::MAX).major_faults(), 0.0);
    }

    #[test]
    fn reads_this_process() {
        assert!(Proc::This.peak_rss_kib() > 0);
        assert!(Proc::This.status_kib("VmRSS") > 0);
        assert_eq!(Proc::Pid(u32::MAX).peak_rss_kib(), 0);
        assert_eq!(status_kib("VmHWM:\t  1234 kB\n", "VmHWM"), 1234);
    }
}
