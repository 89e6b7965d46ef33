"""The EfficientNet-Lite architecture, read from the reference PyTorch source as text.

efficientnet-lite-pytorch's utils.py defines the Lite variants in data: the
block strings of `efficientnet_lite()` ('r1_k3_s11_e1_i32_o16', ...), its
GlobalParams keywords (batch-norm epsilon, ReLU6, fixed stem and head, no
squeeze-excitation) and the (width, depth, resolution, dropout) coefficients of
`efficientnet_params()`. We parse those literals with `ast` (the package needs
torch, and nothing of a part is ever imported) and expand them the way
model.py's EfficientNet.__init__ does. The weights' shapes are checked against
the result by the ONNX builder.
"""

import ast
import dataclasses
import math
import re


@dataclasses.dataclass(frozen=True)
class Block:
    index: int
    input_filters: int
    output_filters: int
    expand_ratio: int
    kernel_size: int
    stride: int
    id_skip: bool

    @property
    def expanded(self):
        return self.input_filters * self.expand_ratio

    @property
    def residual(self):
        # model.py: skip only when the block keeps both resolution and width.
        return self.id_skip and self.stride == 1 and self.input_filters == self.output_filters


@dataclasses.dataclass(frozen=True)
class Architecture:
    name: str
    image_size: int
    stem_filters: int
    head_filters: int
    blocks: tuple
    batch_norm_epsilon: float
    activation: str
    num_classes: int


class ArchitectureError(Exception):
    pass


def _function(tree, name):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise ArchitectureError(f"utils.py has no function {name}()")


def _lite_block_strings(fn):
    for node in ast.walk(fn):
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "blocks_args" for t in node.targets)
            and isinstance(node.value, ast.List)
        ):
            return [ast.literal_eval(e) for e in node.value.elts]
    raise ArchitectureError("efficientnet_lite() assigns no literal blocks_args list")


def _global_params_keywords(fn):
    for node in ast.walk(fn):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "GlobalParams":
            out = {}
            for kw in node.keywords:
                try:
                    out[kw.arg] = ast.literal_eval(kw.value)
                except ValueError:
                    pass  # arguments passed through (width_coefficient=width_coefficient, ...)
            return out
    raise ArchitectureError("efficientnet_lite() builds no GlobalParams")


def _coefficients(tree, model_name):
    fn = _function(tree, "efficientnet_params")
    for node in ast.walk(fn):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == model_name:
                    return ast.literal_eval(value)
    raise ArchitectureError(f"efficientnet_params() has no entry for {model_name}")


def _decode_block(s):
    # Same grammar as BlockDecoder._decode_block_string: r<repeat>_k<kernel>_s<stride><stride>_e<expand>_i<in>_o<out>[_se<r>][_noskip]
    options = {}
    for op in s.split("_"):
        parts = re.split(r"(\d.*)", op)
        if len(parts) >= 2:
            options[parts[0]] = parts[1]
    stride = options["s"]
    if not (len(stride) == 1 or (len(stride) == 2 and stride[0] == stride[1])):
        raise ArchitectureError(f"block {s!r}: unequal strides")
    return {
        "num_repeat": int(options["r"]),
        "kernel_size": int(options["k"]),
        "stride": int(stride[0]),
        "expand_ratio": int(options["e"]),
        "input_filters": int(options["i"]),
        "output_filters": int(options["o"]),
        "se_ratio": float(options["se"]) if "se" in options else None,
        "id_skip": "noskip" not in s,
    }


def _round_filters(filters, width, divisor, skip=False):
    # utils.round_filters with min_depth=None.
    if skip or not width:
        return filters
    filters *= width
    new = max(divisor, int(filters + divisor / 2) // divisor * divisor)
    if new < 0.9 * filters:
        new += divisor
    return int(new)


def _round_repeats(repeats, depth):
    return repeats if not depth else int(math.ceil(depth * repeats))


def parse(utils_source, model_name="efficientnet-lite0", num_classes=1000):
    tree = ast.parse(utils_source)
    lite = _function(tree, "efficientnet_lite")
    block_strings = _lite_block_strings(lite)
    params = _global_params_keywords(lite)
    width, depth, resolution, _dropout = _coefficients(tree, model_name)

    # The Lite variants as this builder implements them; refuse anything else
    # rather than build a graph that silently differs from the reference.
    expected = {"relu_fn": "relu6", "fix_head_stem": True, "use_se": False, "local_pooling": False}
    for key, value in expected.items():
        if params.get(key) != value:
            raise ArchitectureError(f"GlobalParams {key}={params.get(key)!r}, this builder supports {value!r}")
    divisor = params["depth_divisor"]
    eps = float(params["batch_norm_epsilon"])

    decoded = [_decode_block(s) for s in block_strings]
    if any(b["se_ratio"] is not None for b in decoded):
        raise ArchitectureError("Lite blocks must not use squeeze-excitation")

    blocks = []
    for i, b in enumerate(decoded):
        input_filters = _round_filters(b["input_filters"], width, divisor)
        output_filters = _round_filters(b["output_filters"], width, divisor)
        # fix_head_stem: the first and last stages keep their repeats, and the
        # first stage reads the unscaled 32-channel stem (model.py).
        if i == 0 or i == len(decoded) - 1:
            repeats = b["num_repeat"]
            if i == 0:
                input_filters = 32
        else:
            repeats = _round_repeats(b["num_repeat"], depth)
        for r in range(repeats):
            blocks.append(
                Block(
                    index=len(blocks),
                    input_filters=input_filters if r == 0 else output_filters,
                    output_filters=output_filters,
                    expand_ratio=b["expand_ratio"],
                    kernel_size=b["kernel_size"],
                    stride=b["stride"] if r == 0 else 1,
                    id_skip=b["id_skip"],
                )
            )
    return Architecture(
        name=model_name,
        image_size=int(resolution),
        stem_filters=_round_filters(32, width, divisor, skip=True),
        head_filters=_round_filters(1280, width, divisor, skip=True),
        blocks=tuple(blocks),
        batch_norm_epsilon=eps,
        activation="relu6",
        num_classes=num_classes,
    )


def same_padding(size, kernel, stride):
    """TF 'SAME' padding of one spatial axis: (before, after, output size).

    Conv2dStaticSamePadding: output = ceil(size / stride), the total padding
    split with the odd pixel after (bottom/right).
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out
