"""Replacing a script's own section of a Markdown file, between its markers.

Benchmarks and evaluations write their results into docs/*.md between an
HTML-comment start and end marker of their own; a rerun replaces that span
and leaves the rest of the file (hand-written readings included) alone.
"""

import pathlib


def write_marked(path, start, end, section):
    """Replaces the text from `start` to `end` (both included) of the file at
    `path` by `section` (which carries both markers), or appends `section`
    when the file has no such span."""
    path = pathlib.Path(path)
    text = path.read_text()
    if start in text and end in text:
        text = text[: text.index(start)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


def write_flag(argv):
    """Takes `--write FILE` out of `argv`: (the file's path or None, the rest)."""
    if "--write" not in argv:
        return None, argv
    i = argv.index("--write")
    if i + 1 >= len(argv):
        raise SystemExit("--write needs a file")
    return pathlib.Path(argv[i + 1]), argv[:i] + argv[i + 2:]
