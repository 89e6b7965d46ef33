"""Rewrite scripts/model/requirements.txt with the sha256 of every wheel of each pin.

The build venv installs with `pip --require-hashes --no-deps`, so every package
(dependencies included) is pinned by hand in requirements.txt and this script
only fills in the hashes, from PyPI's simple index (PEP 691 JSON, what pip
itself reads). All wheels of a version are listed, like pip-compile
--generate-hashes does, so the venv builds on any platform PyPI has wheels for.

Run it after changing a version:  python3 scripts/model/pin_requirements.py
Standard library only: it runs before the venv exists.
"""

import json
import pathlib
import re
import sys
import urllib.request

INDEX = "https://pypi.org/simple"
REQUIREMENTS = pathlib.Path(__file__).resolve().parent / "requirements.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)")


def normalise(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_hashes(name, version):
    req = urllib.request.Request(
        f"{INDEX}/{normalise(name)}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        files = json.load(resp)["files"]
    # A wheel's file name is NAME-VERSION-...whl with NAME's dashes as underscores.
    prefix = f"{normalise(name).replace('-', '_')}-{version}-"
    hashes = sorted(
        f["hashes"]["sha256"]
        for f in files
        if f["filename"].lower().startswith(prefix) and f["filename"].endswith(".whl")
    )
    if not hashes:
        sys.exit(f"pin_requirements: no wheels for {name}=={version} on {INDEX}")
    return hashes


def main():
    header, pins = [], []
    for line in REQUIREMENTS.read_text().splitlines():
        stripped = line.strip().rstrip("\\").strip()
        if stripped.startswith("--hash=") or not stripped and pins:
            continue
        match = PIN.match(stripped)
        if match:
            pins.append((match.group(1), match.group(2), stripped[match.end():].strip()))
        elif not pins:
            header.append(line)
    out = header[:]
    for name, version, rest in pins:
        hashes = wheel_hashes(name, version)
        first = f"{name}=={version}" + (f" {rest}" if rest else "")
        out.append(first + " \\")
        out.extend(f"    --hash=sha256:{h}" + (" \\" if i < len(hashes) - 1 else "") for i, h in enumerate(hashes))
        print(f"{name}=={version}: {len(hashes)} wheels", file=sys.stderr)
    REQUIREMENTS.write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
