"""onnxruntime reference outputs for the engine's parity tests (test-only).

Reads one JSON request on stdin:
  {"pack": DIR,
   "images": [{"id": "coffee", "tensor": "path/to/raw.f32"}],
   "texts":  [{"id": "t0", "input_ids": [101, ...]}],
   "faces":  [{"id": "astronaut/pnet0", "role": "face_pnet", "tensor": "path/to/raw.f32", "shape": [1, 3, 120, 120]}]}
`tensor` is a raw little-endian float32 file holding the engine's preprocessed
input ([1, 3, size, size] for the pack's `image.size`); `input_ids` are the
engine's token ids (attention_mask all 1, token_type_ids all 0); a `faces` item
is the input of one of the face detector's nets (role face_pnet, face_rnet or
face_onet), of the shape given.

Writes one JSON object on stdout:
  {"images": {"coffee": {"logits": [...]}}, "texts": {"t0": {"embedding": [...]}},
   "faces": {"astronaut/pnet0": {"prob": [...], "reg": [...]}}}
logits as the image encoder outputs them; the embedding mean-pooled over the
tokens and L2-normalised as the manifest's `text` section says (pooling in
float64, then rounded to float32). Every number is a float32 value written
exactly (repr of the float64 holding it).

The pack's files are checked against its manifest first. onnxruntime runs with
one thread. Errors go to stderr with a non-zero exit status.

Run with the build venv:  "$(scripts/lib/python-venv)" scripts/model/reference.py < request.json
"""

import json
import pathlib
import sys

import numpy as np

import ort_session
import pack_manifest
import text_embedding


class RequestError(Exception):
    pass


def image_logits(sess, spec, tensor_path):
    size = spec["size"]
    shape = (1, 3, size, size)
    path = pathlib.Path(tensor_path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise RequestError(f"image tensor {path}: {e.strerror}") from None
    want = 4 * int(np.prod(shape))
    if len(raw) != want:
        raise RequestError(f"image tensor {path}: {len(raw)} bytes, expected {want} (float32 {list(shape)})")
    x = np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)
    (logits,) = sess.run([spec["output"]], {spec["input"]: x})
    return [float(v) for v in logits.reshape(-1)]


def face_net(sess, spec, item):
    shape = tuple(item["shape"])
    if not (len(shape) == 4 and all(isinstance(n, int) and n > 0 for n in shape)):
        raise RequestError(f"face tensor {item['id']}: shape must be 4 positive integers")
    path = pathlib.Path(item["tensor"])
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise RequestError(f"face tensor {path}: {e.strerror}") from None
    if len(raw) != 4 * int(np.prod(shape)):
        raise RequestError(f"face tensor {path}: {len(raw)} bytes, expected float32 {list(shape)}")
    x = np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)
    prob, reg = sess.run([spec["prob"], spec["reg"]], {spec["input"]: x})
    return {"prob": [float(v) for v in prob.reshape(-1)], "reg": [float(v) for v in reg.reshape(-1)]}


def text_vector(sess, spec, input_ids):
    if not (isinstance(input_ids, list) and input_ids and all(isinstance(i, int) and i >= 0 for i in input_ids)):
        raise RequestError("input_ids must be a non-empty list of non-negative integers")
    return [float(v) for v in text_embedding.embed_ids(sess, spec, input_ids)]


def answer(request):
    if not isinstance(request, dict) or "pack" not in request:
        raise RequestError('the request must be a JSON object with "pack"')
    pack = pathlib.Path(request["pack"])
    manifest = pack_manifest.read(pack)
    pack_manifest.verify_files(pack, manifest)
    out = {"images": {}, "texts": {}, "faces": {}}
    images = request.get("images", [])
    texts = request.get("texts", [])
    if images:
        sess = ort_session.single_threaded(pack_manifest.path_of(pack, manifest, "image_encoder"))
        for item in images:
            out["images"][item["id"]] = {"logits": image_logits(sess, manifest["image"], item["tensor"])}
    if texts:
        sess = ort_session.single_threaded(pack_manifest.path_of(pack, manifest, "text_encoder"))
        for item in texts:
            out["texts"][item["id"]] = {"embedding": text_vector(sess, manifest["text"], item["input_ids"])}
    sessions = {}
    for item in request.get("faces", []):
        role = item["role"]
        if role not in ("face_pnet", "face_rnet", "face_onet"):
            raise RequestError(f"faces: unknown role {role!r}")
        if role not in sessions:
            sessions[role] = ort_session.single_threaded(pack_manifest.path_of(pack, manifest, role))
        out["faces"][item["id"]] = face_net(sessions[role], manifest["faces"], item)
    return out


def main():
    try:
        request = json.load(sys.stdin)
        result = answer(request)
    except ValueError as e:
        sys.exit(f"reference.py: bad request JSON: {e}")
    except (RequestError, pack_manifest.PackError) as e:
        sys.exit(f"reference.py: {e}")
    except KeyError as e:
        sys.exit(f"reference.py: request item without {e}")
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
