"""tokenizer.json for the worker: OFA's BPE (BART's byte-level BPE plus OFA's added tokens).

modelscope's `OFATokenizer` is transformers' slow `BartTokenizer` with the
8192 `<code_i>` and 1000 `<bin_i>` tokens added. The worker tokenizes with the
Rust `tokenizers` crate, so the build writes the same tokenizer as a
`tokenizer.json` and proves, before the pack is written, that both give the
same ids on a set of hard strings.
"""

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

# Strings whose ids must agree: punctuation, digits, case, Unicode, emoji,
# runs of spaces, an added token inside a word, control characters.
PROBES = [
    ' does the image describe " a ceramic coffee cup "?',
    ' can image and text1 " two dogs play in the snow " imply text2 " animals are outside "?',
    " 12,345 items at $9.99 -- 50% off!!",
    " naïve café Zürich 東京 кошка 🐈‍⬛ ☕",
    "   three   spaces\tand a tab\nand a newline",
    " <code_12> and <bin_999> and <code_8191>x<bin_0>",
    " it's they're we've I'm you'll he'd",
    " \u200b zero width, \u00a0 no-break space, \x07 bell",
    "",
]


def build(vocab_path, merges_path, num_codes, num_bins):
    tokenizer = Tokenizer(models.BPE.from_file(str(vocab_path), str(merges_path)))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_tokens(
        [AddedToken(f"<code_{i}>", normalized=False) for i in range(num_codes)]
        + [AddedToken(f"<bin_{i}>", normalized=False) for i in range(num_bins)]
    )
    return tokenizer


def check_against(tokenizer, reference, probes=PROBES):
    """Raises ValueError naming the first probe whose ids differ from modelscope's tokenizer."""
    for text in probes:
        ours = tokenizer.encode(text, add_special_tokens=False).ids
        theirs = reference(text, add_special_tokens=False)["input_ids"]
        if ours != theirs:
            raise ValueError(f"tokenizer.json and OFATokenizer disagree on {text!r}: {ours} != {theirs}")
