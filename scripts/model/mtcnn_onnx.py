"""Write MTCNN's three networks (P-Net, R-Net, O-Net) as ONNX graphs from state dicts (numpy arrays).

The weights are facenet-pytorch's (facenet_pytorch/data/{pnet,rnet,onet}.pt,
read with torch_legacy, never with torch); the layers are those of
facenet_pytorch/models/mtcnn.py: plain convolutions without padding, PReLU,
max pooling with ceil_mode, and for R-Net and O-Net dense layers whose input is
the last feature map flattened in (width, height, channel) order (the
networks were converted from Caffe via TensorFlow; mtcnn.py permutes to
[N, W, H, C] before flattening). That permutation is folded into the first
dense layer's weight columns here, so the graph flattens the usual [N, C, H, W]
and needs no Transpose.

Ops: Conv, PReLU (as Max(x, slope * x) where every slope of the layer is
<= 1, PRelu otherwise), MaxPool (ceil_mode=1, no padding), Flatten, Gemm, and
for the face probability a Sigmoid of the two logits' differences (equal to
their softmax, and far cheaper in tract than a Softmax over P-Net's channels).
Opset 13, like the image encoder, so tract 0.23 loads it.

Outputs: P-Net's `prob` [1, 2, h, w] (softmax over the channel: 0 no face,
1 face) and `reg` [1, 4, h, w] (box offsets, fractions of the 12 px window);
R-Net's and O-Net's `prob` [N, 2] and `reg` [N, 4]; O-Net also has
`landmarks` [N, 10] (five x then five y, fractions of the box), which the
engine does not use but which is kept so the graph is the whole network.
"""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13

# (name, input side, layers); a layer is ("conv", name, cin, cout, k), ("prelu", name, c),
# ("pool", k, s), ("flatten", c, h, w) or ("dense", name, cin, cout).
# The spatial sides each layer sees follow from the input side (None: P-Net, any size).
NETS = {
    "pnet": (
        None,
        [
            ("conv", "conv1", 3, 10, 3), ("prelu", "prelu1", 10), ("pool", 2, 2),
            ("conv", "conv2", 10, 16, 3), ("prelu", "prelu2", 16),
            ("conv", "conv3", 16, 32, 3), ("prelu", "prelu3", 32),
        ],
    ),
    "rnet": (
        24,
        [
            ("conv", "conv1", 3, 28, 3), ("prelu", "prelu1", 28), ("pool", 3, 2),
            ("conv", "conv2", 28, 48, 3), ("prelu", "prelu2", 48), ("pool", 3, 2),
            ("conv", "conv3", 48, 64, 2), ("prelu", "prelu3", 64),
            ("flatten", 64, 3, 3),
            ("dense", "dense4", 576, 128), ("prelu", "prelu4", 128),
        ],
    ),
    "onet": (
        48,
        [
            ("conv", "conv1", 3, 32, 3), ("prelu", "prelu1", 32), ("pool", 3, 2),
            ("conv", "conv2", 32, 64, 3), ("prelu", "prelu2", 64), ("pool", 3, 2),
            ("conv", "conv3", 64, 64, 3), ("prelu", "prelu3", 64), ("pool", 2, 2),
            ("conv", "conv4", 64, 128, 2), ("prelu", "prelu4", 128),
            ("flatten", 128, 3, 3),
            ("dense", "dense5", 1152, 256), ("prelu", "prelu5", 256),
        ],
    ),
}

# The heads: (output name, layer name, channels); P-Net's are 1x1 convolutions, the others dense.
HEADS = {
    "pnet": [("prob", "conv4_1", 2), ("reg", "conv4_2", 4)],
    "rnet": [("prob", "dense5_1", 2), ("reg", "dense5_2", 4)],
    "onet": [("prob", "dense6_1", 2), ("reg", "dense6_2", 4), ("landmarks", "dense6_3", 10)],
}
INPUT = "image"


class WeightsError(Exception):
    pass


class _Graph:
    def __init__(self, state_dict):
        self.sd = state_dict
        self.used = set()
        self.nodes = []
        self.initializers = []

    def weight(self, name, shape):
        if name not in self.sd:
            raise WeightsError(f"the checkpoint has no tensor {name}")
        value = self.sd[name]
        if tuple(value.shape) != tuple(shape):
            raise WeightsError(f"{name} has shape {tuple(value.shape)}, the network needs {tuple(shape)}")
        if value.dtype != np.float32 or not np.all(np.isfinite(value)):
            raise WeightsError(f"{name} is not finite float32")
        self.used.add(name)
        return value

    def const(self, name, array):
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    def node(self, op, inputs, output, **attrs):
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output


def _dense_from_whc(w, c, h, width):
    """Reorder a dense weight's columns from mtcnn.py's (W, H, C) flattening to ONNX's (C, H, W)."""
    out = w.shape[0]
    return w.reshape(out, width, h, c).transpose(0, 3, 2, 1).reshape(out, c * h * width)


def build(net, state_dict):
    """onnx.ModelProto of `net` ("pnet", "rnet" or "onet") with the weights of `state_dict`."""
    side, layers = NETS[net]
    g = _Graph(state_dict)
    x = INPUT
    flat = None
    for layer in layers:
        kind = layer[0]
        if kind == "conv":
            _, name, cin, cout, k = layer
            w = g.weight(f"{name}.weight", (cout, cin, k, k))
            b = g.weight(f"{name}.bias", (cout,))
            x = g.node(
                "Conv", [x, g.const(f"{name}.w", w), g.const(f"{name}.b", b)], f"{name}.out",
                kernel_shape=[k, k], strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1], group=1,
            )
        elif kind == "prelu":
            _, name, c = layer
            slope = g.weight(f"{name}.weight", (c,))
            shape = (c,) if flat else (c, 1, 1)
            s_const = g.const(f"{name}.slope", slope.reshape(shape))
            if np.all(slope <= 1.0):
                # With every slope <= 1, PReLU(x) = max(x, slope * x): two
                # element passes in tract, where its PRelu takes three.
                scaled = g.node("Mul", [x, s_const], f"{name}.scaled")
                x = g.node("Max", [x, scaled], f"{name}.out")
            else:
                x = g.node("PRelu", [x, s_const], f"{name}.out")
        elif kind == "pool":
            _, k, s = layer
            x = g.node(
                "MaxPool", [x], f"{x}.pool", kernel_shape=[k, k], strides=[s, s], pads=[0, 0, 0, 0], ceil_mode=1
            )
        elif kind == "flatten":
            flat = layer[1:]
            x = g.node("Flatten", [x], "flat", axis=1)
        elif kind == "dense":
            _, name, cin, cout = layer
            w = g.weight(f"{name}.weight", (cout, cin))
            if flat is not None and cin == int(np.prod(flat)) and x == "flat":
                w = _dense_from_whc(w, *flat)
            b = g.weight(f"{name}.bias", (cout,))
            x = g.node("Gemm", [x, g.const(f"{name}.w", w), g.const(f"{name}.b", b)], f"{name}.out", transB=1)
    features, feature_channels = x, layers[-1][2]
    outputs = []
    for out_name, name, c in HEADS[net]:
        shape = (c, feature_channels, 1, 1) if net == "pnet" else (c, feature_channels)
        w = g.weight(f"{name}.weight", shape).astype(np.float64)
        b = g.weight(f"{name}.bias", (c,)).astype(np.float64)
        if out_name == "prob":
            # The softmax of two logits is the sigmoid of their differences:
            # the head computes (l0 - l1, l1 - l0), then a Sigmoid, elementwise
            # (tract's Softmax over P-Net's channel axis is slow).
            w = np.stack([w[0] - w[1], w[1] - w[0]])
            b = np.array([b[0] - b[1], b[1] - b[0]])
            head = f"{name}.out"
        else:
            head = out_name
        w, b = w.astype(np.float32), b.astype(np.float32)
        if net == "pnet":
            y = g.node(
                "Conv", [features, g.const(f"{name}.w", w), g.const(f"{name}.b", b)], head,
                kernel_shape=[1, 1], strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1], group=1,
            )
        else:
            y = g.node("Gemm", [features, g.const(f"{name}.w", w), g.const(f"{name}.b", b)], head, transB=1)
        if out_name == "prob":
            y = g.node("Sigmoid", [y], "prob")
        outputs.append((out_name, c))

    unused = sorted(set(state_dict) - g.used)
    if unused:
        raise WeightsError(f"the network leaves checkpoint tensors unused: {unused[:5]}")

    if net == "pnet":
        in_shape = [1, 3, "height", "width"]
        out_shapes = {name: [1, c, "out_height", "out_width"] for name, c in outputs}
    else:
        in_shape = ["batch", 3, side, side]
        out_shapes = {name: ["batch", c] for name, c in outputs}
    graph = helper.make_graph(
        g.nodes,
        f"mtcnn_{net}",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, out_shapes[name]) for name, _ in outputs],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="verdict scripts/model/mtcnn_onnx.py",
        doc_string=f"MTCNN {net} (facenet-pytorch's weights); input (pixel - 127.5) / 128, RGB, NCHW",
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def output_names(net):
    """The graph's outputs, in order ("face_pnet" and the like are accepted too)."""
    return [name for name, _, _ in HEADS[net.removeprefix("face_")]]
