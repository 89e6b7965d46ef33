//! Candidate boxes and MTCNN's operations on them: non-maximum suppression,
//! box regression, squaring. Coordinates are working-copy pixels, `x2` and
//! `y2` exclusive (a box is `[x1, x2) x [y1, y2)`); `scripts/model/face_detect.py`
//! does the same in numpy.

/// A candidate face: a box and the probability the last net gave it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
    pub score: f32,
}

/// How two boxes' overlap is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// Intersection over union.
    Union,
    /// Intersection over the smaller box's area (O-Net's last suppression:
    /// a box inside a larger one goes too).
    Min,
}

impl Candidate {
    pub fn width(&self) -> f32 {
        self.x2 - self.x1
    }

    pub fn height(&self) -> f32 {
        self.y2 - self.y1
    }

    fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }

    pub fn is_finite(&self) -> bool {
        [self.x1, self.y1, self.x2, self.y2, self.score]
            .iter()
            .all(|v| v.is_finite())
    }

    fn overlap(&self, other: &Candidate, how: Overlap) -> f32 {
        let w = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let h = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = w * h;
        let denom = match how {
            Overlap::Union => self.area() + other.area() - inter,
            Overlap::Min => self.area().min(other.area()),
        };
        if denom > 0.0 { inter / denom } else { 0.0 }
    }

    /// Moves each edge by its offset, a fraction of the box's width or height
    /// (the nets' `reg` output: x1, y1, x2, y2).
    pub fn regressed(&self, reg: [f32; 4]) -> Candidate {
        let (w, h) = (self.width(), self.height());
        Candidate {
            x1: self.x1 + reg[0] * w,
            y1: self.y1 + reg[1] * h,
            x2: self.x2 + reg[2] * w,
            y2: self.y2 + reg[3] * h,
            score: self.score,
        }
    }

    /// The square of side max(width, height) with the same centre.
    pub fn squared(&self) -> Candidate {
        let (w, h) = (self.width(), self.height());
        let side = w.max(h);
        let x1 = self.x1 + (w - side) / 2.0;
        let y1 = self.y1 + (h - side) / 2.0;
        Candidate {
            x1,
            y1,
            x2: x1 + side,
            y2: y1 + side,
            score: self.score,
        }
    }
}

/// Greedy non-maximum suppression: the best score first (ties: the earlier
/// candidate), dropping every later one that overlaps a kept one by more than
/// `threshold`. Returns the kept candidates, best first.
pub fn nms<T: AsRef<Candidate>>(mut items: Vec<T>, threshold: f32, how: Overlap) -> Vec<T> {
    // A stable sort keeps the original order among equal scores.
    items.sort_by(|a, b| b.as_ref().score.total_cmp(&a.as_ref().score));
    let mut kept: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        let c = item.as_ref();
        if kept.iter().all(|k| k.as_ref().overlap(c, how) <= threshold) {
            kept.push(item);
        }
    }
    kept
}

impl AsRef<Candidate> for Candidate {
    fn as_ref(&self) -> &Candidate {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(x1: f32, y1: f32, x2: f32, y2: f32, score: f32) -> Candidate {
        Candidate {
            x1,
            y1,
            x2,
            y2,
            score,
        }
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes() {
        let boxes = vec![
            c(0.0, 0.0, 10.0, 10.0, 0.8),
            c(1.0, 1.0, 11.0, 11.0, 0.9),
            c(50.0, 50.0, 60.0, 60.0, 0.7),
        ];
        let kept = nms(boxes, 0.5, Overlap::Union);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].score, 0.9);
        assert_eq!(kept[1].score, 0.7);
    }

    #[test]
    fn min_overlap_drops_a_box_inside_a_larger_one() {
        let boxes = vec![c(0.0, 0.0, 20.0, 20.0, 0.9), c(5.0, 5.0, 10.0, 10.0, 0.8)];
        // IoU is 25 / 400: kept under Union, dropped under Min (25 / 25).
        assert_eq!(nms(boxes.clone(), 0.7, Overlap::Union).len(), 2);
        assert_eq!(nms(boxes, 0.7, Overlap::Min).len(), 1);
    }

    #[test]
    fn regression_and_squaring() {
        let b = c(10.0, 20.0, 30.0, 60.0, 1.0).regressed([0.1, -0.1, 0.0, 0.5]);
        assert_eq!(b, c(12.0, 16.0, 30.0, 80.0, 1.0));
        let s = c(0.0, 0.0, 10.0, 20.0, 1.0).squared();
        assert_eq!(s, c(-5.0, 0.0, 15.0, 20.0, 1.0));
    }

    #[test]
    fn empty_and_degenerate_boxes_overlap_nothing() {
        let boxes = vec![c(5.0, 5.0, 5.0, 5.0, 0.9), c(5.0, 5.0, 5.0, 5.0, 0.8)];
        assert_eq!(nms(boxes, 0.5, Overlap::Min).len(), 2);
        assert!(!c(0.0, 0.0, f32::NAN, 1.0, 0.5).is_finite());
    }
}
