"""The report of scripts/bench-bullmq: verdict's no-op path against BullMQ.

Usage: bullmq_report.py SCRATCH ROUNDS NODE_VERSION BULLMQ_VERSION [--write FILE]

Reads SCRATCH/verdict-N.json and SCRATCH/verdict-batches-N.json (bench-queue
--json, one job a request and through POST /v1/batches) and
SCRATCH/bullmq-N.json (bench.mjs) for N in 1..ROUNDS, prints a Markdown section and, with --write,
replaces the section between the bench-bullmq markers of FILE (or appends it).
"""

import datetime
import json
import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
sys.path.insert(0, str(pathlib.Path(__file__).parent.parent / "lib"))
import cpu_info  # noqa: E402
import doc_section  # noqa: E402

START, END = "<!-- bench-bullmq:start -->", "<!-- bench-bullmq:end -->"


def spread(values, fmt):
    values = sorted(values)
    if values[0] == values[-1]:
        return fmt.format(values[0])
    return f"{fmt.format(values[0])} to {fmt.format(values[-1])} (median {fmt.format(statistics.median(values))})"


def main(argv):
    write, argv = doc_section.write_flag(argv)
    if len(argv) != 5:
        sys.exit(__doc__)
    scratch, rounds, node, bullmq = pathlib.Path(argv[1]), int(argv[2]), argv[3], argv[4]
    v = [json.loads((scratch / f"verdict-{n}.json").read_text()) for n in range(1, rounds + 1)]
    vb = [json.loads((scratch / f"verdict-batches-{n}.json").read_text()) for n in range(1, rounds + 1)]
    b = [json.loads((scratch / f"bullmq-{n}.json").read_text()) for n in range(1, rounds + 1)]
    ratios = [x["jobs_per_s"] / y["jobs_per_s"] for x, y in zip(v, b)]
    batch_ratios = [x["jobs_per_s"] / y["jobs_per_s"] for x, y in zip(vb, b)]
    cpu = cpu_info.cpu()
    target = statistics.median(ratios) >= 2
    batch_target = statistics.median(batch_ratios) >= 2

    def row(name, key, fmt):
        return (name, *(spread([x[key] for x in side], fmt) for side in (v, vb, b)))

    rows = [
        row("jobs/s, first submission to last completion", "jobs_per_s", "{:,.0f}"),
        row("of which submitting alone (s)", "submit_s", "{:.2f}"),
        row("Redis CPU time per job (user + system, `INFO cpu`)", "redis_cpu_us_per_job", "{:.0f} µs"),
        row("Redis commands per job (`INFO commandstats`)", "redis_calls_per_job", "{:.1f}"),
    ]
    lines = [
        START,
        "## Queue against BullMQ (`scripts/bench-bullmq`)",
        "",
        f"Measured {datetime.date.today()} on {cpu['text']}, {cpu['logical_cpus']} logical CPUs, shared;",
        f"{rounds} rounds, interleaved (verdict, verdict by batches, BullMQ, verdict, ...), {v[0]['jobs']:,} no-op jobs a side a round,",
        f"load average {cpu_info.load_average():.2f} at the end.",
        "",
        "- **verdict**: the whole path. `bench-queue` (release build) submits each job over HTTP",
        f"  (JSON, the 64x64 PNG base64 and one sentence) from {v[0]['concurrency']} concurrent clients to one",
        f"  `verdict-api`; {v[0]['workers']} `verdict-worker --noop --batch-size {v[0]['batch_size']}"
        + (
            f" --read-ahead true` processes (up to {2 * v[0]['batch_size']} jobs in hand each: a read's"
            " and the one read ahead while they run); the clients"
            if v[0].get("read_ahead", False)
            else f" --read-ahead false` processes (up to {v[0]['batch_size']} jobs in hand each); the clients"
        ),
        "  then read every result over HTTP. Redis on a unix socket.",
        f"- **verdict by batches**: the same, but the jobs go {vb[0]['submit_batch']} a request through",
        f"  `POST /v1/batches` (the catalogue path of `fleet batch`), {vb[0]['concurrency']} requests at once;",
        (
            f"  the results are read {vb[0]['read_batch']} ids a request through `POST /v1/jobs/wait`"
            f" (what `fleet batch` does), {vb[0]['concurrency']} requests at once."
            if vb[0].get("read_batch")
            else f"  the results are read as above, {vb[0]['concurrency']} at a time."
        ),
        f"- **BullMQ {bullmq}** (Node.js {node}, ioredis): no HTTP. One producer adds the jobs",
        f"  with `addBulk` in batches of {b[0]['bulk']} (its fastest way in), each job a payload of the",
        f"  same size and one sentence; {b[0]['workers']} worker processes with concurrency {b[0]['concurrency']} each",
        "  return a verdict-shaped result, kept as BullMQ keeps completed jobs by default; the end is",
        "  seen by polling the completed count every 10 ms. Redis on a unix socket.",
        "",
        "| | verdict, a job a request (HTTP included) | verdict by batches (HTTP included) | BullMQ (no HTTP) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {name} | {a} | {ab} | {c} |" for name, a, ab, c in rows]
    lines += [
        "",
        f"verdict / BullMQ, round by round: {', '.join(f'{r:.2f}' for r in ratios)} a job a request,",
        f"{', '.join(f'{r:.2f}' for r in batch_ratios)} by batches. Issue 15's target: at least 2.",
        f"{'Met' if target else 'Not met'} a job a request (median {statistics.median(ratios):.2f});",
        f"{'met' if batch_target else 'not met'} by batches (median {statistics.median(batch_ratios):.2f}).",
        END,
    ]
    section = "\n".join(lines)
    print(section)
    if write:
        doc_section.write_marked(write, START, END, section)


if __name__ == "__main__":
    main(sys.argv)
