//! A `POST /v1/jobs` JSON body from a stranger (`image_base64`, `texts`,
//! `premise`, `callback_url`), read as the api reads it. The invariants are
//! the multipart target's (`common::submit`).
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    common::submit("application/json", data);
});
