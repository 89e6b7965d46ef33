//! Handing freed memory back to the system.
//!
//! Used by the worker after loading a model (below) and by the api once a
//! flood of connections has gone (their buffers were freed into glibc's
//! per-thread arenas, where they stayed resident: tens of MB after 2,000 idle
//! connections).
//!
//! Parsing an ONNX graph holds the weights several times over for a moment
//! (the file's bytes, the protobuf's tensors, tract's tensors, then the plan's
//! packed copies). The copies are freed once the plan is built, but glibc's
//! allocator keeps most of what it freed (every tensor under its mmap
//! threshold lives in the heap) as resident memory of the process: for
//! OFA-large, gigabytes per worker that no one uses; so do a run's
//! activations after each OFA job. [`release_freed`] asks glibc to return
//! every free page to the kernel (`malloc_trim(0)`), so a worker's resident
//! memory between jobs is the plan's weights and little more
//! (docs/model-pack.md has the figures).

/// Returns the heap's free pages to the kernel (glibc only; elsewhere the
/// allocator's own policy stands).
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it has no
    // preconditions and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
