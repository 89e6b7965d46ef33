"""The images of the peer benchmark's two job mixes, made from the public test photos at bench time.

Every job gets an image of its own (new bytes *and* new pixels), so no cache of
either system can answer for it:

* `png`: 600 x 400 PNGs (Pillow's default compression), the size of coffee.png;
  each is one of the base photos cut to 3:2 and resized, with a seeded +-1
  grey-level noise of its own on every pixel.
* `jpeg`: 4000 x 3000 (12 megapixel) JPEGs at quality 90 (Pillow / libjpeg-turbo,
  4:2:0 chroma, baseline), as a catalogue's camera photos come: each base photo
  upscaled (bicubic) once, then per job a film grain (Gaussian, sigma 5 grey
  levels) shifted by an offset of its own. Upscaled photos are far smoother
  than camera ones; the grain puts the files at about 2.3-2.5 MB, within the
  range of real 12 MP photos at this quality, so entropy decoding has real work.

The base photos (colour photos of ImageNet-like objects) take turns, so labels
vary across jobs. Files are written to a directory the caller owns.
"""

import io
import pathlib

import numpy as np
from PIL import Image

BASES = [
    "coffee.png",
    "chelsea.png",
    "astronaut.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "china.jpg",
    "flower.jpg",
    "hubble_deep_field.jpg",
]

PNG_SIZE = (600, 400)
JPEG_SIZE = (4000, 3000)
JPEG_QUALITY = 90
JPEG_GRAIN_SIGMA = 5.0
# verdict-api's default --max-image-bytes: an image over it would be refused.
MAX_IMAGE_BYTES = 8 * 1024 * 1024


def cover(image, size, resample):
    """The centre of `image` cut to `size`'s aspect ratio and resized to `size`."""
    w, h = image.size
    tw, th = size
    if w * th > h * tw:  # too wide
        cw = round(h * tw / th)
        box = ((w - cw) // 2, 0, (w - cw) // 2 + cw, h)
    else:
        ch = round(w * th / tw)
        box = (0, (h - ch) // 2, w, (h - ch) // 2 + ch)
    return image.resize(size, resample, box=box)


def base_photos(photos_dir):
    paths = [pathlib.Path(photos_dir) / name for name in BASES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"missing test photos (run scripts/fetch-test-photos): {', '.join(missing)}")
    return [Image.open(p).convert("RGB") for p in paths]


def make_png(photos_dir, count, out_dir):
    """`count` unique 600 x 400 PNGs in out_dir; returns their paths in job order."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bases = [np.asarray(cover(im, PNG_SIZE, Image.Resampling.LANCZOS), dtype=np.int16) for im in base_photos(photos_dir)]
    paths = []
    for n in range(count):
        rng = np.random.default_rng([20261205, 1, n])
        noise = rng.integers(-1, 2, size=bases[0].shape, dtype=np.int16)
        pixels = np.clip(bases[n % len(bases)] + noise, 0, 255).astype(np.uint8)
        path = out_dir / f"job-{n:05d}.png"
        Image.fromarray(pixels).save(path, "PNG")
        paths.append(path)
    return paths


def make_jpeg(photos_dir, count, out_dir):
    """`count` unique 4000 x 3000 quality-90 JPEGs in out_dir; returns their paths in job order."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    photos = base_photos(photos_dir)
    # One grain field, shifted per job: as random as a fresh one for the
    # encoders, at a fraction of the cost of drawing 36 M normals per job.
    h, w = JPEG_SIZE[1], JPEG_SIZE[0]
    grain = np.rint(np.random.default_rng([20261205, 2]).normal(0.0, JPEG_GRAIN_SIGMA, size=(h, w, 3))).astype(np.int16)
    paths = [None] * count
    for b, photo in enumerate(photos):
        jobs = range(b, count, len(photos))
        if not jobs:
            continue
        big = np.asarray(cover(photo, JPEG_SIZE, Image.Resampling.BICUBIC), dtype=np.int16)
        for n in jobs:
            rng = np.random.default_rng([20261205, 3, n])
            shift = (int(rng.integers(1, h)), int(rng.integers(1, w)))
            pixels = np.clip(big + np.roll(grain, shift, axis=(0, 1)), 0, 255).astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(pixels).save(buf, "JPEG", quality=JPEG_QUALITY)
            data = buf.getvalue()
            if len(data) > MAX_IMAGE_BYTES:
                raise ValueError(f"job {n}: {len(data)} bytes, over verdict-api's default limit of {MAX_IMAGE_BYTES}")
            path = out_dir / f"job-{n:05d}.jpg"
            path.write_bytes(data)
            paths[n] = path
    return paths


MIXES = {"png": make_png, "jpeg": make_jpeg}
