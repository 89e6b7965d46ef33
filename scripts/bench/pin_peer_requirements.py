"""Rewrite scripts/bench/peer-requirements.txt with the sha256 of every wheel of each pin.

The same procedure as scripts/model/pin_requirements.py (whose code this
reuses): every package, dependencies included, is pinned by hand in the file,
and this fills in the hashes of all the wheels PyPI has for each pinned
version, so the peer's venv builds on any platform those wheels cover.

Run it after changing a version:  python3 scripts/bench/pin_peer_requirements.py
Standard library only: it runs before the venv exists.
"""

import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "model"))

import pin_requirements  # noqa: E402  (scripts/model/pin_requirements.py)


def main():
    pin_requirements.REQUIREMENTS = HERE / "peer-requirements.txt"
    pin_requirements.main()


if __name__ == "__main__":
    main()
