//! Images and model packs the tests use.
//!
//! Tiny images are made here; the photos come from `scripts/fetch-test-photos`
//! (into `.cache/photos/`) and the model from `scripts/build-default-model`
//! (into `models/default/`, or `VERDICT_MODEL`). A test that needs a photo or
//! the model and does not find it fails, saying how to get it: it never passes
//! without having run.

use std::io::Cursor;
use std::path::PathBuf;

use crate::binaries::workspace_root;

/// A valid PNG of the given size, filled with one colour.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    image::RgbImage::from_pixel(width, height, image::Rgb([200, 120, 40]))
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
        .expect("encode png");
    bytes
}

/// A PNG cut short: right magic bytes, undecodable body.
pub fn truncated_png() -> Vec<u8> {
    let mut bytes = png(64, 64);
    bytes.truncate(40);
    bytes
}

/// A photo from `.cache/photos/`.
pub fn photo(name: &str) -> Vec<u8> {
    let path = workspace_root().join(".cache/photos").join(name);
    std::fs::read(&path).unwrap_or_else(|err| {
        panic!(
            "test photo {} is missing ({err}): run scripts/fetch-test-photos first",
            path.display()
        )
    })
}

/// The model pack directory: `VERDICT_MODEL`, else `models/default`.
pub fn model_dir() -> PathBuf {
    let dir = std::env::var_os("VERDICT_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("models/default"));
    assert!(
        dir.join("manifest.json").is_file(),
        "no model pack at {} (no manifest.json): run scripts/build-default-model, or set VERDICT_MODEL",
        dir.display()
    );
    dir
}

/// The tiny random-init OFA pack (`VERDICT_OFA_TINY`, else `models/ofa-tiny`),
/// built by `scripts/test-setup` with `scripts/build-ofa-pack --random-init tiny`.
pub fn ofa_tiny_dir() -> PathBuf {
    let dir = std::env::var_os("VERDICT_OFA_TINY")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("models/ofa-tiny"));
    assert!(
        dir.join("manifest.json").is_file(),
        "no OFA pack at {} (no manifest.json): run scripts/test-setup, or scripts/build-ofa-pack --random-init tiny --out {}",
        dir.display(),
        dir.display()
    );
    dir
}
