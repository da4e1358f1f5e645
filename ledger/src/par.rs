//! Order-preserving parallel map over a slice on scoped threads, for the hashing of large
//! blocks (encoding and leaf-hashing their transactions). A few threads per block rather
//! than a pool: readers of the chain get it without a thread-pool dependency, and a block
//! large enough to take this path costs far more to hash than to spawn two threads.

use std::sync::OnceLock;
use std::thread;

/// Threads to spread a slice over: the machine's available parallelism, looked up once.
fn threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| thread::available_parallelism().map_or(1, |n| n.get()))
}

/// `items.iter().map(f).collect()`, with the slice cut into one contiguous chunk per
/// thread; the calling thread takes the first chunk.
pub(crate) fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = threads().min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    thread::scope(|s| {
        let mut chunks = items.chunks(chunk);
        let first = chunks.next().unwrap_or_default();
        let rest: Vec<_> = chunks
            .map(|c| s.spawn(move || c.iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out: Vec<R> = Vec::with_capacity(items.len());
        out.extend(first.iter().map(f));
        for handle in rest {
            match handle.join() {
                Ok(part) => out.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_order_for_every_length() {
        for n in [0, 1, 2, 3, 64, 65, 1000] {
            let items: Vec<usize> = (0..n).collect();
            assert_eq!(
                super::map(&items, |i| i * 2),
                items.iter().map(|i| i * 2).collect::<Vec<_>>()
            );
        }
    }
}
