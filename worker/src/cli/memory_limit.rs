//! `verdict-worker run` under a memory limit (`fleet up --worker-memory`,
//! which sets `RLIMIT_AS`): a limit too small to load the model, or to judge
//! beside it, stops the worker before it takes a job, saying to raise the
//! limit, instead of a worker that aborts on each job it takes.
//!
//! Three checks, in the order a worker meets them:
//! - [`check_room_to_load`], before loading: a limit that leaves less than
//!   twice the pack's files beside the program cannot load it, and a load
//!   started there could end in Rust's own allocation failure (`memory
//!   allocation of N bytes failed`), an abort that nothing can catch;
//! - [`load`]: a load that the limit stops all the same ends in an error
//!   (`Cannot allocate memory` reading a graph, or the check that
//!   `engine::onnx_graph` makes before parsing one, whose protobuf decoder
//!   would abort too) or in a panic inside tract (`failed to allocate
//!   Layout`, its tensors' storage), depending on where the first refused
//!   mapping falls; each becomes the same error, and the panic's backtrace
//!   stays out of the log;
//! - [`check_room_to_judge`], after loading.
//!
//! `worker/tests/memory_limit.rs` sweeps limits from far too small to enough
//! and checks that each ends in one of these errors or in a running worker.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail};
use verdict_decode::memory_budget::{
    MIN_IMAGE_BYTES, address_space_limit, megabytes_needed as mb, spare_address_space,
};

use crate::engine::Judge;

/// What loading a pack needs beside the program, at least, in multiples of
/// its files' bytes: tract reads each graph whole and builds its tensors from
/// that copy before it lets go of it.
const LOAD_BYTES_PER_FILE_BYTE: u64 = 2;

/// Refuses, before loading, a memory limit that leaves less than twice the
/// model pack's files (`dir`) beside what the worker already maps.
pub fn check_room_to_load(dir: &Path) -> anyhow::Result<()> {
    let Some(spare) = spare_address_space() else {
        return Ok(());
    };
    // A directory that cannot be read is the load's to report.
    let Some(files) = files_bytes(dir) else {
        return Ok(());
    };
    let needed = files.saturating_mul(LOAD_BYTES_PER_FILE_BYTE);
    if spare < needed {
        bail!(
            "the memory limit leaves {} MB beside the worker's program, and loading the model pack \
             at {} ({} MB of files) needs at least {} MB: raise --worker-memory by {} MB or more",
            spare >> 20,
            dir.display(),
            mb(files),
            mb(needed),
            mb(needed - spare),
        );
    }
    Ok(())
}

/// The bytes of the regular files in `dir` (a pack keeps its files at the
/// top), or `None` when it cannot be read.
fn files_bytes(dir: &Path) -> Option<u64> {
    let mut total = 0u64;
    for entry in std::fs::read_dir(dir).ok()? {
        let meta = entry.ok()?.metadata().ok()?;
        if meta.is_file() {
            total = total.saturating_add(meta.len());
        }
    }
    Some(total)
}

/// Runs `load` (the model's load); under a memory limit, a load that the
/// limit stopped fails with an error that says to raise `--worker-memory`.
pub fn load<T>(load: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    let Some(limit) = address_space_limit() else {
        return load();
    };
    let mb = limit >> 20;
    let raise = || {
        format!("the model does not load under the memory limit of {mb} MB: raise --worker-memory")
    };
    let loaded = quiet_about_allocation_panics(|| catch_unwind(AssertUnwindSafe(load)));
    match loaded {
        Ok(Ok(judge)) => Ok(judge),
        Ok(Err(err)) if is_allocation_failure(&format!("{err:#}")) => Err(err.context(raise())),
        Ok(Err(err)) => Err(err),
        Err(panic) => match panic_message(panic.as_ref()) {
            Some(message) if is_allocation_failure(message) => {
                Err(anyhow!("{}: {message}", raise()))
            }
            _ => std::panic::resume_unwind(panic),
        },
    }
}

/// Refuses to start when the memory limit leaves too little beside the
/// loaded model to judge even a small image: such a worker would take jobs
/// and abort on each (`memory allocation ... failed`), losing them one after
/// another. Better it never takes one, and says why.
pub fn check_room_to_judge(judge: &dyn Judge) -> anyhow::Result<()> {
    let Some(spare) = spare_address_space() else {
        return Ok(());
    };
    let needed = judge.working_bytes() + MIN_IMAGE_BYTES;
    if spare < needed {
        bail!(
            "the memory limit leaves {} MB beside the loaded model, and judging needs at least {} MB \
             ({} MB for the model's work, {} MB for a small image): raise --worker-memory by {} MB or more",
            spare >> 20,
            mb(needed),
            mb(judge.working_bytes()),
            mb(MIN_IMAGE_BYTES),
            mb(needed - spare),
        );
    }
    tracing::info!(
        spare_mb = spare >> 20,
        model_working_mb = mb(judge.working_bytes()),
        "memory limit: images that would need more than what is spare fail with image_too_large"
    );
    Ok(())
}

/// Whether an error or panic message says that memory could not be had.
fn is_allocation_failure(message: &str) -> bool {
    [
        "Cannot allocate memory",
        // `onnx_graph`'s check before it parses a graph.
        "the memory limit leaves",
        "failed to allocate",
        // tract's `Blob::ensure_size_and_align`: an `assert!` on the pointer.
        "!self.data.is_null()",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
}

/// Runs `work` with a panic hook that stays silent about allocation
/// failures (they are reported as an error) and passes every other panic to
/// the hook that was there before, which is put back afterwards.
fn quiet_about_allocation_panics<T>(work: impl FnOnce() -> T) -> T {
    let previous = Arc::new(std::panic::take_hook());
    let fallback = Arc::clone(&previous);
    std::panic::set_hook(Box::new(move |info| {
        if !panic_message(info.payload()).is_some_and(is_allocation_failure) {
            fallback(info);
        }
    }));
    let result = work();
    std::panic::set_hook(Box::new(move |info| previous(info)));
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_the_ways_a_refused_allocation_reads() {
        assert!(is_allocation_failure(
            "failed to allocate Layout { size: 2359296, align: 64 (1 << 6) }"
        ));
        assert!(is_allocation_failure(
            "image_encoder.onnx: not an ONNX graph tract can read: Cannot allocate memory (os error 12)"
        ));
        assert!(is_allocation_failure(
            "assertion failed: !self.data.is_null()"
        ));
        assert!(is_allocation_failure(
            "image_encoder.onnx: the memory limit leaves 12 MB, and parsing this graph (18 MB) needs about 52 MB"
        ));
        assert!(!is_allocation_failure("index out of bounds: the len is 3"));
        assert!(!is_allocation_failure(
            "No such file or directory (os error 2)"
        ));
    }

    #[test]
    fn reads_both_kinds_of_panic_payload() {
        let owned: Box<dyn std::any::Any + Send> = Box::new(String::from("failed to allocate"));
        let fixed: Box<dyn std::any::Any + Send> = Box::new("index out of bounds");
        let other: Box<dyn std::any::Any + Send> = Box::new(7_u32);
        assert_eq!(panic_message(owned.as_ref()), Some("failed to allocate"));
        assert_eq!(panic_message(fixed.as_ref()), Some("index out of bounds"));
        assert_eq!(panic_message(other.as_ref()), None);
    }
}
