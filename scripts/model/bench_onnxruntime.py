"""onnxruntime latencies of a pack's graphs on one thread, for scripts/bench-model.

Usage: bench_onnxruntime.py --pack DIR --runs N [--tensor RAW_F32] [--faces-image PATH ...]

Prints one JSON object:
  {"image_ms_median": .., "sentence_ms_median": .., "sentences": [{"text": .., "tokens": ..,
   "ms_median": ..}, ..], "runs": N, "onnxruntime": VERSION}
image_ms_median: median over N runs of the image encoder on one preprocessed
  tensor (--tensor, raw little-endian float32 [1, 3, size, size], else a fixed
  seeded tensor: a CNN's latency does not depend on pixel values).
sentence_ms_median: median over N runs of each of the SENTENCES below of
  tokenize + text encoder + mean-pool + L2-normalise, i.e. one sentence
  embedding from text, unpadded.
sentences: the same, per sentence (tokens counts [CLS] and [SEP]), so each can
  be set beside tract's figure for the same sentence.
faces: per --faces-image (a pack with a `faces` section), the face detector
  (face_detect.py) from the decoded image to the faces: ms_median of the whole
  detection (its resizing and box arithmetic in numpy), pillow_ms_median of
  the same with Pillow's resizes (the peer's), and nets_ms_median of
  its onnxruntime runs alone (P-Net's levels, R-Net's and O-Net's crops, one
  crop a run as the worker does), with the faces found.
Sessions: CPU, intra_op_num_threads=1, inter_op_num_threads=1; 3 untimed
warm-up runs each.
"""

import argparse
import json
import pathlib
import statistics
import sys
import time

import numpy as np
import onnxruntime
from tokenizers import Tokenizer

import face_detect
import image_preprocess
import ort_session
import pack_manifest
import text_embedding

SENTENCES = [
    "This is a ceramic coffee cup.",
    "This is a stainless steel thermos.",
    "This is an everyday item.",
    "A cat is looking at the camera.",
    "This is a photo of a dog.",
]
WARMUP = 3


def timed_ms(fn, runs):
    for _ in range(WARMUP):
        fn()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000.0)
    return out


def bench_faces(pack, manifest, path, runs):
    from PIL import Image

    spec = manifest["faces"]
    sessions = {net: ort_session.single_threaded(pack_manifest.path_of(pack, manifest, f"face_{net}"))
                for net in ("pnet", "rnet", "onet")}
    nets_s = [0.0]

    def runner(sess):
        def run(x):
            # One crop a run, as the worker does.
            outs = []
            for i in range(x.shape[0]):
                t = time.perf_counter()
                outs.append(sess.run([spec["prob"], spec["reg"]], {spec["input"]: x[i:i + 1]}))
                nets_s[0] += time.perf_counter() - t
            return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])

        return run

    runs_ = [runner(sessions[n]) for n in ("pnet", "rnet", "onet")]
    with Image.open(path) as im:
        rgb = np.asarray(image_preprocess.to_rgb(im))
    found = face_detect.detect(rgb, spec, *runs_)
    total, nets = [], []
    for i in range(WARMUP + runs):
        nets_s[0] = 0.0
        t = time.perf_counter()
        face_detect.detect(rgb, spec, *runs_)
        if i >= WARMUP:
            total.append((time.perf_counter() - t) * 1000.0)
            nets.append(nets_s[0] * 1000.0)
    # The same with Pillow's resizes (the peer's, scripts/bench-peer).
    pillow = []
    for i in range(WARMUP + runs):
        t = time.perf_counter()
        face_detect.detect(rgb, spec, *runs_, face_detect.PILLOW)
        if i >= WARMUP:
            pillow.append((time.perf_counter() - t) * 1000.0)
    return {
        "image": path.name,
        "width": int(rgb.shape[1]),
        "height": int(rgb.shape[0]),
        "faces": len(found),
        "ms_median": round(statistics.median(total), 3),
        "nets_ms_median": round(statistics.median(nets), 3),
        "pillow_ms_median": round(statistics.median(pillow), 3),
    }


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pack", required=True, type=pathlib.Path)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--tensor", type=pathlib.Path)
    parser.add_argument("--faces-image", type=pathlib.Path, action="append", default=[])
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    try:
        manifest = pack_manifest.read(args.pack)
        pack_manifest.verify_files(args.pack, manifest)
    except pack_manifest.PackError as e:
        sys.exit(f"bench_onnxruntime: {e}")

    image = manifest["image"]
    shape = (1, 3, image["size"], image["size"])
    if args.tensor:
        x = np.fromfile(args.tensor, dtype="<f4")
        if x.size != np.prod(shape):
            sys.exit(f"bench_onnxruntime: {args.tensor} holds {x.size} floats, expected {int(np.prod(shape))}")
        x = x.astype(np.float32).reshape(shape)
    else:
        x = np.random.default_rng(0).uniform(-1.0, 1.0, size=shape).astype(np.float32)
    image_sess = ort_session.single_threaded(pack_manifest.path_of(args.pack, manifest, "image_encoder"))
    image_ms = timed_ms(lambda: image_sess.run([image["output"]], {image["input"]: x}), args.runs)

    text = manifest["text"]
    tok = Tokenizer.from_file(str(pack_manifest.path_of(args.pack, manifest, "tokenizer")))
    text_sess = ort_session.single_threaded(pack_manifest.path_of(args.pack, manifest, "text_encoder"))
    sentence_ms = []
    per_sentence = []
    for s in SENTENCES:
        ids = tok.encode(s).ids
        ms = timed_ms(lambda: text_embedding.embed_ids(text_sess, text, tok.encode(s).ids), args.runs)
        sentence_ms += ms
        per_sentence.append({"text": s, "tokens": len(ids), "ms_median": round(statistics.median(ms), 3)})

    faces = []
    if "faces" in manifest and args.faces_image:
        faces = [bench_faces(args.pack, manifest, path, args.runs) for path in args.faces_image]

    print(
        json.dumps(
            {
                "faces": faces,
                "image_ms_median": round(statistics.median(image_ms), 3),
                "sentence_ms_median": round(statistics.median(sentence_ms), 3),
                "sentences": per_sentence,
                "runs": args.runs,
                "onnxruntime": onnxruntime.__version__,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
