//! A large JPEG's picture at one eighth of its size, from the DC coefficients
//! of its first scan.
//!
//! A JPEG codes its picture as 8 x 8 blocks of DCT coefficients, and the
//! first of each block (DC) is eight times the block's mean: the DCs alone
//! are the picture at 1/8 scale, each pixel the mean of the 64 it stands for
//! (libjpeg's `scale_denom = 8` and Pillow's `draft()` give the same). The
//! model sees 224 x 224: a 12-megapixel catalogue photo (4000 x 3000)
//! decoded in full is 36 MB of pixels of which the resize keeps one in 180,
//! while its 1/8 picture (500 x 375) still has more than the model sees. The
//! walk that checks the first scan's coverage (`jpeg_entropy`) reads every
//! code anyway, so the DCs come with it, in one pass and no inverse DCT.
//!
//! What changes: each pixel is its block's exact mean, where a full decode
//! followed by a resize filters the same pixels with a smooth kernel; the
//! chroma of a subsampled file (4:2:0) is one value per 16 x 16 pixels,
//! replicated. In a progressive file the first scan codes the DCs without
//! their lowest `Al` bits (libjpeg writes `Al = 1`): a block's mean is then
//! off by less than `(2^Al - 1) x Q / 8` grey levels, with `Q` the DC
//! quantiser (2 to 8 in photos of quality 80 to 95). `docs/rule.md` has what
//! this does to the verdicts.
//!
//! Only what is plain is taken: 8-bit samples, one (gray) or three
//! components (YCbCr, or RGB by Adobe's marker or the components' ids), all
//! of them in the first scan, sampling factors that divide the largest.
//! Anything else (CMYK, 12-bit, a progressive file whose first scan holds
//! only the luma) returns `None` and is decoded in full.

use image::RgbImage;

use crate::jpeg_entropy::{Coverage, FirstScanPlan};
use crate::jpeg_scan::JpegLayout;

/// How the three components are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Colour {
    Gray,
    YCbCr,
    Rgb,
}

/// The picture of `file` (whose markers `layout` read) at 1/8 scale,
/// `ceil(width / 8) x ceil(height / 8)`, with how far the first scan's data
/// reaches (blocks past its end are grey: the caller refuses such a file);
/// `None` when the file is not one this reads (decode it in full).
pub fn eighth_scale(file: &[u8], layout: &JpegLayout) -> Option<(Coverage, RgbImage)> {
    if layout.precision != 8 {
        return None;
    }
    let colour = match layout.components.len() {
        1 => Colour::Gray,
        3 => {
            let ids: Vec<u8> = layout.components.iter().map(|c| c.id).collect();
            if layout.first_scan.as_ref()?.adobe_transform == Some(0) || ids == b"RGB" {
                Colour::Rgb
            } else {
                Colour::YCbCr
            }
        }
        _ => return None,
    };
    let plan = FirstScanPlan::new(file, layout)?;
    if plan.members.len() != layout.components.len() {
        return None;
    }
    let quant = dc_quantisers(file, layout)?;
    let (h_max, v_max) = layout.max_sampling();
    let (width, height) = (layout.width, layout.height);
    let (out_w, out_h) = (width.div_ceil(8), height.div_ceil(8));
    let single = plan.members.len() == 1;

    // One plane of DCs a component, in its own blocks (as the walk's
    // `DcBlock::index` counts them).
    let mut planes = Vec::with_capacity(plan.members.len());
    for (index, member) in plan.members.iter().enumerate() {
        if h_max % member.h != 0 || v_max % member.v != 0 {
            return None;
        }
        let columns = plan.block_columns(index) as u64;
        let rows = if single {
            let ch = (u64::from(height) * u64::from(member.v)).div_ceil(u64::from(v_max));
            ch.div_ceil(8)
        } else {
            u64::from(height.div_ceil(8 * u32::from(v_max))) * u64::from(member.v)
        };
        let len = usize::try_from(columns.checked_mul(rows)?).ok()?;
        planes.push((columns as usize, vec![0i32; len]));
    }
    let coverage = plan.walk(file, |block| {
        if let Some(slot) = planes
            .get_mut(block.member)
            .and_then(|(_, plane)| plane.get_mut(block.index))
        {
            *slot = block.dc;
        }
    })?;

    // Block means: DC x quantiser / 8, shifted back to 0..255; each
    // component's plane resampled to the output's grid (a subsampled
    // component's value repeated). A row at a time, into the pixels: the
    // picture is 500 x 375 for a 12 MP photo, and whole-picture planes of
    // levels cost more in allocation than in arithmetic.
    let shift = plan.point_transform.min(15);
    let sources: Vec<Source> = plan
        .members
        .iter()
        .zip(&planes)
        .map(|(m, (columns, plane))| {
            let q = f32::from(quant[usize::from(layout.components[m.component].quant & 3)]);
            let columns_of: Vec<usize> = (0..out_w)
                .map(|x| (x * u32::from(m.h) / u32::from(h_max)) as usize)
                .collect();
            Source {
                quantiser: q,
                columns_of,
                v: u32::from(m.v),
                columns: *columns,
                plane,
            }
        })
        .collect();
    let row_len = out_w as usize;
    let mut rows = vec![vec![0f32; row_len]; sources.len()];
    let mut pixels = vec![0u8; row_len * out_h as usize * 3];
    for (y, out) in (0..out_h).zip(pixels.chunks_exact_mut(row_len * 3)) {
        for (source, row) in sources.iter().zip(&mut rows) {
            let start = (y * source.v / u32::from(v_max)) as usize * source.columns;
            for (level, &bx) in row.iter_mut().zip(&source.columns_of) {
                let dc = source.plane.get(start + bx).copied().unwrap_or(0);
                *level = (dc << shift) as f32 * source.quantiser / 8.0 + 128.0;
            }
        }
        match (colour, rows.as_slice()) {
            (Colour::Gray, [gray]) => {
                for (pixel, &g) in out.chunks_exact_mut(3).zip(gray) {
                    pixel.fill(to_u8(g));
                }
            }
            (Colour::Rgb, [r, g, b]) => {
                for (pixel, ((&r, &g), &b)) in out.chunks_exact_mut(3).zip(r.iter().zip(g).zip(b)) {
                    pixel.copy_from_slice(&[to_u8(r), to_u8(g), to_u8(b)]);
                }
            }
            (Colour::YCbCr, [luma, cb, cr]) => {
                for (pixel, ((&yy, &cb), &cr)) in
                    out.chunks_exact_mut(3).zip(luma.iter().zip(cb).zip(cr))
                {
                    let (cb, cr) = (cb - 128.0, cr - 128.0);
                    // JFIF's conversion (ITU-R BT.601, full range).
                    pixel.copy_from_slice(&[
                        to_u8(yy + 1.402 * cr),
                        to_u8(yy - 0.344_136 * cb - 0.714_136 * cr),
                        to_u8(yy + 1.772 * cb),
                    ]);
                }
            }
            _ => return None,
        }
    }
    let image = RgbImage::from_raw(out_w, out_h, pixels)?;
    Some((coverage, image))
}

/// One component's DC plane and how it maps onto the output's grid.
struct Source<'a> {
    /// The DC quantiser.
    quantiser: f32,
    /// For each output column, the plane's column.
    columns_of: Vec<usize>,
    /// The component's vertical sampling factor.
    v: u32,
    /// Blocks a row of the plane.
    columns: usize,
    plane: &'a [i32],
}

fn to_u8(value: f32) -> u8 {
    value.round().clamp(0.0, 255.0) as u8
}

/// The DC quantiser (the first entry) of each of the four quantisation
/// tables; `None` when a component's table is not defined before the scan.
fn dc_quantisers(file: &[u8], layout: &JpegLayout) -> Option<[u16; 4]> {
    let mut quant = [None; 4];
    for range in &layout.first_scan.as_ref()?.quant_tables {
        let mut rest = file.get(range.clone())?;
        while let Some(&precision_id) = rest.first() {
            let wide = precision_id >> 4 == 1;
            let entry = if wide { 2 } else { 1 };
            let table = rest.get(1..1 + 64 * entry)?;
            let dc = if wide {
                u16::from_be_bytes([table[0], table[1]])
            } else {
                u16::from(table[0])
            };
            *quant.get_mut(usize::from(precision_id & 0x0F))? = Some(dc);
            rest = &rest[1 + 64 * entry..];
        }
    }
    let mut out = [0u16; 4];
    for component in &layout.components {
        let slot = usize::from(component.quant);
        out[slot] = quant.get(slot).copied().flatten().filter(|&q| q > 0)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jpeg_scan::layout;
    use image::codecs::jpeg::JpegEncoder;
    use image::{DynamicImage, GrayImage, ImageFormat, Luma, Rgb};
    use std::io::Cursor;

    /// A smooth picture (a JPEG keeps it well), `w x h`.
    fn photo(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            Rgb([
                (40.0 + 180.0 * fx) as u8,
                (30.0 + 200.0 * fy) as u8,
                (200.0 - 150.0 * fx * fy) as u8,
            ])
        })
    }

    fn jpeg(image: &RgbImage, quality: u8) -> Vec<u8> {
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, quality)
            .encode_image(image)
            .unwrap();
        out
    }

    /// The mean of each 8 x 8 block of the full decode.
    fn block_means(full: &RgbImage) -> RgbImage {
        let (w, h) = full.dimensions();
        RgbImage::from_fn(w.div_ceil(8), h.div_ceil(8), |bx, by| {
            let mut sum = [0u32; 3];
            let mut n = 0;
            for y in by * 8..(by * 8 + 8).min(h) {
                for x in bx * 8..(bx * 8 + 8).min(w) {
                    let p = full.get_pixel(x, y);
                    for c in 0..3 {
                        sum[c] += u32::from(p[c]);
                    }
                    n += 1;
                }
            }
            Rgb(sum.map(|s| ((s + n / 2) / n) as u8))
        })
    }

    /// The largest difference over the blocks that lie wholly inside the
    /// picture (an edge block's DC is the mean of the encoder's padding too).
    fn max_difference(a: &RgbImage, b: &RgbImage, full: (u32, u32)) -> u8 {
        assert_eq!(a.dimensions(), b.dimensions());
        let mut worst = 0;
        for y in 0..full.1 / 8 {
            for x in 0..full.0 / 8 {
                for c in 0..3 {
                    worst = worst.max(a.get_pixel(x, y)[c].abs_diff(b.get_pixel(x, y)[c]));
                }
            }
        }
        worst
    }

    #[test]
    fn the_eighth_is_the_block_means_of_the_full_decode() {
        // 4:2:0 (the image crate's encoder), sizes that do not fill the last
        // MCU; the full decode goes through the image crate's decoder.
        for (w, h) in [(640, 480), (333, 201), (17, 9)] {
            let file = jpeg(&photo(w, h), 90);
            let (coverage, eighth) = eighth_scale(&file, &layout(&file).unwrap()).unwrap();
            assert!(coverage.is_complete());
            assert_eq!(eighth.dimensions(), (w.div_ceil(8), h.div_ceil(8)));
            let full = image::load_from_memory_with_format(&file, ImageFormat::Jpeg)
                .unwrap()
                .into_rgb8();
            let diff = max_difference(&eighth, &block_means(&full), (w, h));
            // Chroma is one value per 16 x 16 pixels here, and the full
            // decode upsamples it smoothly: a few levels on a gradient.
            assert!(diff <= 6, "{w}x{h}: {diff}");
        }
    }

    #[test]
    fn noisy_photos_are_read_block_for_block() {
        // Noise makes long Huffman codes and large coefficients: every path
        // of the walk (codes past the lookup, coefficients whose bits do not
        // fit it) is taken, and one block read wrong would shift the rest.
        let mut seed = 20261205u32;
        let mut noise = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 24) as i32 - 128
        };
        let gray = GrayImage::from_fn(301, 207, |x, y| {
            // Within 8..242: no pixel the decoder clips, so means agree.
            Luma([(40 + (x * 3 + y) as i32 % 170 + noise() / 4) as u8])
        });
        let color = RgbImage::from_fn(301, 207, |x, y| {
            let base = photo(301, 207).get_pixel(x, y).0;
            Rgb(base.map(|c| (i32::from(c) + noise() / 2).clamp(0, 255) as u8))
        });
        for (image, quality) in [
            (DynamicImage::ImageLuma8(gray), 95),
            (DynamicImage::ImageRgb8(color), 75),
        ] {
            let mut file = Vec::new();
            image
                .write_with_encoder(JpegEncoder::new_with_quality(&mut file, quality))
                .unwrap();
            let (coverage, eighth) = eighth_scale(&file, &layout(&file).unwrap()).unwrap();
            assert!(coverage.is_complete());
            let full = image::load_from_memory(&file).unwrap().into_rgb8();
            let means = block_means(&full);
            let total: u64 = eighth
                .as_raw()
                .iter()
                .zip(means.as_raw())
                .map(|(a, b)| u64::from(a.abs_diff(*b)))
                .sum();
            let mean_difference = total as f64 / eighth.as_raw().len() as f64;
            // Gray: rounding only; colour: the chroma of 16 x 16 pixels
            // against the decoder's smooth upsampling, on noise.
            assert!(
                mean_difference < 2.0,
                "{:?}: {mean_difference}",
                image.color()
            );
            if image.color() == image::ColorType::L8 {
                let worst = max_difference(&eighth, &means, (301, 207));
                assert!(worst <= 2, "gray: {worst}, mean {mean_difference}");
            }
        }
    }

    #[test]
    fn gray_files_are_read_as_gray() {
        let gray = GrayImage::from_fn(100, 60, |x, y| Luma([(x + y) as u8]));
        let mut file = Cursor::new(Vec::new());
        DynamicImage::ImageLuma8(gray.clone())
            .write_to(&mut file, ImageFormat::Jpeg)
            .unwrap();
        let file = file.into_inner();
        let (coverage, eighth) = eighth_scale(&file, &layout(&file).unwrap()).unwrap();
        assert!(coverage.is_complete());
        assert_eq!(eighth.dimensions(), (13, 8));
        let full = image::load_from_memory(&file).unwrap().into_rgb8();
        assert!(max_difference(&eighth, &block_means(&full), (100, 60)) <= 2);
        assert!(eighth.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
    }

    #[test]
    fn a_cut_file_says_how_far_its_data_reaches() {
        let file = jpeg(&photo(400, 300), 90);
        let data = layout(&file).unwrap().first_scan.unwrap().data;
        let mut cut = file[..data.start + (data.end - data.start) / 2].to_vec();
        cut.extend_from_slice(&[0xFF, 0xD9]);
        let (coverage, _) = eighth_scale(&cut, &layout(&cut).unwrap()).unwrap();
        assert!(!coverage.is_complete(), "{coverage:?}");
    }

    #[test]
    fn twelve_bit_files_are_left_to_the_decoder() {
        let file = jpeg(&photo(64, 64), 90);
        let mut l = layout(&file).unwrap();
        l.precision = 12;
        assert!(eighth_scale(&file, &l).is_none());
    }
}
