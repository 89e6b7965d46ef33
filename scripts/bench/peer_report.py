"""The peer benchmark's report: its tables, and its section of docs/benchmarks.md.

The section is "## Peer: verdict against Celery + Pillow + onnxruntime
(`scripts/bench-peer`)", from its heading to the next "## " heading or the end
of the file; a new run replaces it and leaves every other section as it was.
"""

import re
import statistics

HEADING = "## Peer: verdict against Celery + Pillow + onnxruntime (`scripts/bench-peer`)"
MODES = {
    "pools": "worker pools alone (queue filled, then workers started; first job started → last job finished)",
    "e2e": "end to end (workers ready, then clients submit; first submission → last job finished)",
}
MODE_SHORT = {"pools": "pools alone", "e2e": "end to end"}


def cells(results, mix, mode):
    """Per-round jobs/s of each system and the per-round ratios, in round order."""
    runs = [r for r in results["runs"] if r["mix"] == mix and r["mode"] == mode]
    rounds = sorted({r["round"] for r in runs})
    by = {(r["round"], r["system"]): r for r in runs}
    verdict = [by[(n, "verdict")]["jobs_per_s"] for n in rounds if (n, "verdict") in by]
    peer = [by[(n, "peer")]["jobs_per_s"] for n in rounds if (n, "peer") in by]
    ratios = [v / p for v, p in zip(verdict, peer)]
    return verdict, peer, ratios


def spread(values, digits=1):
    if not values:
        return "–"
    med = statistics.median(values)
    return f"{med:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def per_round(values, digits=1):
    return ", ".join(f"{v:.{digits}f}" for v in values) if values else "–"


def table(results, mix):
    lines = [
        "| mode | verdict jobs/s per round | peer jobs/s per round | verdict median (range) | peer median (range) | verdict / peer, median (range of the rounds' ratios) |",
        "|---|---|---|---|---|---|",
    ]
    for mode in results["config"]["modes"]:
        verdict, peer, ratios = cells(results, mix, mode)
        if not verdict and not peer:
            continue
        lines.append(
            f"| {MODE_SHORT[mode]} | {per_round(verdict)} | {per_round(peer)} | {spread(verdict)} | {spread(peer)} | "
            f"**{spread(ratios, 2)}** |"
        )
    return "\n".join(lines)


def details(results, mix):
    """Start-up, RSS and submission figures of one mix, one line per mode and system."""
    out = []
    for mode in results["config"]["modes"]:
        for system in ("verdict", "peer"):
            runs = [r for r in results["runs"] if r["mix"] == mix and r["mode"] == mode and r["system"] == system]
            if not runs:
                continue
            rss = [m for r in runs for m in r["peak_rss_mb"] if m]
            parts = [f"{system}, {MODE_SHORT[mode]}: busy {spread([r['seconds'] for r in runs], 2)} s"]
            if mode == "pools":
                parts.append(f"workers launched → first job started {spread([r['startup_s'] for r in runs], 2)} s")
                parts.append(f"gap between the workers' first jobs {spread([r['first_start_spread_s'] for r in runs], 2)} s")
                parts.append(f"filling the queue took {spread([r['submit_s'] for r in runs], 2)} s")
            else:
                parts.append(f"submitting alone took {spread([r['submit_s'] for r in runs], 2)} s")
            if rss:
                parts.append(f"peak RSS per worker {min(rss)}–{max(rss)} MB")
            out.append("- " + "; ".join(parts))
    return "\n".join(out)


def parity_lines(results):
    p = results["parity"]
    acc = lambda a: ", ".join(f"{split} {r}/{n}" for split, (r, n) in a.items())  # noqa: E731
    lines = [
        f"- **Same answers, dev set.** `verdict-worker judge` and the peer judged the {p['rows']} rows of "
        f"`tests/fixtures/devset.jsonl`; verdict's accuracy: {acc(p['verdict_accuracy'])}. The peer, JPEG draft "
        f"{'on' if p['draft'] else 'off'}, per resampling filter (crop + resize + normalise, median ms on one job "
        "image of each mix, decode included):",
        "",
        "| filter | accuracy | rows labelled unlike verdict | " + " | ".join(f"{m} decode + preprocess" for m in next(iter(p["candidates"].values()))["preprocess_ms"]) + " |",
        "|---|---|---|" + "---|" * len(next(iter(p["candidates"].values()))["preprocess_ms"]),
    ]
    for name, c in p["candidates"].items():
        mark = " (chosen)" if name == p["chosen"] else ""
        ms = " | ".join(f"{v:.2f} ms" for v in c["preprocess_ms"].values())
        lines.append(f"| {name}{mark} | {acc(c['accuracy'])} | {len(c['differ'])} | {ms} |")
    comps = results["comparisons"]
    total = sum(c["jobs"] for c in comps)
    worst = max((c["max_score_diff"] for c in comps), default=0.0)
    lines += [
        "",
        f"- **Same answers, every timed job.** In each round, verdict and the peer gave the same label to every job "
        f"({total} jobs compared over {len(comps)} pairs of runs); the largest difference of a score was {worst:.4f}.",
    ]
    return "\n".join(lines)


def section(results):
    c = results["config"]
    cpu = results["cpu"]
    mix_lines = []
    for mix, m in results["mixes"].items():
        mix_lines += [
            f"### {m['title']}: {cpu['text']}",
            "",
            f"{m['jobs']} jobs, {m['description']}; mean image {m['mean_bytes'] / 1e6:.2f} MB. "
            f"CPU: {cpu['text']}, {cpu['logical_cpus']} logical CPUs.",
            "",
            table(results, mix),
            "",
            details(results, mix),
            "",
        ]
    rounds = c["rounds"]
    body = [
        HEADING,
        "",
        f"Measured {results['date']} by `scripts/bench-peer` on {cpu['text']}, {cpu['logical_cpus']} logical CPUs "
        f"(shared); 1-minute load average {results['load_start']:.2f} at the start and {results['load_end']:.2f} at "
        "the end (the bench's own processes count in it). "
        f"{rounds} round{'s' if rounds != 1 else ''}, interleaved: in each round, for each mix and mode, verdict runs, then the peer (A B A B ...); "
        "each run has a Redis, api and workers of its own, started for it and stopped after it.",
        "",
        f"- **verdict**: {c['verdict']}.",
        f"- **peer** (what a team that does not pick verdict builds): {c['peer']}. {c['peer_choices']}",
        f"- **Jobs**: each job one image of its own and the sentence \"{c['sentence']}\" (a catalogue rule: "
        "both sides embed it once per worker and cache it). Both systems get the same bytes; the client "
        f"(Python, {c['concurrency']} threads, on the same CPUs) sends them to verdict over HTTP and to the peer "
        "through Celery. The peer has no HTTP api in front of it: its client writes to Redis directly, a hop "
        "verdict's clients pay for.",
        f"- **Work per job**, both sides: decode, centre crop ({c['crop_fraction']} of the short side), bicubic resize "
        f"to {c['size']}, normalise, image encoder, softmax and concept vector, the colour shares of the resized "
        "square when a sentence of the job names a colour, and the face detector (MTCNN: P-Net on its pyramid, "
        "R-Net, O-Net) on the decoded image when one is about people; this job's sentence does neither, so "
        "neither side runs them (the peer resizes its "
        "working copy, pyramid and crops with Pillow's BOX filter on 8-bit images; verdict with exact area means in "
        "floating point), the sentence's cached "
        "evidence (words, named classes, colours, words for people, the sentence probe), the calibrated rule. "
        "verdict also checks each image before decoding it (header limits; a JPEG's first scan walked for "
        "truncation) and writes an explanation per verdict; the peer returns label, scores and the image's top "
        "three classes.",
        f"- **Modes**: {MODES['pools']}; {MODES['e2e']}. jobs/s = jobs / that span, on the host's clock.",
        parity_lines(results),
        "",
    ] + mix_lines
    return "\n".join(body).rstrip("\n") + "\n"


READING = "### What the peer figures mean"


def write(doc_path, text):
    """Replaces the section in doc_path (or appends it) and leaves the rest of the file as it was.

    A hand-written reading of the figures (a subsection headed READING) is kept, after the new
    tables: it says which run it was written from.
    """
    old = doc_path.read_text() if doc_path.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(HEADING) + r".*?(?=\n## |\Z)", re.S)
    found = pattern.search(old)
    if found:
        section = found.group(0)
        reading = section[section.index(READING):] if READING in section else ""
        replacement = text.rstrip("\n") + "\n" + ("\n" + reading.rstrip("\n") + "\n" if reading else "")
        new = old[:found.start()] + replacement + old[found.end():]
    else:
        new = old.rstrip("\n") + "\n\n" + text
    doc_path.write_text(new)
