//! How many cores one inference may use.
//!
//! tract runs its matrix products on the calling thread unless it is given an
//! executor: with `threads > 1` a worker sets a process-wide rayon pool of that
//! many threads (tract's `multithread-mm`), and every plan's matrix products are
//! split across it. The fleet's default is one worker per core with one thread
//! each; a pack whose verdict takes seconds (OFA-large) is served better by one
//! worker with several threads: one copy of the weights, each verdict sooner.

use tract_linalg::multithread::{Executor, set_default_executor};

/// The most threads a worker may ask for.
pub const MAX_THREADS: usize = 256;

/// Makes every tract plan of this process use `threads` threads (1: the
/// calling thread only).
pub fn use_threads(threads: usize) {
    let threads = threads.clamp(1, MAX_THREADS);
    let executor = if threads == 1 {
        Executor::SingleThread
    } else {
        Executor::multithread_with_name(threads, "verdict-tract")
    };
    set_default_executor(executor);
}
