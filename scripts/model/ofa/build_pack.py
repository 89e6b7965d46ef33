"""Build an `ofa-ve` model pack (docs/model-pack.md) from an OFA checkpoint folder or random weights.

    build_pack.py --checkpoint DIR --out PACK
    build_pack.py --random-init tiny|large [--seed N] [--checkpoint-out DIR] --out PACK

Steps: read and check the checkpoint (checkpoint.py), write tokenizer.json and
prove it tokenizes as modelscope's OFATokenizer, export the two ONNX graphs
(export.py), prove with onnxruntime that they compute what modelscope's
PyTorch modules compute, then write the manifest last (its presence means the
pack is whole). Any refusal exits 2 with a message naming the file or tensor.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import pack_manifest  # noqa: E402
import wheels  # noqa: E402
from ofa import checkpoint as ck  # noqa: E402
from ofa import export, modelscope_code, tokenizer_json  # noqa: E402

ROOT = HERE.parents[2]
LICENSE = "Apache-2.0"
DEFAULT_PROMPT = ' does the image describe " {} "?'
DEFAULT_PREMISE_PROMPT = ' can image and text1 " {} " imply text2 " {} "?'
# Graph self-check: onnxruntime against PyTorch on the same inputs.
SELF_CHECK_TOLERANCE = 1e-3


def log(message):
    print(f"build-ofa-pack: {message}", file=sys.stderr, flush=True)


def image_section(configuration, features_shape):
    model = configuration.get("model", {})
    size = int(model.get("patch_image_size", 480))
    if model.get("imagenet_default_mean_and_std", False):
        mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    else:
        mean, std = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]
    return {
        "input": "image",
        "output": "image_features",
        "size": size,
        "resize": "stretch",
        "resize_filter": "bicubic",
        "crop_fraction": 1.0,
        "mean": [round(m * 255.0, 6) for m in mean],
        "std": [round(s * 255.0, 6) for s in std],
        "layout": "nchw",
        "features": features_shape,
    }


def text_section(configuration, config):
    model = configuration.get("model", {})
    max_src = int(model.get("max_src_length", 256))
    prompt = model.get("prompt")
    return {
        "tokenizer": "tokenizer.json",
        # modelscope uses one configured prompt for both forms when it has one.
        "prompt": prompt or DEFAULT_PROMPT,
        "premise_prompt": prompt if (prompt and prompt.count("{}") == 2) else DEFAULT_PREMISE_PROMPT,
        "max_source_words": max_src,
        "max_source_tokens": max_src,
        "bos_id": int(config.get("bos_token_id", 0)),
        "pad_id": int(config.get("pad_token_id", 1)),
        "eos_id": int(config.get("eos_token_id", 2)),
    }


def self_check(checkpoint, ms, out, answer_ids, bos_id, size):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    image_session = ort.InferenceSession(str(out / "image_encoder.onnx"), options)
    entail_session = ort.InferenceSession(str(out / "entailment.onnx"), options)
    generator = torch.Generator().manual_seed(1234)
    image = torch.rand(1, 3, size, size, generator=generator) * 2 - 1
    with torch.no_grad():
        theirs = checkpoint.model.encoder.embed_images(image)
    ours = image_session.run(None, {"image": image.numpy()})[0]
    scale = float(np.abs(theirs.numpy()).max()) or 1.0
    diff = float(np.abs(ours - theirs.numpy()).max())
    if diff > SELF_CHECK_TOLERANCE * max(1.0, scale):
        raise ck.CheckpointError(f"image_encoder.onnx differs from PyTorch by {diff} (features up to {scale})")
    worst = 0.0
    for text in ("a cat", "two people ride bicycles along a river at sunset"):
        prompt = DEFAULT_PROMPT.format(text)
        ids = [bos_id] + checkpoint.tokenizer(prompt, add_special_tokens=False)["input_ids"] + [ck_eos(checkpoint)]
        reference = export.entailment_logits(checkpoint.model, answer_ids, bos_id, ms.expand_mask, ids, theirs)
        got = entail_session.run(None, {"input_ids": np.array([ids], dtype=np.int64),
                                        "image_features": theirs.numpy()})[0][0]
        worst = max(worst, float(np.abs(np.array(reference) - got).max()))
    if worst > SELF_CHECK_TOLERANCE:
        raise ck.CheckpointError(f"entailment.onnx differs from PyTorch by {worst} in the answer logits")
    log(f"self-check: onnxruntime matches PyTorch (image features {diff:.1e}, answer logits {worst:.1e})")


def ck_eos(checkpoint):
    return int(checkpoint.config.get("eos_token_id", 2))


def inputs_sha256(args, weights_sha256):
    """What a pack is made from: the build's code, its pins, the weights and the options."""
    import hashlib

    h = hashlib.sha256()
    sources = sorted(HERE.glob("*.py")) + [HERE / "requirements.txt", HERE.parent / "pack_manifest.py",
                                            HERE.parent / "wheels.py"]
    for path in sources:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(json.dumps([args.random_init, args.seed, weights_sha256]).encode())
    return h.hexdigest()


def up_to_date(out: Path, inputs: str) -> bool:
    try:
        manifest = pack_manifest.read(out)
        pack_manifest.verify_files(out, manifest)
    except pack_manifest.PackError:
        return False
    return manifest.get("build", {}).get("inputs_sha256") == inputs


def build(args):
    started = time.time()
    cache = ROOT / ".cache"
    out = Path(args.out)
    if args.random_init is not None:
        inputs = inputs_sha256(args, None)
    else:
        weights = Path(args.checkpoint) / "pytorch_model.bin"
        inputs = inputs_sha256(args, wheels.sha256_file(weights) if weights.is_file() else None)
    if up_to_date(out, inputs):
        log(f"{out} is up to date")
        return
    ms = modelscope_code.load(cache / "ofa", Path(args.wheels))
    provenance = [{
        "part": "OFA model, tokenizer and visual-entailment preprocessing code (read at build time only)",
        "package": "modelscope", "version": "1.40.2", "wheel": modelscope_code.WHEEL_NAME,
        "sha256": wheels.sha256_file(Path(args.wheels) / modelscope_code.WHEEL_NAME),
        "license": "Apache-2.0",
    }]
    random_init = args.random_init is not None
    if random_init:
        source = Path(args.checkpoint_out or cache / "ofa" / f"checkpoint-{args.random_init}-seed{args.seed}")
        log(f"random {args.random_init} checkpoint (seed {args.seed}) -> {source}")
        ck.write_random(args.random_init, source, Path(args.gpt2_bpe), args.seed, ms)
        provenance.append({
            "part": "BPE vocabulary and merges of the random-init checkpoint (GPT-2's, laid out as BART's)",
            "package": "openai-whisper", "version": "20230124",
            "files": ["whisper/assets/gpt2/vocab.json", "whisper/assets/gpt2/merges.txt"],
            "license": "MIT",
        })
    else:
        source = Path(args.checkpoint)
    log(f"reading {source}")
    checkpoint = ck.read(source, ms)
    answer_ids = ck.answer_token_ids(checkpoint)
    config = checkpoint.config
    bos_id = int(config.get("bos_token_id", 0))

    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".ofa-pack-", dir=out.parent))
    # mkdtemp makes the folder 0700; a fleet run as another user must read the pack.
    os.chmod(work, 0o755)
    try:
        tokenizer = tokenizer_json.build(source / "vocab.json", source / "merges.txt", ck.NUM_CODES, ck.NUM_BINS)
        tokenizer_json.check_against(tokenizer, checkpoint.tokenizer)
        tokenizer.save(str(work / "tokenizer.json"))
        shutil.copyfile(source / "vocab.json", work / "vocab.json")
        shutil.copyfile(source / "merges.txt", work / "merges.txt")
        image = image_section(checkpoint.configuration, None)
        size = image["size"]
        sample = [bos_id] + checkpoint.tokenizer(DEFAULT_PROMPT.format("a cat"), add_special_tokens=False)[
            "input_ids"] + [ck_eos(checkpoint)]
        log(f"exporting the graphs (image {size}x{size})")
        features = export.export(checkpoint.model, size, answer_ids, bos_id, ms.expand_mask, work, sample)
        image["features"] = features
        self_check(checkpoint, ms, work, answer_ids, bos_id, size)

        weights = source / "pytorch_model.bin"
        provenance.append({
            "part": "OFA weights" + (" (RANDOM: this pack knows nothing; for tests and benchmarks)" if random_init
                                     else ""),
            "checkpoint": "random-init" if random_init else "iic/ofa_visual-entailment_snli-ve_large_en (ModelScope)",
            "config": args.random_init or "checkpoint config.json",
            "seed": args.seed if random_init else None,
            "pytorch_model.bin sha256": wheels.sha256_file(weights),
            "license": LICENSE,
        })
        name = f"ofa-ve-{args.random_init}-random" if random_init else "ofa-ve-large"
        manifest = {
            "format": pack_manifest.FORMAT,
            "format_version": pack_manifest.FORMAT_VERSION,
            "kind": "ofa-ve",
            "name": name,
            "version": "1",
            "description": (
                "OFA visual entailment (SNLI-VE), run with tract: image and sentence read together. "
                + ("RANDOM WEIGHTS: the verdicts mean nothing." if random_init else "")
            ).strip(),
            "license": LICENSE,
            "files": [
                pack_manifest.file_entry(work, "image_encoder", "image_encoder.onnx"),
                pack_manifest.file_entry(work, "entailment", "entailment.onnx"),
                pack_manifest.file_entry(work, "tokenizer", "tokenizer.json"),
                pack_manifest.file_entry(work, "vocab", "vocab.json"),
                pack_manifest.file_entry(work, "merges", "merges.txt"),
            ],
            "image": image,
            "text": text_section(checkpoint.configuration, config),
            "entailment": {
                "inputs": {"input_ids": "input_ids", "image_features": "image_features"},
                "output": "answer_logits",
                "answers": list(ck.ANSWERS),
                "answer_token_ids": answer_ids,
            },
            "model": {
                "config": args.random_init or "checkpoint",
                "d_model": config["d_model"],
                "encoder_layers": config["encoder_layers"],
                "decoder_layers": config["decoder_layers"],
                "heads": config["encoder_attention_heads"],
                "vocab_size": config["vocab_size"],
                "resnet": config["resnet_type"],
                "parameters": sum(p.numel() for p in checkpoint.model.parameters()),
                "random_init": random_init,
                "seed": args.seed if random_init else None,
                "checkpoint_dir": str(source.resolve()),
            },
            "provenance": provenance,
            "build": {"inputs_sha256": inputs, "seconds": round(time.time() - started, 1)},
        }
        pack_manifest.write(work, manifest)
        if out.exists():
            shutil.rmtree(out)
        os.replace(work, out)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    log(f"pack {name} written to {out} in {time.time() - started:.0f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", metavar="DIR", help="a ModelScope download folder of the OFA checkpoint")
    source.add_argument("--random-init", choices=sorted(ck.CONFIGS), help="random weights of this configuration")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-out", metavar="DIR", help="where --random-init writes its checkpoint folder")
    parser.add_argument("--out", required=True, metavar="PACK")
    parser.add_argument("--wheels", required=True, help="folder with the modelscope wheel")
    parser.add_argument("--gpt2-bpe", help="folder with GPT-2's vocab.json and merges.txt (for --random-init)")
    args = parser.parse_args()
    if args.random_init and not args.gpt2_bpe:
        parser.error("--random-init needs --gpt2-bpe")
    try:
        build(args)
    except (ck.CheckpointError, ValueError, FileNotFoundError) as err:
        log(f"error: {err}")
        sys.exit(2)


if __name__ == "__main__":
    main()
