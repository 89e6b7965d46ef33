"""The image preprocessing of docs/model-pack.md (`image` section), with Pillow.

Used by the build's checks and the benchmark. Pillow's bicubic filter is the
Catmull-Rom cubic (a = -0.5) with its support scaled when downsampling, as the
doc specifies; Pillow rounds to 8 bits between its two resize passes and at
the end, so an engine computing in floats differs from this by up to about half
a grey level per pixel. Parity tests feed the engine's own tensor to
onnxruntime, so that difference does not enter them.
"""

import math

import numpy as np
from PIL import Image, ImageOps


def crop_box(width, height, crop_fraction):
    """Centre square: side round-half-up(crop_fraction * short side), odd margin pixel right/bottom."""
    side = int(math.floor(crop_fraction * min(width, height) + 0.5))
    left = (width - side) // 2
    top = (height - side) // 2
    return left, top, left + side, top + side


def to_rgb(image):
    image = ImageOps.exif_transpose(image)
    if image.mode.startswith("I") or image.mode == "F":
        # Pillow clips (not scales) 16-bit samples when converting; the build
        # only preprocesses 8-bit photos, so refuse rather than differ from the doc.
        raise ValueError(f"image mode {image.mode} is not handled by this reference preprocessing")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def preprocess(path, spec):
    """path -> float32 [1, 3, size, size] as the manifest's `image` section says."""
    if spec["resize_filter"] != "bicubic" or spec["layout"] != "nchw":
        raise ValueError("only bicubic / nchw preprocessing is implemented here")
    with Image.open(path) as im:
        rgb = to_rgb(im)
    box = crop_box(rgb.width, rgb.height, spec["crop_fraction"])
    size = spec["size"]
    square = rgb.crop(box).resize((size, size), Image.Resampling.BICUBIC)
    x = np.asarray(square, dtype=np.float32)
    x = (x - np.asarray(spec["mean"], dtype=np.float32)) / np.asarray(spec["std"], dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])
