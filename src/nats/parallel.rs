//! The gathers' fan-out over nodes: every node worked on, at most [`MAX_PARALLEL_NODES`] at
//! once.
//!
//! Why a bound: one thread per node (two with the shell probe beside the HTTP fetches) made
//! the peak memory grow with the inventory: at 200 nodes 400 threads, each with its own
//! stack, its share of malloc's per-thread arenas, a parsed known_hosts and a libssh2
//! session in its handshake at the same moment (~92 MB peak RSS, issue #17). A pool of
//! workers keeps what is in flight to the bound; the nodes beyond it wait for a free
//! worker, not for a timer, and each node keeps its own timeouts. The bound is above any
//! inventory the tool is usually given, so 3, 10 or 60 nodes still all run at once.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Nodes worked on at once by a gather.
pub const MAX_PARALLEL_NODES: usize = 64;

/// Runs `f` on every item, at most `limit` at once (each on its own scoped thread), and
/// returns the results in the order of `items`. An item whose `f` panicked is `None`; the
/// others are unaffected.
pub fn map_bounded<T, R, F>(items: &[T], limit: usize, f: F) -> Vec<Option<R>>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let workers = limit.clamp(1, items.len().max(1));
    if items.len() <= 1 {
        return items
            .iter()
            .map(|i| catch_unwind(AssertUnwindSafe(|| f(i))).ok())
            .collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = catch_unwind(AssertUnwindSafe(|| f(item))).ok();
                results.lock().unwrap_or_else(|p| p.into_inner())[i] = r;
            });
        }
    });
    results.into_inner().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_item_once_in_order_and_never_more_than_the_limit() {
        for (n, limit) in [
            (0usize, 4usize),
            (1, 4),
            (3, 64),
            (10, 4),
            (200, 64),
            (7, 1),
        ] {
            let items: Vec<usize> = (0..n).collect();
            let inflight = AtomicUsize::new(0);
            let peak = AtomicUsize::new(0);
            let calls = AtomicUsize::new(0);
            let out = map_bounded(&items, limit, |&i| {
                let now = inflight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                calls.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
                inflight.fetch_sub(1, Ordering::SeqCst);
                i * 2
            });
            assert_eq!(calls.load(Ordering::SeqCst), n, "n={n}");
            assert_eq!(
                out,
                items.iter().map(|i| Some(i * 2)).collect::<Vec<_>>(),
                "n={n}"
            );
            let p = peak.load(Ordering::SeqCst);
            assert!(p <= limit.max(1), "n={n} limit={limit}: {p} at once");
            if n >= limit && limit > 1 {
                // Up to the bound, items do run in parallel (3 nodes are not serialised).
                assert!(p > 1, "n={n} limit={limit}: ran one at a time");
            }
        }
    }

    #[test]
    fn items_below_the_limit_all_run_at_once() {
        // 10 items that each wait for all 10 to have started: only a fan-out of 10 finishes.
        let items: Vec<usize> = (0..10).collect();
        let started = AtomicUsize::new(0);
        let out = map_bounded(&items, MAX_PARALLEL_NODES, |_| {
            started.fetch_add(1, Ordering::SeqCst);
            let t0 = std::time::Instant::now();
            while started.load(Ordering::SeqCst) < 10 {
                assert!(t0.elapsed() < Duration::from_secs(10), "not all at once");
                std::thread::sleep(Duration::from_millis(1));
            }
            true
        });
        assert!(out.iter().all(|r| *r == Some(true)));
    }

    #[test]
    fn a_panic_is_that_item_only() {
        let items: Vec<usize> = (0..20).collect();
        let out = map_bounded(&items, 3, |&i| {
            assert!(i != 7, "boom");
            i
        });
        assert_eq!(out.iter().filter(|r| r.is_none()).count(), 1);
        assert_eq!(out[7], None);
        assert_eq!(out[8], Some(8));
    }
}
