//! The key of an image in a judge's cache of image evidence: a BLAKE3 hash
//! of the bytes as submitted.
//!
//! The cache is shared by every job a worker runs, whoever sent it, so the
//! key must be collision-resistant: two different images with one key would
//! give the second the first's verdicts. It used to be SHA-256, computed
//! again for every job: on one core of an AMD EPYC family 25 model 17 that
//! took 1.35 ms for a 2.4 MB camera JPEG, about a tenth of reading its
//! picture. BLAKE3 is as collision-resistant (256-bit output, 128-bit
//! security) and took 0.39 ms (`verdict-worker bench --preprocess-image`
//! reports it as `cache_key_ms_median`). The key never leaves the process;
//! the sha256 in a job's record (`ImageInfo::sha256`) is the api's, for
//! clients.

/// The cache key of an image's bytes.
pub fn image_key(bytes: &[u8]) -> [u8; 32] {
    blake3::hash(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_blake3_of_the_bytes_and_tells_images_apart() {
        // BLAKE3's published hash of the empty input.
        assert_eq!(
            hex::encode(image_key(b"")),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        let a = vec![7u8; 100_000];
        let mut b = a.clone();
        b[99_999] = 8;
        assert_eq!(image_key(&a), image_key(&a.clone()));
        assert_ne!(image_key(&a), image_key(&b));
    }
}
