//! Which process this is: a generation number bumped in the child of every
//! `fork()`, so state inherited from a parent (connections, threads) is
//! noticed and replaced instead of shared.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bumped in the child process of every `fork()` (a `pthread_atfork`
/// handler): a manager whose state belongs to another generation was
/// inherited from a parent.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Installs the `fork()` handler once per process.
pub(crate) fn watch_forks() {
    #[cfg(unix)]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        extern "C" fn child() {
            FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
        }
        // SAFETY: registers a handler that only touches an atomic, which is
        // async-signal-safe as a child handler must be.
        ONCE.call_once(|| unsafe {
            libc::pthread_atfork(None, None, Some(child));
        });
    }
}

/// The current fork generation (see [`FORK_GENERATION`]).
pub(crate) fn generation() -> u64 {
    FORK_GENERATION.load(Ordering::Relaxed)
}
