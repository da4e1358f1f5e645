//! CPU accounting per phase: what the server under test, PostgreSQL and this process (the
//! generator) each spent per completed request.

use crate::proc::{tree_cpu_secs, Proc};
use crate::server::Server;

/// CPU used by the server and by this process (the generator, plus the idle in-process
/// ledger and sync worker) over one phase, per completed request, in µs.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Cpu {
    /// `None` where the server is not involved (the SQL baseline).
    pub server_us: Option<f64>,
    pub generator_us: f64,
}

pub(super) struct CpuMark {
    server: f64,
    this: f64,
}

/// A server under test whose CPU time can be read: landql serve or PostGraphile.
pub(super) trait ServerCpu {
    /// CPU seconds used so far (user + system).
    fn cpu_secs(&self) -> f64;
}

impl ServerCpu for Server {
    fn cpu_secs(&self) -> f64 {
        Server::cpu_secs(self)
    }
}

impl CpuMark {
    pub fn now(server: &impl ServerCpu) -> Self {
        CpuMark {
            server: server.cpu_secs(),
            this: Proc::This.cpu_secs(),
        }
    }

    pub fn per_request(&self, server: &impl ServerCpu, requests: u64) -> Cpu {
        let n = requests.max(1) as f64;
        Cpu {
            server_us: Some((server.cpu_secs() - self.server) * 1e6 / n),
            generator_us: (Proc::This.cpu_secs() - self.this) * 1e6 / n,
        }
    }
}

/// CPU seconds of a process tree (e.g. PostgreSQL: the postmaster and its backends).
pub(super) struct ProcessTreeCpu(pub u32);

impl ServerCpu for ProcessTreeCpu {
    fn cpu_secs(&self) -> f64 {
        tree_cpu_secs(self.0)
    }
}
