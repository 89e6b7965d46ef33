"""The label embedding matrix of docs/model-pack.md (`labels` section).

Row k = L2-normalised mean over prompts of the sentence embedding of
prompt with "{}" replaced by names[k], each computed exactly as a sentence is (tokenised
with the pack's tokenizer, unpadded, mean-pooled, L2-normalised). Written as
little-endian float32 [len(names), dim].
"""

import numpy as np

import text_embedding


def compute(sess, tokenizer, text_spec, names, prompts):
    rows = np.zeros((len(names), text_spec["dim"]), dtype=np.float64)
    for k, name in enumerate(names):
        acc = np.zeros(text_spec["dim"], dtype=np.float64)
        for prompt in prompts:
            ids = tokenizer.encode(prompt.replace("{}", name)).ids
            acc += text_embedding.embed_ids(sess, text_spec, ids).astype(np.float64)
        rows[k] = acc / np.linalg.norm(acc)
    return rows.astype("<f4")


def to_bytes(matrix):
    return np.ascontiguousarray(matrix, dtype="<f4").tobytes()
