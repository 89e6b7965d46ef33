"""Sentence embeddings with onnxruntime, as docs/model-pack.md's `text` section says.

One sentence per run, unpadded (attention_mask all 1, token_type_ids all 0);
the output is mean-pooled over the positions whose mask is 1, then
L2-normalised. Pooling and the norm are done in float64 and rounded to
float32 at the end, so this is a reference, not an imitation of any engine's
float32 arithmetic.
"""

import numpy as np


def hidden_states(sess, text_spec, input_ids, attention_mask=None):
    ids = np.asarray(input_ids, dtype=np.int64).reshape(1, -1)
    mask = np.ones_like(ids) if attention_mask is None else np.asarray(attention_mask, dtype=np.int64).reshape(1, -1)
    names = text_spec["inputs"]
    feed = {names["input_ids"]: ids, names["attention_mask"]: mask, names["token_type_ids"]: np.zeros_like(ids)}
    (out,) = sess.run([text_spec["output"]], feed)
    return out


def pool(hidden, attention_mask, normalize=True):
    h = np.asarray(hidden, dtype=np.float64)[0]
    m = np.asarray(attention_mask, dtype=np.float64).reshape(-1)
    v = (h * m[:, None]).sum(axis=0) / max(m.sum(), 1.0)
    if normalize:
        v = v / np.linalg.norm(v)
    return v


def embed_ids(sess, text_spec, input_ids):
    if text_spec["pooling"] != "mean":
        raise ValueError(f"pooling {text_spec['pooling']!r} is not implemented")
    ids = list(input_ids)
    hidden = hidden_states(sess, text_spec, ids)
    return pool(hidden, [1] * len(ids), text_spec["normalize"]).astype(np.float32)
