//! Ctrl-C: the first one asks the run to stop at the next safe point (between actions,
//! inside waits); commands already sent finish or hit their timeout. The interruption is
//! journaled and the incident stays resumable.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Installs the SIGINT/SIGTERM handler (once).
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = std::thread::Builder::new().name("signals".into()).spawn(|| {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async {
                let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
                    return;
                };
                loop {
                    tokio::select! {
                        r = tokio::signal::ctrl_c() => { if r.is_err() { return; } }
                        _ = term.recv() => {}
                    }
                    if INTERRUPTED.swap(true, Ordering::SeqCst) {
                        // Second signal: the operator insists.
                        eprintln!("\nnats-rescue: interrupted twice, exiting now (the journal is consistent; `nats-rescue resume` continues)");
                        std::process::exit(crate::exit_codes::STOPPED);
                    }
                    eprintln!("\nnats-rescue: interrupt received; stopping at the next safe point (press Ctrl-C again to exit now)");
                }
            });
        });
    });
}

pub fn requested() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
