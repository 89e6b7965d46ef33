"""Does the peer compute what verdict computes? Checked on the dev set before any timing.

Every row of tests/fixtures/devset.jsonl (88 sentences on 9 public photos:
yes, no and maybe rows, PNG and JPEG) is judged by `verdict-worker judge`
(the worker's own engine, one process per photo) and by the peer's
PeerModel in this process. The peer's configuration must give the same label
on every row, or the benchmark stops: a peer that computes something else
measures nothing. The same is checked on every job of every timed run.

The same rows also choose the resampling: each candidate filter's dev and
holdout accuracy, how many rows it labels differently from verdict, the
largest difference of a score (yes, no or maybe) on any row, and what
the crop + resize + normalise step costs with it (median, on one job image of
each mix). The fastest filter that keeps every label is the honest choice;
the figures go into the report so the choice can be checked.

On its own, it checks one dev set without timing anything (exit status 1 if a
row's label differs with the chosen filter):

    python scripts/bench/peer_parity.py --worker target/release/verdict-worker \
        --devset tests/fixtures/devset-wide.jsonl [--no-draft] [--resample bicubic]
"""

import argparse
import collections
import json
import pathlib
import statistics
import subprocess
import sys
import time

import peer_model

CANDIDATES = ("bicubic", "bilinear", "nearest")


def read_devset(path):
    return [json.loads(line) for line in pathlib.Path(path).read_text().splitlines() if line.strip()]


def verdict_labels(worker, pack, photos, rows):
    """(label, scores) from `verdict-worker judge`, one process per photo, in row order."""
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
            labels[i] = (answer["label"], answer["scores"])
    return labels


def peer_labels(model, photos, rows):
    """(label, scores) from the peer, one job per row, in row order."""
    cache = {}
    out = []
    for row in rows:
        data = cache.setdefault(row["image"], (pathlib.Path(photos) / row["image"]).read_bytes())
        verdict = model.judge(data, [row["text"]])[0]
        out.append((verdict["label"], verdict["scores"]))
    return out


def score_diff(a, b):
    return max(abs(a[k] - b[k]) for k in ("yes", "no", "maybe"))


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
    summary = compare(worker, pack, photos, devset, draft, chosen, samples)
    chosen_differ = summary["candidates"][chosen]["differ"]
    if chosen_differ:
        raise RuntimeError(
            f"the peer ({chosen}, draft {'on' if draft else 'off'}) labels {len(chosen_differ)} of {summary['rows']} "
            f"dev-set rows differently from verdict-worker: {json.dumps(chosen_differ[:5])}"
        )
    return summary


def compare(worker, pack, photos, devset, draft, chosen, samples):
    """check()'s figures, without raising."""
    rows = read_devset(devset)
    reference = verdict_labels(worker, pack, photos, rows)
    summary = {
        "rows": len(rows),
        "verdict_accuracy": accuracy(rows, [v[0] for v in reference]),
        "draft": draft,
        "chosen": chosen,
        "candidates": {},
    }
    model = peer_model.PeerModel(pack, draft=draft)
    for name in CANDIDATES:
        model.resample_name, model.resample = name, peer_model.RESAMPLING[name]
        answers = peer_labels(model, photos, rows)
        differ = [
            {"image": r["image"], "text": r["text"], "verdict": v[0], "peer": p[0],
             "verdict_scores": v[1], "peer_scores": p[1]}
            for r, v, p in zip(rows, reference, answers) if v[0] != p[0]
        ]
        diffs = [score_diff(v[1], p[1]) for v, p in zip(reference, answers)]
        worst = max(range(len(rows)), key=diffs.__getitem__) if rows else None
        summary["candidates"][name] = {
            "accuracy": accuracy(rows, [p[0] for p in answers]),
            "differ": differ,
            "max_score_diff": diffs[worst] if rows else 0.0,
            "max_score_diff_row": {"image": rows[worst]["image"], "text": rows[worst]["text"]} if rows else None,
            "preprocess_ms": {mix: round(preprocess_ms(model, data), 2) for mix, data in samples.items()},
        }
    return summary


def main(argv):
    here = pathlib.Path(__file__).resolve().parent
    root = here.parent.parent
    p = argparse.ArgumentParser(description="verdict-worker judge and the peer on one dev set: same labels?")
    p.add_argument("--worker", type=pathlib.Path, default=root / "target/release/verdict-worker")
    p.add_argument("--pack", type=pathlib.Path, default=root / "models/default")
    p.add_argument("--photos", type=pathlib.Path, default=root / ".cache/photos")
    p.add_argument("--devset", type=pathlib.Path, default=root / "tests/fixtures/devset.jsonl")
    p.add_argument("--draft", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--resample", choices=CANDIDATES, default="bicubic")
    p.add_argument("--json", type=pathlib.Path, help="write the summary here")
    args = p.parse_args(argv)
    summary = compare(args.worker, args.pack, args.photos, args.devset, args.draft, args.resample, {})
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    print(f"{args.devset.name}: {summary['rows']} rows, draft {'on' if args.draft else 'off'}; "
          f"verdict accuracy {summary['verdict_accuracy']}")
    for name, c in summary["candidates"].items():
        mark = " (chosen)" if name == args.resample else ""
        print(f"  {name}{mark}: {summary['rows'] - len(c['differ'])}/{summary['rows']} labels alike, "
              f"largest score difference {c['max_score_diff']:.4f} ({c['max_score_diff_row']['image']}: "
              f"{c['max_score_diff_row']['text']!r}), accuracy {c['accuracy']}")
        for d in c["differ"]:
            print(f"    differs: {d['image']}: {d['text']!r} verdict {d['verdict']} {d['verdict_scores']}, "
                  f"peer {d['peer']} {d['peer_scores']}")
    return 1 if summary["candidates"][args.resample]["differ"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
