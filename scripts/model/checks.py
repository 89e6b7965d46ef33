"""The build's verifications. Each raises CheckFailed with what went wrong, and
returns a small summary that the build prints and records in the manifest."""

import json
import struct

import numpy as np
import onnx
from onnx import numpy_helper

import image_preprocess
import ort_session
import text_embedding


class CheckFailed(Exception):
    pass


def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


# What the photos show, as ImageNet classes: coffee.png is a cup of espresso on
# a saucer, chelsea.png a tabby cat (classes 281-285 are the domestic cats).
IMAGE_EXPECTATIONS = {
    "coffee.png": ("espresso (967)", lambda k: k == 967),
    "chelsea.png": ("a cat class (281-285)", lambda k: 281 <= k <= 285),
}


def graph_io(path, inputs, outputs):
    """The graph's input and output names (and element types) are what the manifest says."""
    model = onnx.load(str(path), load_external_data=False)
    got_in = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
    got_out = {o.name: o.type.tensor_type.elem_type for o in model.graph.output}
    if got_in != inputs or got_out != outputs:
        raise CheckFailed(f"{path.name}: inputs {got_in}, outputs {got_out}; expected {inputs}, {outputs}")


def image_encoder(path, spec, names, photos_dir):
    sess = ort_session.single_threaded(path)
    summary = {}
    for photo, (wanted, ok) in IMAGE_EXPECTATIONS.items():
        x = image_preprocess.preprocess(photos_dir / photo, spec)
        (logits,) = sess.run([spec["output"]], {spec["input"]: x})
        logits = logits[0]
        if logits.shape != (len(names),) or not np.all(np.isfinite(logits)):
            raise CheckFailed(f"{path.name} on {photo}: logits of shape {logits.shape} or not finite")
        p = _softmax(logits.astype(np.float64))
        top = [int(k) for k in np.argsort(-logits)[:5]]
        summary[photo] = [{"class": k, "name": names[k], "p": round(float(p[k]), 4)} for k in top]
        print(f"  {photo}: " + ", ".join(f"{names[k]} ({k}) {p[k]:.3f}" for k in top))
        if not ok(top[0]):
            raise CheckFailed(f"{path.name} on {photo}: top-1 is {names[top[0]]} ({top[0]}), expected {wanted}")
    return summary


def tokenizer(tok, max_tokens):
    """Uncased BERT WordPiece with [CLS]/[SEP], no padding, truncation at max_tokens."""
    hello = tok.encode("Hello world").ids
    if hello != [101, 7592, 2088, 102]:
        raise CheckFailed(f"tokenizer: 'Hello world' -> {hello}, expected [101, 7592, 2088, 102] (bert-base-uncased ids)")
    if tok.encode("HELLO WORLD").ids != hello:
        raise CheckFailed("tokenizer: does not lowercase")
    long_ids = tok.encode("word " * (2 * max_tokens)).ids
    if len(long_ids) != max_tokens or long_ids[0] != 101 or long_ids[-1] != 102:
        raise CheckFailed(f"tokenizer: a long text gives {len(long_ids)} ids, expected {max_tokens} ending in [SEP]")
    return {"hello_world": hello, "long_text_tokens": len(long_ids)}


def _safetensors_tensor(data, name):
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    entry = header[name]
    if entry["dtype"] != "F32":
        raise CheckFailed(f"safetensors {name}: dtype {entry['dtype']}")
    a, b = entry["data_offsets"]
    return np.frombuffer(data[8 + n + a:8 + n + b], dtype="<f4").reshape(entry["shape"])


def vocabulary_alignment(text_model, safetensors_bytes):
    """The int8 word table is the int8 rounding of all-MiniLM-L6-v2's table, row for row.

    The tokenizer comes from one package and the int8 graph from another; if
    their vocabularies differed in order, ids would index the wrong rows. Each
    dequantised row must lie within half a quantisation step of the float32
    row of the tokenizer's own model.safetensors.
    """
    inits = {t.name: t for t in text_model.graph.initializer}
    q = numpy_helper.to_array(inits["inner.embeddings.word_embeddings.weight_q"]).astype(np.float32)
    scale = numpy_helper.to_array(inits["inner.embeddings.word_embeddings.weight_scale"]).astype(np.float32)
    ref = _safetensors_tensor(safetensors_bytes, "embeddings.word_embeddings.weight")
    if ref.shape != q.shape:
        raise CheckFailed(f"vocabulary: int8 table {q.shape}, float table {ref.shape}")
    steps = float((np.abs(q * scale - ref) / scale).max())
    if steps > 0.5 + 1e-3:
        raise CheckFailed(f"vocabulary: int8 rows differ from the tokenizer model's rows by {steps:.2f} steps (> 0.5)")
    print(f"  int8 word table vs all-MiniLM-L6-v2 float table: max error {steps:.4f} quantisation steps")
    return {"max_error_steps": round(steps, 4)}


SENTENCES = [
    "Hi.",
    "This is a ceramic coffee cup.",
    "A cat is looking at the camera.",
    "Two motorcycles are parked side by side on a street next to a low wall.",
    "The quick brown fox jumps over the lazy dog while the astronaut, holding a flag, "
    "poses in a white suit in front of the stars and stripes.",
    "word " * 300,  # truncated to max_tokens
]


def text_rewrite(references, rewritten_path, spec, tok, tolerance=1e-5):
    """The rewritten text encoder gives the reference graphs' outputs, on every position.

    references: label -> path of a graph to compare with (the untouched
    original, and the original with the same shape-annotation change as the
    rewrite, which isolates the lookup rewrite: onnxruntime picks different
    fusions when shape annotations change, which alone moves outputs by ~1e-6).
    """
    b = ort_session.single_threaded(rewritten_path)
    result = {}
    for label, path in references.items():
        a = ort_session.single_threaded(path)
        worst = 0.0
        lengths = []
        for s in SENTENCES:
            ids = tok.encode(s).ids
            lengths.append(len(ids))
            ya = text_embedding.hidden_states(a, spec, ids)
            yb = text_embedding.hidden_states(b, spec, ids)
            if ya.shape != (1, len(ids), spec["dim"]) or yb.shape != ya.shape:
                raise CheckFailed(f"text encoder output shapes {ya.shape}, {yb.shape} for {len(ids)} tokens")
            worst = max(worst, float(np.abs(ya - yb).max()))
        print(f"  rewritten vs {label}, {len(SENTENCES)} sentences of {lengths} tokens: max abs diff {worst:.3g}")
        if not worst <= tolerance:
            raise CheckFailed(f"text encoder rewrite: outputs differ from {label} by {worst:.3g} (> {tolerance})")
        result[label] = worst
    return {"sentences": len(SENTENCES), "tokens": lengths, "max_abs_diff": result}


def padding_invariance(path, spec, tok, bucket=32, tolerance=1e-5):
    """docs/model-pack.md lets an engine pad to a bucket with attention_mask 0: real positions must not change."""
    sess = ort_session.single_threaded(path)
    ids = tok.encode(SENTENCES[1]).ids
    plain = text_embedding.hidden_states(sess, spec, ids)
    padded_ids = ids + [0] * (bucket - len(ids))
    mask = [1] * len(ids) + [0] * (bucket - len(ids))
    padded = text_embedding.hidden_states(sess, spec, padded_ids, mask)[:, : len(ids)]
    diff = float(np.abs(plain - padded).max())
    print(f"  {len(ids)} tokens padded to {bucket} with mask 0: max abs diff on real positions {diff:.3g}")
    if not diff <= tolerance:
        raise CheckFailed(f"padding with attention_mask 0 changes real positions by {diff:.3g} (> {tolerance})")
    return {"bucket": bucket, "max_abs_diff": diff}


def label_embeddings(matrix, names, dim):
    if matrix.shape != (len(names), dim) or not np.all(np.isfinite(matrix)):
        raise CheckFailed(f"label embeddings: shape {matrix.shape}, expected ({len(names)}, {dim}), or not finite")
    norms = np.linalg.norm(matrix.astype(np.float64), axis=1)
    if np.abs(norms - 1).max() > 1e-5:
        raise CheckFailed(f"label embeddings: row norms off 1 by {np.abs(norms - 1).max():.3g}")
    # The tokenizer lowercases, so names equal but for case ("Cardigan" the
    # corgi, "cardigan" the sweater) must embed identically; any other pair of
    # identical rows means the embeddings are broken.
    gram = matrix @ matrix.T
    np.fill_diagonal(gram, -1)
    same_text = [(i, j) for i, j in zip(*np.nonzero(gram > 1 - 1e-6)) if i < j]
    collisions = []
    for i, j in same_text:
        if names[i].lower() != names[j].lower():
            raise CheckFailed(f"label embeddings: rows {i} ({names[i]}) and {j} ({names[j]}) are identical")
        collisions.append([int(i), int(j)])
    for i, j in collisions:
        gram[i, j] = gram[j, i] = -1
    if collisions:
        print("  names equal but for case, so with equal embeddings: "
              + ", ".join(f"{names[i]} ({i}) / {names[j]} ({j})" for i, j in collisions))
    print(f"  label embeddings: {matrix.shape[0]} x {matrix.shape[1]} float32, unit rows, max cosine between two distinct labels {gram.max():.3f}")
    return {
        "shape": list(matrix.shape),
        "max_cosine_between_distinct_labels": round(float(gram.max()), 4),
        "same_name_but_case": collisions,
    }


# --- Faces (MTCNN) ---------------------------------------------------------


def _np_conv(x, w, b):
    """Valid convolution, stride 1, NCHW, in float64."""
    n, c, h, wd = x.shape
    o, _, k, _ = w.shape
    oh, ow = h - k + 1, wd - k + 1
    cols = np.empty((n, c, k, k, oh, ow))
    for i in range(k):
        for j in range(k):
            cols[:, :, i, j] = x[:, :, i:i + oh, j:j + ow]
    return np.einsum("nckluv,ockl->nouv", cols, w) + b[None, :, None, None]


def _np_prelu(x, slope):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return np.where(x >= 0, x, x * slope.reshape(shape))


def _np_maxpool_ceil(x, k, s):
    """MaxPool2d(k, s, ceil_mode=True) as PyTorch computes it: the last window may hang over the edge."""
    n, c, h, w = x.shape
    oh = -(-(h - k) // s) + 1
    ow = -(-(w - k) // s) + 1
    out = np.full((n, c, oh, ow), -np.inf)
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = x[:, :, i * s:i * s + k, j * s:j * s + k].max(axis=(2, 3))
    return out


def _np_softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def mtcnn_numpy(net, sd, x):
    """facenet_pytorch/models/mtcnn.py's forward passes in numpy (float64): {output name: array}.
    The dense layers read the feature map permuted to [N, W, H, C] and flattened, as mtcnn.py does."""
    import mtcnn_onnx

    _, layers = mtcnn_onnx.NETS[net]
    sd = {k: v.astype(np.float64) for k, v in sd.items()}
    x = x.astype(np.float64)
    for layer in layers:
        kind = layer[0]
        if kind == "conv":
            x = _np_conv(x, sd[f"{layer[1]}.weight"], sd[f"{layer[1]}.bias"])
        elif kind == "prelu":
            x = _np_prelu(x, sd[f"{layer[1]}.weight"])
        elif kind == "pool":
            x = _np_maxpool_ceil(x, layer[1], layer[2])
        elif kind == "flatten":
            x = x.transpose(0, 3, 2, 1).reshape(x.shape[0], -1)
        elif kind == "dense":
            x = x @ sd[f"{layer[1]}.weight"].T + sd[f"{layer[1]}.bias"]
    out = {}
    for name, layer, _ in mtcnn_onnx.HEADS[net]:
        w, b = sd[f"{layer}.weight"], sd[f"{layer}.bias"]
        if net == "pnet":
            y = np.einsum("nchw,oc->nohw", x, w[:, :, 0, 0]) + b[None, :, None, None]
        else:
            y = x @ w.T + b
        out[name] = _np_softmax(y) if name == "prob" else y
    return out


def face_nets(paths, state_dicts, tolerance=1e-4):
    """Each ONNX net (onnxruntime) computes what mtcnn.py's layers compute (numpy, float64)
    on random inputs: P-Net on two odd sizes, R-Net and O-Net on a batch of 3."""
    rng = np.random.default_rng(18)
    shapes = {"pnet": [(1, 3, 12, 12), (1, 3, 57, 43)], "rnet": [(3, 3, 24, 24)], "onet": [(3, 3, 48, 48)]}
    result = {}
    for net, path in paths.items():
        sess = ort_session.single_threaded(path)
        names = [o.name for o in sess.get_outputs()]
        worst = 0.0
        for shape in shapes[net]:
            x = rng.uniform(-1.0, 1.0, shape).astype(np.float32)
            got = dict(zip(names, sess.run(names, {"image": x})))
            want = mtcnn_numpy(net, state_dicts[net], x)
            for name, ref in want.items():
                if got[name].shape != ref.shape:
                    raise CheckFailed(f"{path.name} {name}: shape {got[name].shape}, mtcnn.py gives {ref.shape}")
                worst = max(worst, float(np.abs(got[name] - ref).max()))
        print(f"  {path.name} vs mtcnn.py's layers in numpy, {len(shapes[net])} input(s): max abs diff {worst:.3g}")
        if not worst <= tolerance:
            raise CheckFailed(f"{path.name}: outputs differ from mtcnn.py's layers by {worst:.3g} (> {tolerance})")
        result[net] = worst
    return {"max_abs_diff": result}


# What the photos show: a face (astronaut.png is Eileen Collins, grace_hopper.jpg
# Grace Hopper, camera.png the cameraman), or no face at all.
FACE_PHOTOS = ["astronaut.png", "grace_hopper.jpg", "camera.png"]
NO_FACE_PHOTOS = [
    "coffee.png", "chelsea.png", "rocket.jpg", "flower.jpg", "moon.png", "coins.png", "brick.png",
    "motorcycle_left.png", "china.jpg", "hubble_deep_field.jpg", "horse.png", "grass.png", "gravel.png",
    "page.png", "text.png", "color.png", "chessboard_RGB.png", "Minduka_Present_Blue_Pack.png",
]


def faces(paths, spec, photos_dir):
    """The detector (face_detect.py, onnxruntime) finds one face on each face photo and none on the others."""
    import face_detect
    from PIL import Image

    runs = face_detect.ort_runners({net: ort_session.single_threaded(path) for net, path in paths.items()})
    summary = {}
    for photo in FACE_PHOTOS + NO_FACE_PHOTOS:
        with Image.open(photos_dir / photo) as im:
            rgb = np.asarray(image_preprocess.to_rgb(im))
        found = face_detect.detect(rgb, spec, *runs)
        summary[photo] = [[round(float(v), 4) for v in box] for box in found]
        print(f"  {photo}: " + ("; ".join(
            f"x {x:.3f} y {y:.3f} w {w:.3f} h {h:.3f} p {p:.3f}" for x, y, w, h, p in found) or "no face"))
        if photo in FACE_PHOTOS and len(found) != 1:
            raise CheckFailed(f"faces on {photo}: {len(found)} found, expected 1")
        if photo in NO_FACE_PHOTOS and found:
            raise CheckFailed(f"faces on {photo}: {len(found)} found, expected none")
    return summary
