"""The face detector of docs/model-pack.md (section `faces`), in numpy around onnxruntime sessions.

The engine (worker/src/engine/face_detector/) implements the same steps; this
is the build's reference for them (checks.faces) and the benchmark's
onnxruntime peer. MTCNN's cascade (Zhang et al., 2016), with facenet-pytorch's
thresholds, on a small copy of the image:

1. Working copy: the image resized (area filter) so its long side is
   `canvas` px, placed at the top left of a `canvas` x `canvas` square filled
   with `pad` (so every image gives P-Net the same shapes).
2. P-Net on each pyramid level (`pyramid`: the square resized to n x n);
   each output cell with face probability >= thresholds[0] is a 12 x 12
   window at the level (stride 2), in working-copy pixels; windows whose
   centre falls outside the image are dropped; NMS (IoU nms[0]) per level,
   then NMS (IoU nms[1]) over all; box regression; made square;
   the `max_candidates[0]` best kept.
3. R-Net on each window cropped from the working copy (outside: `pad`)
   and resized to 24 x 24: probability >= thresholds[1]; NMS (IoU nms[2]);
   regression; square; the `max_candidates[1]` best kept.
4. O-Net on 48 x 48 crops: probability >= thresholds[2]; regression; NMS
   over the smaller area (nms[3]).
5. Boxes clipped to the image, as fractions of its width and height, best
   first.
"""

import math

import numpy as np
from PIL import Image


def _axis_weights(start, length, n, size):
    """n x size matrix: output i averages [start + i*step, start + (i+1)*step) of a size-pixel axis (step = length/n);
    the part of an interval outside [0, size) gets no weight (the caller fills it with the pad value)."""
    step = length / n
    w = np.zeros((n, size), dtype=np.float64)
    for i in range(n):
        a = start + i * step
        b = a + step
        lo = max(int(np.floor(a)), 0)
        hi = min(int(np.ceil(b)), size)
        for p in range(lo, hi):
            overlap = min(b, p + 1) - max(a, p)
            if overlap > 0:
                w[i, p] = overlap / step
    return w


def area_resample(image, box, out_w, out_h, pad):
    """image: float [H, W, 3]; box: (x0, y0, x1, y1) in pixels (may extend outside the image).
    Each output pixel is the mean of the input area it covers, outside the image counted as `pad`."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = box
    wy = _axis_weights(y0, y1 - y0, out_h, h)
    wx = _axis_weights(x0, x1 - x0, out_w, w)
    rows = np.tensordot(wy, image.astype(np.float64), axes=(1, 0))  # [out_h, W, 3]
    out = np.einsum("ixc,jx->ijc", rows, wx, optimize=True)
    inside = wy.sum(1)[:, None] * wx.sum(1)[None, :]
    return out + pad * (1.0 - inside)[:, :, None]


def working_size(width, height, canvas):
    """The working copy's size: long side `canvas`, aspect kept, at least 1 px."""
    long_side = max(width, height)
    return (
        max(1, math.floor(width * canvas / long_side + 0.5)),
        max(1, math.floor(height * canvas / long_side + 0.5)),
    )


def pyramid(spec):
    """The sides of P-Net's inputs: canvas * m * factor^k >= 12, m = 12 / (min_face * canvas)."""
    canvas = spec["canvas"]
    scale = 12.0 / (spec["min_face"] * canvas)
    sides = []
    while math.floor(canvas * scale + 0.5) >= 12:
        sides.append(math.floor(canvas * scale + 0.5))
        scale *= spec["scale_factor"]
    return sides


def _tensor(pixels, spec):
    x = (pixels - spec["mean"]) / spec["std"]
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None].astype(np.float32))


def _iou(box, boxes, method):
    xx1 = np.maximum(box[0], boxes[:, 0])
    yy1 = np.maximum(box[1], boxes[:, 1])
    xx2 = np.minimum(box[2], boxes[:, 2])
    yy2 = np.minimum(box[3], boxes[:, 3])
    inter = np.maximum(0.0, xx2 - xx1) * np.maximum(0.0, yy2 - yy1)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    if method == "min":
        denom = np.minimum(area, areas)
    else:
        denom = area + areas - inter
    return np.where(denom > 0, inter / np.maximum(denom, 1e-12), 0.0)


def nms(boxes, threshold, method="union"):
    """Greedy NMS on rows (x1, y1, x2, y2, score, ...): best score first (ties: earlier row first);
    drops every later box overlapping a kept one by more than threshold. Returns kept rows, best first."""
    if len(boxes) == 0:
        return boxes
    order = sorted(range(len(boxes)), key=lambda i: (-boxes[i, 4], i))
    keep = []
    suppressed = np.zeros(len(boxes), dtype=bool)
    for pos, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        rest = np.array(order[pos + 1:], dtype=int)
        if len(rest):
            over = _iou(boxes[i], boxes[rest], method) > threshold
            suppressed[rest[over]] = True
    return boxes[keep]


def _regress(boxes, reg):
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    out = boxes.copy()
    out[:, 0] += reg[:, 0] * w
    out[:, 1] += reg[:, 1] * h
    out[:, 2] += reg[:, 2] * w
    out[:, 3] += reg[:, 3] * h
    return out


def _square(boxes):
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out = boxes.copy()
    out[:, 0] = boxes[:, 0] + (w - side) / 2
    out[:, 1] = boxes[:, 1] + (h - side) / 2
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


class AreaResampler:
    """The three resizes of the cascade, in numpy: each output pixel the
    exact mean of the area it covers, in floating point, as the engine
    computes them. The build's reference; slow (15 to 20 ms an image)."""

    def working_copy(self, rgb, spec):
        """rgb uint8 [H, W, 3] -> (working image, canvas, (w', h')): the image
        resized so its long side is spec["canvas"], and placed on the square
        canvas filled with spec["pad"]."""
        height, width = rgb.shape[:2]
        ww, wh = working_size(width, height, spec["canvas"])
        work = area_resample(rgb.astype(np.float64), (0, 0, width, height), ww, wh, spec["pad"])
        canvas = np.full((spec["canvas"], spec["canvas"], 3), float(spec["pad"]))
        canvas[:wh, :ww] = work
        return work, canvas, (ww, wh)

    def level(self, canvas, side, spec):
        """The canvas resized to side x side, float [side, side, 3]."""
        c = spec["canvas"]
        return area_resample(canvas, (0, 0, c, c), side, side, spec["pad"])

    def crop(self, work, box, side, spec):
        """box (x0, y0, x1, y1) of the working image (may reach outside it:
        spec["pad"] there) resized to side x side, float [side, side, 3]."""
        return area_resample(work, tuple(box), side, side, spec["pad"])


AREA = AreaResampler()


class PillowResampler:
    """The same three resizes as a Python team would write them (the peer of
    scripts/bench-peer): Pillow's BOX filter (its area average) on 8-bit
    images, in C, 4 to 8 times faster than `AreaResampler`. The pyramid and
    the crops are rounded to 8 bits at each resize, where the engine keeps
    floats, so a score may differ a little from the worker's
    (scripts/bench/peer_parity.py compares the labels)."""

    def working_copy(self, rgb, spec):
        height, width = rgb.shape[:2]
        ww, wh = working_size(width, height, spec["canvas"])
        pad = (int(round(spec["pad"])),) * 3
        work = Image.fromarray(rgb).resize((ww, wh), Image.Resampling.BOX)
        c = spec["canvas"]
        canvas = Image.new("RGB", (c, c), pad)
        canvas.paste(work, (0, 0))
        # Crops may reach outside the image: a margin of pad all round.
        margin = c
        padded = Image.new("RGB", (ww + 2 * margin, wh + 2 * margin), pad)
        padded.paste(work, (margin, margin))
        return (padded, margin), canvas, (ww, wh)

    def level(self, canvas, side, spec):
        return np.asarray(canvas.resize((side, side), Image.Resampling.BOX), dtype=np.float32)

    def crop(self, work, box, side, spec):
        padded, margin = work
        x0, y0, x1, y1 = (float(v) + margin for v in box)
        # Pillow needs the box inside the image: clamp (a crop reaching
        # further than the margin is a box far larger than the image).
        x0, x1 = (min(max(v, 0.0), padded.width) for v in (x0, x1))
        y0, y1 = (min(max(v, 0.0), padded.height) for v in (y0, y1))
        if x1 <= x0 or y1 <= y0:
            return np.full((side, side, 3), float(spec["pad"]), dtype=np.float32)
        out = padded.resize((side, side), Image.Resampling.BOX, box=(x0, y0, x1, y1))
        return np.asarray(out, dtype=np.float32)


PILLOW = PillowResampler()


def pnet_candidates(canvas, work_w, work_h, spec, run_pnet, resampler=AREA):
    """Stage 1: rows (x1, y1, x2, y2, score) in working-copy pixels."""
    c = spec["canvas"]
    stride, cell = 2, 12
    per_level = []
    for side in pyramid(spec):
        level = resampler.level(canvas, side, spec)
        prob, reg = run_pnet(_tensor(level, spec))
        p = prob[0, 1]
        ys, xs = np.nonzero(p >= spec["thresholds"][0])
        r = side / c
        boxes = np.stack(
            [
                stride * xs / r,
                stride * ys / r,
                (stride * xs + cell) / r,
                (stride * ys + cell) / r,
                p[ys, xs],
                reg[0, 0, ys, xs],
                reg[0, 1, ys, xs],
                reg[0, 2, ys, xs],
                reg[0, 3, ys, xs],
            ],
            axis=1,
        ).astype(np.float64) if len(ys) else np.zeros((0, 9))
        cx = (boxes[:, 0] + boxes[:, 2]) / 2
        cy = (boxes[:, 1] + boxes[:, 3]) / 2
        boxes = boxes[(cx < work_w) & (cy < work_h)]
        per_level.append(nms(boxes, spec["nms"][0]))
    boxes = np.concatenate(per_level) if per_level else np.zeros((0, 9))
    boxes = nms(boxes, spec["nms"][1])
    if len(boxes) == 0:
        return np.zeros((0, 5))
    out = _square(_regress(boxes[:, :5], boxes[:, 5:9]))
    return out[: spec["max_candidates"][0]]


def refine(work, boxes, spec, side, run_net, threshold, resampler=AREA):
    """Stages 2 and 3: crop each box to side x side, run the net, keep prob >= threshold, regress.
    Returns (rows (x1, y1, x2, y2, score), the net's raw outputs)."""
    if len(boxes) == 0:
        return np.zeros((0, 5)), None
    crops = np.concatenate(
        [_tensor(resampler.crop(work, b[:4], side, spec), spec) for b in boxes]
    )
    prob, reg = run_net(crops)
    keep = prob[:, 1] >= threshold
    out = boxes[keep, :5].copy()
    out[:, 4] = prob[keep, 1]
    return _regress(out, reg[keep]), (prob, reg)


def detect(rgb, spec, run_pnet, run_rnet, run_onet, resampler=AREA):
    """rgb uint8 [H, W, 3] -> list of (x, y, w, h, score), fractions of the image, best first.

    run_pnet(x [1,3,n,n]) -> (prob, reg); run_rnet(x [N,3,24,24]) and run_onet(x [N,3,48,48]) -> (prob, reg).
    resampler: how the image, the pyramid and the crops are resized (`AreaResampler`'s methods).
    """
    work, canvas, (ww, wh) = resampler.working_copy(rgb, spec)
    boxes = pnet_candidates(canvas, ww, wh, spec, run_pnet, resampler)
    boxes, _ = refine(work, boxes, spec, 24, run_rnet, spec["thresholds"][1], resampler)
    boxes = nms(boxes, spec["nms"][2])
    boxes = _square(boxes)[: spec["max_candidates"][1]]
    boxes, _ = refine(work, boxes, spec, 48, run_onet, spec["thresholds"][2], resampler)
    boxes = nms(boxes, spec["nms"][3], "min")
    faces = []
    for x1, y1, x2, y2, score in boxes:
        x1, x2 = np.clip([x1, x2], 0, ww)
        y1, y2 = np.clip([y1, y2], 0, wh)
        if x2 > x1 and y2 > y1:
            faces.append((x1 / ww, y1 / wh, (x2 - x1) / ww, (y2 - y1) / wh, float(score)))
    return faces


def ort_runners(sessions):
    """(run_pnet, run_rnet, run_onet) from onnxruntime sessions keyed "pnet", "rnet", "onet"."""

    def runner(sess):
        def run(x):
            prob, reg = sess.run(["prob", "reg"], {"image": x})
            return prob, reg

        return run

    return runner(sessions["pnet"]), runner(sessions["rnet"]), runner(sessions["onet"])
