//! Decoding submitted images safely: limits first, pixels later.
//!
//! Images come from strangers. The header is read first and the pixel count
//! checked before any pixel buffer exists, so a 100-byte PNG that claims to be
//! 30000x30000 is refused without allocating 3.6 GB. Then what decoding would
//! cost is checked against what the worker can spare under its memory limit
//! (`memory_budget`), so an image that would abort the worker fails instead
//! with `image_too_large`; the decoder gets the same figure as its allocation
//! cap. What a verdict never reads is never decoded: a PNG's colour profile
//! and text chunks are dropped unread (`png_chunks`), and a JPEG's markers are
//! read first (`jpeg_scan`) and its first scan walked code by code
//! (`jpeg_entropy`), so a file whose data is far smaller than its header
//! claims, that was cut off before its end marker, or whose data ends before
//! its last block (cut and given an end marker again) is refused as
//! `image_truncated` instead of judged as a partly grey canvas. Whatever the file holds
//! (grayscale, alpha, 16-bit, CMYK, EXIF rotation, an animation) comes out as
//! upright 8-bit RGB.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use image::metadata::Orientation;
use image::{
    DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, Rgb, RgbImage, Rgba,
};
use verdict_shared::limits::{DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_IMAGE_PIXELS};

use crate::DecodeError;
use crate::jpeg_dc;
use crate::jpeg_entropy;
use crate::jpeg_scan;
use crate::memory_budget;
use crate::png_chunks::{self, ChunkError};

/// The most scans a JPEG may have. Encoders write 1 (baseline) to about 12
/// (progressive, mozjpeg's most); each scan is a pass over the picture's
/// coefficients, so thousands of them make a small file decode for minutes.
pub const MAX_JPEG_SCANS: usize = 64;

/// How much an image may cost to decode.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Encoded bytes.
    pub max_bytes: usize,
    /// Width x height.
    pub max_pixels: u64,
    /// Bytes the model needs beside the decoded image to judge it (its
    /// activations and scratch): under a memory limit, decoding leaves them
    /// free.
    pub model_working_bytes: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_bytes: DEFAULT_MAX_IMAGE_BYTES,
            max_pixels: DEFAULT_MAX_IMAGE_PIXELS,
            model_working_bytes: 0,
        }
    }
}

/// An image ready for preprocessing.
#[derive(Debug)]
pub struct DecodedImage {
    /// Upright 8-bit RGB pixels.
    pub rgb: RgbImage,
    /// The container format.
    pub format: ImageFormat,
    /// Whether an EXIF orientation other than "upright" was applied.
    pub reoriented: bool,
    /// The file's picture was reduced by this factor while decoding (1: full
    /// size; 8: a JPEG read from its DC coefficients, see
    /// [`decode_scaled`]).
    pub reduced_by: u32,
}

/// The formats this worker decodes (the `image` features it is built with).
const SUPPORTED: &[ImageFormat] = &[
    ImageFormat::Png,
    ImageFormat::Jpeg,
    ImageFormat::Gif,
    ImageFormat::WebP,
    ImageFormat::Bmp,
    ImageFormat::Tiff,
];

/// Decodes `bytes` into upright 8-bit RGB, within `limits`, at full size.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<DecodedImage, DecodeError> {
    decode_inner(bytes, limits, None)
}

/// Decodes `bytes` as [`decode`] does, except that a JPEG whose picture at
/// 1/8 scale still has a short side of at least `min_short_side` comes back
/// at that scale, read from its DC coefficients without decoding its pixels
/// (`jpeg_dc`; `reduced_by` is 8): for a model that sees a few hundred
/// pixels of a 12-megapixel photo, that is the same picture at a small part
/// of the cost. Every check of [`decode`] applies (the pixel cap is on the
/// file's own size); other formats, and JPEGs that are small or unusual, are
/// decoded in full.
pub fn decode_scaled(
    bytes: &[u8],
    limits: &DecodeLimits,
    min_short_side: u32,
) -> Result<DecodedImage, DecodeError> {
    decode_inner(bytes, limits, Some(min_short_side))
}

fn decode_inner(
    bytes: &[u8],
    limits: &DecodeLimits,
    min_short_side: Option<u32>,
) -> Result<DecodedImage, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(DecodeError::TooManyBytes {
            bytes: bytes.len(),
            max: limits.max_bytes,
        });
    }
    let format = image::guess_format(bytes).map_err(|_| {
        DecodeError::Format(
            "unrecognised file signature (expected PNG, JPEG, GIF, WebP, BMP or TIFF)".into(),
        )
    })?;
    if !SUPPORTED.contains(&format) {
        return Err(DecodeError::Format(format!(
            "{} images are not supported (expected PNG, JPEG, GIF, WebP, BMP or TIFF)",
            format_name(format)
        )));
    }
    let stripped;
    let bytes = match format {
        ImageFormat::Png => {
            stripped = png_chunks::essential_chunks(bytes).map_err(|err| match err {
                ChunkError::Truncated(message) => DecodeError::Truncated(message),
                ChunkError::Invalid(message) => {
                    DecodeError::Invalid(format!("invalid PNG data: {message}"))
                }
            })?;
            &*stripped.0
        }
        ImageFormat::Jpeg => {
            let layout = check_jpeg_layout(bytes)?;
            if let Some(min) = min_short_side
                && layout.width.min(layout.height) / 8 >= min.max(1)
            {
                check_pixels(layout.width, layout.height, limits)?;
                // The same guard as the decoders' below (the walk, and the
                // image crate's Exif reader): a panic is a decode error, never
                // a lost worker.
                let eighth = catch_unwind(AssertUnwindSafe(|| {
                    jpeg_dc::eighth_scale(bytes, &layout).map(|(coverage, rgb)| {
                        check_coverage(coverage, &layout)
                            .map(|()| upright_eighth(bytes, &layout, rgb))
                    })
                }))
                .map_err(|_| DecodeError::Invalid("the JPEG's data could not be read".into()))?;
                if let Some(result) = eighth {
                    return result;
                }
            }
            check_coverage_of_first_scan(bytes, &layout)?;
            bytes
        }
        _ => bytes,
    };
    // Decoders are meant never to panic, but this is the one place where bytes
    // from strangers meet third-party parsers: a panic becomes a decode error.
    match catch_unwind(AssertUnwindSafe(|| decode_checked(bytes, format, limits))) {
        Ok(result) => result,
        Err(_) => Err(DecodeError::Invalid(format!(
            "the {} decoder failed on this file",
            format_name(format)
        ))),
    }
}

/// Refuses a JPEG whose markers show it cannot hold its picture, before
/// anything is allocated for it.
fn check_jpeg_layout(bytes: &[u8]) -> Result<jpeg_scan::JpegLayout, DecodeError> {
    let layout = jpeg_scan::layout(bytes)
        .map_err(|message| DecodeError::Invalid(format!("invalid JPEG data: {message}")))?;
    if layout.scans == 0 || !layout.has_end {
        // Bytes after the end marker (some cameras append data) are allowed;
        // a file with no end marker after its data was cut off.
        return Err(DecodeError::Truncated(
            "the JPEG file ends before its end-of-image marker".into(),
        ));
    }
    if layout.too_little_data() {
        return Err(DecodeError::Truncated(format!(
            "the JPEG header says {}x{} ({} blocks of 8x8), but the file holds only {} bytes of \
             picture data: less than one bit a block, so most of the picture is missing",
            layout.width,
            layout.height,
            layout.blocks(),
            layout.data_bytes
        )));
    }
    if layout.scans > MAX_JPEG_SCANS {
        return Err(DecodeError::Invalid(format!(
            "the JPEG file has {} scans, more than the {MAX_JPEG_SCANS} this worker decodes",
            layout.scans
        )));
    }
    Ok(layout)
}

/// Refuses a JPEG whose first scan ends before its last block (when the walk
/// concludes).
fn check_coverage_of_first_scan(
    bytes: &[u8],
    layout: &jpeg_scan::JpegLayout,
) -> Result<(), DecodeError> {
    match jpeg_entropy::first_scan_coverage(bytes, layout) {
        Some(coverage) => check_coverage(coverage, layout),
        None => Ok(()),
    }
}

fn check_coverage(
    coverage: jpeg_entropy::Coverage,
    layout: &jpeg_scan::JpegLayout,
) -> Result<(), DecodeError> {
    if !coverage.is_complete() {
        return Err(DecodeError::Truncated(format!(
            "the JPEG's data ends after {} of the {} coded units its {}x{} header calls for: \
             about {}% of the picture is missing",
            coverage.coded,
            coverage.expected,
            layout.width,
            layout.height,
            100 - coverage.coded * 100 / coverage.expected.max(1)
        )));
    }
    Ok(())
}

/// The 1/8 picture of a JPEG, turned upright by its Exif orientation.
fn upright_eighth(bytes: &[u8], layout: &jpeg_scan::JpegLayout, rgb: RgbImage) -> DecodedImage {
    let orientation = layout
        .exif
        .clone()
        .and_then(|range| bytes.get(range))
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::ImageRgb8(rgb);
    image.apply_orientation(orientation);
    DecodedImage {
        rgb: image.into_rgb8(),
        format: ImageFormat::Jpeg,
        reoriented: orientation != Orientation::NoTransforms,
        reduced_by: 8,
    }
}

/// Refuses an image of more pixels than `limits` allow.
fn check_pixels(width: u32, height: u32, limits: &DecodeLimits) -> Result<(), DecodeError> {
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(DecodeError::TooLarge {
            width,
            height,
            max_pixels: limits.max_pixels,
        });
    }
    Ok(())
}

fn decode_checked(
    bytes: &[u8],
    format: ImageFormat,
    limits: &DecodeLimits,
) -> Result<DecodedImage, DecodeError> {
    let spare = memory_budget::spare_address_space()
        .map(|spare| spare.saturating_sub(limits.model_working_bytes));
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut decoder_limits = Limits::default();
    // 16-bit RGBA is the widest layout a decoder produces: 8 bytes a pixel, plus
    // slack for the decoder's own buffers; never more than the worker can spare.
    let widest = limits.max_pixels.saturating_mul(8).saturating_add(64 << 20);
    decoder_limits.max_alloc = Some(spare.map_or(widest, |spare| spare.min(widest)));
    reader.limits(decoder_limits);
    let mut decoder = reader.into_decoder().map_err(|e| map_error(e, format))?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(DecodeError::Invalid(format!(
            "the {} header says the image is {width}x{height}",
            format_name(format)
        )));
    }
    let pixels = u64::from(width) * u64::from(height);
    check_pixels(width, height, limits)?;
    if let Some(spare) = spare {
        let needed = memory_budget::decode_cost(decoder.total_bytes(), pixels);
        if needed > spare {
            return Err(DecodeError::TooLargeForMemory {
                width,
                height,
                needed_mb: memory_budget::megabytes_needed(needed),
                spare_mb: spare >> 20,
            });
        }
    }
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| map_error(e, format))?;
    let reoriented = orientation != Orientation::NoTransforms;
    image.apply_orientation(orientation);
    Ok(DecodedImage {
        rgb: to_rgb8(image),
        format,
        reoriented,
        reduced_by: 1,
    })
}

/// Converts any colour type to 8-bit RGB: gray is replicated, 16-bit and float
/// samples are scaled, and transparency is composited over white (a transparent
/// product shot is meant to be seen on a white page, not on black).
fn to_rgb8(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    let (width, height) = rgba.dimensions();
    RgbImage::from_fn(width, height, |x, y| {
        let Rgba([r, g, b, a]) = *rgba.get_pixel(x, y);
        let a = u16::from(a);
        let over_white = |c: u8| ((u16::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
        Rgb([over_white(r), over_white(g), over_white(b)])
    })
}

fn map_error(err: ImageError, format: ImageFormat) -> DecodeError {
    let name = format_name(format);
    match err {
        ImageError::Limits(e) => {
            DecodeError::OverDecoderLimit(format!("the {name} decoder refused: {e}"))
        }
        ImageError::Unsupported(e) => {
            DecodeError::Format(format!("this {name} file uses an unsupported feature: {e}"))
        }
        ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            DecodeError::Truncated(format!("the {name} file ends before its picture does"))
        }
        other => DecodeError::Invalid(format!("invalid {name} data: {other}")),
    }
}

fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Png => "PNG",
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::Gif => "GIF",
        ImageFormat::WebP => "WebP",
        ImageFormat::Bmp => "BMP",
        ImageFormat::Tiff => "TIFF",
        ImageFormat::Avif => "AVIF",
        ImageFormat::Ico => "ICO",
        ImageFormat::Hdr => "HDR",
        ImageFormat::OpenExr => "OpenEXR",
        ImageFormat::Pnm => "PNM",
        ImageFormat::Tga => "TGA",
        ImageFormat::Dds => "DDS",
        ImageFormat::Farbfeld => "Farbfeld",
        ImageFormat::Qoi => "QOI",
        _ => "this format's",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, ImageBuffer, Luma, Rgba as RgbaPx};

    fn encode(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    /// A small, well-formed PNG whose header claims `width` x `height`: a
    /// decompression bomb's shape (the pixel data is a few bytes of zlib).
    fn png_header_claiming(width: u32, height: u32) -> Vec<u8> {
        fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
            let mut body = kind.to_vec();
            body.extend_from_slice(data);
            png.extend_from_slice(&(data.len() as u32).to_be_bytes());
            png.extend_from_slice(&body);
            png.extend_from_slice(&crc32(&body).to_be_bytes());
        }
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        chunk(&mut png, b"IHDR", &ihdr);
        // An empty stored zlib stream: header, final empty block, adler32.
        chunk(
            &mut png,
            b"IDAT",
            &[0x78, 0x01, 0x01, 0x00, 0x00, 0xff, 0xff, 0, 0, 0, 1],
        );
        chunk(&mut png, b"IEND", &[]);
        png
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn empty_and_unknown_bytes_are_refused() {
        let limits = DecodeLimits::default();
        assert!(matches!(decode(&[], &limits), Err(DecodeError::Empty)));
        assert!(matches!(
            decode(b"hello, this is not an image", &limits),
            Err(DecodeError::Format(_))
        ));
    }

    #[test]
    fn huge_claimed_size_is_refused_before_allocation() {
        let limits = DecodeLimits::default();
        let err = decode(&png_header_claiming(30_000, 30_000), &limits).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::TooLarge {
                    width: 30_000,
                    height: 30_000,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn truncated_png_is_truncated() {
        let image = DynamicImage::ImageRgb8(RgbImage::from_fn(64, 64, |x, y| {
            Rgb([x as u8 * 4, y as u8 * 4, 7])
        }));
        let png = encode(image, ImageFormat::Png);
        let err = decode(&png[..png.len() / 2], &DecodeLimits::default()).unwrap_err();
        assert_eq!(err.code(), "image_truncated", "{err}");
    }

    #[test]
    fn truncated_jpeg_is_truncated() {
        let image = DynamicImage::ImageRgb8(RgbImage::from_fn(64, 64, |x, y| {
            Rgb([x as u8 * 4, y as u8 * 4, 7])
        }));
        let jpeg = encode(image, ImageFormat::Jpeg);
        assert!(decode(&jpeg, &DecodeLimits::default()).is_ok());
        let err = decode(&jpeg[..jpeg.len() * 2 / 3], &DecodeLimits::default()).unwrap_err();
        assert_eq!(err.code(), "image_truncated", "{err}");
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[test]
    fn too_many_bytes_is_refused() {
        let limits = DecodeLimits {
            max_bytes: 10,
            ..DecodeLimits::default()
        };
        let err = decode(&[0u8; 11], &limits).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::TooManyBytes { bytes: 11, max: 10 }
        ));
    }

    #[test]
    fn grayscale_16bit_and_alpha_become_rgb8() {
        let gray = DynamicImage::ImageLuma8(GrayImage::from_pixel(4, 3, Luma([200])));
        let out = decode(&encode(gray, ImageFormat::Png), &DecodeLimits::default()).unwrap();
        assert_eq!(out.rgb.dimensions(), (4, 3));
        assert_eq!(out.rgb.get_pixel(0, 0), &Rgb([200, 200, 200]));

        let deep: ImageBuffer<image::Rgb<u16>, Vec<u16>> =
            ImageBuffer::from_pixel(2, 2, image::Rgb([65535, 0, 32896]));
        let out = decode(
            &encode(DynamicImage::ImageRgb16(deep), ImageFormat::Png),
            &DecodeLimits::default(),
        )
        .unwrap();
        assert_eq!(out.rgb.get_pixel(1, 1), &Rgb([255, 0, 128]));

        let clear = DynamicImage::ImageRgba8(ImageBuffer::from_pixel(2, 2, RgbaPx([0, 0, 0, 0])));
        let out = decode(&encode(clear, ImageFormat::Png), &DecodeLimits::default()).unwrap();
        assert_eq!(
            out.rgb.get_pixel(0, 0),
            &Rgb([255, 255, 255]),
            "transparent is white"
        );
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/bad")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn a_large_enough_jpeg_is_read_at_an_eighth_and_turned_upright() {
        let limits = DecodeLimits::default();
        let bytes = fixture("exif-rotated.jpg");
        let full = decode(&bytes, &limits).unwrap();
        assert_eq!((full.rgb.dimensions(), full.reduced_by), ((300, 200), 1));
        // 200 x 300 stored: an eighth is 25 x 38, a quarter turn makes it
        // 38 x 25.
        let eighth = decode_scaled(&bytes, &limits, 25).unwrap();
        assert_eq!((eighth.rgb.dimensions(), eighth.reduced_by), ((38, 25), 8));
        assert!(eighth.reoriented);
        // Each pixel is about its block's mean in the upright full decode.
        // The stored picture's last block row (4 pixels high: 300 = 37 x 8
        // + 4) turned into the first column, so upright column x covers
        // pixels 8x - 4 to 8x + 4.
        let mut total = 0u64;
        for (x, y, p) in eighth.rgb.enumerate_pixels().filter(|(x, _, _)| *x >= 1) {
            for c in 0..3 {
                let mut sum = 0u32;
                for dy in 0..8 {
                    for dx in 0..8 {
                        sum += u32::from(full.rgb.get_pixel(x * 8 - 4 + dx, y * 8 + dy)[c]);
                    }
                }
                total += u64::from((sum / 64).abs_diff(u32::from(p[c])));
            }
        }
        // A few grey levels: the file is 4:2:0, and its chroma at 1/8 is one
        // value per 16 x 16 pixels where the decoder blends it smoothly.
        let mean = total as f64 / (37.0 * 25.0 * 3.0);
        assert!(mean < 6.0, "{mean}");
        // Not when the eighth would be smaller than asked for.
        assert_eq!(decode_scaled(&bytes, &limits, 26).unwrap().reduced_by, 1);
    }

    #[test]
    fn the_eighth_keeps_every_check_of_the_full_decode() {
        let limits = DecodeLimits::default();
        for name in ["cut-reended.jpg", "lying-header.jpg", "truncated.jpg"] {
            let err = decode_scaled(&fixture(name), &limits, 1).unwrap_err();
            assert_eq!(err.code(), "image_truncated", "{name}: {err}");
        }
        let small = DecodeLimits {
            max_pixels: 10_000,
            ..limits
        };
        let err = decode_scaled(&fixture("exif-rotated.jpg"), &small, 1).unwrap_err();
        assert!(matches!(err, DecodeError::TooLarge { .. }), "{err}");
        // CMYK is not read from its DCs: decoded in full, as before.
        let cmyk = decode_scaled(&fixture("cmyk.jpg"), &limits, 1).unwrap();
        assert_eq!(cmyk.reduced_by, 1);
        // Nor is any other format.
        let png = encode(
            DynamicImage::ImageRgb8(RgbImage::new(64, 64)),
            ImageFormat::Png,
        );
        assert_eq!(decode_scaled(&png, &limits, 1).unwrap().reduced_by, 1);
    }
}
