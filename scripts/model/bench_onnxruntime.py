"""onnxruntime latencies of a pack's graphs on one thread, for scripts/bench-model.

Usage: bench_onnxruntime.py --pack DIR --runs N [--tensor RAW_F32]

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


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pack", required=True, type=pathlib.Path)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--tensor", type=pathlib.Path)
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

    print(
        json.dumps(
            {
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
