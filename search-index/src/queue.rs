//! A bound on the documents waiting for tantivy's indexing threads.
//!
//! Why: tantivy's queue holds up to 10 000 *messages*, and a rebuild sends its documents
//! in batches of 1 024 per message (one wake-up per batch instead of per document), so
//! the queue is unbounded in practice. When PostgreSQL and the reader outpace the indexing
//! threads — which is what happens on a quiet machine — nearly the whole rebuild waited in
//! memory: `landql serve` peaked at 1.6 GiB at 1 M records. Each document now holds a
//! [`Slot`] of a [`Window`] until tantivy drops it after indexing, and the producer waits
//! for slots.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tantivy::schema::document::Document;
use tantivy::TantivyDocument;

/// How long the producer waits for room before sending anyway. The bound is soft so that
/// a stalled or failed indexing thread can never hang a rebuild: tantivy reports a dead
/// writer on the next send, and a slow one lets one more document through per wait.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// Documents that may be on their way to the indexing threads at once.
#[derive(Debug)]
pub(crate) struct Window {
    in_flight: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

impl Window {
    /// A window of `max` documents (more than a batch, or a batch could wait on itself).
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Window {
            in_flight: Mutex::new(0),
            freed: Condvar::new(),
            max: max.max(2),
        })
    }

    /// Takes a slot, waiting while the window is full until half of it is free again (so
    /// that the producer wakes once per half window, not once per indexed document).
    pub fn slot(self: &Arc<Self>) -> Slot {
        let mut n = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if *n >= self.max {
            loop {
                let (guard, waited) = self
                    .freed
                    .wait_timeout(n, MAX_WAIT)
                    .unwrap_or_else(|p| p.into_inner());
                n = guard;
                if *n <= self.max / 2 || waited.timed_out() {
                    break;
                }
            }
        }
        *n += 1;
        Slot(Arc::clone(self))
    }

    #[cfg(test)]
    fn in_flight(&self) -> usize {
        *self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A place in a [`Window`], given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot(Arc<Window>);

impl Drop for Slot {
    fn drop(&mut self) {
        let w = &self.0;
        let mut n = w.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
        if *n == w.max / 2 {
            w.freed.notify_all();
        }
    }
}

/// The document type of the index writer: a tantivy document, and the slot it holds while
/// it waits to be indexed (none for the live follower's few documents).
pub(crate) struct Queued {
    doc: TantivyDocument,
    _slot: Option<Slot>,
}

impl Queued {
    pub fn new(doc: TantivyDocument, slot: Option<Slot>) -> Self {
        Queued { doc, _slot: slot }
    }
}

impl Document for Queued {
    type Value<'a> = <TantivyDocument as Document>::Value<'a>;
    type FieldsValuesIter<'a> = <TantivyDocument as Document>::FieldsValuesIter<'a>;

    fn iter_fields_and_values(&self) -> Self::FieldsValuesIter<'_> {
        self.doc.iter_fields_and_values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tantivy::schema::Field;

    fn fields(q: &Queued) -> Vec<Field> {
        q.iter_fields_and_values().map(|(f, _)| f).collect()
    }

    #[test]
    fn a_full_window_waits_until_half_is_free() {
        let w = Window::new(4);
        let slots: Vec<Slot> = (0..4).map(|_| w.slot()).collect();
        assert_eq!(w.in_flight(), 4);
        let w2 = Arc::clone(&w);
        let started = Instant::now();
        let waiter = std::thread::spawn(move || {
            let s = w2.slot();
            (started.elapsed(), s)
        });
        std::thread::sleep(Duration::from_millis(100));
        let mut slots = slots.into_iter();
        drop(slots.next()); // 3 in flight: still more than half
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !waiter.is_finished(),
            "one free slot of four must not wake the producer"
        );
        drop(slots.next()); // 2: half free
        let (waited, _s) = waiter.join().expect("the waiter");
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
        assert!(
            waited < MAX_WAIT,
            "woken by the freed half, not the timeout: {waited:?}"
        );
        assert_eq!(w.in_flight(), 3);
    }

    #[test]
    fn a_stalled_window_lets_one_through_per_wait() {
        let w = Window::new(2);
        let _held: Vec<Slot> = (0..2).map(|_| w.slot()).collect();
        let started = Instant::now();
        let _extra = w.slot();
        assert!(started.elapsed() >= MAX_WAIT);
        assert_eq!(w.in_flight(), 3);
    }

    #[test]
    fn a_queued_document_has_its_fields() {
        let mut schema = tantivy::schema::Schema::builder();
        let a = schema.add_text_field("a", tantivy::schema::STORED);
        let mut d = TantivyDocument::default();
        d.add_text(a, "x");
        let w = Window::new(2);
        let q = Queued::new(d, Some(w.slot()));
        assert_eq!(fields(&q), vec![a]);
        drop(q);
        assert_eq!(
            w.in_flight(),
            0,
            "dropping the document gives its slot back"
        );
    }
}
