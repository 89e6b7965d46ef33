"""The dev set's photos as a camera would send them, for scripts/eval-large-jpeg.

Usage: large_jpeg_photos.py DEVSET PHOTOS_DIR OUT_DIR

Each photo a row of DEVSET names is upscaled (bicubic) so that its short side
is 3000 px, its aspect ratio kept (a 4:3 photo becomes 4000 x 3000), given a
seeded film grain (Gaussian, sigma 5 grey levels, as the benchmark's JPEG mix:
scripts/bench/job_images.py) and saved as a quality-90 baseline JPEG (4:2:0)
under the photo's own name, whatever its extension (the worker reads the
format from the bytes). OUT_DIR/sizes.json lists each file's size and bytes.
"""

import io
import json
import pathlib
import sys

import numpy as np
from PIL import Image

SHORT_SIDE = 3000
QUALITY = 90
GRAIN_SIGMA = 5.0


def main(argv):
    if len(argv) != 4:
        sys.exit(__doc__)
    devset, photos, out = pathlib.Path(argv[1]), pathlib.Path(argv[2]), pathlib.Path(argv[3])
    names = sorted({json.loads(line)["image"] for line in devset.read_text().splitlines() if line.strip()})
    out.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for n, name in enumerate(names):
        photo = Image.open(photos / name).convert("RGB")
        w, h = photo.size
        scale = SHORT_SIDE / min(w, h)
        size = (round(w * scale), round(h * scale))
        big = np.asarray(photo.resize(size, Image.Resampling.BICUBIC), dtype=np.int16)
        grain = np.random.default_rng([20261205, 4, n]).normal(0.0, GRAIN_SIGMA, size=big.shape)
        pixels = np.clip(big + np.rint(grain).astype(np.int16), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, "JPEG", quality=QUALITY)
        (out / name).write_bytes(buf.getvalue())
        sizes[name] = {"width": size[0], "height": size[1], "bytes": len(buf.getvalue())}
        print(f"  {name}: {size[0]} x {size[1]}, {len(buf.getvalue()) / 1e6:.1f} MB", file=sys.stderr)
    (out / "sizes.json").write_text(json.dumps(sizes, indent=1))


if __name__ == "__main__":
    main(sys.argv)
