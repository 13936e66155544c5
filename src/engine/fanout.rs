//! Runs one blocking task per node on tokio's blocking pool, at most `limit` at once, and
//! hands each result to the caller (on the calling thread) as soon as it is done, so the
//! journal records results in completion order while slow nodes are still working.

use crate::inventory::Node;
use std::sync::Arc;

/// Default number of nodes worked on at once.
pub const DEFAULT_CONCURRENCY: usize = 32;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(128)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot start the tokio runtime: {e}"))
    })
}

/// Runs `work` for every node; calls `done(index, node, result)` as results arrive.
pub fn fanout<T, W, D>(nodes: &[Node], limit: usize, work: W, mut done: D)
where
    T: Send + 'static,
    W: Fn(&Node) -> T + Send + Sync + 'static,
    D: FnMut(usize, &Node, T),
{
    if nodes.is_empty() {
        return;
    }
    let work = Arc::new(work);
    let rt = runtime();
    rt.block_on(async {
        let sem = Arc::new(tokio::sync::Semaphore::new(limit.max(1)));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for (i, n) in nodes.iter().enumerate() {
            let sem = sem.clone();
            let work = work.clone();
            let tx = tx.clone();
            let node = n.clone();
            tokio::spawn(async move {
                let Ok(_permit) = sem.acquire_owned().await else {
                    return;
                };
                let r = tokio::task::spawn_blocking(move || work(&node)).await;
                let _ = tx.send((i, r));
            });
        }
        drop(tx);
        while let Some((i, r)) = rx.recv().await {
            match r {
                Ok(v) => done(i, &nodes[i], v),
                Err(e) => panic!("a node worker panicked: {e}"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn nodes(n: usize) -> Vec<Node> {
        let text = format!(
            "cluster: c\nnodes:\n{}",
            (1..=n)
                .map(|i| format!("  - {{name: n{i}, host: h{i}}}\n"))
                .collect::<String>()
        );
        crate::inventory::Inventory::parse(std::path::Path::new("i"), &text)
            .unwrap()
            .nodes
    }

    #[test]
    fn runs_in_parallel_within_the_limit_and_reports_all() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        for limit in [2usize, 8] {
            let ns = nodes(8);
            let inflight = Arc::new(AtomicUsize::new(0));
            let peak = Arc::new(AtomicUsize::new(0));
            let (i2, p2) = (inflight.clone(), peak.clone());
            let mut got = Vec::new();
            fanout(
                &ns,
                limit,
                move |n| {
                    let now = i2.fetch_add(1, Ordering::SeqCst) + 1;
                    p2.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(100));
                    i2.fetch_sub(1, Ordering::SeqCst);
                    n.name.clone()
                },
                |i, _, v| got.push((i, v)),
            );
            assert_eq!(got.len(), 8);
            got.sort();
            assert_eq!(got[7], (7, "n8".to_string()));
            let peak = peak.load(Ordering::SeqCst);
            assert!(peak <= limit, "peak {peak} > limit {limit}");
            assert!(
                peak >= 2,
                "nodes were not worked on concurrently (peak {peak})"
            );
        }
    }
}
