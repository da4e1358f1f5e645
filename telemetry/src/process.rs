//! `process_*`: the series Prometheus's own client libraries export about the process
//! (CPU seconds, resident and virtual memory, open and maximum file descriptors, threads,
//! start time), read from `/proc/self` at scrape time. Linux only, as landql's deployments
//! are; where a file cannot be read the series is left out rather than made up.
//!
//! Hand-written rather than a crate: the process collectors on crates.io either target
//! another metrics library or bring `procfs` and its tree for five small files.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// The collector (see the module docs). Register it on a registry without a prefix.
#[derive(Debug, Default)]
pub(crate) struct ProcessCollector;

/// What `/proc/self` says now.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Snapshot {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<f64>,
    virtual_bytes: Option<f64>,
    threads: Option<f64>,
    start_time_seconds: Option<f64>,
    open_fds: Option<f64>,
    max_fds: Option<f64>,
}

/// Clock ticks per second, the unit of `/proc/*/stat`'s times.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// The fields of `/proc/self/stat` after the command name (which may hold spaces).
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let after = stat.rsplit_once(')')?.1;
    Some(after.split_whitespace().collect())
}

fn snapshot() -> Snapshot {
    let mut s = Snapshot::default();
    let ticks = ticks_per_second();
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        if let Some(f) = stat_fields(&stat) {
            // After the name: state is field 3, so field n is f[n - 3].
            let num = |n: usize| f.get(n - 3).and_then(|v| v.parse::<f64>().ok());
            if let (Some(utime), Some(stime)) = (num(14), num(15)) {
                s.cpu_seconds = Some((utime + stime) / ticks);
            }
            s.threads = num(20);
            s.virtual_bytes = num(23);
            let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|p| {
                p.lines()
                    .find_map(|l| l.strip_prefix("btime "))
                    .and_then(|v| v.trim().parse::<f64>().ok())
            });
            if let (Some(boot), Some(start)) = (boot, num(22)) {
                s.start_time_seconds = Some(boot + start / ticks);
            }
        }
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        s.resident_bytes = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kb| kb * 1024.0);
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        s.open_fds = Some(dir.count() as f64);
    }
    if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
        s.max_fds = limits
            .lines()
            .find_map(|l| l.strip_prefix("Max open files"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok());
    }
    s
}

fn gauge(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: Option<f64>) -> fmt::Result {
    let Some(v) = v else { return Ok(()) };
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> fmt::Result {
        let s = snapshot();
        if let Some(v) = s.cpu_seconds {
            let c = ConstCounter::new(v);
            c.encode(e.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                c.metric_type(),
            )?)?;
        }
        let series = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                s.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                s.virtual_bytes,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                s.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors",
                s.max_fds,
            ),
            (
                "process_threads",
                "Number of OS threads in the process",
                s.threads,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                s.start_time_seconds,
            ),
        ];
        for (name, help, v) in series {
            gauge(&mut e, name, help, v)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let s = snapshot();
        assert!(s.cpu_seconds.is_some_and(|c| c >= 0.0), "{s:?}");
        assert!(s.resident_bytes.is_some_and(|r| r > 1_000_000.0), "{s:?}");
        assert!(s.open_fds.is_some_and(|n| n >= 3.0), "{s:?}");
        assert!(s.threads.is_some_and(|n| n >= 1.0), "{s:?}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let started = s.start_time_seconds.unwrap_or(0.0);
        assert!(
            started > now - 3600.0 && started <= now + 1.0,
            "{started} vs {now}"
        );
    }

    #[test]
    fn a_command_name_with_spaces_and_parentheses() {
        let f = stat_fields("42 (my (odd) name) S 1 42 42 0 -1").unwrap_or_default();
        assert_eq!(f.first(), Some(&"S"));
    }
}
