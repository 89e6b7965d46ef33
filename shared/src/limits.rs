//! The input limits that the api enforces cheaply and the worker enforces again.
//!
//! Defaults only: the binaries take flags to change the byte limits.

/// Sentences per job.
pub const MAX_SENTENCES: usize = 64;

/// Characters per sentence. The text encoder reads at most 128 tokens anyway;
/// anything longer than this is a mistake or an attack, and is refused.
pub const MAX_SENTENCE_CHARS: usize = 1000;

/// Encoded image bytes per job.
pub const DEFAULT_MAX_IMAGE_BYTES: usize = 8 * 1024 * 1024;

/// HTTP request body bytes (an 8 MiB image in base64 JSON needs ~11 MiB:
/// multipart carries the raw bytes).
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Decoded image pixels (width x height). Larger images are refused before any
/// pixel buffer is allocated, so a small file claiming a huge size cannot
/// exhaust memory.
pub const DEFAULT_MAX_IMAGE_PIXELS: u64 = 50_000_000;
