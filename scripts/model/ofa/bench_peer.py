"""Time OFA visual entailment in PyTorch (modelscope's OFAModel) or onnxruntime, for scripts/bench-ofa.

    bench_peer.py --engine torch|onnxruntime --threads N --pack PACK [--checkpoint DIR]
                  --image PATH --text SENTENCE [--runs N]

One engine per process, so that its resident memory is its own. Prints one
JSON object: load seconds, median milliseconds of the image graph, of the
encoder + first decoder step, and of a whole verdict (decode and resize the
image file, both graphs), peak RSS in MB. The inputs are the pack's: the
same ONNX files for onnxruntime, the checkpoint the pack was built from for
PyTorch, the same prompt ids (the pack's tokenizer.json) for both.
"""

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
ROOT = HERE.parents[2]


def median_ms(fn, runs):
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--engine", choices=["torch", "onnxruntime"], required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--pack", required=True)
    p.add_argument("--checkpoint")
    p.add_argument("--image", required=True)
    p.add_argument("--text", required=True)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()

    import numpy as np
    from PIL import Image
    from tokenizers import Tokenizer

    pack = Path(args.pack)
    manifest = json.loads((pack / "manifest.json").read_text())
    size = manifest["image"]["size"]
    text = manifest["text"]
    tokenizer = Tokenizer.from_file(str(pack / "tokenizer.json"))
    prompt = text["prompt"].replace("{}", args.text.lower().strip(), 1)
    ids = [text["bos_id"]] + tokenizer.encode(prompt, add_special_tokens=False).ids + [text["eos_id"]]

    def preprocess():
        with Image.open(args.image) as im:
            rgb = im.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        x = (np.asarray(rgb, dtype=np.float32) / 255.0 - 0.5) / 0.5
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None])

    image = preprocess()
    result = {"engine": args.engine, "threads": args.threads, "prompt_tokens": len(ids)}
    if args.engine == "torch":
        import torch

        torch.set_num_threads(args.threads)
        from ofa import checkpoint as ck
        from ofa import export, modelscope_code

        started = time.perf_counter()
        ms = modelscope_code.load(ROOT / ".cache" / "ofa", ROOT / ".cache" / "wheels-ofa")
        checkpoint = ck.read(Path(args.checkpoint or manifest["model"]["checkpoint_dir"]), ms)
        result["load_s"] = time.perf_counter() - started
        model = checkpoint.model
        answers = manifest["entailment"]["answer_token_ids"]
        bos = text["bos_id"]
        tensor = torch.from_numpy(image)
        with torch.inference_mode():
            features = model.encoder.embed_images(tensor)
            result["image_ms"] = median_ms(lambda: model.encoder.embed_images(tensor), args.runs)
            result["entailment_ms"] = median_ms(
                lambda: export.entailment_logits(model, answers, bos, ms.expand_mask, ids, features), args.runs)

            def verdict():
                f = model.encoder.embed_images(torch.from_numpy(preprocess()))
                return export.entailment_logits(model, answers, bos, ms.expand_mask, ids, f)

            result["verdict_ms"] = median_ms(verdict, args.runs)
    else:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        started = time.perf_counter()
        image_session = ort.InferenceSession(str(pack / "image_encoder.onnx"), options)
        entail = ort.InferenceSession(str(pack / "entailment.onnx"), options)
        result["load_s"] = time.perf_counter() - started
        features = image_session.run(None, {"image": image})[0]
        feed = {"input_ids": np.array([ids], dtype=np.int64), "image_features": features}
        result["image_ms"] = median_ms(lambda: image_session.run(None, {"image": image}), args.runs)
        result["entailment_ms"] = median_ms(lambda: entail.run(None, feed), args.runs)

        def verdict():
            f = image_session.run(None, {"image": preprocess()})[0]
            return entail.run(None, {"input_ids": feed["input_ids"], "image_features": f})

        result["verdict_ms"] = median_ms(verdict, args.runs)
    result["rss_mb"] = rss_mb()
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
