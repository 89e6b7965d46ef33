"""Write the seed inputs of the fuzz targets (fuzz/fuzz_targets/*.rs).

usage: fuzz_seeds.py PHOTOS_DIR FIXTURES_DIR OUT_DIR

OUT_DIR/<target>/ gets a few well-formed inputs for each target, so that
libFuzzer starts from what real clients and a real Redis send and mutates from
there: small images in every supported format (baseline and progressive JPEG,
EXIF-rotated, palette, 16-bit, alpha, animated GIF, WebP, BMP, TIFF) made from
the public photos, the hostile fixtures, multipart and JSON bodies holding
them, and RESP encodings of every queue script's replies.
"""

import base64
import io
import json
import pathlib
import shutil
import sys

from PIL import Image

BOUNDARY = "verdict-fuzz-boundary"  # fuzz/fuzz_targets/submission_multipart.rs


def images(photos: pathlib.Path) -> dict[str, bytes]:
    base = Image.open(photos / "coffee.png").convert("RGB").resize((48, 32))
    out: dict[str, bytes] = {}

    def save(name: str, image: Image.Image, fmt: str, **kw) -> None:
        buf = io.BytesIO()
        image.save(buf, fmt, **kw)
        out[name] = buf.getvalue()

    save("rgb.png", base, "PNG")
    save("palette.png", base.convert("P"), "PNG")
    save("gray.png", base.convert("L"), "PNG")
    save("rgba.png", base.convert("RGBA"), "PNG")
    save("gray16.png", base.convert("I;16"), "PNG")
    save("baseline.jpg", base, "JPEG", quality=80)
    save("progressive.jpg", base, "JPEG", quality=80, progressive=True)
    save("gray.jpg", base.convert("L"), "JPEG")
    save("cmyk.jpg", base.convert("CMYK"), "JPEG")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90
    save("rotated.jpg", base, "JPEG", exif=exif.tobytes())
    save("still.gif", base, "GIF")
    frames = [base, base.rotate(90), base.rotate(180)]
    save("animated.gif", frames[0], "GIF", save_all=True, append_images=frames[1:])
    save("lossy.webp", base, "WEBP", quality=60)
    save("lossless.webp", base, "WEBP", lossless=True)
    save("rgb.bmp", base, "BMP")
    save("rgb.tiff", base, "TIFF")
    save("lzw.tiff", base, "TIFF", compression="tiff_lzw")
    return out


def multipart(parts: list[tuple[str, str | None, str | None, bytes]]) -> bytes:
    body = b""
    for name, filename, ctype, data in parts:
        body += f"--{BOUNDARY}\r\n".encode()
        disposition = f'form-data; name="{name}"'
        if filename:
            disposition += f'; filename="{filename}"'
        body += f"Content-Disposition: {disposition}\r\n".encode()
        if ctype:
            body += f"Content-Type: {ctype}\r\n".encode()
        body += b"\r\n" + data + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def resp(value) -> bytes:
    """RESP2 encoding: str -> bulk string, int -> integer, None -> nil,
    list -> array."""
    if value is None:
        return b"$-1\r\n"
    if isinstance(value, int):
        return b":%d\r\n" % value
    if isinstance(value, (str, bytes)):
        data = value.encode() if isinstance(value, str) else value
        return b"$%d\r\n%s\r\n" % (len(data), data)
    return b"*%d\r\n" % len(value) + b"".join(resp(v) for v in value)


def main() -> None:
    photos, fixtures, out = (pathlib.Path(a) for a in sys.argv[1:4])
    made = images(photos)
    small_png = made["rgb.png"]

    target = out / "image_decode"
    target.mkdir(parents=True, exist_ok=True)
    for name, data in made.items():
        (target / name).write_bytes(data)
    for fixture in sorted(fixtures.iterdir()):
        if fixture.suffix != ".md" and fixture.stat().st_size <= 1 << 20:
            shutil.copy(fixture, target / f"fixture-{fixture.name}")

    target = out / "submission_multipart"
    target.mkdir(parents=True, exist_ok=True)
    bodies = {
        "one-text": [("image", "cup.png", "image/png", small_png), ("text", None, None, b"A cup.")],
        "premise": [
            ("image", "cup.jpg", "image/jpeg", made["baseline.jpg"]),
            ("text", None, None, "Une tasse \u00e0 caf\u00e9.".encode()),
            ("text", None, None, b"It is hot."),
            ("premise", None, None, b"Steam rises from the cup."),
        ],
        "callback": [
            ("image", "c.gif", None, made["still.gif"]),
            ("text", None, None, b"A cup on a saucer."),
            ("callback_url", None, None, b"https://example.com/hook"),
        ],
    }
    for name, parts in bodies.items():
        (target / name).write_bytes(multipart(parts))

    target = out / "submission_json"
    target.mkdir(parents=True, exist_ok=True)
    b64 = base64.b64encode(small_png).decode()
    jsons = {
        "one-text": {"image_base64": b64, "texts": ["A cup."]},
        "premise": {"image_base64": b64, "texts": ["A cup.", "It is hot."], "premise": "Steam."},
        "callback": {"image_base64": b64, "texts": ["A cup."], "callback_url": "https://example.com/h"},
        "data-url": {"image_base64": "data:image/png;base64," + b64, "texts": ["\u2603 snow"]},
    }
    for name, body in jsons.items():
        (target / name).write_bytes(json.dumps(body).encode())

    # The first byte picks the parser (fuzz/fuzz_targets/queue_replies.rs).
    target = out / "queue_replies"
    target.mkdir(parents=True, exist_ok=True)
    job = "0192f0c2-7d0e-7c8a-9b1e-3f4a5b6c7d8e"
    spec = json.dumps({"texts": ["A cup."], "image": {"bytes": 1, "sha256": "00", "format": "png"}})
    error = json.dumps({"code": "worker_lost", "message": "gone"})
    replies = {
        "submit-new": (0, ["1-0", 1764600000000000]),
        "submit-existing": (0, ["existing", job, "ab" * 32]),
        "start-run": (1, ["run", spec, b"\x89PNG", 1764600000000000, 1764600000100000, 1]),
        "start-skip": (1, ["skip", "done"]),
        "start-exhausted": (1, ["exhausted", 3]),
        "start-missing": (1, ["missing"]),
        "finish": (2, ["finished", 1764600000200000]),
        "finish-stale": (2, ["stale", "cancelled"]),
        "retry": (3, ["retry", 2]),
        "retry-lost": (3, ["lost"]),
        "cancel": (4, ["cancelled"]),
        "cancel-refused": (4, ["refused", "running"]),
        "dead-letter": (5, ["dead_lettered", 1764600000300000, error, "2-0"]),
        "xreadgroup": (6, [["verdict:jobs", [["1-0", ["job", job]], ["2-0", None]]]]),
        "xreadgroup-nil": (6, None),
        "entries": (7, [["1-0", ["job", job]], ["3-0", ["other", "x"]]]),
        "record": (8, [spec, "queued", "0", None, "1764600000000000", None, None, None, None]),
    }
    for name, (which, value) in replies.items():
        (target / name).write_bytes(bytes([which]) + resp(value))


if __name__ == "__main__":
    main()
