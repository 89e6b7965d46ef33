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

import hashlib
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper, shape_inference
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
        if isinstance(self.encoder.get_image_rel_pos_bias, _ImageRelPosBias):
            self.encoder.get_image_rel_pos_bias.length = input_ids.size(1)
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


class _ImageRelPosBias:
    """Stands in for the encoder's `get_image_rel_pos_bias` while tracing: the same values, read
    with one constant index from the layer's bias table laid out heads first.

    modelscope builds each layer's `[1, heads, n, n]` image bias at run time: the bucket table
    broadcast and gathered twice by the patches' position ids (`GatherElements`), an embedding
    lookup to `[1, n, n, heads]`, then a transpose that moves the whole result. The position ids
    depend only on the patch grid, which the export fixes, so the buckets are a constant: here
    the same two gathers run once, eagerly, and each layer's bias is a single `Gather` along the
    table's bucket axis, already heads first. Exactly the same numbers (every step is a lookup);
    the build's self-check compares the graph with modelscope's own method.
    """

    def __init__(self, encoder):
        self.encoder = encoder
        self.index = {}  # patch grid shape -> the traced bucket index, one for every layer
        self.length = None

    def bucket_index(self, image_position_ids):
        """The flat `[n * n]` bucket index for these position ids, built once per shape."""
        shape = tuple(int(d) for d in image_position_ids.shape)
        if shape in self.index:
            return self.index[shape]
        if self.length is None:
            raise ValueError("_ImageRelPosBias.length: set it to input_ids.size(1) before tracing")
        with torch.no_grad():
            ids = image_position_ids.detach().clone()
            size = self.encoder.image_rp_bucket.size(1)
            buckets = (
                self.encoder.image_rp_bucket.unsqueeze(0)
                .expand(shape[0], size, size)
                .gather(1, ids[:, :, None].expand(shape[0], shape[1], size))
                .gather(2, ids[:, None, :].expand(shape[0], shape[1], shape[1]))
            )
        if not bool((buckets == buckets[:1]).all()):
            raise ValueError("image position ids differ across the batch: cannot export one bucket table")
        # Adding `0 * length` ties the index to the prompt's symbolic length, so the exporter's
        # constant folding cannot turn each layer's lookup into a `[heads, n * n]` constant of its
        # own (52 MB a layer for OFA-large, over protobuf's 2 GB); tract does not fold a lookup
        # that grows its input either.
        self.index[shape] = torch.from_numpy(buckets[0].reshape(-1).numpy().copy()) + 0 * self.length
        return self.index[shape]

    def __call__(self, image_position_ids, idx):
        bsz, n = image_position_ids.shape
        table = self.encoder.image_rel_pos_table_list[idx].weight
        values = table.t().index_select(1, self.bucket_index(image_position_ids))
        values = values.reshape(1, table.shape[1], n, n)
        return values if bsz == 1 else values.expand(bsz, -1, -1, -1)


class swapped:
    """Context manager: `embed_images` -> identity and the output projection -> the answers' rows;
    with `tracing`, also the image attention bias -> one constant-index lookup (the PyTorch
    reference runs modelscope's own)."""

    def __init__(self, model, answers: nn.Linear, tracing: bool = False):
        self.model, self.answers, self.tracing = model, answers, tracing

    def __enter__(self):
        encoder = self.model.encoder
        self.saved = (encoder.embed_images, self.model.decoder.output_projection)
        encoder.embed_images = _Features()
        self.model.decoder.output_projection = self.answers
        if self.tracing:
            encoder.get_image_rel_pos_bias = _ImageRelPosBias(encoder)
        return self

    def __exit__(self, *exc):
        encoder = self.model.encoder
        encoder.embed_images, self.model.decoder.output_projection = self.saved
        if self.tracing:
            del encoder.get_image_rel_pos_bias  # the instance attribute: the class's method again
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


INT64_MAX = 2**63 - 1


def _const_values(graph):
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _block_axes(indices: str, producer, values):
    """The selection per axis of a `ScatterND` whose indices enumerate a block.

    PyTorch traces an in-place update of a slice (`bias[:, :, -n:, -n:] += x`)
    to `ScatterND(bias, indices, updates)` with indices built as the Cartesian
    product of one index range per axis:
    `Concat(Unsqueeze(Expand(Reshape(r_k, [-1, 1, ...])), -1) for each k)`,
    where `r_k` is `Range(0, dim_k, 1)` (the whole axis) or
    `Slice(Range(0, dim_k, 1), start, end, [0], [1])` (a contiguous part).
    Returns `[None | (start, end)]` per axis (names of 1-D int64 tensors), or
    None when the indices are anything else.
    """
    concat = producer.get(indices)
    if concat is None or concat.op_type != "Concat":
        return None
    rank = len(concat.input)
    axes = []
    for k, part in enumerate(concat.input):
        unsqueeze = producer.get(part)
        if unsqueeze is None or unsqueeze.op_type != "Unsqueeze" or len(unsqueeze.input) != 2:
            return None
        if list(values.get(unsqueeze.input[1], [])) != [-1]:
            return None
        expand = producer.get(unsqueeze.input[0])
        if expand is None or expand.op_type != "Expand":
            return None
        source = producer.get(expand.input[0])
        if k < rank - 1:
            if source is None or source.op_type != "Reshape":
                return None
            if list(values.get(source.input[1], [])) != [-1] + [1] * (rank - 1 - k):
                return None
            source = producer.get(source.input[0])
        if source is None:
            return None
        selection = None
        if source.op_type == "Slice":
            if len(source.input) != 5 or list(values.get(source.input[3], [])) != [0] \
                    or list(values.get(source.input[4], [])) != [1]:
                return None
            selection = (source.input[1], source.input[2])
            source = producer.get(source.input[0])
        if source is None or source.op_type != "Range":
            return None
        start, delta = values.get(source.input[0]), values.get(source.input[2])
        if start is None or delta is None or int(start) != 0 or int(delta) != 1:
            return None
        axes.append(selection)
    return axes


def _signature(name, producer, values, memo):
    """A digest of how a tensor is computed (ops, attributes, constants, inputs)."""
    if name not in memo:
        if name in values:
            v = values[name]
            parts = ("const", str(v.dtype), v.shape, hashlib.sha256(v.tobytes()).hexdigest())
        elif name not in producer:
            parts = ("input", name)
        else:
            node = producer[name]
            attrs = sorted((a.name, repr(helper.get_attribute_value(a))) for a in node.attribute)
            parts = (node.op_type, attrs, list(node.output).index(name),
                     [_signature(i, producer, values, memo) for i in node.input])
        memo[name] = hashlib.sha256(repr(parts).encode()).hexdigest()
    return memo[name]


def _reshaped_source(name, producer):
    """The tensor under a chain of `Reshape`s and `Expand`s."""
    while name in producer and producer[name].op_type in ("Reshape", "Expand"):
        name = producer[name].input[0]
    return name


def drop_repeated_scatters(graph, producer, values):
    """Drops the second of two `ScatterND`s that write the same block with the same values.

    `bias[:, :, a:b, c:d] += x` traces to two writes: the in-place add into
    the view (ScatterND A), then the assignment of that view back into the
    same block (ScatterND B on A's output), with updates reshaped from the
    same sum. B changes nothing; it is replaced by A's output. Only where B's
    block is proved the same (the same computation of every bound) and both
    updates are reshapes of the same tensor.
    """
    scatters = {node.output[0]: node for node in graph.node if node.op_type == "ScatterND"}
    memo, dropped, nodes = {}, 0, []
    for node in graph.node:
        first = scatters.get(node.input[0]) if node.op_type == "ScatterND" else None
        if first is not None:
            blocks = [_block_axes(n.input[1], producer, values) for n in (first, node)]

            def bounds(block):
                return [sel and tuple(_signature(t, producer, values, memo) for t in sel) for sel in block]

            same = None not in blocks and bounds(blocks[0]) == bounds(blocks[1])
            if same and _reshaped_source(first.input[2], producer) == _reshaped_source(node.input[2], producer):
                nodes.append(helper.make_node("Identity", [first.output[0]], list(node.output),
                                              name=node.name or node.output[0]))
                dropped += 1
                continue
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    return dropped


def scatter_blocks_to_slices(path: Path):
    """Rewrites each `ScatterND` that writes a contiguous block as slices and a concat.

    OFA's encoder adds its relative position biases into the attention bias in
    place, a text block and an image block per layer, which the tracer turns
    into 48 `ScatterND`s whose index tensors hold one 4-tuple per element: for
    the 16 x 900 x 900 image block, 414 MB of int64 built and read per op and
    run. The same result is the block of `updates` with the untouched parts
    of `data` around it: along each sliced axis k (from the first),
    `Concat(data[.., :start], inner, data[.., end:], axis=k)`. Exact for every
    input: only where the indices are proven to be such a block (see
    `_block_axes`); the build's self-check then compares the graph with
    PyTorch.
    """
    model = onnx.load(str(path))
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    values = _const_values(graph)
    dropped = drop_repeated_scatters(graph, producer, values)
    producer = {out: node for node in graph.node for out in node.output}
    zero = "scatter_blocks/zero"
    extra = [helper.make_node("Constant", [], [zero], name=zero,
                              value=numpy_helper.from_array(np.array([0], dtype=np.int64)))]
    axis_consts = {}

    def axis_const(k):
        if k not in axis_consts:
            name = f"scatter_blocks/axis_{k}"
            extra.append(helper.make_node("Constant", [], [name], name=name,
                                          value=numpy_helper.from_array(np.array([k], dtype=np.int64))))
            axis_consts[k] = name
        return axis_consts[k]

    nodes, rewritten = [], 0
    for node in graph.node:
        axes = _block_axes(node.input[1], producer, values) if node.op_type == "ScatterND" else None
        reduction = [a for a in node.attribute if a.name == "reduction"]
        if axes is None or (reduction and helper.get_attribute_value(reduction[0]) not in (b"none", "none")):
            nodes.append(node)
            continue
        base = node.name or node.output[0]
        data, updates = node.input[0], node.input[2]
        sliced = [(k, sel) for k, sel in enumerate(axes) if sel is not None]

        def place(region, depth):
            if depth == len(sliced):
                return updates
            k, (start, stop) = sliced[depth]
            ax = axis_const(k)
            names = [f"{base}/blk{depth}_{part}" for part in ("before", "mid", "after", "out", "shape", "dim")]
            # The axis' length, as a 1-D tensor: the end of `after`, and of the
            # block where the trace wrote INT64_MAX ("to the end").
            nodes.append(helper.make_node("Shape", [region], [names[4]], name=names[4]))
            nodes.append(helper.make_node("Slice", [names[4], ax, axis_const(k + 1)], [names[5]], name=names[5]))
            if int(np.asarray(values.get(stop, [0])).reshape(-1)[0]) == INT64_MAX:
                stop = names[5]
            nodes.append(helper.make_node("Slice", [region, zero, start, ax], [names[0]], name=names[0]))
            nodes.append(helper.make_node("Slice", [region, start, stop, ax], [names[1]], name=names[1]))
            nodes.append(helper.make_node("Slice", [region, stop, names[5], ax], [names[2]], name=names[2]))
            inner = place(names[1], depth + 1)
            out = node.output[0] if depth == 0 else names[3]
            nodes.append(helper.make_node("Concat", [names[0], inner, names[2]], [out], name=names[3], axis=k))
            return out

        if sliced:
            place(data, 0)
        else:
            nodes.append(helper.make_node("Identity", [updates], list(node.output), name=base))
        rewritten += 1
    del graph.node[:]
    graph.node.extend(extra + nodes)
    _drop_unused(graph)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return rewritten, dropped


def _drop_unused(graph):
    """Removes nodes (and initializers) that no graph output depends on."""
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
    del graph.node[:]
    graph.node.extend(reversed(keep))
    inits = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)


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
        with swapped(model, graph.answers, tracing=True):
            torch.onnx.export(
                graph, (ids, features), str(out / "entailment.onnx"),
                input_names=["input_ids", "image_features"], output_names=["answer_logits"],
                dynamic_axes={"input_ids": {1: "sequence"}},
                opset_version=OPSET, dynamo=False, do_constant_folding=True,
            )
    bool_where_to_logic(out / "entailment.onnx")
    scatter_blocks_to_slices(out / "entailment.onnx")
    return list(features.shape)


def entailment_logits(model, answer_ids, bos_id, expand_mask, ids, features):
    """The same computation in PyTorch (what the graph was traced from)."""
    graph = EntailmentGraph(model, answer_ids, bos_id, expand_mask).eval()
    with torch.no_grad(), swapped(model, graph.answers):
        return graph(torch.tensor([ids], dtype=torch.long), features)[0].tolist()
