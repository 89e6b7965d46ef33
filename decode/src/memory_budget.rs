//! How much memory one image may cost a worker, from its memory limit.
//!
//! A worker started with `fleet up --worker-memory 400M` runs under
//! `RLIMIT_AS`: past it, an allocation fails and Rust aborts the process
//! (`memory allocation of N bytes failed`), which ends the job as
//! `worker_lost` and, repeated, trips the crash limit. So before an image's
//! pixels are allocated the decoder asks what is left: the limit, less the
//! address space the process already maps (`VmSize`: the model, the threads'
//! stacks and arenas), less what the model needs to run on the decoded image
//! (its working memory, a per-kind figure). An image that would not fit fails
//! at once with `image_too_large`, saying so, and the worker lives.
//!
//! Without a limit (the default) there is nothing to ask: the pixel cap
//! (`--max-image-pixels`) alone bounds an image.

use std::fs;

use nix::sys::resource::{Resource, getrlimit};

/// The least a worker must be able to spend on an image to be of use: a
/// 1-megapixel photo's decode (`decode_cost` of 1 Mpx RGB, about 20 MB).
pub const MIN_IMAGE_BYTES: u64 = 20 << 20;

/// Bytes of address space this process may still map before `RLIMIT_AS`
/// refuses, or `None` when it has no such limit (or it cannot be read).
pub fn spare_address_space() -> Option<u64> {
    let limit = address_space_limit()?;
    let mapped = mapped_bytes()?;
    Some(limit.saturating_sub(mapped))
}

/// This process's `RLIMIT_AS` (soft) in bytes, or `None` when unlimited (or
/// it cannot be read).
pub fn address_space_limit() -> Option<u64> {
    let (soft, _hard) = getrlimit(Resource::RLIMIT_AS).ok()?;
    (soft != nix::sys::resource::RLIM_INFINITY).then_some(soft)
}

/// The process's mapped address space (`VmSize`), in bytes.
pub fn mapped_bytes() -> Option<u64> {
    self_status_kib("VmSize:").map(|kib| kib * 1024)
}

/// A field of this process's `/proc/self/status` in KiB (`VmRSS:`,
/// `VmHWM:`, `VmSize:`); `None` off Linux.
pub fn self_status_kib(field: &str) -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status_field_kib(&status, field)
}

/// The value in KiB of a `/proc/PID/status` line such as `VmSize:  1234 kB`.
pub fn status_field_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// `bytes` in whole megabytes (MiB), rounded up: how the limit's messages
/// state what is needed.
pub fn megabytes_needed(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
}

/// What decoding and preprocessing an image may cost at most, beyond its
/// encoded bytes: the decoder's output (`decoder_bytes`, known from the
/// header), and up to three 8-bit RGB copies of the picture (the conversion to
/// RGB, an EXIF rotation, the centre crop), an upper bound since not all of
/// them are alive at once. The resize's own rows are small beside them.
pub fn decode_cost(decoder_bytes: u64, pixels: u64) -> u64 {
    const RGB: u64 = 3;
    decoder_bytes
        .saturating_add(pixels.saturating_mul(RGB * 3))
        // The decoders' own buffers (rows, Huffman tables, zlib window).
        .saturating_add(8 << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_fields() {
        let status = "Name:\tverdict\nVmPeak:\t  9000 kB\nVmSize:\t  1234 kB\n";
        assert_eq!(status_field_kib(status, "VmSize:"), Some(1234));
        assert_eq!(status_field_kib(status, "VmRSS:"), None);
    }

    #[test]
    fn this_process_maps_something() {
        assert!(mapped_bytes().unwrap() > 1 << 20);
    }

    #[test]
    fn cost_counts_every_copy() {
        // A 7000 x 7000 RGB PNG: 147 MB out of the decoder, three more copies.
        let pixels = 7000 * 7000;
        let cost = decode_cost(pixels * 3, pixels);
        assert_eq!(cost, pixels * 12 + (8 << 20));
    }
}
