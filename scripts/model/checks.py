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
