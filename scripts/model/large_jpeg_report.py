"""The comparison table of scripts/eval-large-jpeg.

Usage: large_jpeg_report.py ORIGINAL.md FULL.md SCALED.md SIZES.json [--write docs/rule.md]

Each .md is a `verdict-worker calibrate --evaluate` report; its "Every row"
table gives each row's expected label and verdict. Prints a Markdown section
with the dev and held-out counts of the three runs and every row whose
verdict differs between the full decode and the 1/8 reading, and with
--write replaces the section between the eval-large-jpeg markers of the
given file (or appends it).
"""

import datetime
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent.parent / "lib"))
import doc_section  # noqa: E402

START, END = "<!-- eval-large-jpeg:start -->", "<!-- eval-large-jpeg:end -->"


def rows(path):
    """(split, image, sentence) -> (expected, verdict) from a report's row table."""
    out = {}
    in_table = False
    for line in pathlib.Path(path).read_text().splitlines():
        if line.startswith("## Every row"):
            in_table = True
            continue
        if not in_table or not line.startswith("| ") or line.startswith("| split") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        split, image, sentence, expected, verdict = cells[:5]
        out[(split, image, sentence)] = (expected, verdict.replace("✗", "").strip())
    if not out:
        sys.exit(f"{path}: no 'Every row' table")
    return out


def counts(table, split):
    chosen = [v for k, v in table.items() if k[0] == split]
    return sum(e == v for e, v in chosen), len(chosen)


def main(argv):
    write, argv = doc_section.write_flag(argv)
    if len(argv) != 5:
        sys.exit(__doc__)
    original, full, scaled = (rows(p) for p in argv[1:4])
    sizes = json.loads(pathlib.Path(argv[4]).read_text())
    if not (original.keys() == full.keys() == scaled.keys()):
        sys.exit("the three reports judge different rows")
    lines = [
        START,
        "## Large JPEGs: the 1/8 reading (`scripts/eval-large-jpeg`)",
        "",
        "A JPEG whose picture at 1/8 scale still leaves the centre crop at least",
        "224 pixels (a short side of 2048 px or more) is read by the worker from",
        "its DC coefficients, the mean of each 8 x 8 block, instead of decoded in",
        "full (`decode/src/jpeg_dc.rs`). The dev set's photos are small, so the",
        "table above never takes that path; here each of them is made into a",
        f"camera-sized JPEG (short side 3000 px, quality 90, film grain; {len(sizes)} files,",
        f"{min(s['bytes'] for s in sizes.values()) / 1e6:.1f} to {max(s['bytes'] for s in sizes.values()) / 1e6:.1f} MB)",
        "and judged both ways with the pack's rule",
        f"(`verdict-worker calibrate --evaluate`, with and without `--full-decode`; measured {datetime.date.today()}).",
        "",
        "| photos | dev | holdout |",
        "|---|---|---|",
    ]
    for name, table in [("original photos", original), ("large JPEGs, decoded in full (before)", full),
                        ("large JPEGs, read at 1/8 (after: the worker)", scaled)]:
        d, h = counts(table, "dev"), counts(table, "holdout")
        lines.append(f"| {name} | {d[0]} / {d[1]} | {h[0]} / {h[1]} |")
    flips = [(k, full[k], scaled[k]) for k in full if full[k][1] != scaled[k][1]]
    lines.append("")
    if flips:
        lines += [f"Rows whose verdict changes between the full decode and the 1/8 reading ({len(flips)}):", "",
                  "| split | image | sentence | expected | full decode | 1/8 |", "|---|---|---|---|---|---|"]
        lines += [f"| {k[0]} | {k[1]} | {k[2]} | {f[0]} | {f[1]} | {s[1]} |" for k, f, s in flips]
    else:
        lines.append("No row's verdict changes between the full decode and the 1/8 reading.")
    lines.append(END)
    section = "\n".join(lines)
    print(section)
    if write:
        doc_section.write_marked(write, START, END, section)


if __name__ == "__main__":
    main(sys.argv)
