//! An uploaded image, decoded as a worker under `fleet up --worker-memory`
//! decodes it (`verdict_decode::decode`, and `decode_scaled`, which reads a
//! JPEG of 8 pixels or more a side at 1/8 scale from its DC coefficients):
//! the process runs under an
//! `RLIMIT_AS` of what it maps at start plus 1 GiB, so the decoder's memory
//! budget, not only its pixel cap, decides. Invariants: no panic and no
//! allocation failure (either would kill the worker and lose the job); a
//! decoded image has the size its header claims (at most the pixel cap) and
//! 3 bytes a pixel; a refusal has a job error code.
#![no_main]

use std::sync::Once;

use libfuzzer_sys::fuzz_target;
use nix::sys::resource::{Resource, setrlimit};
use verdict_decode::{DecodeLimits, decode, decode_scaled, memory_budget};

/// A cap a fuzzing run reaches quickly (the default is 50 Mpx).
const MAX_PIXELS: u64 = 16_000_000;

static LIMIT: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    LIMIT.call_once(|| {
        let mapped = memory_budget::mapped_bytes().expect("/proc/self/status");
        let limit = mapped + (1 << 30);
        setrlimit(Resource::RLIMIT_AS, limit, limit).expect("setrlimit");
    });
    let limits = DecodeLimits {
        max_bytes: 1 << 20,
        max_pixels: MAX_PIXELS,
        // The default pack's working memory.
        model_working_bytes: 32 << 20,
    };
    for result in [decode(data, &limits), decode_scaled(data, &limits, 1)] {
        match result {
            Ok(image) => {
                let (w, h) = image.rgb.dimensions();
                assert!(w > 0 && h > 0);
                assert!(matches!(image.reduced_by, 1 | 8));
                let r = u64::from(image.reduced_by);
                assert!(u64::from(w) * u64::from(h) * r * r <= MAX_PIXELS * 4);
                assert_eq!(image.rgb.as_raw().len(), w as usize * h as usize * 3);
            }
            Err(err) => {
                assert!(err.code().starts_with("image_"), "{}", err.code());
            }
        }
    }
});
