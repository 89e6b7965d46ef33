"""The CPU a benchmark ran on, as /proc/cpuinfo names it: vendor, family, model, model name, AVX-512.

The name alone can hide a generation (this project's machines have all said
"AMD EPYC", at clearly different speeds), and tract and onnxruntime pick their
kernels by instruction set, so every figure is given with all of these.
"""

import os
import pathlib


def cpu():
    """{"vendor", "family", "model", "name", "avx512", "logical_cpus", "text"} of the first processor."""
    info = {}
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
        if not line.strip():
            if info:
                break
            continue
        if ":" in line:
            key, value = (part.strip() for part in line.split(":", 1))
            info.setdefault(key, value)
    out = {
        "vendor": info.get("vendor_id", "unknown vendor"),
        "family": info.get("cpu family", "?"),
        "model": info.get("model", "?"),
        "name": info.get("model name", "unknown CPU"),
        "avx512": "avx512f" in info.get("flags", "").split(),
        "logical_cpus": os.cpu_count(),
    }
    out["text"] = (
        f"{out['name']} ({out['vendor']}, family {out['family']}, model {out['model']}, "
        f"{'AVX-512' if out['avx512'] else 'no AVX-512'})"
    )
    return out


def load_average():
    return float(pathlib.Path("/proc/loadavg").read_text().split()[0])
