//! A `POST /v1/jobs` multipart body from a stranger, read as the api reads it
//! (`verdict_api::submission::from_request`, with the server's content-type
//! dispatch, part reading and checks). Invariants: no panic; a refusal is a
//! 4xx with a code; an accepted submission holds what the api promises
//! (one non-empty image of a sniffed format within its limit, 1 to 64 UTF-8
//! sentences within the length limit, a premise within it).
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

/// The boundary of the multipart seeds (`scripts/lib/fuzz_seeds.py` writes
/// them); the fuzzer mutates bodies, not the header.
const MULTIPART: &str = "multipart/form-data; boundary=verdict-fuzz-boundary";

fuzz_target!(|data: &[u8]| {
    common::submit(MULTIPART, data);
});
