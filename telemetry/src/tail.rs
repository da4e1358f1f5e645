//! Head and tail sampling.
//!
//! [`HeadSampler`] records every span it is given (of a trace it did not sample, the layer's
//! filter gives it only the local root and the calls to other processes: `record.rs`) and
//! samples (the W3C flag) by the ratio, by trace id, or by the parent's flag when there is a
//! parent — the incoming `traceparent`'s for a local root, so a caller's decision is
//! respected, and the local parent's below it, so a trace is decided once. The flag travels
//! on to the ledger in the `traceparent` the client sends.
//!
//! [`TailProcessor`] sits in front of the batch exporter. A span of a sampled trace goes
//! straight on. A span of an unsampled trace waits in a buffer, by trace id, until the
//! trace's local root ends (the span without a parent in this process: a request's span, or
//! a background task's); then the trace is exported when any of its spans ended in error
//! or the root lasted at least the slow threshold, and dropped otherwise. Spans that end
//! after their root (a task the request spawned) follow the decision, remembered for the
//! last [`DECIDED`] traces.
//!
//! The buffer holds at most `max_traces` traces and `max_spans` spans; past either, the
//! oldest trace is dropped whole and counted ([`TailStats`]). Its cost at a small ratio is
//! one short critical section per span: a hash map insert, and the trace's removal at the
//! root.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceId, TraceState,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    SamplingDecision, SamplingResult, ShouldSample, SpanData, SpanProcessor,
};
use opentelemetry_sdk::Resource;

/// Decisions remembered for spans that end after their trace's root.
pub const DECIDED: usize = 4096;

/// Samples by ratio at the root, by the parent's flag below it; records everything.
#[derive(Debug, Clone)]
pub struct HeadSampler {
    /// `ratio · 2⁶³`, compared with the trace id's low 63 bits (as the SDK's ratio sampler
    /// does, so a collector's ratio sampler agrees).
    bound: u64,
    all: bool,
}

impl HeadSampler {
    pub fn new(ratio: f64) -> Self {
        let ratio = ratio.clamp(0.0, 1.0);
        Self {
            bound: (ratio * (1u64 << 63) as f64) as u64,
            all: ratio >= 1.0,
        }
    }

    /// The ratio's decision for a new trace.
    pub fn picks(&self, trace_id: TraceId) -> bool {
        if self.all {
            return true;
        }
        let bytes = trace_id.to_bytes();
        let mut low = [0u8; 8];
        low.copy_from_slice(&bytes[8..]);
        (u64::from_be_bytes(low) >> 1) < self.bound
    }
}

impl ShouldSample for HeadSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        _name: &str,
        _span_kind: &SpanKind,
        _attributes: &[KeyValue],
        _links: &[opentelemetry::trace::Link],
    ) -> SamplingResult {
        let parent = parent_context
            .filter(|cx| cx.has_active_span())
            .map(|cx| cx.span().span_context().clone())
            .filter(SpanContext::is_valid);
        let (sampled, trace_state) = match parent {
            Some(sc) => (sc.is_sampled(), sc.trace_state().clone()),
            None => (self.picks(trace_id), TraceState::default()),
        };
        SamplingResult {
            decision: if sampled {
                SamplingDecision::RecordAndSample
            } else {
                SamplingDecision::RecordOnly
            },
            attributes: Vec::new(),
            trace_state,
        }
    }
}

/// The tail buffer's bounds.
#[derive(Debug, Clone, Copy)]
pub struct BufferLimits {
    /// Unfinished unsampled traces held at once.
    pub max_traces: usize,
    /// Spans held at once, over all of them.
    pub max_spans: usize,
}

impl Default for BufferLimits {
    /// 4096 traces and 65 536 spans: a few seconds of a busy node's requests in flight at a
    /// few hundred bytes a span, tens of MB at worst.
    fn default() -> Self {
        Self {
            max_traces: 4096,
            max_spans: 65_536,
        }
    }
}

/// What the tail did, since the start.
#[derive(Debug, Default)]
pub struct TailStats {
    kept_by_tail: AtomicU64,
    dropped_by_tail: AtomicU64,
    evicted_traces: AtomicU64,
    evicted_spans: AtomicU64,
}

/// A copy of [`TailStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TailCounts {
    /// Unsampled traces exported because of an error or slowness.
    pub kept_by_tail: u64,
    /// Unsampled traces dropped at their root.
    pub dropped_by_tail: u64,
    /// Traces dropped from the full buffer before their root ended.
    pub evicted_traces: u64,
    pub evicted_spans: u64,
}

impl TailStats {
    pub fn snapshot(&self) -> TailCounts {
        TailCounts {
            kept_by_tail: self.kept_by_tail.load(Ordering::Relaxed),
            dropped_by_tail: self.dropped_by_tail.load(Ordering::Relaxed),
            evicted_traces: self.evicted_traces.load(Ordering::Relaxed),
            evicted_spans: self.evicted_spans.load(Ordering::Relaxed),
        }
    }
}

/// Hashes a trace id by its low 64 bits, spread by one multiplication: they are random
/// already (W3C asks so of the rightmost bytes), so SipHash's work — a visible share of a
/// request's tracing cost, two maps touched per trace — buys little here. Callers choosing
/// colliding ids can at worst lengthen probes in maps of a few thousand entries.
#[derive(Debug, Default, Clone, Copy)]
struct ById;

impl std::hash::BuildHasher for ById {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

#[derive(Debug, Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not reached for a `TraceId` (it hashes as one u128); any other input is folded in.
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 ^= (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

#[derive(Debug, Default)]
struct Buffer {
    traces: HashMap<TraceId, Vec<SpanData>, ById>,
    /// Trace ids in arrival order, for dropping the oldest; ids of traces already gone are
    /// skipped then, and compacted away when they outnumber the live ones.
    order: VecDeque<TraceId>,
    spans: usize,
    decided: HashMap<TraceId, bool, ById>,
    decided_order: VecDeque<TraceId>,
}

impl Buffer {
    fn remember(&mut self, trace: TraceId, keep: bool) {
        if self.decided.insert(trace, keep).is_none() {
            self.decided_order.push_back(trace);
            if self.decided_order.len() > DECIDED {
                if let Some(old) = self.decided_order.pop_front() {
                    self.decided.remove(&old);
                }
            }
        }
    }

    fn evict_oldest(&mut self, stats: &TailStats) {
        while let Some(old) = self.order.pop_front() {
            if let Some(spans) = self.traces.remove(&old) {
                self.spans -= spans.len();
                stats.evicted_traces.fetch_add(1, Ordering::Relaxed);
                stats
                    .evicted_spans
                    .fetch_add(spans.len() as u64, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// The tail sampler, in front of the processor `P` that exports (see the module docs).
#[derive(Debug)]
pub struct TailProcessor<P> {
    inner: P,
    slow: Duration,
    limits: BufferLimits,
    buffer: Mutex<Buffer>,
    stats: Arc<TailStats>,
}

impl<P: SpanProcessor> TailProcessor<P> {
    pub fn new(inner: P, slow: Duration, limits: BufferLimits, stats: Arc<TailStats>) -> Self {
        Self {
            inner,
            slow,
            limits: BufferLimits {
                max_traces: limits.max_traces.max(1),
                max_spans: limits.max_spans.max(1),
            },
            buffer: Mutex::default(),
            stats,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Buffer> {
        // A panic while holding the lock leaves the maps consistent enough to go on with.
        self.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn export(&self, mut span: SpanData) {
        let sc = &span.span_context;
        span.span_context = SpanContext::new(
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().with_sampled(true),
            sc.is_remote(),
            sc.trace_state().clone(),
        );
        self.inner.on_end(span);
    }

    fn is_slow(&self, span: &SpanData) -> bool {
        span.end_time
            .duration_since(span.start_time)
            .is_ok_and(|d| d >= self.slow)
    }
}

fn is_error(span: &SpanData) -> bool {
    matches!(span.status, Status::Error { .. })
}

impl<P: SpanProcessor> SpanProcessor for TailProcessor<P> {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.inner.on_end(span);
            return;
        }
        let trace = span.span_context.trace_id();
        let root = span.parent_span_id == SpanId::INVALID || span.parent_span_is_remote;
        if root {
            let (buffered, keep) = {
                let mut b = self.lock();
                let buffered = b.traces.remove(&trace).unwrap_or_default();
                b.spans -= buffered.len();
                let keep = is_error(&span) || self.is_slow(&span) || buffered.iter().any(is_error);
                b.remember(trace, keep);
                (buffered, keep)
            };
            if keep {
                self.stats.kept_by_tail.fetch_add(1, Ordering::Relaxed);
                for s in buffered {
                    self.export(s);
                }
                self.export(span);
            } else {
                self.stats.dropped_by_tail.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        let mut b = self.lock();
        if let Some(&keep) = b.decided.get(&trace) {
            drop(b);
            if keep || is_error(&span) {
                self.export(span);
            }
            return;
        }
        if !b.traces.contains_key(&trace) {
            while b.traces.len() >= self.limits.max_traces {
                b.evict_oldest(&self.stats);
            }
            b.order.push_back(trace);
            if b.order.len() > 2 * self.limits.max_traces {
                let Buffer { order, traces, .. } = &mut *b;
                order.retain(|t| traces.contains_key(t));
            }
        }
        b.traces.entry(trace).or_default().push(span);
        b.spans += 1;
        while b.spans > self.limits.max_spans && !b.traces.is_empty() {
            b.evict_oldest(&self.stats);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceFlags;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use std::time::SystemTime;

    /// Collects what the tail passes on.
    #[derive(Debug, Default, Clone)]
    struct Sink(Arc<Mutex<Vec<SpanData>>>);

    impl SpanProcessor for Sink {
        fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &Context) {}
        fn on_end(&self, span: SpanData) {
            self.0.lock().unwrap().push(span);
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
            Ok(())
        }
    }

    fn span(trace: u128, id: u64, parent: u64, sampled: bool, ms: u64, err: bool) -> SpanData {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(trace),
                SpanId::from(id),
                if sampled {
                    TraceFlags::SAMPLED
                } else {
                    TraceFlags::default()
                },
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::from(parent),
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: "s".into(),
            start_time: start,
            end_time: start + Duration::from_millis(ms),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: if err {
                Status::error("x")
            } else {
                Status::Unset
            },
            instrumentation_scope: Default::default(),
        }
    }

    fn tail(limits: BufferLimits) -> (TailProcessor<Sink>, Sink, Arc<TailStats>) {
        let sink = Sink::default();
        let stats = Arc::new(TailStats::default());
        (
            TailProcessor::new(
                sink.clone(),
                Duration::from_millis(100),
                limits,
                stats.clone(),
            ),
            sink,
            stats,
        )
    }

    fn exported(sink: &Sink) -> Vec<(u128, u64)> {
        let mut v: Vec<_> = sink
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|s| {
                assert!(s.span_context.is_sampled());
                (
                    u128::from_be_bytes(s.span_context.trace_id().to_bytes()),
                    u64::from_be_bytes(s.span_context.span_id().to_bytes()),
                )
            })
            .collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn keeps_sampled_erring_and_slow_traces_whole_and_drops_the_rest() {
        let (t, sink, stats) = tail(BufferLimits::default());
        // 1: sampled at the head; 2: unsampled, fast, fine; 3: a child errs; 4: slow root;
        // 5: fast root in error.
        t.on_end(span(1, 11, 10, true, 1, false));
        t.on_end(span(1, 10, 0, true, 1, false));
        t.on_end(span(2, 21, 20, false, 1, false));
        t.on_end(span(2, 20, 0, false, 1, false));
        t.on_end(span(3, 31, 30, false, 1, true));
        t.on_end(span(3, 32, 30, false, 1, false));
        t.on_end(span(3, 30, 0, false, 1, false));
        t.on_end(span(4, 41, 40, false, 1, false));
        t.on_end(span(4, 40, 0, false, 100, false));
        t.on_end(span(5, 50, 0, false, 1, true));
        // A late child follows its trace's decision.
        t.on_end(span(2, 22, 20, false, 1, false));
        t.on_end(span(4, 42, 40, false, 1, false));
        assert_eq!(
            exported(&sink),
            vec![
                (1, 10),
                (1, 11),
                (3, 30),
                (3, 31),
                (3, 32),
                (4, 40),
                (4, 41),
                (4, 42),
                (5, 50)
            ]
        );
        let s = stats.snapshot();
        assert_eq!((s.kept_by_tail, s.dropped_by_tail), (3, 1));
        assert_eq!(t.lock().spans, 0);
    }

    #[test]
    fn the_buffer_is_bounded_and_drops_the_oldest_trace() {
        let (t, sink, stats) = tail(BufferLimits {
            max_traces: 2,
            max_spans: 3,
        });
        t.on_end(span(1, 11, 10, false, 1, false));
        t.on_end(span(2, 21, 20, false, 1, false));
        t.on_end(span(3, 31, 30, false, 1, false)); // evicts trace 1
        t.on_end(span(3, 32, 30, false, 1, false));
        t.on_end(span(3, 33, 30, false, 1, false)); // 4 spans > 3: evicts trace 2
        assert_eq!(stats.snapshot().evicted_traces, 2);
        assert_eq!(stats.snapshot().evicted_spans, 2);
        // Trace 1's root errs: only the root is left to export.
        t.on_end(span(1, 10, 0, false, 1, true));
        t.on_end(span(3, 30, 0, false, 1, true));
        assert_eq!(
            exported(&sink),
            vec![(1, 10), (3, 30), (3, 31), (3, 32), (3, 33)]
        );
        let b = t.lock();
        assert_eq!((b.spans, b.traces.len()), (0, 0));
    }

    #[test]
    fn the_order_queue_stays_bounded() {
        let (t, _sink, _) = tail(BufferLimits {
            max_traces: 4,
            max_spans: 100,
        });
        for i in 1..10_000u128 {
            t.on_end(span(i, 2, 1, false, 1, false));
            t.on_end(span(i, 1, 0, false, 1, false));
        }
        let b = t.lock();
        assert!(b.order.len() <= 8, "{}", b.order.len());
        assert!(b.decided.len() <= DECIDED);
    }

    #[test]
    fn head_ratio_picks_about_its_share_and_respects_parents() {
        let h = HeadSampler::new(0.1);
        let picked = (0..100_000u64)
            .filter(|i| {
                // Spread ids over the low bits as random ids are.
                let id = u128::from(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                h.picks(TraceId::from(id))
            })
            .count();
        assert!((9_000..11_000).contains(&picked), "{picked}");
        assert!(HeadSampler::new(1.0).picks(TraceId::from(u128::MAX)));
        assert!(!HeadSampler::new(0.0).picks(TraceId::from(0)));
        let parent = |flags| {
            Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from(7),
                SpanId::from(7),
                flags,
                true,
                TraceState::default(),
            ))
        };
        let decide = |h: &HeadSampler, cx: &Context| {
            h.should_sample(Some(cx), TraceId::from(7), "s", &SpanKind::Server, &[], &[])
                .decision
        };
        assert_eq!(
            decide(&HeadSampler::new(0.0), &parent(TraceFlags::SAMPLED)),
            SamplingDecision::RecordAndSample
        );
        assert_eq!(
            decide(&HeadSampler::new(1.0), &parent(TraceFlags::default())),
            SamplingDecision::RecordOnly
        );
    }
}
