"""manifest.json of a model pack (docs/model-pack.md): write it, and check a pack against it."""

import json
import pathlib

import wheels

FORMAT = "verdict-model-pack"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class PackError(Exception):
    pass


def file_entry(pack_dir, role, name):
    path = pathlib.Path(pack_dir) / name
    return {"role": role, "path": name, "sha256": wheels.sha256_file(path), "bytes": path.stat().st_size}


def write(pack_dir, manifest):
    """Write manifest.json atomically: it is the last file of a pack, and its presence means the pack is whole."""
    wheels.write_atomic(pathlib.Path(pack_dir) / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


def read(pack_dir):
    path = pathlib.Path(pack_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise PackError(f"{path}: missing") from None
    except ValueError as e:
        raise PackError(f"{path}: not JSON ({e})") from None
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise PackError(f"{path}: not a {FORMAT} v{FORMAT_VERSION} manifest")
    return manifest


def verify_files(pack_dir, manifest):
    """Every file named by the manifest exists with its size and sha256; raises naming the first that does not."""
    pack_dir = pathlib.Path(pack_dir)
    for entry in manifest["files"]:
        name = entry["path"]
        if "/" in name or "\\" in name or name in ("", ".", ".."):
            raise PackError(f"{name!r}: pack file names must be plain names")
        path = pack_dir / name
        if not path.is_file():
            raise PackError(f"{path}: missing")
        if path.stat().st_size != entry["bytes"]:
            raise PackError(f"{path}: {path.stat().st_size} bytes, manifest says {entry['bytes']}")
        if wheels.sha256_file(path) != entry["sha256"]:
            raise PackError(f"{path}: sha256 does not match the manifest")


def path_of(pack_dir, manifest, role):
    for entry in manifest["files"]:
        if entry["role"] == role:
            return pathlib.Path(pack_dir) / entry["path"]
    raise PackError(f"the manifest names no file with role {role}")
