//! A PNG's chunks, reduced to what a verdict needs before any is decoded.
//!
//! The PNG decoder inflates a compressed ICC profile (`iCCP`) and compressed
//! text (`zTXt`, `iTXt`) into memory as it meets them: a 1.1 MB file whose
//! `iCCP` inflates to hundreds of megabytes costs that much before a pixel is
//! read, and the pixel cap never sees it. No verdict uses colour profiles or
//! text, so they are dropped here, unread: what reaches the decoder is the
//! header, the palette, the transparency, the pixel data and a bounded EXIF
//! block (for the orientation). The walk also finds a file cut off inside a
//! chunk, which is refused as truncated.

use std::borrow::Cow;

const SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// The largest EXIF chunk kept (orientation is in the first few bytes; real
/// camera EXIF is a few KB to 64 KB).
pub const MAX_EXIF_BYTES: usize = 64 * 1024;

/// What was wrong with the chunk structure.
#[derive(Debug, PartialEq, Eq)]
pub enum ChunkError {
    /// The file ends inside a chunk or before `IEND`.
    Truncated(String),
    /// A chunk that cannot be part of a valid PNG.
    Invalid(String),
}

/// The PNG with every chunk a verdict does not need removed (borrowed when
/// nothing had to go), and how many bytes of chunks were dropped.
pub fn essential_chunks(png: &[u8]) -> Result<(Cow<'_, [u8]>, usize), ChunkError> {
    if png.len() < SIGNATURE.len() || &png[..8] != SIGNATURE {
        return Err(ChunkError::Invalid("no PNG signature".into()));
    }
    let mut kept: Vec<(usize, usize)> = Vec::new();
    let mut dropped = 0usize;
    let mut at = SIGNATURE.len();
    let mut seen_iend = false;
    while at < png.len() {
        let rest = &png[at..];
        if rest.len() < 12 {
            return Err(ChunkError::Truncated(format!(
                "the PNG file ends inside a chunk header at byte {at}"
            )));
        }
        let length = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if length > 0x7fff_ffff {
            return Err(ChunkError::Invalid(format!(
                "a chunk at byte {at} claims {length} bytes"
            )));
        }
        let kind = [rest[4], rest[5], rest[6], rest[7]];
        if !kind.iter().all(u8::is_ascii_alphabetic) {
            return Err(ChunkError::Invalid(format!(
                "a chunk at byte {at} has no valid type"
            )));
        }
        let total = 12 + length;
        if rest.len() < total {
            return Err(ChunkError::Truncated(format!(
                "the PNG file ends inside its {} chunk ({} of {length} data bytes present)",
                String::from_utf8_lossy(&kind),
                rest.len().saturating_sub(8).min(length)
            )));
        }
        if keep(&kind, length) {
            kept.push((at, total));
        } else {
            dropped += total;
        }
        at += total;
        if &kind == b"IEND" {
            seen_iend = true;
            break;
        }
    }
    if !seen_iend {
        return Err(ChunkError::Truncated(
            "the PNG file ends before its IEND chunk".into(),
        ));
    }
    if dropped == 0 && at == png.len() {
        return Ok((Cow::Borrowed(png), 0));
    }
    // Bytes after IEND are dropped too: nothing reads them.
    dropped += png.len() - at;
    let mut out = Vec::with_capacity(png.len() - dropped);
    out.extend_from_slice(SIGNATURE);
    for (start, len) in kept {
        out.extend_from_slice(&png[start..start + len]);
    }
    Ok((Cow::Owned(out), dropped))
}

/// Critical chunks (upper-case first letter: `IHDR`, `PLTE`, `IDAT`, `IEND`)
/// are kept; of the ancillary ones only transparency and a bounded EXIF.
fn keep(kind: &[u8; 4], length: usize) -> bool {
    if kind[0].is_ascii_uppercase() {
        return true;
    }
    match kind {
        b"tRNS" => true,
        b"eXIf" => length <= MAX_EXIF_BYTES,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageFormat, RgbImage};
    use std::io::Cursor;

    fn small_png() -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        RgbImage::from_pixel(3, 2, image::Rgb([1, 2, 3]))
            .write_to(&mut out, ImageFormat::Png)
            .unwrap();
        out.into_inner()
    }

    /// Inserts a chunk (with a zero CRC: it is never checked once dropped)
    /// right after IHDR.
    fn with_chunk(png: &[u8], kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let ihdr_end = 8 + 12 + 13;
        let mut out = png[..ihdr_end].to_vec();
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&png[ihdr_end..]);
        out
    }

    #[test]
    fn a_plain_png_is_borrowed_unchanged() {
        let png = small_png();
        let (out, dropped) = essential_chunks(&png).unwrap();
        assert!(matches!(out, Cow::Borrowed(_)));
        assert_eq!(dropped, 0);
    }

    #[test]
    fn profiles_and_text_are_dropped_and_the_rest_decodes() {
        let png = small_png();
        let bloated = with_chunk(&png, b"iCCP", &[7; 5000]);
        let bloated = with_chunk(&bloated, b"zTXt", &[9; 300]);
        let (out, dropped) = essential_chunks(&bloated).unwrap();
        assert_eq!(dropped, 5012 + 312);
        assert_eq!(&*out, &png[..], "exactly the original chunks remain");
    }

    #[test]
    fn a_large_exif_is_dropped_a_small_one_kept() {
        let png = small_png();
        let small = with_chunk(&png, b"eXIf", &[0; 100]);
        assert_eq!(essential_chunks(&small).unwrap().1, 0);
        let large = with_chunk(&png, b"eXIf", &vec![0; MAX_EXIF_BYTES + 1]);
        assert_eq!(essential_chunks(&large).unwrap().1, MAX_EXIF_BYTES + 13);
    }

    #[test]
    fn a_cut_file_is_truncated() {
        let png = small_png();
        for cut in [png.len() - 1, png.len() - 12, 40, 20] {
            assert!(
                matches!(essential_chunks(&png[..cut]), Err(ChunkError::Truncated(_))),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn garbage_chunk_types_are_invalid() {
        let mut png = small_png();
        png[12] = 0; // IHDR's type byte
        assert!(matches!(
            essential_chunks(&png),
            Err(ChunkError::Invalid(_))
        ));
    }
}
