//! Lookups by key from concurrent requests, answered together: one statement for all the
//! `property(id)` requests that arrive while the database is busy with earlier ones.
//!
//! Why: `property(id)` is the API's hottest query, and each one cost a statement of its own
//! — a pool checkout, a round trip, and PostgreSQL's per-statement work (parse of the
//! portal, a snapshot, executor start-up), which at peak load was a quarter of all the CPU
//! the machine spent on a request. A DataLoader batches within one request only, and a
//! timed window (wait 1 ms, then send) would add that wait to every request at low load.
//!
//! How: a lookup that finds one of the `max_in_flight` slots free runs at once, alone, on
//! its request's own task — at low load every lookup does, with no added wait or hand-off.
//! A lookup that finds them all busy joins a queue; when a running batch ends, its slot
//! takes the whole queue (up to `max_batch`) as the next batch, on a task of its own. So
//! batches grow exactly as the database falls behind, and never wait on a timer.
//!
//! Queued batches run on a task of their own, not on a request's: a client that goes away
//! drops its request's future, and that must not cancel the lookups of the requests that
//! joined its batch. A request whose own lookup is running when it goes away hands the
//! queue on (see `Slot`).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// What a batch's lookup returns: one answer per key, in the keys' order, or one error for
/// all of them (shared, so that every waiter can report it).
pub(crate) type Answers<V, E> = Result<Vec<V>, Arc<E>>;

type Run<K, V, E> =
    dyn Fn(Vec<K>) -> Pin<Box<dyn Future<Output = Answers<V, E>> + Send>> + Send + Sync;

/// Batches lookups of `K` into calls of one function (see the module docs).
pub(crate) struct Batcher<K, V, E> {
    state: Mutex<State<K, V, E>>,
    max_in_flight: usize,
    max_batch: usize,
    run: Box<Run<K, V, E>>,
}

struct State<K, V, E> {
    queue: Vec<Waiting<K, V, E>>,
    in_flight: usize,
}

/// A queued lookup and where its answer goes.
type Waiting<K, V, E> = (K, oneshot::Sender<Result<V, Arc<E>>>);

/// One of the `max_in_flight` slots, held while a batch runs. Dropped — when the batch
/// ends, or when the request running it inline goes away mid-statement — it hands the
/// lookups queued meanwhile to a task of their own, or gives the slot back when there are
/// none, so that no queued lookup is ever left without a batch.
struct Slot<K, V, E>(Arc<Batcher<K, V, E>>)
where
    K: Send + 'static,
    V: Send + 'static,
    E: Send + Sync + 'static;

impl<K, V, E> Drop for Slot<K, V, E>
where
    K: Send + 'static,
    V: Send + 'static,
    E: Send + Sync + 'static,
{
    fn drop(&mut self) {
        let batcher = &self.0;
        let mut st = batcher.lock();
        if st.queue.is_empty() {
            st.in_flight -= 1;
            return;
        }
        let batch = batcher.take(&mut st);
        drop(st);
        // The slot passes to the new task (if that task is dropped unrun, its slot gives
        // itself back). Without a runtime the batch is dropped, and its lookups end with
        // `NoAnswer`.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(Batcher::drive(Slot(Arc::clone(batcher)), batch));
            }
            Err(_) => {
                drop(batch);
                batcher.lock().in_flight -= 1;
            }
        }
    }
}

/// The batch's task ended without an answer for this lookup (the runtime is shutting
/// down, or the lookup function answered fewer keys than it was given).
#[derive(Debug, thiserror::Error)]
#[error("a batched lookup ended without an answer")]
pub(crate) struct NoAnswer;

impl<K, V, E> Batcher<K, V, E>
where
    K: Send + 'static,
    V: Send + 'static,
    E: Send + Sync + 'static,
{
    /// `run` answers a batch of keys; at most `max_in_flight` run at once, each with at
    /// most `max_batch` keys.
    pub fn new<F, Fut>(max_in_flight: usize, max_batch: usize, run: F) -> Arc<Self>
    where
        F: Fn(Vec<K>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Answers<V, E>> + Send + 'static,
    {
        Arc::new(Batcher {
            state: Mutex::new(State {
                queue: Vec::new(),
                in_flight: 0,
            }),
            max_in_flight: max_in_flight.max(1),
            max_batch: max_batch.max(1),
            run: Box::new(move |keys| Box::pin(run(keys))),
        })
    }

    /// Looks `key` up together with whatever other lookups are waiting.
    pub async fn load(self: &Arc<Self>, key: K) -> Result<Result<V, Arc<E>>, NoAnswer> {
        let waiting = {
            let mut st = self.lock();
            if st.in_flight < self.max_in_flight {
                // A free slot means an empty queue (a slot is only given back once the
                // queue is empty): this lookup is a batch of its own, run right here.
                st.in_flight += 1;
                Err(key)
            } else {
                let (tx, rx) = oneshot::channel();
                st.queue.push((key, tx));
                Ok(rx)
            }
        };
        match waiting {
            Ok(rx) => rx.await.map_err(|_| NoAnswer),
            Err(key) => {
                let slot = Slot(Arc::clone(self));
                let answer = (self.run)(vec![key]).await;
                drop(slot);
                match answer {
                    Ok(values) => values.into_iter().next().map(Ok).ok_or(NoAnswer),
                    Err(e) => Ok(Err(e)),
                }
            }
        }
    }

    /// Runs `batch` in `slot`, then the batches queued meanwhile, until the queue is empty.
    async fn drive(slot: Slot<K, V, E>, mut batch: Vec<Waiting<K, V, E>>) {
        let this = &slot.0;
        loop {
            let (keys, waiters): (Vec<K>, Vec<_>) = batch.into_iter().unzip();
            match (this.run)(keys).await {
                Ok(values) => {
                    // A waiter whose request went away is simply not answered.
                    for (tx, v) in waiters.into_iter().zip(values) {
                        let _ = tx.send(Ok(v));
                    }
                }
                Err(e) => {
                    for tx in waiters {
                        let _ = tx.send(Err(Arc::clone(&e)));
                    }
                }
            }
            let mut st = this.lock();
            if st.queue.is_empty() {
                return;
            }
            batch = this.take(&mut st);
        }
    }

    fn take(&self, st: &mut State<K, V, E>) -> Vec<Waiting<K, V, E>> {
        if st.queue.len() <= self.max_batch {
            std::mem::take(&mut st.queue)
        } else {
            st.queue.drain(..self.max_batch).collect()
        }
    }
}

impl<K, V, E> Batcher<K, V, E> {
    fn lock(&self) -> std::sync::MutexGuard<'_, State<K, V, E>> {
        // The state is a queue and a counter, consistent after every statement: a panic
        // elsewhere while it was held leaves nothing half-done.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// A lookup that doubles its keys after a pause, recording every batch it got.
    fn doubler(
        pause: Duration,
        batches: Arc<Mutex<Vec<Vec<u32>>>>,
    ) -> Arc<Batcher<u32, u32, String>> {
        Batcher::new(2, 8, move |keys: Vec<u32>| {
            let batches = batches.clone();
            async move {
                batches.lock().unwrap().push(keys.clone());
                tokio::time::sleep(pause).await;
                if keys.contains(&666) {
                    return Err(Arc::new("the beast".to_string()));
                }
                Ok(keys.iter().map(|k| k * 2).collect())
            }
        })
    }

    #[tokio::test]
    async fn a_lone_lookup_runs_at_once_and_alone() {
        let batches = Arc::default();
        let b = doubler(Duration::ZERO, Arc::clone(&batches));
        assert_eq!(b.load(21).await.unwrap().unwrap(), 42);
        assert_eq!(*batches.lock().unwrap(), vec![vec![21]]);
    }

    #[tokio::test]
    async fn lookups_that_arrive_while_batches_run_go_together_and_each_gets_its_own_answer() {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let b = doubler(Duration::from_millis(50), Arc::clone(&batches));
        let lookups: Vec<_> = (0..20u32)
            .map(|k| {
                let b = Arc::clone(&b);
                tokio::spawn(async move { (k, b.load(k).await) })
            })
            .collect();
        for l in lookups {
            let (k, v) = l.await.unwrap();
            assert_eq!(v.unwrap().unwrap(), k * 2);
        }
        let batches = batches.lock().unwrap();
        // Two start at once (the in-flight limit); the other 18 wait and go in batches of
        // at most 8: five statements in all instead of twenty.
        assert!(batches.len() <= 5, "{batches:?}");
        assert!(batches.iter().all(|b| b.len() <= 8), "{batches:?}");
        let mut all: Vec<u32> = batches.iter().flatten().copied().collect();
        all.sort();
        assert_eq!(all, (0..20).collect::<Vec<_>>());
        assert_eq!(b.lock().in_flight, 0);
        assert!(b.lock().queue.is_empty());
    }

    #[tokio::test]
    async fn an_error_reaches_every_lookup_of_its_batch_and_no_other() {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let b = doubler(Duration::from_millis(20), Arc::clone(&batches));
        // Fill both slots, then queue 666 with 7 and 8 behind them: one batch of three.
        let first = tokio::spawn({
            let b = Arc::clone(&b);
            async move { b.load(1).await }
        });
        let second = tokio::spawn({
            let b = Arc::clone(&b);
            async move { b.load(2).await }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        let queued: Vec<_> = [666u32, 7, 8]
            .into_iter()
            .map(|k| {
                let b = Arc::clone(&b);
                tokio::spawn(async move { b.load(k).await })
            })
            .collect();
        assert_eq!(first.await.unwrap().unwrap().unwrap(), 2);
        assert_eq!(second.await.unwrap().unwrap().unwrap(), 4);
        for q in queued {
            let err = q.await.unwrap().unwrap().unwrap_err();
            assert_eq!(*err, "the beast");
        }
        assert_eq!(b.load(5).await.unwrap().unwrap(), 10);
    }

    #[tokio::test]
    async fn a_request_that_goes_away_does_not_cancel_the_others_in_its_batch() {
        let calls = Arc::new(AtomicUsize::new(0));
        let b: Arc<Batcher<u32, u32, String>> = Batcher::new(1, 8, {
            let calls = Arc::clone(&calls);
            move |keys: Vec<u32>| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    Ok(keys)
                }
            }
        });
        // The first lookup starts the only slot's batch, then its request is dropped.
        let gone = tokio::spawn({
            let b = Arc::clone(&b);
            async move { b.load(1).await }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        let stays = tokio::spawn({
            let b = Arc::clone(&b);
            async move { b.load(2).await }
        });
        gone.abort();
        assert_eq!(stays.await.unwrap().unwrap().unwrap(), 2);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(b.lock().in_flight, 0);
    }
}
