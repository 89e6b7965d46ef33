"""The peer benchmark: verdict against Celery + Pillow + onnxruntime, side by side, interleaved. Run it through scripts/bench-peer.

1. Makes the job mixes' images from the public test photos (job_images.py).
2. Checks that the peer labels the dev set as verdict does, and measures the
   resampling candidates (peer_parity.py); stops if the peer differs.
3. For each round, each mix and each mode, runs verdict then the peer, each
   on a Redis of its own with freshly started processes, and checks that both
   gave every job the same label.
4. Prints the tables, writes the JSON of every run (--json) and the section of
   docs/benchmarks.md (--write).
"""

import argparse
import datetime
import json
import pathlib
import shutil
import sys
import tempfile
import time

import cpu_info
import job_images
import peer_parity
import peer_report
import peer_side
import verdict_side
from jobs import Job
from peer_side import PeerSystem
from redis_server import RedisServer
from verdict_side import VerdictSystem

SENTENCE = "This is a ceramic coffee cup."
MIX_TITLES = {
    "png": ("Unique 600 x 400 PNGs", "each a 600 x 400 PNG of its own (one of 8 public photos, cut to 3:2, "
            "with a seeded ±1 grey-level noise on every pixel; Pillow's default compression)"),
    "jpeg": ("Unique 12 MP JPEGs, like a catalogue's", "each a 4000 x 3000 JPEG of its own at quality 90 (4:2:0, "
             "baseline; one of 8 public photos upscaled, with a film grain of sigma 5 grey levels shifted per job), "
             "made at bench time"),
}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", type=pathlib.Path, required=True, help="the repository")
    p.add_argument("--pack", type=pathlib.Path, help="model pack (default: ROOT/models/default)")
    p.add_argument("--photos", type=pathlib.Path, help="test photos (default: ROOT/.cache/photos)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--png-jobs", type=int, default=400)
    p.add_argument("--jpeg-jobs", type=int, default=200)
    p.add_argument("--mixes", default="png,jpeg", help="comma-separated: png, jpeg")
    p.add_argument("--modes", default="pools,e2e", help="comma-separated: pools, e2e")
    p.add_argument("--workers", type=int, default=2, help="worker processes on each side (one per core)")
    p.add_argument("--concurrency", type=int, default=8, help="client threads submitting jobs")
    p.add_argument("--verdict-batch-size", type=int, default=1, help="verdict-worker --batch-size (fleet up's default: 1)")
    p.add_argument("--peer-pool", choices=["solo", "prefork"], default="solo")
    p.add_argument("--peer-draft", action=argparse.BooleanOptionalAction, default=True, help="Pillow draft() for JPEG")
    p.add_argument("--peer-resample", choices=list(peer_parity.CANDIDATES), default="bicubic")
    p.add_argument("--write", type=pathlib.Path, help="replace the peer section of this file (docs/benchmarks.md)")
    p.add_argument("--json", type=pathlib.Path, help="write every run's figures here")
    p.add_argument("--keep", action="store_true", help="keep the images and logs (else removed after a good run)")
    args = p.parse_args(argv)
    args.pack = args.pack or args.root / "models/default"
    args.photos = args.photos or args.root / ".cache/photos"
    args.mixes = [m for m in args.mixes.split(",") if m]
    args.modes = [m for m in args.modes.split(",") if m]
    for m in args.mixes:
        if m not in job_images.MIXES:
            p.error(f"unknown mix {m!r}")
    for m in args.modes:
        if m not in peer_report.MODES:
            p.error(f"unknown mode {m!r}")
    if args.rounds < 1 or args.workers < 1 or args.concurrency < 1:
        p.error("--rounds, --workers and --concurrency must be at least 1")
    return args


def say(message):
    print(f"[bench-peer {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def make_system(name, args, redis_server, log_dir):
    if name == "verdict":
        return VerdictSystem(args.root, redis_server, args.workers, log_dir, args.pack, args.verdict_batch_size)
    return PeerSystem(redis_server, args.workers, log_dir, args.pack, args.peer_pool, args.peer_draft, args.peer_resample)


def run_once(name, mode, jobs, args, log_dir):
    """One timed run of one system on one mix in one mode, on a Redis of its own."""
    with RedisServer() as redis_server:
        system = make_system(name, args, redis_server, log_dir)
        try:
            system.start_service()
            if mode == "pools":
                t = time.time()
                ids, _ = system.submit(jobs, args.concurrency)
                submit_s = time.time() - t
                launched = time.time()
                system.start_workers()
                outcomes = system.collect(ids)
                begin = min(o.started for o in outcomes)
            else:
                system.start_workers()
                system.wait_workers_ready()
                t = time.time()
                ids, begin = system.submit(jobs, args.concurrency)
                submit_s = time.time() - t
                outcomes = system.collect(ids)
            rss = system.peak_rss_mb()
        finally:
            system.stop()
    end = max(o.finished for o in outcomes)
    first_by_worker = {}
    for o in outcomes:
        first_by_worker[o.worker] = min(first_by_worker.get(o.worker, o.started), o.started)
    return {
        "system": name,
        "mode": mode,
        "jobs": len(jobs),
        "seconds": end - begin,
        "jobs_per_s": len(jobs) / (end - begin),
        "submit_s": submit_s,
        "startup_s": (begin - launched) if mode == "pools" else None,
        "first_start_spread_s": max(first_by_worker.values()) - min(first_by_worker.values()),
        "workers_used": len(first_by_worker),
        "peak_rss_mb": rss,
        "outcomes": outcomes,
    }


def compare(verdict_run, peer_run, files):
    """Raises unless both systems gave every job the same labels; returns the largest score difference."""
    worst = 0.0
    differ = []
    for f, v, p in zip(files, verdict_run["outcomes"], peer_run["outcomes"]):
        if v.labels != p.labels:
            differ.append(f"{f.name}: verdict {v.labels} {v.scores}, peer {p.labels} {p.scores}")
        for vs, ps in zip(v.scores, p.scores):
            worst = max(worst, *(abs(vs[k] - ps[k]) for k in ("yes", "no", "maybe")))
    if differ:
        raise RuntimeError(f"verdict and the peer labelled {len(differ)} jobs differently:\n" + "\n".join(differ[:10]))
    return worst


def main(argv):
    args = parse_args(argv)
    for binary in ("verdict-api", "verdict-worker"):
        if not (args.root / "target/release" / binary).is_file():
            sys.exit(f"bench-peer: target/release/{binary} is missing (cargo build --release --workspace --bins)")
    cpu = cpu_info.cpu()
    load_start = cpu_info.load_average()
    say(f"CPU: {cpu['text']}, {cpu['logical_cpus']} logical CPUs; load average {load_start:.2f}")
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="bench-peer-"))
    log_dir = scratch / "logs"
    ok = False
    try:
        counts = {"png": args.png_jobs, "jpeg": args.jpeg_jobs}
        files, mixes = {}, {}
        for mix in args.mixes:
            t = time.time()
            files[mix] = job_images.MIXES[mix](args.photos, counts[mix], scratch / mix)
            sizes = [f.stat().st_size for f in files[mix]]
            title, description = MIX_TITLES[mix]
            mixes[mix] = {"title": title, "description": description, "jobs": len(sizes),
                          "mean_bytes": sum(sizes) / len(sizes), "generation_s": round(time.time() - t, 1)}
            say(f"{mix}: {len(sizes)} images, mean {mixes[mix]['mean_bytes'] / 1e6:.2f} MB, made in {mixes[mix]['generation_s']} s")

        say("dev-set parity: verdict-worker judge and the peer on tests/fixtures/devset.jsonl")
        parity = peer_parity.check(
            args.root / "target/release/verdict-worker", args.pack, args.photos, args.root / "tests/fixtures/devset.jsonl",
            args.peer_draft, args.peer_resample, {mix: files[mix][0].read_bytes() for mix in args.mixes},
        )
        for name, c in parity["candidates"].items():
            say(f"  {name}: accuracy {c['accuracy']}, {len(c['differ'])} rows unlike verdict, preprocess {c['preprocess_ms']} ms")

        runs, comparisons = [], []
        for round_no in range(1, args.rounds + 1):
            for mix in args.mixes:
                jobs = [Job.from_file(f, [SENTENCE]) for f in files[mix]]
                for mode in args.modes:
                    pair = {}
                    for name in ("verdict", "peer"):
                        say(f"round {round_no}/{args.rounds}, {mix}, {peer_report.MODE_SHORT[mode]}: {name} ...")
                        run = run_once(name, mode, jobs, args, log_dir / f"r{round_no}-{mix}-{mode}")
                        run.update(round=round_no, mix=mix)
                        say(f"  {name}: {run['jobs_per_s']:.1f} jobs/s ({run['seconds']:.2f} s, "
                            f"{run['workers_used']} workers used)")
                        pair[name] = run
                    worst = compare(pair["verdict"], pair["peer"], files[mix])
                    comparisons.append({"round": round_no, "mix": mix, "mode": mode, "jobs": len(jobs), "max_score_diff": worst})
                    for run in pair.values():
                        labels = [lab for o in run.pop("outcomes") for lab in o.labels]
                        run["labels"] = {lab: labels.count(lab) for lab in sorted(set(labels))}
                        runs.append(run)
                    say(f"  verdict / peer = {pair['verdict']['jobs_per_s'] / pair['peer']['jobs_per_s']:.2f}; "
                        f"same labels on all {len(jobs)} jobs ({pair['verdict']['labels']}), largest score difference {worst:.4f}")

        peer_choices = (
            f"Resampling: {args.peer_resample} (see the dev-set table below: the fastest filter that keeps every label). "
            f"JPEG: Pillow's `draft('RGB', ...)` {'on' if args.peer_draft else 'off'}"
            + (": libjpeg decodes at the largest 1/2, 1/4 or 1/8 scale that leaves the centre crop at least the model's "
               "input size (224: 4000 x 3000 → 500 x 375), then the crop is resized as usual. verdict reads such a JPEG at 1/8 under the same rule, from the DC coefficients of its first scan (`decode/src/jpeg_dc.rs`); smaller JPEGs and other formats are decoded in full on both sides." if args.peer_draft else ".")
        )
        image_spec = json.loads((args.pack / "manifest.json").read_text())["image"]
        results = {
            "date": datetime.date.today().isoformat(),
            "cpu": cpu,
            "load_start": load_start,
            "load_end": cpu_info.load_average(),
            "config": {
                "rounds": args.rounds, "workers": args.workers, "concurrency": args.concurrency, "sentence": SENTENCE,
                "modes": args.modes, "peer_pool": args.peer_pool, "peer_draft": args.peer_draft,
                "peer_resample": args.peer_resample, "verdict_batch_size": args.verdict_batch_size,
                "verdict": verdict_side.describe(args.workers, args.verdict_batch_size, args.pack),
                "peer": peer_side.describe(args.workers, args.peer_pool, args.peer_draft, args.peer_resample),
                "peer_choices": peer_choices,
                "crop_fraction": image_spec["crop_fraction"],
                "size": image_spec["size"],
            },
            "mixes": mixes,
            "parity": parity,
            "runs": runs,
            "comparisons": comparisons,
        }
        text = peer_report.section(results)
        print(text)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
            say(f"wrote {args.json}")
        if args.write:
            peer_report.write(args.write, text)
            say(f"wrote the peer section of {args.write}")
        ok = True
    finally:
        if ok and not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            say(f"images and logs kept in {scratch}")


if __name__ == "__main__":
    main(sys.argv[1:])
