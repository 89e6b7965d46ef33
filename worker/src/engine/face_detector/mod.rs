//! Faces in the image: MTCNN's cascade (Zhang et al., 2016) on a small copy
//! of it, run with tract.
//!
//! ImageNet has no person class, so a sentence about a person, a crowd or a
//! portrait finds no label to stand on; faces, their number and their size
//! are evidence the classifier cannot give. The pack's `faces` section
//! (`docs/model-pack.md`) names the three graphs (P-Net, R-Net, O-Net) and
//! the parameters; a pack without it has no detector, and its evidence says
//! nothing about faces.
//!
//! The cost is bounded whatever the image: it is resized (area filter) so its
//! long side is `canvas` px and placed in a `canvas x canvas` square, so
//! P-Net runs on the same pyramid of squares for every image (one plan per
//! level, made at load time), and R-Net and O-Net see at most
//! `max_candidates` crops. The steps are those of
//! `scripts/model/face_detect.py`, the build's reference.

pub mod boxes;
pub mod resample;

use image::RgbImage;
use serde::{Deserialize, Serialize};
use tract_onnx::prelude::*;

use super::onnx_graph::{Dim, Graph, Plan, PlannedInput, SymbolicInput};
use super::pack::Pack;
use super::{JudgeError, LoadError};
use boxes::{Candidate, Overlap, nms};
use resample::{Pixels, area_resample};

/// P-Net's window and stride, in pixels of a pyramid level.
const CELL: f32 = 12.0;
const STRIDE: f32 = 2.0;
/// R-Net's and O-Net's input sides.
const RNET_SIDE: usize = 24;
const ONET_SIDE: usize = 48;
/// The symbol of R-Net's and O-Net's batch: the candidates of one image.
const BATCH: &str = "N";

/// The pack's `faces` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FacesSpec {
    /// What the detector is (informational): `mtcnn`.
    pub detector: String,
    /// The three graphs' files (each one of the pack's `files`).
    pub pnet: String,
    pub rnet: String,
    pub onet: String,
    /// The graphs' input, and the two outputs the engine reads: the face
    /// probability (`[.., 2, ..]`, channel 1 is "face") and the box offsets.
    pub input: String,
    pub prob: String,
    pub reg: String,
    /// The working square's side, in pixels.
    pub canvas: u32,
    /// The smallest face searched, as a fraction of the image's long side.
    pub min_face: f32,
    /// The ratio between two pyramid levels' sides.
    pub scale_factor: f32,
    /// P-Net's, R-Net's and O-Net's face probability thresholds.
    pub thresholds: [f32; 3],
    /// IoU thresholds of the suppressions: P-Net within a level, P-Net across
    /// levels, R-Net, and O-Net (over the smaller box's area).
    pub nms: [f32; 4],
    /// How many candidates R-Net and O-Net see at most (the best by score).
    pub max_candidates: [usize; 2],
    /// Normalisation: `(pixel - mean) / std`, on 0..255 values.
    pub mean: f32,
    pub std: f32,
    /// The pixel value (0..255) of the square outside the image, and of a
    /// crop's part outside it.
    pub pad: f32,
}

impl FacesSpec {
    pub fn validate(&self) -> Result<(), String> {
        if !(24..=1024).contains(&self.canvas) {
            return Err(format!(
                "faces.canvas {} is out of range 24..=1024",
                self.canvas
            ));
        }
        if !(self.min_face > 0.0 && self.min_face <= 1.0) {
            return Err(format!(
                "faces.min_face {} must be in (0, 1]",
                self.min_face
            ));
        }
        if !(self.scale_factor > 0.1 && self.scale_factor < 0.95) {
            return Err(format!(
                "faces.scale_factor {} must be in (0.1, 0.95)",
                self.scale_factor
            ));
        }
        if self.thresholds.iter().any(|t| !(0.0..=1.0).contains(t)) {
            return Err(format!(
                "faces.thresholds {:?} must be in [0, 1]",
                self.thresholds
            ));
        }
        if self.nms.iter().any(|t| !(0.0..=1.0).contains(t)) {
            return Err(format!("faces.nms {:?} must be in [0, 1]", self.nms));
        }
        if self.max_candidates.iter().any(|&n| !(1..=256).contains(&n)) {
            return Err(format!(
                "faces.max_candidates {:?} must be in 1..=256",
                self.max_candidates
            ));
        }
        if !(self.mean.is_finite() && self.pad.is_finite() && self.std.is_finite())
            || self.std == 0.0
        {
            return Err("faces.mean, std and pad must be finite, std non-zero".into());
        }
        if self.pyramid().is_empty() {
            return Err("faces: canvas and min_face leave no pyramid level of 12 px".into());
        }
        Ok(())
    }

    /// The sides of P-Net's inputs: `canvas * m * scale_factor^k` rounded,
    /// while at least 12, with `m = 12 / (min_face * canvas)` (a face of
    /// `min_face` of the long side fills P-Net's 12 px window at the first).
    pub fn pyramid(&self) -> Vec<usize> {
        let canvas = f64::from(self.canvas);
        let mut scale = 12.0 / (f64::from(self.min_face) * canvas);
        let mut sides = Vec::new();
        loop {
            let side = (canvas * scale + 0.5).floor();
            if side.is_nan() || side < 12.0 || sides.len() >= 64 {
                break;
            }
            sides.push(side as usize);
            scale *= f64::from(self.scale_factor);
        }
        sides
    }

    /// The working copy's size for an image: long side `canvas`, aspect
    /// ratio kept, at least 1 px.
    pub fn working_size(&self, width: u32, height: u32) -> (usize, usize) {
        let long = f64::from(width.max(height).max(1));
        let c = f64::from(self.canvas);
        let side = |s: u32| ((f64::from(s) * c / long + 0.5).floor() as usize).max(1);
        (side(width), side(height))
    }
}

/// One face: its box as fractions of the image's width and height (from its
/// top left), and O-Net's probability that it is a face.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FaceBox {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
    pub score: f32,
}

/// The faces found in an image, the most probable first.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Faces {
    pub boxes: Vec<FaceBox>,
}

impl Faces {
    pub fn count(&self) -> usize {
        self.boxes.len()
    }

    /// The largest face's share of the image's area (0 without faces).
    pub fn largest_area_fraction(&self) -> f32 {
        self.boxes.iter().map(|b| b.w * b.h).fold(0.0, f32::max)
    }
}

/// A P-Net candidate with its box offsets, before regression.
#[derive(Debug, Clone, Copy)]
struct Window {
    candidate: Candidate,
    reg: [f32; 4],
}

impl AsRef<Candidate> for Window {
    fn as_ref(&self) -> &Candidate {
        &self.candidate
    }
}

/// The working copy of an image and the square P-Net reads.
#[derive(Debug, Clone)]
pub struct WorkingCopy {
    pub image: Pixels,
    pub square: Pixels,
}

/// The three nets, planned.
#[derive(Debug)]
pub struct FaceDetector {
    spec: FacesSpec,
    /// One P-Net plan per pyramid level, with the level's side.
    levels: Vec<(usize, Plan)>,
    rnet: Plan,
    onet: Plan,
}

impl FaceDetector {
    /// The detector of a pack's `faces` section; `None` when the pack has none.
    pub fn load(pack: &Pack) -> Result<Option<FaceDetector>, LoadError> {
        if !pack.manifest().sections.contains_key("faces") {
            return Ok(None);
        }
        let spec: FacesSpec = pack.section("faces")?;
        spec.validate()
            .map_err(|message| LoadError::invalid(pack.manifest_path(), message))?;
        let outputs = [spec.prob.as_str(), spec.reg.as_str()];
        let inputs = [spec.input.as_str()];
        let planned = |side: usize| {
            [PlannedInput {
                name: &spec.input,
                datum: f32::datum_type(),
                shape: vec![1, 3, side, side],
            }]
        };
        let pnet = Graph::load_outputs(&pack.named_file(&spec.pnet)?, &inputs, &outputs)?;
        let levels = spec
            .pyramid()
            .into_iter()
            .map(|side| Ok((side, pnet.plan(&planned(side))?)))
            .collect::<Result<Vec<_>, LoadError>>()?;
        // R-Net and O-Net read all of a stage's crops in one run: a batch of
        // symbolic size.
        let batched = |file: &str, side: usize| -> Result<Plan, LoadError> {
            Graph::load_outputs(&pack.named_file(file)?, &inputs, &outputs)?.into_plan(
                &[SymbolicInput {
                    name: &spec.input,
                    datum: f32::datum_type(),
                    shape: vec![
                        Dim::Symbol(BATCH),
                        Dim::Fixed(3),
                        Dim::Fixed(side),
                        Dim::Fixed(side),
                    ],
                }],
                &[format!("{BATCH} >= 1")],
            )
        };
        let rnet = batched(&spec.rnet, RNET_SIDE)?;
        let onet = batched(&spec.onet, ONET_SIDE)?;
        let detector = FaceDetector {
            spec,
            levels,
            rnet,
            onet,
        };
        // A run on a blank image (P-Net's levels) and on a blank crop each
        // (R-Net, O-Net: a blank image passes them nothing) proves the output
        // shapes now, not at the first job.
        let invalid =
            |e: JudgeError| LoadError::invalid(pack.manifest_path(), format!("faces: {e}"));
        detector.detect(&RgbImage::new(64, 48)).map_err(invalid)?;
        let blank = Pixels::filled(64, 48, detector.spec.pad);
        let whole = Candidate {
            x1: 0.0,
            y1: 0.0,
            x2: 48.0,
            y2: 48.0,
            score: 1.0,
        };
        for (stage, side) in [(1, RNET_SIDE), (2, ONET_SIDE)] {
            detector
                .refine(&blank, &[whole], side, stage)
                .map_err(invalid)?;
        }
        Ok(Some(detector))
    }

    pub fn spec(&self) -> &FacesSpec {
        &self.spec
    }

    /// The faces in a decoded image.
    pub fn detect(&self, rgb: &RgbImage) -> Result<Faces, JudgeError> {
        let copy = self.working_copy(rgb);
        let (width, height) = (copy.image.width as f32, copy.image.height as f32);
        let windows = self.pnet_stage(&copy)?;
        let candidates = self.refine(&copy.image, &windows, RNET_SIDE, 1)?;
        let candidates: Vec<Candidate> = nms(candidates, self.spec.nms[2], Overlap::Union)
            .into_iter()
            .map(|c| c.squared())
            .take(self.spec.max_candidates[1])
            .collect();
        let faces = self.refine(&copy.image, &candidates, ONET_SIDE, 2)?;
        let faces = nms(faces, self.spec.nms[3], Overlap::Min);
        let boxes = faces
            .into_iter()
            .filter_map(|c| {
                let (x1, x2) = (c.x1.clamp(0.0, width), c.x2.clamp(0.0, width));
                let (y1, y2) = (c.y1.clamp(0.0, height), c.y2.clamp(0.0, height));
                (x2 > x1 && y2 > y1).then(|| FaceBox {
                    x: x1 / width,
                    y: y1 / height,
                    w: (x2 - x1) / width,
                    h: (y2 - y1) / height,
                    score: c.score,
                })
            })
            .collect();
        Ok(Faces { boxes })
    }

    /// The image resized to its working size, and the square around it.
    pub fn working_copy(&self, rgb: &RgbImage) -> WorkingCopy {
        let (w, h) = rgb.dimensions();
        let (ww, wh) = self.spec.working_size(w, h);
        let image = area_resample(
            rgb.as_raw(),
            w as usize,
            h as usize,
            (0.0, 0.0, f64::from(w), f64::from(h)),
            ww,
            wh,
            self.spec.pad,
        );
        let c = self.spec.canvas as usize;
        let mut square = Pixels::filled(c, c, self.spec.pad);
        for y in 0..wh.min(c) {
            let from = &image.data[y * ww * 3..(y * ww + ww.min(c)) * 3];
            square.data[y * c * 3..(y * c + ww.min(c)) * 3].copy_from_slice(from);
        }
        WorkingCopy { image, square }
    }

    /// The input tensor of each pyramid level for a working copy, with the
    /// level's side (for the parity tests).
    pub fn level_tensors(&self, copy: &WorkingCopy) -> Vec<(usize, Tensor)> {
        let c = f64::from(self.spec.canvas);
        self.levels
            .iter()
            .map(|&(side, _)| {
                let level = area_resample(
                    &copy.square.data,
                    copy.square.width,
                    copy.square.height,
                    (0.0, 0.0, c, c),
                    side,
                    side,
                    self.spec.pad,
                );
                (side, self.tensor(&level))
            })
            .collect()
    }

    /// P-Net at level `index` (its input from [`FaceDetector::level_tensors`]):
    /// `(prob, reg)` as the graph outputs them, flattened.
    pub fn run_pnet(
        &self,
        index: usize,
        input: &Tensor,
    ) -> Result<(Vec<f32>, Vec<f32>), JudgeError> {
        let (_, plan) = self
            .levels
            .get(index)
            .ok_or_else(|| JudgeError::Model(format!("faces: no pyramid level {index}")))?;
        run(plan, input, "P-Net")
    }

    /// One run of P-Net at level `index` with a clock on every node
    /// (`verdict-worker bench --profile`).
    pub fn profile_pnet(
        &self,
        index: usize,
        input: &Tensor,
    ) -> Result<super::profile::Profile, JudgeError> {
        let (_, plan) = self
            .levels
            .get(index)
            .ok_or_else(|| JudgeError::Model(format!("faces: no pyramid level {index}")))?;
        super::profile::Profile::of(plan, tvec![input.clone().into_tvalue()])
    }

    /// R-Net (`stage` 1) or O-Net (2) on a batch of crops ([n, 3, 24, 24] or
    /// [n, 3, 48, 48]): `(prob, reg)` flattened ([n, 2] and [n, 4]).
    pub fn run_refiner(
        &self,
        stage: usize,
        input: &Tensor,
    ) -> Result<(Vec<f32>, Vec<f32>), JudgeError> {
        match stage {
            1 => run(&self.rnet, input, "R-Net"),
            _ => run(&self.onet, input, "O-Net"),
        }
    }

    /// The input tensor of R-Net (`side` 24) or O-Net (48) for boxes of the
    /// working image: one crop each, in order ([n, 3, side, side]).
    pub fn crop_tensor(&self, image: &Pixels, boxes: &[Candidate], side: usize) -> Tensor {
        let crops: Vec<Pixels> = boxes
            .iter()
            .map(|c| {
                area_resample(
                    &image.data,
                    image.width,
                    image.height,
                    (
                        f64::from(c.x1),
                        f64::from(c.y1),
                        f64::from(c.x2),
                        f64::from(c.y2),
                    ),
                    side,
                    side,
                    self.spec.pad,
                )
            })
            .collect();
        let (mean, std) = (self.spec.mean, self.spec.std);
        tract_ndarray::Array4::from_shape_fn((crops.len(), 3, side, side), |(n, c, y, x)| {
            (crops[n].data[(y * side + x) * 3 + c] - mean) / std
        })
        .into()
    }

    /// Stage 1: P-Net's windows on every level, suppressed, regressed and
    /// squared, the best `max_candidates[0]`.
    fn pnet_stage(&self, copy: &WorkingCopy) -> Result<Vec<Candidate>, JudgeError> {
        let c = self.spec.canvas as f32;
        let (ww, wh) = (copy.image.width as f32, copy.image.height as f32);
        let mut all = Vec::new();
        for (index, (side, input)) in self.level_tensors(copy).into_iter().enumerate() {
            let (prob, reg) = self.run_pnet(index, &input)?;
            let grid = pnet_grid(side);
            if prob.len() != 2 * grid * grid || reg.len() != 4 * grid * grid {
                return Err(JudgeError::Model(format!(
                    "faces: P-Net on {side} px gave {} probabilities and {} offsets, expected a {grid} x {grid} grid",
                    prob.len(),
                    reg.len()
                )));
            }
            let r = side as f32 / c;
            let plane = grid * grid;
            let mut windows = Vec::new();
            for i in 0..grid {
                for j in 0..grid {
                    let at = i * grid + j;
                    let score = prob[plane + at];
                    if score.is_nan() || score < self.spec.thresholds[0] {
                        continue;
                    }
                    let candidate = Candidate {
                        x1: STRIDE * j as f32 / r,
                        y1: STRIDE * i as f32 / r,
                        x2: (STRIDE * j as f32 + CELL) / r,
                        y2: (STRIDE * i as f32 + CELL) / r,
                        score,
                    };
                    // Windows centred on the padding are not in the image.
                    if (candidate.x1 + candidate.x2) / 2.0 >= ww
                        || (candidate.y1 + candidate.y2) / 2.0 >= wh
                    {
                        continue;
                    }
                    let reg = [0, 1, 2, 3].map(|k| reg[k * plane + at]);
                    windows.push(Window { candidate, reg });
                }
            }
            all.extend(nms(windows, self.spec.nms[0], Overlap::Union));
        }
        Ok(nms(all, self.spec.nms[1], Overlap::Union)
            .into_iter()
            .map(|w| w.candidate.regressed(w.reg).squared())
            .filter(Candidate::is_finite)
            .take(self.spec.max_candidates[0])
            .collect())
    }

    /// Stages 2 and 3: each candidate cropped to `side`, through R-Net
    /// (`stage` 1) or O-Net (2); those at or above the stage's threshold,
    /// with its probability, regressed.
    fn refine(
        &self,
        image: &Pixels,
        candidates: &[Candidate],
        side: usize,
        stage: usize,
    ) -> Result<Vec<Candidate>, JudgeError> {
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let n = candidates.len();
        let (prob, reg) = self.run_refiner(stage, &self.crop_tensor(image, candidates, side))?;
        if prob.len() != 2 * n || reg.len() != 4 * n {
            return Err(JudgeError::Model(format!(
                "faces: stage {stage} gave {} probabilities and {} offsets for {n} crops, expected {} and {}",
                prob.len(),
                reg.len(),
                2 * n,
                4 * n
            )));
        }
        let mut kept = Vec::new();
        for (k, c) in candidates.iter().enumerate() {
            let score = prob[2 * k + 1];
            if score >= self.spec.thresholds[stage] {
                let r = &reg[4 * k..4 * k + 4];
                let c = Candidate { score, ..*c }.regressed([r[0], r[1], r[2], r[3]]);
                if c.is_finite() {
                    kept.push(c);
                }
            }
        }
        Ok(kept)
    }

    /// `(pixel - mean) / std`, planar [1, 3, h, w].
    fn tensor(&self, pixels: &Pixels) -> Tensor {
        let (w, h) = (pixels.width, pixels.height);
        let (mean, std) = (self.spec.mean, self.spec.std);
        tract_ndarray::Array4::from_shape_fn((1, 3, h, w), |(_, c, y, x)| {
            (pixels.data[(y * w + x) * 3 + c] - mean) / std
        })
        .into()
    }
}

/// P-Net's output grid side for an input side: conv 3, max-pool 2 (ceil),
/// conv 3, conv 3.
pub fn pnet_grid(side: usize) -> usize {
    (side.saturating_sub(2)).div_ceil(2).saturating_sub(4)
}

fn run(plan: &Plan, input: &Tensor, net: &str) -> Result<(Vec<f32>, Vec<f32>), JudgeError> {
    let outputs = plan
        .run(tvec![input.clone().into_tvalue()])
        .map_err(|e| JudgeError::Model(format!("faces: {net}: {e:#}")))?;
    let flat = |k: usize| -> Result<Vec<f32>, JudgeError> {
        let view = outputs
            .get(k)
            .ok_or_else(|| JudgeError::Model(format!("faces: {net} has no output {k}")))?
            .to_plain_array_view::<f32>()
            .map_err(|e| JudgeError::Model(format!("faces: {net} output: {e}")))?;
        Ok(view.iter().copied().collect())
    };
    Ok((flat(0)?, flat(1)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FacesSpec {
        FacesSpec {
            detector: "mtcnn".into(),
            pnet: "face_pnet.onnx".into(),
            rnet: "face_rnet.onnx".into(),
            onet: "face_onet.onnx".into(),
            input: "image".into(),
            prob: "prob".into(),
            reg: "reg".into(),
            canvas: 160,
            min_face: 0.15,
            scale_factor: 0.709,
            thresholds: [0.7, 0.7, 0.7],
            nms: [0.5, 0.7, 0.7, 0.7],
            max_candidates: [8, 3],
            mean: 127.5,
            std: 128.0,
            pad: 0.0,
        }
    }

    #[test]
    fn the_default_pyramid_and_working_sizes() {
        let s = spec();
        s.validate().expect("valid");
        // The build's log prints the same list (face_detect.pyramid).
        assert_eq!(s.pyramid(), vec![80, 57, 40, 29, 20, 14]);
        assert_eq!(s.working_size(451, 300), (160, 106));
        assert_eq!(s.working_size(512, 600), (137, 160));
        assert_eq!(s.working_size(1, 3000), (1, 160));
        assert_eq!(s.working_size(0, 0), (1, 1));
        assert_eq!(pnet_grid(12), 1);
        assert_eq!(pnet_grid(120), 55);
        assert_eq!(pnet_grid(15), 3);
    }

    #[test]
    fn rejects_nonsense_specs() {
        for broken in [
            FacesSpec {
                canvas: 8,
                ..spec()
            },
            FacesSpec {
                min_face: 0.0,
                ..spec()
            },
            FacesSpec {
                min_face: f32::NAN,
                ..spec()
            },
            FacesSpec {
                scale_factor: 1.0,
                ..spec()
            },
            FacesSpec {
                thresholds: [0.6, 1.5, 0.7],
                ..spec()
            },
            FacesSpec {
                max_candidates: [0, 8],
                ..spec()
            },
            FacesSpec { std: 0.0, ..spec() },
        ] {
            assert!(broken.validate().is_err(), "{broken:?}");
        }
    }

    #[test]
    fn counts_and_largest_area() {
        let face = |w: f32, h: f32| FaceBox {
            x: 0.0,
            y: 0.0,
            w,
            h,
            score: 0.9,
        };
        let faces = Faces {
            boxes: vec![face(0.1, 0.2), face(0.3, 0.3)],
        };
        assert_eq!(faces.count(), 2);
        assert!((faces.largest_area_fraction() - 0.09).abs() < 1e-6);
        assert_eq!(Faces::default().largest_area_fraction(), 0.0);
    }
}
