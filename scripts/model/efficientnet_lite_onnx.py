"""Write EfficientNet-Lite as an ONNX graph from a state dict (numpy arrays), with plain ops.

Every convolution carries its batch norm folded in (w * g / sqrt(v + eps), b - m * g / sqrt(v + eps)),
so the graph is only Conv, Clip (ReLU6), Add (residuals), GlobalAveragePool,
Flatten and Gemm. SAME padding is written as each Conv's explicit, possibly
asymmetric `pads` (the extra pixel bottom/right), not auto_pad, so every
runtime computes the same thing. Opset 13 keeps it loadable by older runtimes
(tract 0.23 included).
"""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from efficientnet_lite_arch import same_padding

OPSET = 13


class WeightsError(Exception):
    pass


class _Graph:
    def __init__(self, state_dict, eps):
        self.sd = state_dict
        self.eps = eps
        self.used = set()
        self.nodes = []
        self.initializers = []

    def weight(self, name, shape=None):
        if name not in self.sd:
            raise WeightsError(f"the checkpoint has no tensor {name}")
        value = self.sd[name]
        if shape is not None and tuple(value.shape) != tuple(shape):
            raise WeightsError(f"{name} has shape {tuple(value.shape)}, the architecture needs {tuple(shape)}")
        self.used.add(name)
        return value

    def const(self, name, array):
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def conv_bn(self, x, conv, bn, cin, cout, kernel, stride, size, groups=1, relu6=True):
        """Conv (bias-free in the checkpoint) + batch norm folded, optionally ReLU6. Returns (output, size)."""
        w = self.weight(f"{conv}.weight", (cout, cin // groups, kernel, kernel)).astype(np.float64)
        gamma = self.weight(f"{bn}.weight", (cout,)).astype(np.float64)
        beta = self.weight(f"{bn}.bias", (cout,)).astype(np.float64)
        mean = self.weight(f"{bn}.running_mean", (cout,)).astype(np.float64)
        var = self.weight(f"{bn}.running_var", (cout,)).astype(np.float64)
        self.used.add(f"{bn}.num_batches_tracked")
        scale = gamma / np.sqrt(var + self.eps)
        w_folded = (w * scale[:, None, None, None]).astype(np.float32)
        b_folded = (beta - mean * scale).astype(np.float32)
        before, after, out_size = same_padding(size, kernel, stride)
        y = f"{conv}.out"
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, self.const(f"{conv}.w", w_folded), self.const(f"{conv}.b", b_folded)],
                [y],
                name=conv,
                kernel_shape=[kernel, kernel],
                strides=[stride, stride],
                pads=[before, before, after, after],  # [top, left, bottom, right]
                dilations=[1, 1],
                group=groups,
            )
        )
        if relu6:
            y = self.relu6(y, conv)
        return y, out_size

    def relu6(self, x, prefix):
        y = f"{prefix}.relu6"
        self.nodes.append(helper.make_node("Clip", [x, "relu6.min", "relu6.max"], [y], name=y))
        return y


def build(arch, state_dict, input_name="image", output_name="logits"):
    """Return an onnx.ModelProto for `arch` with the weights of `state_dict`."""
    g = _Graph(state_dict, arch.batch_norm_epsilon)
    g.const("relu6.min", np.array(0.0, dtype=np.float32))
    g.const("relu6.max", np.array(6.0, dtype=np.float32))
    size = arch.image_size

    x, size = g.conv_bn(input_name, "_conv_stem", "_bn0", 3, arch.stem_filters, 3, 2, size)
    for b in arch.blocks:
        p = f"_blocks.{b.index}"
        inp = x
        if b.expand_ratio != 1:
            x, _ = g.conv_bn(x, f"{p}._expand_conv", f"{p}._bn0", b.input_filters, b.expanded, 1, 1, size)
        x, size = g.conv_bn(
            x, f"{p}._depthwise_conv", f"{p}._bn1", b.expanded, b.expanded, b.kernel_size, b.stride, size,
            groups=b.expanded,
        )
        x, _ = g.conv_bn(x, f"{p}._project_conv", f"{p}._bn2", b.expanded, b.output_filters, 1, 1, size, relu6=False)
        if b.residual:
            y = f"{p}.add"
            g.nodes.append(helper.make_node("Add", [x, inp], [y], name=y))
            x = y
    last = arch.blocks[-1].output_filters
    x, size = g.conv_bn(x, "_conv_head", "_bn1", last, arch.head_filters, 1, 1, size)

    g.nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"], name="pool"))
    g.nodes.append(helper.make_node("Flatten", ["pooled"], ["features"], name="flatten", axis=1))
    fc_w = g.weight("_fc.weight", (arch.num_classes, arch.head_filters)).astype(np.float32)
    fc_b = g.weight("_fc.bias", (arch.num_classes,)).astype(np.float32)
    g.nodes.append(
        helper.make_node(
            "Gemm", ["features", g.const("_fc.w", fc_w), g.const("_fc.b", fc_b)], [output_name], name="fc", transB=1
        )
    )

    unused = sorted(set(state_dict) - g.used)
    if unused:
        raise WeightsError(f"the architecture leaves checkpoint tensors unused: {unused[:5]}")

    graph = helper.make_graph(
        g.nodes,
        arch.name,
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [1, 3, arch.image_size, arch.image_size])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [1, arch.num_classes])],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="verdict scripts/model/efficientnet_lite_onnx.py",
        doc_string=f"{arch.name}, ImageNet-1k logits; batch norm folded into the convolutions",
    )
    model.ir_version = 8  # the IR version of opset 13's era, for older loaders
    onnx.checker.check_model(model, full_check=True)
    return model
