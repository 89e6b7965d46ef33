//! Turning an RGB image into the image encoder's input tensor.
//!
//! The steps and their parameters come from the pack's `image` section (see
//! `docs/model-pack.md`), so the worker preprocesses exactly as the pack's
//! builder specified: decoding at the smallest size that still serves the
//! input (a large JPEG at 1/8 scale), centre crop and resize (or a stretch of
//! the whole image), per-channel normalisation, layout.

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;
use image::imageops;
use serde::Deserialize;
use tract_onnx::prelude::{Tensor, tract_ndarray};
use verdict_decode::{DecodeError, DecodeLimits, decode, decode_scaled};

/// Images larger than this on a side are logged at WARN: they cost bandwidth
/// and decode time, and the model sees them at its input size anyway.
pub const LARGE_IMAGE_SIDE: u32 = 2048;

/// How the image becomes a `size x size` square.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resize {
    /// A centre crop of `crop_fraction` of the short side, resized to the
    /// square (the aspect ratio is kept, the margins are lost).
    #[default]
    Crop,
    /// The whole image resized to the square (nothing is lost, the aspect
    /// ratio is not kept): OFA's preprocessing.
    Stretch,
}

/// The `image` section of a label-grounded (or any image-encoding) pack.
#[derive(Debug, Clone, Deserialize)]
pub struct ImageSpec {
    /// The graph's input name.
    pub input: String,
    /// The graph's output name.
    pub output: String,
    /// Side of the square input, in pixels.
    pub size: u32,
    /// `crop` (the default) or `stretch`.
    #[serde(default)]
    pub resize: Resize,
    /// Side of the centre crop as a fraction of the image's short side: required
    /// with `resize: crop`; with `stretch`, absent or 1 (nothing is cropped).
    #[serde(default)]
    pub crop_fraction: Option<f32>,
    /// `bicubic` (Catmull-Rom), `bilinear` or `nearest`.
    pub resize_filter: String,
    /// Per-channel mean and standard deviation, on 0..255 pixel values.
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// `nchw` (planar) or `nhwc` (interleaved).
    pub layout: String,
}

impl ImageSpec {
    /// Checks the values that would otherwise fail at the first job.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=4096).contains(&self.size) {
            return Err(format!("image.size {} is out of range", self.size));
        }
        match (self.resize, self.crop_fraction) {
            (Resize::Crop, None) => {
                return Err("image.crop_fraction is required with image.resize \"crop\"".into());
            }
            (Resize::Crop, Some(fraction)) if !(fraction > 0.0 && fraction <= 1.0) => {
                return Err(format!("image.crop_fraction {fraction} must be in (0, 1]"));
            }
            (Resize::Stretch, Some(fraction)) if fraction != 1.0 => {
                return Err(format!(
                    "image.crop_fraction {fraction} with image.resize \"stretch\": a stretch keeps the whole image (leave crop_fraction out, or 1)"
                ));
            }
            _ => {}
        }
        self.filter()?;
        if self.std.iter().any(|s| !s.is_finite() || *s == 0.0) {
            return Err("image.std must be finite and non-zero".into());
        }
        match self.layout.as_str() {
            "nchw" | "nhwc" => Ok(()),
            other => Err(format!("image.layout {other:?} is not nchw or nhwc")),
        }
    }

    /// The resize for `resize_filter`: bicubic is the Catmull-Rom cubic (a =
    /// -0.5) and bilinear the triangle, each with its support scaled when
    /// shrinking (Pillow's BICUBIC and BILINEAR).
    fn filter(&self) -> Result<ResizeAlg, String> {
        match self.resize_filter.as_str() {
            "bicubic" => Ok(ResizeAlg::Convolution(FilterType::CatmullRom)),
            "bilinear" => Ok(ResizeAlg::Convolution(FilterType::Bilinear)),
            "nearest" => Ok(ResizeAlg::Nearest),
            other => Err(format!(
                "image.resize_filter {other:?} is not bicubic, bilinear or nearest"
            )),
        }
    }

    /// The short side a decoded image needs for [`ImageSpec::square`] to
    /// shrink it, never enlarge it: the crop's side (or, for a stretch, each
    /// side) at least the input's size.
    pub fn min_decoded_side(&self) -> u32 {
        match self.resize {
            Resize::Crop => {
                let fraction = self.crop_fraction.unwrap_or(1.0).clamp(f32::EPSILON, 1.0);
                (self.size as f32 / fraction).ceil() as u32
            }
            Resize::Stretch => self.size,
        }
    }

    /// Decodes an uploaded image for this input: upright RGB and, if
    /// `scaled`, a large JPEG at 1/8 scale when that still leaves
    /// [`ImageSpec::min_decoded_side`] (`verdict_decode::decode_scaled`).
    pub fn decode(
        &self,
        bytes: &[u8],
        limits: &DecodeLimits,
        scaled: bool,
    ) -> Result<RgbImage, DecodeError> {
        let decoded = if scaled {
            decode_scaled(bytes, limits, self.min_decoded_side())?
        } else {
            decode(bytes, limits)?
        };
        let (width, height) = decoded.rgb.dimensions();
        let (width, height) = (width * decoded.reduced_by, height * decoded.reduced_by);
        if width.max(height) > LARGE_IMAGE_SIDE {
            let size = self.size;
            tracing::warn!(
                width,
                height,
                limit = LARGE_IMAGE_SIDE,
                "image is larger than {LARGE_IMAGE_SIDE} px on a side: downscaled to {size}x{size} for the model (send smaller images to save bandwidth)"
            );
        }
        Ok(decoded.rgb)
    }

    /// The input tensor's shape.
    pub fn input_shape(&self) -> [usize; 4] {
        let s = self.size as usize;
        if self.layout == "nhwc" {
            [1, s, s, 3]
        } else {
            [1, 3, s, s]
        }
    }

    /// Crops (or not, per `resize`), resizes and normalises `rgb` into the
    /// model's input tensor.
    pub fn tensor(&self, rgb: &RgbImage) -> Tensor {
        self.tensor_of_square(&self.square(rgb))
    }

    /// Normalises the `size x size` square (`square`'s output) into the
    /// model's input tensor: `(value - mean) / std` per channel, planar or
    /// interleaved as `layout` says. One pass over the pixels in memory order
    /// (an element-by-element `from_shape_fn` with a bounds-checked
    /// `get_pixel` per value was 1.9 % of a PNG job's judging thread in a
    /// bench-peer run on a Zen 4).
    ///
    /// # Panics
    /// If `square` is not `size x size` (it comes from [`ImageSpec::square`]).
    pub fn tensor_of_square(&self, square: &RgbImage) -> Tensor {
        assert_eq!(
            square.dimensions(),
            (self.size, self.size),
            "the model's square is {0} x {0}",
            self.size
        );
        let pixels = square.as_raw().chunks_exact(3);
        let plane = pixels.len();
        let mut values = vec![0f32; 3 * plane];
        let normalise = |value: u8, c: usize| (f32::from(value) - self.mean[c]) / self.std[c];
        if self.layout == "nhwc" {
            for (out, pixel) in values.chunks_exact_mut(3).zip(pixels) {
                for c in 0..3 {
                    out[c] = normalise(pixel[c], c);
                }
            }
        } else {
            for (c, out) in values.chunks_exact_mut(plane).enumerate() {
                for (value, pixel) in out.iter_mut().zip(pixels.clone()) {
                    *value = normalise(pixel[c], c);
                }
            }
        }
        tract_ndarray::Array4::from_shape_vec(self.input_shape(), values)
            .expect("3 values a pixel of a size x size square")
            .into()
    }

    /// The `size x size` square the model sees, as `resize` says.
    pub fn square(&self, rgb: &RgbImage) -> RgbImage {
        match self.resize {
            Resize::Crop => self.crop_and_resize(rgb),
            Resize::Stretch => self.stretch(rgb),
        }
    }

    /// The whole image resized to `size x size`, aspect ratio not kept.
    pub fn stretch(&self, rgb: &RgbImage) -> RgbImage {
        if rgb.dimensions() == (self.size, self.size) {
            return rgb.clone();
        }
        self.resize_to_square(rgb)
    }

    /// The centre crop of `crop_fraction` of the short side, resized to `size`
    /// (a missing `crop_fraction`, refused by `validate`, crops nothing).
    pub fn crop_and_resize(&self, rgb: &RgbImage) -> RgbImage {
        let (width, height) = rgb.dimensions();
        let short = width.min(height);
        let fraction = self.crop_fraction.unwrap_or(1.0);
        let side = ((short as f32 * fraction).round() as u32).clamp(1, short);
        // The extra pixel of an odd margin goes to the right and the bottom.
        let x0 = (width - side) / 2;
        let y0 = (height - side) / 2;
        let crop = imageops::crop_imm(rgb, x0, y0, side, side).to_image();
        if side == self.size {
            crop
        } else {
            self.resize_to_square(&crop)
        }
    }

    /// `rgb` resized to `size x size` by `resize_filter`, on the 8-bit
    /// pixels in fixed point (as Pillow does; fast_image_resize's SIMD
    /// kernels).
    fn resize_to_square(&self, rgb: &RgbImage) -> RgbImage {
        let mut square = RgbImage::new(self.size, self.size);
        let options = ResizeOptions::new().resize_alg(
            self.filter()
                .unwrap_or(ResizeAlg::Convolution(FilterType::CatmullRom)),
        );
        // RGB8 to RGB8 of nonzero sizes: the only errors it has (pixel types
        // that differ, an empty image) cannot happen here. Were one to, the
        // square would stay black and the verdict say nothing: better the
        // image crate's slower resize.
        match Resizer::new().resize(rgb, &mut square, &options) {
            Ok(()) => square,
            Err(_) => imageops::resize(rgb, self.size, self.size, imageops::FilterType::CatmullRom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn spec() -> ImageSpec {
        ImageSpec {
            input: "image".into(),
            output: "logits".into(),
            size: 4,
            resize: Resize::Crop,
            crop_fraction: Some(0.5),
            resize_filter: "nearest".into(),
            mean: [127.0; 3],
            std: [128.0; 3],
            layout: "nchw".into(),
        }
    }

    #[test]
    fn crops_the_centre_and_normalises_planar() {
        // 16x8 image: left half red, right half blue; the centre crop of 0.5 of
        // the short side (4x4 at x=6..10) straddles the middle.
        let rgb = RgbImage::from_fn(16, 8, |x, _| {
            if x < 8 {
                Rgb([255, 0, 0])
            } else {
                Rgb([0, 0, 255])
            }
        });
        let tensor = spec().tensor(&rgb);
        let view = tensor.to_plain_array_view::<f32>().unwrap();
        assert_eq!(view.shape(), &[1, 3, 4, 4]);
        assert_eq!(
            view[[0, 0, 0, 0]],
            (255.0 - 127.0) / 128.0,
            "red channel, left"
        );
        assert_eq!(view[[0, 2, 0, 0]], -127.0 / 128.0, "blue channel, left");
        assert_eq!(
            view[[0, 2, 0, 3]],
            (255.0 - 127.0) / 128.0,
            "blue channel, right"
        );
    }

    #[test]
    fn the_tensor_is_the_normalised_square_value_by_value() {
        // Every value, both layouts, bit for bit against the definition.
        let square = RgbImage::from_fn(5, 5, |x, y| {
            Rgb([
                (x * 50) as u8,
                (y * 61 % 256) as u8,
                ((x * 7 + y * 13) % 256) as u8,
            ])
        });
        for layout in ["nchw", "nhwc"] {
            let mut s = spec();
            s.size = 5;
            s.layout = layout.into();
            s.mean = [123.675, 116.28, 103.53];
            s.std = [58.395, 57.12, 57.375];
            let tensor = s.tensor_of_square(&square);
            let view = tensor.to_plain_array_view::<f32>().unwrap();
            assert_eq!(view.shape(), &s.input_shape()[..], "{layout}");
            for (x, y, pixel) in square.enumerate_pixels() {
                for c in 0..3 {
                    let (x, y) = (x as usize, y as usize);
                    let at = if layout == "nchw" {
                        [0, c, y, x]
                    } else {
                        [0, y, x, c]
                    };
                    let want = (f32::from(pixel[c]) - s.mean[c]) / s.std[c];
                    assert_eq!(view[at].to_bits(), want.to_bits(), "{layout} {at:?}");
                }
            }
        }
    }

    #[test]
    fn stretch_keeps_the_whole_image() {
        // 16x8 image: the left quarter red, the rest blue. Stretched to 4x4,
        // the first column is red and the others blue; the centre crop (x =
        // 6..10) sees no red at all.
        let rgb = RgbImage::from_fn(16, 8, |x, _| {
            if x < 4 {
                Rgb([255, 0, 0])
            } else {
                Rgb([0, 0, 255])
            }
        });
        let mut s = spec();
        s.resize = Resize::Stretch;
        s.crop_fraction = None;
        let square = s.square(&rgb);
        assert_eq!(square.dimensions(), (4, 4));
        for y in 0..4 {
            assert_eq!(square.get_pixel(0, y), &Rgb([255, 0, 0]));
            for x in 1..4 {
                assert_eq!(square.get_pixel(x, y), &Rgb([0, 0, 255]));
            }
        }
        let cropped = spec().square(&rgb);
        assert!(cropped.pixels().all(|p| *p == Rgb([0, 0, 255])));
    }

    #[test]
    fn bicubic_shrinks_to_the_mean_of_what_each_pixel_covers() {
        // A horizontal ramp from 10 to 210 over 448 pixels, halved: each pixel
        // of the square covers two of the ramp, and Catmull-Rom keeps a
        // straight line, so it holds their mean, up to the rounding of the
        // 8-bit passes (the filter's support is clamped at the edges).
        let ramp = RgbImage::from_fn(448, 448, |x, _| Rgb([(10 + x * 200 / 447) as u8, 100, 200]));
        let mut s = spec();
        s.size = 224;
        s.crop_fraction = Some(1.0);
        s.resize_filter = "bicubic".into();
        let square = s.square(&ramp);
        assert_eq!(square.dimensions(), (224, 224));
        for x in 2..222 {
            let pair = [ramp.get_pixel(2 * x, 0)[0], ramp.get_pixel(2 * x + 1, 0)[0]];
            let expected = (f32::from(pair[0]) + f32::from(pair[1])) / 2.0;
            let got = square.get_pixel(x, 100);
            assert!(
                (f32::from(got[0]) - expected).abs() <= 1.0,
                "x {x}: {got:?}, {expected}"
            );
            assert_eq!((got[1], got[2]), (100, 200), "x {x}");
        }
        // Columns of 0 and 200 in turn: a filter whose support is scaled to
        // the shrink averages them to 100 (nearest would keep 0 or 200).
        let stripes = RgbImage::from_fn(448, 448, |x, _| Rgb([(x % 2 * 200) as u8; 3]));
        let square = s.square(&stripes);
        for x in 2..222 {
            let got = square.get_pixel(x, 100)[0];
            assert!(got.abs_diff(100) <= 1, "x {x}: {got}");
        }
    }

    #[test]
    fn resize_defaults_to_crop_and_refuses_unknown_values() {
        let base = serde_json::json!({
            "input": "image", "output": "logits", "size": 4, "crop_fraction": 0.5,
            "resize_filter": "nearest", "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0],
            "layout": "nchw"
        });
        let parsed: ImageSpec = serde_json::from_value(base.clone()).unwrap();
        assert_eq!(parsed.resize, Resize::Crop);
        let mut stretch = base.clone();
        stretch["resize"] = "stretch".into();
        let parsed: ImageSpec = serde_json::from_value(stretch).unwrap();
        assert_eq!(parsed.resize, Resize::Stretch);
        let mut nonsense = base;
        nonsense["resize"] = "squash".into();
        assert!(serde_json::from_value::<ImageSpec>(nonsense).is_err());
    }

    #[test]
    fn rejects_nonsense_specs() {
        let mut s = spec();
        s.layout = "hwc".into();
        assert!(s.validate().is_err());
        let mut s = spec();
        s.crop_fraction = Some(0.0);
        assert!(s.validate().is_err());
        let mut s = spec();
        s.crop_fraction = None;
        assert!(s.validate().is_err(), "crop without a fraction");
        let mut s = spec();
        s.resize = Resize::Stretch;
        assert!(
            s.validate().is_err(),
            "stretch with a crop fraction below 1"
        );
        s.crop_fraction = Some(1.0);
        assert!(s.validate().is_ok(), "stretch with the whole image");
        s.crop_fraction = None;
        assert!(s.validate().is_ok());
        let mut s = spec();
        s.std = [0.0, 1.0, 1.0];
        assert!(s.validate().is_err());
        assert!(spec().validate().is_ok());
    }
}
