"""Read the libFuzzer logs of a scripts/fuzz run and write its results.

Prints a Markdown table (one row per target) and, with --write FILE,
replaces the block between `<!-- fuzz:begin -->` and `<!-- fuzz:end -->` in
FILE with it. Exits 1 when any target left an artifact (a crash, a timeout,
an out-of-memory) or did not run to its time limit.
"""

import argparse
import pathlib
import platform
import re
import sys

BEGIN, END = "<!-- fuzz:begin -->", "<!-- fuzz:end -->"


def cpu() -> str:
    info = pathlib.Path("/proc/cpuinfo").read_text()

    def field(name: str) -> str:
        m = re.search(rf"^{name}\s*:\s*(.*)$", info, re.M)
        return m.group(1).strip() if m else "?"

    avx512 = "AVX-512" if re.search(r"\bavx512f\b", info) else "AVX2, no AVX-512"
    return f"{field('model name')} (family {field('cpu family')}, model {field('model')}, {avx512})"


def num(value) -> str:
    return f"{value:,}" if isinstance(value, int) else "?"


def parse(log: str) -> dict:
    out: dict = {}
    m = re.search(r"Loaded \d+ modules\s+\((\d+) inline 8-bit counters\)", log)
    out["edges"] = int(m.group(1)) if m else None
    done = re.findall(r"#(\d+)\s+DONE\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\S+)", log)
    last = re.findall(r"#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\S+)", log)
    row = done[-1] if done else (last[-1] if last else None)
    if row:
        out.update(execs=int(row[0]), cov=int(row[1]), ft=int(row[2]),
                   corpus=int(row[3]), corpus_size=row[4], done=bool(done))
    for key in ("number_of_executed_units", "average_exec_per_sec", "peak_rss_mb"):
        m = re.search(rf"stat::{key}:\s*(\d+)", log)
        if m:
            out[key] = int(m.group(1))
    m = re.search(r"INFO: seed corpus: files: (\d+)", log)
    out["seeds"] = int(m.group(1)) if m else None
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=pathlib.Path, required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--seconds", type=int, required=True)
    ap.add_argument("--jobs", type=int, required=True)
    ap.add_argument("--started", required=True)
    ap.add_argument("--commit", required=True, help="the commit the targets were built from")
    ap.add_argument("--write", type=pathlib.Path)
    ap.add_argument("targets", nargs="+")
    args = ap.parse_args()

    commit = args.commit
    rows, findings, failed = [], [], False
    for target in args.targets:
        log = (args.work / "logs" / f"{target}.log").read_text(errors="replace")
        stats = parse(log)
        artifacts = sorted(p.name for p in (args.work / "artifacts" / target).glob("*")
                           if p.is_file())
        if artifacts:
            failed = True
            findings.append((target, artifacts, log))
        if not stats.get("done") and not artifacts:
            failed = True
            findings.append((target, ["(the run did not finish: see the log)"], log))
        execs = stats.get("number_of_executed_units", stats.get("execs"))
        edges = stats.get("edges")
        cov = stats.get("cov")
        share = f" of {edges:,} ({100 * cov / edges:.1f} %)" if edges and cov else ""
        rows.append(
            f"| `{target}` | {num(execs)} | {num(stats.get('average_exec_per_sec'))} | "
            f"{num(cov)}{share} | {num(stats.get('ft'))} | "
            f"{num(stats.get('seeds'))} → {num(stats.get('corpus'))} | "
            f"{num(stats.get('peak_rss_mb'))} | "
            f"{', '.join(artifacts) if artifacts else 'nothing'} |"
            if execs is not None else f"| `{target}` | did not run | | | | | | see the log |"
        )
    lines = [
        BEGIN,
        f"Last run: {args.started}, built from commit {commit}, {cpu()}, {platform.machine()}; "
        f"{args.seconds} s a target, {args.jobs} at a time, libFuzzer through cargo-fuzz "
        "(`scripts/fuzz`), release build with debug assertions and overflow checks, no "
        "sanitizer. Coverage: edges libFuzzer saw covered (`cov`) of the instrumented edges "
        "in the whole binary (the target's dependencies included: tokio, axum, the image "
        "decoders, redis-rs), and features (`ft`: edges with hit counts, comparisons).",
        "",
        "| target | executions | per second | edges covered | features | corpus (at start → at end) "
        "| peak RSS MB | found |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    for target, artifacts, log in findings:
        tail = "\n".join(log.splitlines()[-25:])
        lines += [f"`{target}` found {', '.join(artifacts)}:", "", "```", tail, "```", ""]
    lines.append(END)
    block = "\n".join(lines)
    print(block)
    if args.write:
        text = args.write.read_text()
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            _, tail = rest.split(END, 1)
            text = head + block + tail
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
        args.write.write_text(text)
        print(f"wrote {args.write}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
