"""Does the peer compute what verdict computes? Checked on the dev set before any timing.

Every row of tests/fixtures/devset.jsonl (88 sentences on 9 public photos:
yes, no and maybe rows, PNG and JPEG) is judged by `verdict-worker judge`
(the worker's own engine, one process per photo) and by the peer's
PeerModel in this process. The peer's configuration must give the same label
on every row, or the benchmark stops: a peer that computes something else
measures nothing. The same is checked on every job of every timed run.

The same rows also choose the resampling: each candidate filter's dev and
holdout accuracy, how many rows it labels differently from verdict, and what
the crop + resize + normalise step costs with it (median, on one job image of
each mix). The fastest filter that keeps every label is the honest choice;
the figures go into the report so the choice can be checked.
"""

import collections
import json
import pathlib
import statistics
import subprocess
import time

import peer_model

CANDIDATES = ("bicubic", "bilinear", "nearest")


def read_devset(path):
    return [json.loads(line) for line in pathlib.Path(path).read_text().splitlines() if line.strip()]


def verdict_labels(worker, pack, photos, rows):
    """Labels from `verdict-worker judge`, one process per photo, in row order."""
    by_image = collections.defaultdict(list)
    for i, row in enumerate(rows):
        by_image[row["image"]].append(i)
    labels = [None] * len(rows)
    for image, indices in by_image.items():
        argv = [str(worker), "judge", "--model", str(pack), "--image", str(pathlib.Path(photos) / image)]
        for i in indices:
            argv += ["--text", rows[i]["text"]]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"verdict-worker judge on {image} failed ({done.returncode}): {done.stderr[-2000:]}")
        answers = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        if len(answers) != len(indices):
            raise RuntimeError(f"verdict-worker judge on {image}: {len(answers)} answers for {len(indices)} sentences")
        for i, answer in zip(indices, answers):
            labels[i] = answer["label"]
    return labels


def peer_labels(model, photos, rows):
    cache = {}
    out = []
    for row in rows:
        data = cache.setdefault(row["image"], (pathlib.Path(photos) / row["image"]).read_bytes())
        out.append(model.judge(data, [row["text"]])[0]["label"])
    return out


def accuracy(rows, labels):
    right = collections.Counter()
    total = collections.Counter()
    for row, label in zip(rows, labels):
        total[row["split"]] += 1
        right[row["split"]] += label == row["expected"]
    return {split: [right[split], total[split]] for split in sorted(total)}


def preprocess_ms(model, data, runs=15):
    """Median ms of decode + crop + resize + normalise of one image."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        model.tensor(model.open_image(data))
        times.append((time.perf_counter() - t) * 1000.0)
    return statistics.median(times)


def check(worker, pack, photos, devset, draft, chosen, samples):
    """Compares verdict and the peer on the dev set for every candidate filter.

    `samples`: {mix name: encoded bytes of one job image}. Returns a summary
    dict; raises RuntimeError if the chosen filter differs from verdict on any
    row.
    """
    rows = read_devset(devset)
    reference = verdict_labels(worker, pack, photos, rows)
    summary = {"rows": len(rows), "verdict_accuracy": accuracy(rows, reference), "draft": draft, "chosen": chosen, "candidates": {}}
    model = peer_model.PeerModel(pack, draft=draft)
    for name in CANDIDATES:
        model.resample_name, model.resample = name, peer_model.RESAMPLING[name]
        labels = peer_labels(model, photos, rows)
        differ = [
            {"image": r["image"], "text": r["text"], "verdict": v, "peer": p}
            for r, v, p in zip(rows, reference, labels) if v != p
        ]
        summary["candidates"][name] = {
            "accuracy": accuracy(rows, labels),
            "differ": differ,
            "preprocess_ms": {mix: round(preprocess_ms(model, data), 2) for mix, data in samples.items()},
        }
    chosen_differ = summary["candidates"][chosen]["differ"]
    if chosen_differ:
        raise RuntimeError(
            f"the peer ({chosen}, draft {'on' if draft else 'off'}) labels {len(chosen_differ)} of {len(rows)} dev-set rows "
            f"differently from verdict-worker: {json.dumps(chosen_differ[:5])}"
        )
    return summary
