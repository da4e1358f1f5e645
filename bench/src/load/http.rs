//! A load generator for the API (and for the baselines it is compared with): open loop at a
//! fixed rate, or closed loop at a fixed concurrency.
//!
//! **Open loop** ([`open_loop`]): request *i* is due at `start + i / rate`, whatever happened
//! to earlier ones, and its latency is measured from that due time, not from when it was
//! actually sent. A server that stalls therefore shows its stall in every request that
//! should have been sent meanwhile — the "coordinated omission" a closed-loop tool hides.
//! The schedule runs on its own OS thread with `std::thread::sleep` (hrtimer precision,
//! ~0.1 ms) rather than on tokio's millisecond timer wheel, which at 2 000 req/s would
//! bunch requests into pairs and add up to a millisecond to each measurement. Each due
//! request is spawned onto the runtime at once; at most `max_in_flight` run together, and
//! the wait for a slot counts in the latency.
//!
//! **Closed loop** ([`closed_loop`]): `concurrency` workers each send the next request as
//! soon as the previous answer arrives, for peak throughput.
//!
//! What a request is, is the caller's: a closure from the request number to a future that
//! says whether it succeeded. [`GraphqlClient`] makes HTTP ones: POSTs over keep-alive
//! connections, counting anything but a 200 without `errors` as an error.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Longest any single request may take before it counts as an error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What a run measured. Latencies are in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Requests per second asked for (open loop), or `None` (closed loop).
    pub target_rate: Option<f64>,
    /// Concurrency of a closed-loop run (or the in-flight bound of an open-loop one).
    pub concurrency: usize,
    pub seconds: f64,
    pub sent: u64,
    pub ok: u64,
    pub errors: u64,
    /// Completed requests per second over the run.
    pub achieved_per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Open loop: the latest a request was handed to the runtime after its due time (a
    /// measure of the generator's own health; its delay is inside the latencies anyway).
    pub max_send_lag_ms: f64,
    /// The first error seen, to say what went wrong.
    pub first_error: Option<String>,
}

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid load parameters: {0}")]
    Invalid(String),
    #[error("the scheduler thread failed: {0}")]
    Scheduler(String),
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

struct Recorder {
    hist: Histogram<u64>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Recorder {
    fn new() -> Result<Self, LoadError> {
        Ok(Recorder {
            hist: Histogram::new_with_bounds(1, 120_000_000, 3)
                .map_err(|e| LoadError::Invalid(e.to_string()))?,
            ok: 0,
            errors: 0,
            first_error: None,
        })
    }

    fn record(&mut self, latency: Duration, result: Result<(), String>) {
        let us = (latency.as_micros() as u64).clamp(1, 120_000_000);
        let _ = self.hist.record(us);
        match result {
            Ok(()) => self.ok += 1,
            Err(e) => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(e);
                }
            }
        }
    }

    fn report(&self, seconds: f64) -> Report {
        let q = |p: f64| self.hist.value_at_quantile(p) as f64 / 1000.0;
        let done = self.ok + self.errors;
        Report {
            seconds,
            sent: done,
            ok: self.ok,
            errors: self.errors,
            achieved_per_s: if seconds > 0.0 {
                self.ok as f64 / seconds
            } else {
                0.0
            },
            p50_ms: q(0.50),
            p90_ms: q(0.90),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: self.hist.max() as f64 / 1000.0,
            first_error: self.first_error.clone(),
            ..Report::default()
        }
    }
}

/// Runs `request(i)` for i = 0, 1, … at `rate` per second for `duration`, open loop (see
/// the module docs). Must be called from within a multi-threaded tokio runtime.
pub async fn open_loop<F, Fut>(
    rate: f64,
    duration: Duration,
    max_in_flight: usize,
    request: F,
) -> Result<Report, LoadError>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    if !(rate > 0.0 && rate.is_finite()) || max_in_flight == 0 {
        return Err(LoadError::Invalid(format!(
            "rate {rate} and max_in_flight {max_in_flight} must be positive"
        )));
    }
    let total = (rate * duration.as_secs_f64()).floor() as u64;
    let recorder = Arc::new(Mutex::new(Recorder::new()?));
    let slots = Arc::new(tokio::sync::Semaphore::new(max_in_flight));
    let request = Arc::new(request);
    let handle = tokio::runtime::Handle::current();
    let start = Instant::now() + Duration::from_millis(20);
    let rec = recorder.clone();
    let scheduler = std::thread::Builder::new()
        .name("loadgen-schedule".into())
        .spawn(move || {
            let mut tasks = Vec::with_capacity(total as usize);
            let mut max_lag = Duration::ZERO;
            for i in 0..total {
                let due = start + Duration::from_secs_f64(i as f64 / rate);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                max_lag = max_lag.max(Instant::now().saturating_duration_since(due));
                let (request, slots, rec) = (request.clone(), slots.clone(), rec.clone());
                tasks.push(handle.spawn(async move {
                    let result = match slots.acquire_owned().await {
                        Ok(_permit) => {
                            match tokio::time::timeout(REQUEST_TIMEOUT, request(i)).await {
                                Ok(r) => r,
                                Err(_) => Err(format!("no answer within {REQUEST_TIMEOUT:?}")),
                            }
                        }
                        Err(_) => Err("the in-flight limiter closed".into()),
                    };
                    let latency = due.elapsed();
                    rec.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .record(latency, result);
                }));
            }
            (tasks, max_lag)
        })
        .map_err(|e| LoadError::Scheduler(e.to_string()))?;
    let (tasks, max_lag) = tokio::task::spawn_blocking(move || scheduler.join())
        .await
        .map_err(|e| LoadError::Scheduler(e.to_string()))?
        .map_err(|_| LoadError::Scheduler("the scheduler thread panicked".into()))?;
    for t in tasks {
        let _ = t.await;
    }
    let seconds = start.elapsed().as_secs_f64();
    let rec = recorder.lock().unwrap_or_else(|p| p.into_inner());
    let mut report = rec.report(seconds.max(duration.as_secs_f64()));
    // Achieved rate over the schedule, not the drain at its end.
    report.achieved_per_s = rec.ok as f64 / duration.as_secs_f64().max(f64::MIN_POSITIVE);
    report.target_rate = Some(rate);
    report.concurrency = max_in_flight;
    report.max_send_lag_ms = max_lag.as_secs_f64() * 1000.0;
    Ok(report)
}

/// Runs `request(i)` from `concurrency` workers back to back for `duration` (see the module
/// docs).
pub async fn closed_loop<F, Fut>(
    concurrency: usize,
    duration: Duration,
    request: F,
) -> Result<Report, LoadError>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    if concurrency == 0 {
        return Err(LoadError::Invalid("concurrency must be positive".into()));
    }
    let recorder = Arc::new(Mutex::new(Recorder::new()?));
    let request = Arc::new(request);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (request, next, rec) = (request.clone(), next.clone(), recorder.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let sent = Instant::now();
                    let result = match tokio::time::timeout(REQUEST_TIMEOUT, request(i)).await {
                        Ok(r) => r,
                        Err(_) => Err(format!("no answer within {REQUEST_TIMEOUT:?}")),
                    };
                    rec.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .record(sent.elapsed(), result);
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    let seconds = start.elapsed().as_secs_f64();
    let rec = recorder.lock().unwrap_or_else(|p| p.into_inner());
    let mut report = rec.report(seconds);
    report.concurrency = concurrency;
    Ok(report)
}

/// POSTs GraphQL requests to one endpoint over a keep-alive connection pool.
#[derive(Clone)]
pub struct GraphqlClient {
    client: reqwest::Client,
    url: Arc<str>,
}

impl GraphqlClient {
    /// A client for `url` (e.g. `http://127.0.0.1:8080/graphql`).
    pub fn new(url: &str) -> Result<Self, LoadError> {
        let client = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .timeout(REQUEST_TIMEOUT)
            .build()?;
        Ok(GraphqlClient {
            client,
            url: Arc::from(url),
        })
    }

    /// POSTs `body` (a JSON GraphQL request). Ok when the answer is 200 with no `errors`.
    pub fn post(
        &self,
        body: impl Into<reqwest::Body>,
    ) -> impl Future<Output = Result<(), String>> + Send + 'static {
        let req = self
            .client
            .post(&*self.url)
            .header("content-type", "application/json")
            .header("accept", "application/graphql-response+json")
            .body(body);
        async move {
            let resp = req.send().await.map_err(|e| format!("send: {e}"))?;
            let status = resp.status();
            let bytes = resp.bytes().await.map_err(|e| format!("read: {e}"))?;
            if status != reqwest::StatusCode::OK {
                return Err(format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                ));
            }
            if memchr(b"\"errors\"", &bytes) {
                return Err(format!(
                    "GraphQL errors: {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                ));
            }
            Ok(())
        }
    }
}

fn memchr(needle: &[u8], hay: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn open_loop_measures_from_the_due_time() {
        // Every request takes 20 ms but only one runs at a time: at 200/s the queue grows,
        // and an honest open-loop measurement shows latencies far above 20 ms.
        let r = open_loop(200.0, Duration::from_millis(500), 1, |_| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(r.sent, 100);
        assert_eq!(r.errors, 0);
        assert!(r.max_ms > 1000.0, "queueing must show: {r:?}");

        // With room to run in parallel the same requests take their own 20 ms.
        let r = open_loop(200.0, Duration::from_millis(500), 64, |i| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if i == 7 {
                Err("seven".into())
            } else {
                Ok(())
            }
        })
        .await
        .unwrap();
        assert_eq!((r.sent, r.ok, r.errors), (100, 99, 1));
        assert_eq!(r.first_error.as_deref(), Some("seven"));
        assert!(r.p50_ms >= 20.0 && r.p50_ms < 60.0, "{r:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closed_loop_runs_back_to_back() {
        let r = closed_loop(4, Duration::from_millis(300), |_| async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok(())
        })
        .await
        .unwrap();
        // 4 workers × ~30 requests each (timer granularity makes it a little less).
        assert!(r.ok > 60 && r.ok <= 124, "{r:?}");
        assert_eq!(r.errors, 0);
    }
}
