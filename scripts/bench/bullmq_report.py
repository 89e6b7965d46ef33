"""The report of scripts/bench-bullmq: verdict's no-op path against BullMQ.

Usage: bullmq_report.py SCRATCH ROUNDS NODE_VERSION BULLMQ_VERSION [--write FILE]

Reads SCRATCH/verdict-N.json (bench-queue --json) and SCRATCH/bullmq-N.json
(bench.mjs) for N in 1..ROUNDS, prints a Markdown section and, with --write,
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
    b = [json.loads((scratch / f"bullmq-{n}.json").read_text()) for n in range(1, rounds + 1)]
    ratios = [x["jobs_per_s"] / y["jobs_per_s"] for x, y in zip(v, b)]
    cpu = cpu_info.cpu()
    target = statistics.median(ratios) >= 2
    rows = [
        ("jobs/s, first submission to last completion",
         spread([x["jobs_per_s"] for x in v], "{:,.0f}"), spread([x["jobs_per_s"] for x in b], "{:,.0f}")),
        ("of which submitting alone (s)", spread([x["submit_s"] for x in v], "{:.2f}"), spread([x["submit_s"] for x in b], "{:.2f}")),
        ("Redis CPU time per job (user + system, `INFO cpu`)",
         spread([x["redis_cpu_us_per_job"] for x in v], "{:.0f} µs"), spread([x["redis_cpu_us_per_job"] for x in b], "{:.0f} µs")),
        ("Redis commands per job (`INFO commandstats`)",
         spread([x["redis_calls_per_job"] for x in v], "{:.1f}"), spread([x["redis_calls_per_job"] for x in b], "{:.1f}")),
    ]
    lines = [
        START,
        "## Queue against BullMQ (`scripts/bench-bullmq`)",
        "",
        f"Measured {datetime.date.today()} on {cpu['text']}, {cpu['logical_cpus']} logical CPUs, shared;",
        f"{rounds} rounds, interleaved (verdict, BullMQ, verdict, ...), {v[0]['jobs']:,} no-op jobs a side a round,",
        f"load average {cpu_info.load_average():.2f} at the end.",
        "",
        "- **verdict**: the whole path. `bench-queue` (release build) submits each job over HTTP",
        f"  (JSON, the 64x64 PNG base64 and one sentence) from {v[0]['concurrency']} concurrent clients to one",
        f"  `verdict-api`; {v[0]['workers']} `verdict-worker --noop --batch-size {v[0]['batch_size']}` processes; the clients",
        "  then read every result over HTTP. Redis on a unix socket.",
        f"- **BullMQ {bullmq}** (Node.js {node}, ioredis): no HTTP. One producer adds the jobs",
        f"  with `addBulk` in batches of {b[0]['bulk']} (its fastest way in), each job a payload of the",
        f"  same size and one sentence; {b[0]['workers']} worker processes with concurrency {b[0]['concurrency']} each",
        "  return a verdict-shaped result, kept as BullMQ keeps completed jobs by default; the end is",
        "  seen by polling the completed count every 10 ms. Redis on a unix socket.",
        "",
        f"| | verdict (HTTP included) | BullMQ (no HTTP) |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {a} | {c} |" for name, a, c in rows]
    lines += [
        "",
        f"verdict / BullMQ, round by round: {', '.join(f'{r:.2f}' for r in ratios)}. Issue 15's target:",
        f"at least 2. {'Met' if target else 'Not met'} on this run (median {statistics.median(ratios):.2f}).",
        END,
    ]
    section = "\n".join(lines)
    print(section)
    if write:
        doc_section.write_marked(write, START, END, section)


if __name__ == "__main__":
    main(sys.argv)
