"""OFA checkpoints: the ModelScope download folder, read and checked; or one made from random weights.

A ModelScope download of `iic/ofa_visual-entailment_snli-ve_large_en` holds
`pytorch_model.bin` (a state dict), `config.json` (the OFAConfig),
`configuration.json` (modelscope's task configuration: prompt, source length,
image size, normalisation), `vocab.json` and `merges.txt` (BART's byte-level
BPE). `read` loads such a folder into modelscope's own `OFAModel` and refuses
it, naming the tensor or file, when a tensor is missing, unexpected or of the
wrong shape, or when the vocabulary does not match the embedding.

`write_random` makes the same folder from randomly initialised weights of a
named configuration (`large`: OFA-large exactly; `tiny`: 2 + 2 layers,
d_model 128, ResNet-50 stem), so that the whole build, the parity test and the
benchmarks run where no OFA weights can be downloaded. Its BPE files are GPT-2's
(from openai-whisper's sdist, MIT) laid out as BART's `vocab.json`: `<s>`,
`<pad>`, `</s>`, `<unk>` first, then GPT-2's tokens; the real checkpoint's files
map the same strings to other ids, which is why ids are always read from the
checkpoint's own vocabulary, never assumed.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import torch

# OFA-large's config.json (as published with the checkpoint), field by field.
LARGE = {
    "model_type": "ofa",
    "activation_dropout": 0.0,
    "activation_function": "gelu",
    "add_type_embedding": True,
    "attention_dropout": 0.0,
    "attn_scale_factor": 2.0,
    "bos_token_id": 0,
    "classifier_dropout": 0.0,
    "code_image_size": 128,
    "code_layernorm_embedding": True,
    "d_model": 1024,
    "decoder_attention_heads": 16,
    "decoder_drop_path_rate": 0.0,
    "decoder_ffn_dim": 4096,
    "decoder_layerdrop": 0.0,
    "decoder_layers": 12,
    "decoder_normalize_before": True,
    "decoder_start_token_id": 0,
    "dropout": 0.1,
    "encoder_attention_heads": 16,
    "encoder_drop_path_rate": 0.0,
    "encoder_ffn_dim": 4096,
    "encoder_layerdrop": 0.0,
    "encoder_layers": 12,
    "encoder_normalize_before": True,
    "entangle_position_embedding": False,
    "eos_token_id": 2,
    "forced_eos_token_id": 2,
    "image_bucket_size": 42,
    "init_std": 0.02,
    "is_encoder_decoder": True,
    "layernorm_embedding": True,
    "max_position_embeddings": 1024,
    "normformer": True,
    "pad_token_id": 1,
    "patch_layernorm_embedding": True,
    "resnet_drop_path_rate": 0.0,
    "resnet_model_path": None,
    "resnet_type": "resnet152",
    "scale_embedding": False,
    "share_decoder_input_output_embed": True,
    "token_bucket_size": 256,
    "use_cache": False,
    "vocab_size": 59457,
}

TINY = dict(
    LARGE,
    d_model=128,
    encoder_layers=2,
    decoder_layers=2,
    encoder_attention_heads=4,
    decoder_attention_heads=4,
    encoder_ffn_dim=512,
    decoder_ffn_dim=512,
    resnet_type="resnet50",
    # A wider init than BERT's 0.02, so that a random model's three answer
    # logits differ enough for the labels to vary between inputs.
    init_std=0.1,
)

CONFIGS = {"large": LARGE, "tiny": TINY}

# modelscope's configuration.json for visual entailment (the fields its
# preprocessor and model read).
CONFIGURATION = {
    "framework": "pytorch",
    "task": "visual-entailment",
    "model": {
        "type": "ofa",
        "language": "en",
        "max_src_length": 256,
        "patch_image_size": 480,
        "max_image_size": 480,
        "imagenet_default_mean_and_std": False,
        "prompt_type": "none",
        "gen_type": "traverse",
        "answer2label": "ans2label.json",
    },
    "pipeline": {"type": "visual-entailment"},
}

ANSWERS = ("yes", "no", "maybe")
NUM_CODES = 8192
NUM_BINS = 1000


class CheckpointError(Exception):
    """A checkpoint that cannot become a pack; the message names what is wrong."""


@dataclass
class Checkpoint:
    dir: Path
    config: dict
    configuration: dict
    model: torch.nn.Module
    tokenizer: object


def bart_vocab_from_gpt2(gpt2_vocab: dict) -> dict:
    """GPT-2's encoder laid out as BART's vocab.json (specials first, 50265 entries)."""
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for token, _ in sorted(gpt2_vocab.items(), key=lambda kv: kv[1]):
        if token not in vocab:
            vocab[token] = len(vocab)
    i = 0
    while len(vocab) < 50264:
        vocab[f"<madeupword{i}>"] = len(vocab)
        i += 1
    vocab["<mask>"] = len(vocab)
    return vocab


def write_random(name: str, out: Path, gpt2_dir: Path, seed: int, ms) -> Path:
    """A ModelScope-style checkpoint folder with random weights of config `name`."""
    if name not in CONFIGS:
        raise CheckpointError(f"unknown configuration {name!r} (known: {', '.join(CONFIGS)})")
    out.mkdir(parents=True, exist_ok=True)
    gpt2 = json.loads((gpt2_dir / "vocab.json").read_text(encoding="utf-8"))
    vocab = bart_vocab_from_gpt2(gpt2)
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out / "merges.txt").write_bytes((gpt2_dir / "merges.txt").read_bytes())
    config = dict(CONFIGS[name])
    (out / "config.json").write_text(json.dumps(config, indent=2))
    (out / "configuration.json").write_text(json.dumps(CONFIGURATION, indent=2))
    (out / "ans2label.json").write_text(json.dumps({a: i for i, a in enumerate(ANSWERS)}))
    torch.manual_seed(seed)
    model = ms.OFAModel(ms.OFAConfig(**config)).eval()
    torch.save(model.state_dict(), out / "pytorch_model.bin")
    (out / "RANDOM_INIT").write_text(f"config={name} seed={seed}\nThese weights are random: the model knows nothing.\n")
    return out


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing (a ModelScope download of the checkpoint has it)") from None
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: not JSON: {err}") from None


def read(folder: Path, ms) -> Checkpoint:
    """Loads and checks a checkpoint folder into modelscope's OFAModel."""
    config = _json(folder / "config.json")
    configuration = _json(folder / "configuration.json")
    for name in ("vocab.json", "merges.txt", "pytorch_model.bin"):
        if not (folder / name).is_file():
            raise CheckpointError(f"{folder / name}: missing (a ModelScope download of the checkpoint has it)")
    if config.get("use_ofasys"):
        raise CheckpointError(f"{folder / 'config.json'}: use_ofasys checkpoints (ViT backbone) are not supported")
    task = configuration.get("task")
    if task not in ("visual-entailment", "visual_entailment"):
        raise CheckpointError(f"{folder / 'configuration.json'}: task is {task!r}, not visual-entailment")

    fields = {k: v for k, v in config.items() if k not in ("architectures", "transformers_version", "torch_dtype")}
    model = ms.OFAModel(ms.OFAConfig(**fields)).eval()
    try:
        state = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is refused with its cause
        raise CheckpointError(f"{folder / 'pytorch_model.bin'}: cannot be read as a PyTorch state dict: {err}") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{folder / 'pytorch_model.bin'}: not a state dict")
    if state and all(k.startswith("model.") for k in state):
        state = {k[len("model."):]: v for k, v in state.items()}
    expected = model.state_dict()
    # The decoder's output projection is tied to the shared embedding.
    optional = {k for k in expected if k.endswith("output_projection.weight")}
    missing = sorted(k for k in expected if k not in state and k not in optional)
    unexpected = sorted(k for k in state if k not in expected)
    if missing:
        raise CheckpointError(
            f"{folder / 'pytorch_model.bin'}: missing tensor {missing[0]!r}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    if unexpected:
        raise CheckpointError(
            f"{folder / 'pytorch_model.bin'}: unexpected tensor {unexpected[0]!r}"
            + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else "")
            + ": the checkpoint is not of this OFA configuration"
        )
    for key, tensor in state.items():
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"{folder / 'pytorch_model.bin'}: {key!r} is not a tensor")
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"{folder / 'pytorch_model.bin'}: tensor {key!r} has shape {tuple(tensor.shape)}, "
                f"config.json implies {tuple(expected[key].shape)}"
            )
    model.load_state_dict(state, strict=False)
    model.eval()

    tokenizer = ms.OFATokenizer.from_pretrained(str(folder))
    tokenizer.add_tokens([f"<code_{i}>" for i in range(NUM_CODES)])
    tokenizer.add_tokens([f"<bin_{i}>" for i in range(NUM_BINS)])
    rows = model.encoder.embed_tokens.weight.shape[0]
    if len(tokenizer) != rows:
        raise CheckpointError(
            f"{folder / 'vocab.json'}: the vocabulary has {len(tokenizer) - NUM_CODES - NUM_BINS} tokens "
            f"(+ {NUM_CODES} image codes + {NUM_BINS} location bins = {len(tokenizer)}), "
            f"but the embedding 'encoder.embed_tokens.weight' has {rows} rows"
        )
    for special, want in (("<s>", config.get("bos_token_id", 0)), ("<pad>", config.get("pad_token_id", 1)),
                          ("</s>", config.get("eos_token_id", 2))):
        if tokenizer.convert_tokens_to_ids(special) != want:
            raise CheckpointError(f"{folder / 'vocab.json'}: {special} is not id {want} as config.json says")
    return Checkpoint(folder, config, configuration, model, tokenizer)


def answer_token_ids(checkpoint: Checkpoint) -> list[int]:
    """The single BPE token of ' yes', ' no', ' maybe' (the constraint trie's first layer)."""
    ids = []
    for answer in ANSWERS:
        pieces = checkpoint.tokenizer(" " + answer, add_special_tokens=False)["input_ids"]
        if len(pieces) != 1:
            raise CheckpointError(
                f"{checkpoint.dir / 'vocab.json'}: the answer {answer!r} is {len(pieces)} tokens, "
                "verdict reads single-token answers only"
            )
        ids.append(pieces[0])
    return ids
