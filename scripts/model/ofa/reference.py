"""PyTorch reference for the ofa-ve parity test (worker/tests/ofa_parity.rs).

Reads a JSON request on stdin:
    {"checkpoint": DIR, "pack": DIR,
     "cases": [{"id": ..., "image": PATH, "sentence": ..., "premise": null or ...,
                "ids": [engine's token ids], "tensor": PATH of the engine's f32 image tensor}]}
and writes, per case id, what modelscope's own code computes:
    modelscope_ids          the prompt's ids from modelscope's OfaVisualEntailmentPreprocessor
    logits_engine_inputs    OFAModel's three answer logits on the engine's tensor and ids
                            (the runtimes compared on the same inputs)
    logits_modelscope       the same on modelscope's own preprocessing of the image file
    tensor_max_abs_diff     engine tensor vs modelscope's preprocessed image

The model is modelscope's OFAModel loaded from the checkpoint folder (whose
`pytorch_model.bin` must be the one the pack records), run as modelscope's
`_traverse_inference` runs it for one-token answers: the encoder on the
image and prompt, the decoder on `[bos]`, the logits of the answer tokens.
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

import wheels  # noqa: E402
from ofa import checkpoint as ck  # noqa: E402
from ofa import modelscope_code  # noqa: E402

ROOT = HERE.parents[2]


class AttrDict(dict):
    """modelscope's ConfigDict, as far as its OFA preprocessor uses one."""

    def __getattr__(self, name):
        try:
            value = self[name]
        except KeyError:
            raise AttributeError(name) from None
        return AttrDict(value) if isinstance(value, dict) else value


def preprocessor(ms, checkpoint):
    cfg = AttrDict(checkpoint.configuration)
    cfg["task"] = "visual-entailment"
    return ms.OfaVisualEntailmentPreprocessor(cfg, str(checkpoint.dir), mode="inference")


def answer_logits(model, answer_ids, ms, ids, patch_image):
    with torch.no_grad():
        encoder_out = model.encoder(
            input_ids=ids, patch_images=patch_image, patch_masks=torch.tensor([True])
        )
        prev = torch.tensor([[model.config.bos_token_id]], dtype=torch.long)
        mask = ms.expand_mask(encoder_out["padding_mask"], encoder_out["last_hidden_state"].dtype, 1)
        decoder_out = model.decoder(
            prev,
            encoder_hidden_states=encoder_out["last_hidden_state"],
            encoder_attention_mask=mask,
            src_pos_embed=encoder_out["position_embedding"],
        )
        return decoder_out[0][0, 0, answer_ids].tolist()


def main():
    request = json.load(sys.stdin)
    torch.set_num_threads(1)
    ms = modelscope_code.load(ROOT / ".cache" / "ofa", ROOT / ".cache" / "wheels-ofa")
    checkpoint = ck.read(Path(request["checkpoint"]), ms)
    manifest = json.loads((Path(request["pack"]) / "manifest.json").read_text())
    recorded = [p for p in manifest["provenance"] if "pytorch_model.bin sha256" in p][0]["pytorch_model.bin sha256"]
    if wheels.sha256_file(checkpoint.dir / "pytorch_model.bin") != recorded:
        sys.exit(f"reference: {checkpoint.dir}/pytorch_model.bin is not the checkpoint the pack was built from")
    answer_ids = manifest["entailment"]["answer_token_ids"]
    pre = preprocessor(ms, checkpoint)
    size = manifest["image"]["size"]
    out = {}
    for case in request["cases"]:
        with Image.open(case["image"]) as im:
            image = ImageOps.exif_transpose(im)
            image.load()
        data = {"image": image, "text": case["sentence"]}
        if case.get("premise") is not None:
            data["text2"] = case["premise"]
        sample = pre(data)
        ms_ids = sample["source"].tolist()
        ms_image = sample["patch_image"].unsqueeze(0)
        engine = np.fromfile(case["tensor"], dtype="<f4").reshape(1, 3, size, size)
        engine_ids = torch.tensor([case["ids"]], dtype=torch.long)
        out[case["id"]] = {
            "modelscope_ids": ms_ids,
            "logits_engine_inputs": answer_logits(checkpoint.model, answer_ids, ms, engine_ids,
                                                  torch.from_numpy(engine)),
            "logits_modelscope": answer_logits(checkpoint.model, answer_ids, ms,
                                               torch.tensor([ms_ids], dtype=torch.long), ms_image),
            "tensor_max_abs_diff": float(np.abs(engine - ms_image.numpy()).max()),
        }
    json.dump({"cases": out}, sys.stdout)


if __name__ == "__main__":
    main()
