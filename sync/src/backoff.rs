//! Exponential backoff for reconnecting to the ledger and to PostgreSQL.

use std::time::Duration;

/// Doubles from `initial` up to `cap`, with ±25 % jitter so that several workers (or channels)
/// do not retry in lock step.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    cap: Duration,
    next: Duration,
    seed: u64,
}

/// The default cap of every retry loop in the worker.
pub(crate) const CAP: Duration = Duration::from_secs(5);

impl Backoff {
    pub fn new(initial: Duration, cap: Duration) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(1)
            | 1;
        Self {
            initial,
            cap,
            next: initial,
            seed,
        }
    }

    /// The default: 100 ms doubling to 5 s.
    pub fn standard() -> Self {
        Self::new(Duration::from_millis(100), CAP)
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.cap);
        // xorshift: cheap jitter without a dependency.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let jitter = (self.seed % 501) as f64 / 1000.0 + 0.75; // 0.75 ..= 1.25
        base.mul_f64(jitter).min(self.cap)
    }

    /// After a success: start again from `initial`.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let delays: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(75) && delays[0] <= Duration::from_millis(125));
        assert!(delays[3] >= Duration::from_millis(600));
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(5)));
        assert!(delays[9] >= Duration::from_millis(3750));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(125));
    }
}
