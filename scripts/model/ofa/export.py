"""OFA's visual entailment as two ONNX graphs that tract runs (docs/model-pack.md, kind `ofa-ve`).

- `image_encoder.onnx`: the ResNet stem, `encoder.embed_images`, image in,
  patch features `[1, C, H, W]` out. A worker caches its output per image, so
  several sentences about one image pay for the ResNet once.
- `entailment.onnx`: OFA's encoder over those patch features and the prompt's
  tokens, then the decoder's first step after BOS, returning the logits of the
  three answer tokens only (not the whole 59457-token vocabulary): the
  decoder's output projection is replaced by the three rows of the shared
  embedding that belong to ` yes`, ` no` and ` maybe`.

Both graphs are traced from modelscope's own modules, unchanged: the encoder
is given the patch features as its `patch_images` with `embed_images` swapped
for an identity, and the decoder is called exactly as modelscope's
`_traverse_inference` calls it for one answer token. OFA's encoder branches on
whether the batch has padding; the export traces the branch without padding,
so `input_ids` must hold no padding (a worker runs one prompt at a time, at its
own length: the sequence axis is symbolic).
"""

from pathlib import Path

import onnx
import torch
from onnx import TensorProto, helper, shape_inference
from torch import nn

OPSET = 17


class ImageGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.embed_images = model.encoder.embed_images

    def forward(self, image):
        return self.embed_images(image)


class _Features(nn.Module):
    """Stands in for `embed_images`: the features were computed by the image graph."""

    def forward(self, features):
        return features


class EntailmentGraph(nn.Module):
    def __init__(self, model, answer_ids, bos_id, expand_mask):
        super().__init__()
        self.encoder = model.encoder
        self.decoder = model.decoder
        self.bos_id = bos_id
        self.expand_mask = expand_mask
        weight = model.decoder.output_projection.weight.detach()[answer_ids].clone()
        self.answers = nn.Linear(weight.shape[1], len(answer_ids), bias=False)
        self.answers.weight = nn.Parameter(weight)

    def forward(self, input_ids, image_features):
        patch_masks = torch.ones(input_ids.size(0), dtype=torch.bool)
        encoder_out = self.encoder(input_ids=input_ids, patch_images=image_features, patch_masks=patch_masks)
        prev = torch.full((input_ids.size(0), 1), self.bos_id, dtype=torch.long)
        attention_mask = self.expand_mask(
            encoder_out["padding_mask"], encoder_out["last_hidden_state"].dtype, prev.shape[-1]
        )
        decoder_out = self.decoder(
            prev,
            encoder_hidden_states=encoder_out["last_hidden_state"],
            encoder_attention_mask=attention_mask,
            src_pos_embed=encoder_out["position_embedding"],
        )
        return decoder_out[0][:, 0, :]


class swapped:
    """Context manager: `embed_images` -> identity and the output projection -> the answers' rows."""

    def __init__(self, model, answers: nn.Linear):
        self.model, self.answers = model, answers

    def __enter__(self):
        self.saved = (self.model.encoder.embed_images, self.model.decoder.output_projection)
        self.model.encoder.embed_images = _Features()
        self.model.decoder.output_projection = self.answers
        return self

    def __exit__(self, *exc):
        self.model.encoder.embed_images, self.model.decoder.output_projection = self.saved
        return False


def bool_where_to_logic(path: Path):
    """Rewrites `Where(c, x, y)` on booleans as `Or(And(c, x), And(Not(c), y))`.

    modelscope's `image_padding_mask[~patch_masks] = True` traces to a `Where`
    over booleans, which onnxruntime implements for no boolean type; the logic
    ops compute the same thing for every input.
    """
    model = onnx.load(str(path))
    inferred = shape_inference.infer_shapes(model)
    types = {
        v.name: v.type.tensor_type.elem_type
        for v in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)
    }
    for init in model.graph.initializer:
        types[init.name] = init.data_type
    for node in model.graph.node:
        if node.op_type == "Constant":
            types[node.output[0]] = node.attribute[0].t.data_type
    nodes = []
    for node in model.graph.node:
        if node.op_type == "Where" and types.get(node.input[1]) == TensorProto.BOOL:
            c, x, y = node.input
            base = node.name or node.output[0]
            nodes += [
                helper.make_node("And", [c, x], [f"{base}/and_x"], name=f"{base}/and_x"),
                helper.make_node("Not", [c], [f"{base}/not_c"], name=f"{base}/not_c"),
                helper.make_node("And", [f"{base}/not_c", y], [f"{base}/and_y"], name=f"{base}/and_y"),
                helper.make_node("Or", [f"{base}/and_x", f"{base}/and_y"], list(node.output), name=f"{base}/or"),
            ]
        else:
            nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def export(model, size: int, answer_ids, bos_id, expand_mask, out: Path, sample_ids):
    """Writes both graphs into `out`; returns the patch features' shape."""
    model.eval()
    image = torch.zeros(1, 3, size, size)
    with torch.no_grad():
        features = model.encoder.embed_images(image)
        torch.onnx.export(
            ImageGraph(model), (image,), str(out / "image_encoder.onnx"),
            input_names=["image"], output_names=["image_features"],
            opset_version=OPSET, dynamo=False, do_constant_folding=True,
        )
        graph = EntailmentGraph(model, answer_ids, bos_id, expand_mask).eval()
        ids = torch.tensor([sample_ids], dtype=torch.long)
        with swapped(model, graph.answers):
            torch.onnx.export(
                graph, (ids, features), str(out / "entailment.onnx"),
                input_names=["input_ids", "image_features"], output_names=["answer_logits"],
                dynamic_axes={"input_ids": {1: "sequence"}},
                opset_version=OPSET, dynamo=False, do_constant_folding=True,
            )
    bool_where_to_logic(out / "entailment.onnx")
    return list(features.shape)


def entailment_logits(model, answer_ids, bos_id, expand_mask, ids, features):
    """The same computation in PyTorch (what the graph was traced from)."""
    graph = EntailmentGraph(model, answer_ids, bos_id, expand_mask).eval()
    with torch.no_grad(), swapped(model, graph.answers):
        return graph(torch.tensor([ids], dtype=torch.long), features)[0].tolist()
