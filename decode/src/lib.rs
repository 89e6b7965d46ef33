//! `verdict-decode`: images from strangers, decoded within limits.
//!
//! Every model kind starts from the same step: the bytes a client uploaded
//! become upright 8-bit RGB, or a job error with a stable code. This crate is
//! that step and nothing else (no model, no queue), so the fuzz targets
//! (`fuzz/`) run it as the worker does without building the inference engine.
//!
//! - [`decode`](mod@decode): the header first, the pixel cap and the memory
//!   budget, then the pixels (EXIF, alpha, 16-bit, CMYK to RGB);
//! - [`memory_budget`]: what an image may cost under the worker's
//!   `RLIMIT_AS`;
//! - [`png_chunks`]: a PNG's profile and text dropped unread, a cut chunk
//!   found;
//! - [`jpeg_scan`]: a JPEG's markers (cut off, too little data for its size,
//!   too many scans);
//! - [`jpeg_entropy`]: a JPEG's first scan walked code by code: does its data
//!   reach the last block;
//! - [`jpeg_dc`]: a large JPEG's picture at 1/8 scale from the DC
//!   coefficients that walk reads ([`decode_scaled`]);
//! - [`error`]: why an image was refused, with its job error code.

pub mod decode;
pub mod error;
pub mod jpeg_dc;
pub mod jpeg_entropy;
pub mod jpeg_scan;
pub mod memory_budget;
pub mod png_chunks;

pub use decode::{DecodeLimits, DecodedImage, MAX_JPEG_SCANS, decode, decode_scaled};
pub use error::DecodeError;
