"""OFA's visual entailment as two ONNX graphs that tract runs (docs/model-pack.md, kind `ofa-ve`).

- `image_encoder.onnx`: the ResNet stem, `encoder.embed_images`, image in,
  patch features `[1, C, H, W]` out. A worker caches its output per image, so
  several sentences about one image pay for the ResNet once.
- `entailment.onnx`: OFA's encoder over those patch features and the prompt's
  tokens, then the decoder's first step after BOS, returning the logits of the
  three answer tokens only (not the whole 59457-token vocabulary): the
  decoder's output projection is replaced by the three rows of the shared
  embedding that belong to ` yes`, ` no` and ` maybe`.

Both graphs are traced from modelscope's own modules: the encoder is given
the patch features as its `patch_images` with `embed_images` swapped for an
identity, and the decoder is called exactly as modelscope's
`_traverse_inference` calls it for one answer token. While tracing, three
stand-ins compute the same numbers with less work (`swapped`): each encoder
layer's attention bias as the absolute bias plus one lookup (`_LookupBias`),
the image's relative bias from a constant bucket index (`_ImageRelPosBias`),
and the decoder's cross-attention with its key and value projections moved
to the one query (`_FactoredCrossAttention`). The build's self-check compares
the graphs with modelscope's unchanged modules. OFA's encoder branches on
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
        self.last = None  # (patches, index) of the latest lookup: read by _LookupBias

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
        self.last = (n, self.bucket_index(image_position_ids))
        values = table.t().index_select(1, self.last[1])
        values = values.reshape(1, table.shape[1], n, n)
        return values if bsz == 1 else values.expand(bsz, -1, -1, -1)


class _LookupBias:
    """Each encoder layer's attention bias as the absolute position bias plus one lookup.

    modelscope starts each layer's bias from a copy of the absolute position bias
    `[1, heads, L, L]` (image patches first, then the prompt's `T` tokens) and adds the image's
    relative bias into its top-left `n x n` block and the text's into its bottom-right `T x T`
    block, in place: traced, a chain of slices and concatenations that copies the 54 MB bias
    about five times a layer for OFA-large. Both relative biases are lookups into a per-layer
    table by a bucket index, and the two blocks do not overlap, so the same sum is
    `abs + table_l[:, index]`: `table_l` holds the layer's image table, its text table and a row
    of zeros, and `index` (`[L, L]`, the same for every layer, built once a run) holds the bucket
    of each pair: the image's in the image block, the text's (after the image table's rows) in the
    text block, the zero row elsewhere. Every element is the same single addition as modelscope's.

    The absolute bias is rebuilt from the outputs of the encoder's `pos_q_linear` and
    `pos_k_linear`, kept by forward hooks, exactly as modelscope's `build_abs_pos_bias` computes it;
    the bias modelscope assembled is then unused and the exporter drops it.
    """

    def __init__(self, encoder, image_bias: _ImageRelPosBias):
        if encoder.use_ofasys and encoder.entangle_position_embedding:
            raise ValueError("_LookupBias: an encoder without an absolute position bias is not supported")
        self.encoder, self.image_bias = encoder, image_bias
        self.pos = {}
        self.abs, self.index = None, None  # built at the first layer of each run
        self.hooks = [
            encoder.pos_q_linear.register_forward_hook(self._keep("q")),
            encoder.pos_k_linear.register_forward_hook(self._keep("k")),
        ]

    def _keep(self, which):
        def hook(_module, _inputs, output):
            self.pos[which] = output
            self.abs, self.index = None, None  # a new run: rebuild both from this run's tensors
        return hook

    def remove(self):
        for hook in self.hooks:
            hook.remove()

    def _abs(self):
        if self.abs is None:
            enc, (q, k) = self.encoder, (self.pos["q"], self.pos["k"])
            bsz, length = q.size(0), q.size(1)
            pos_q = q.view(bsz, length, enc.num_attention_heads, -1).transpose(1, 2) * enc.pos_scaling
            pos_k = k.view(bsz, length, enc.num_attention_heads, -1).transpose(1, 2)
            self.abs = torch.matmul(pos_q, pos_k.transpose(2, 3))
        return self.abs

    def _index(self):
        if self.index is None:
            enc = self.encoder
            n, image = self.image_bias.last
            text_len = self.image_bias.length
            image_buckets = enc.image_rel_pos_table_list[0].weight.size(0)
            zero_row = image_buckets + enc.token_rel_pos_table_list[0].weight.size(0)
            text = enc.token_rp_bucket[:text_len, :text_len] + image_buckets
            image = image.view(n, n)
            top = torch.cat([image, image.new_full((n, 1), zero_row).expand(n, text_len)], 1)
            bottom = torch.cat([text.new_full((1, 1), zero_row).expand(text_len, n), text], 1)
            self.index = torch.cat([top, bottom], 0).reshape(-1)
        return self.index

    def layer_bias(self, idx, like):
        """Layer `idx`'s bias, shaped as `like` (the bias modelscope assembled)."""
        enc = self.encoder
        real = 0 if enc.share_attn_bias else idx
        image_table = enc.image_rel_pos_table_list[real].weight
        text_table = enc.token_rel_pos_table_list[real].weight
        table = torch.cat([image_table, text_table, image_table.new_zeros(1, image_table.size(1))], 0).t()
        abs_bias = self._abs()
        values = table.index_select(1, self._index()).reshape(1, *abs_bias.shape[1:])
        bias = abs_bias + values
        if bias.shape[-2:] != like.shape[-2:] or bias.numel() != like.numel():
            raise ValueError(f"_LookupBias: layer {idx}'s bias is {tuple(bias.shape)}, modelscope's {tuple(like.shape)}")
        return bias.reshape(like.shape)


class _LayerWithLookupBias(nn.Module):
    """Stands in for an encoder layer while tracing: the layer, given `_LookupBias`'s bias."""

    def __init__(self, layer, bias: _LookupBias, idx: int):
        super().__init__()
        self.layer, self.bias, self.idx = layer, bias, idx

    def forward(self, hidden_states, attention_mask, output_attentions=False, attn_bias=None):
        if attention_mask is not None or attn_bias is None:
            raise ValueError("_LayerWithLookupBias: traced for a prompt without padding, with a bias")
        return self.layer(hidden_states, attention_mask, output_attentions=output_attentions,
                          attn_bias=self.bias.layer_bias(self.idx, attn_bias))


class _FactoredCrossAttention(nn.Module):
    """Stands in for a decoder layer's `cross_attn` while tracing: the same attention, with the
    key and value projections moved from the encoder's positions to the few decoder queries.

    modelscope projects every encoder position through `k_proj` and `v_proj`
    (`[n, d_model] x [d_model, d_model]` twice a layer: 46 GFLOP a verdict for OFA-large over
    916 positions) to be read by one query, the decoder's first step. Per head `h`, with `X` the
    encoder's output, `W` a projection's `[head_dim, d_model]` rows for `h` and `b` their bias:
    `q_h (X W_k^T + b_k)^T` is `(q_h W_k) X^T + q_h . b_k`, and because each row of the softmax
    `P_h` sums to 1, `P_h (X W_v^T + b_v)` is `(P_h X) W_v^T + b_v`. So the graph computes
    `u_h = q_h W_k` (`[t, d_model]`), the scores `u_h X^T`, and the weighted sum `P_h X` before
    `W_v`: a few matrix-vector products instead of two full projections. The same maths to
    rounding; the build's self-check compares the graph with modelscope's own module.
    """

    def __init__(self, attn):
        super().__init__()
        self.attn = attn

    def forward(self, hidden_states, key_value_states=None, past_key_value=None, attention_mask=None,
                output_attentions=False, attn_bias=None):
        a = self.attn
        if key_value_states is None or past_key_value is not None or output_attentions:
            raise ValueError("_FactoredCrossAttention: only the first decoder step's cross-attention is factored")
        bsz, tgt_len, embed_dim = hidden_states.size()
        heads, head_dim = a.num_heads, a.head_dim
        query = (a.q_proj(hidden_states) * a.scaling).view(bsz, tgt_len, heads, head_dim).transpose(1, 2)
        keys = key_value_states.unsqueeze(1)  # [bsz, 1, n, d_model], shared by the heads
        w_k = a.k_proj.weight.view(heads, head_dim, embed_dim)
        scores = torch.matmul(torch.matmul(query, w_k), keys.transpose(-1, -2))  # [bsz, heads, t, n]
        if a.k_proj.bias is not None:
            scores = scores + torch.matmul(query, a.k_proj.bias.view(heads, head_dim, 1))
        if attn_bias is not None:
            scores = scores + attn_bias.view(bsz, heads, tgt_len, -1)
        if attention_mask is not None:
            scores = scores + attention_mask
        probs = torch.softmax(scores, dim=-1)
        w_v = a.v_proj.weight.view(heads, head_dim, embed_dim)
        out = torch.matmul(torch.matmul(probs, keys), w_v.transpose(1, 2))  # [bsz, heads, t, head_dim]
        if a.v_proj.bias is not None:
            out = out + a.v_proj.bias.view(heads, 1, head_dim)
        out = out.transpose(1, 2)  # [bsz, t, heads, head_dim]
        if a.c_attn is not None:
            out = out * a.c_attn.view(heads, 1)
        return a.out_proj(out.reshape(bsz, tgt_len, embed_dim)), None, ()


class swapped:
    """Context manager: `embed_images` -> identity and the output projection -> the answers' rows;
    with `tracing`, also the image attention bias -> one constant-index lookup and the decoder's
    cross-attention -> its factored form (the PyTorch reference runs modelscope's own)."""

    def __init__(self, model, answers: nn.Linear, tracing: bool = False):
        self.model, self.answers, self.tracing = model, answers, tracing

    def __enter__(self):
        encoder = self.model.encoder
        self.saved = (encoder.embed_images, self.model.decoder.output_projection)
        encoder.embed_images = _Features()
        self.model.decoder.output_projection = self.answers
        if self.tracing:
            encoder.get_image_rel_pos_bias = _ImageRelPosBias(encoder)
            self.lookup = _LookupBias(encoder, encoder.get_image_rel_pos_bias)
            for idx, layer in enumerate(encoder.layers):
                encoder.layers[idx] = _LayerWithLookupBias(layer, self.lookup, idx)
            for layer in self.model.decoder.layers:
                layer.cross_attn = _FactoredCrossAttention(layer.cross_attn)
        return self

    def __exit__(self, *exc):
        encoder = self.model.encoder
        encoder.embed_images, self.model.decoder.output_projection = self.saved
        if self.tracing:
            del encoder.get_image_rel_pos_bias  # the instance attribute: the class's method again
            self.lookup.remove()
            for idx, layer in enumerate(encoder.layers):
                encoder.layers[idx] = layer.layer
            for layer in self.model.decoder.layers:
                layer.cross_attn = layer.cross_attn.attn
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


def drop_unused(path: Path):
    """Removes what no output reads: modelscope's own assembly of the encoder's attention bias,
    traced beside `_LookupBias`'s (see there), and everything only it used."""
    model = onnx.load(str(path))
    before = len(model.graph.node)
    _drop_unused(model.graph)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return before - len(model.graph.node)


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
    drop_unused(out / "entailment.onnx")
    return list(features.shape)


def entailment_logits(model, answer_ids, bos_id, expand_mask, ids, features):
    """The same computation in PyTorch (what the graph was traced from)."""
    graph = EntailmentGraph(model, answer_ids, bos_id, expand_mask).eval()
    with torch.no_grad(), swapped(model, graph.answers):
        return graph(torch.tensor([ids], dtype=torch.long), features)[0].tolist()
