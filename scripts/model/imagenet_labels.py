"""The 1000 ImageNet-1k class names, in class-index order, from torchvision's source as text.

torchvision/models/_meta.py holds `_IMAGENET_CATEGORIES = [...]`, a literal
list; we read it with `ast` from the wheel (torchvision is never installed or
imported).
"""

import ast


class LabelsError(Exception):
    pass


def parse(meta_source, expected=1000):
    tree = ast.parse(meta_source)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "_IMAGENET_CATEGORIES" for t in node.targets
        ):
            names = ast.literal_eval(node.value)
            break
    else:
        raise LabelsError("_meta.py defines no literal _IMAGENET_CATEGORIES")
    if len(names) != expected or not all(isinstance(n, str) and n.strip() for n in names):
        raise LabelsError(f"_IMAGENET_CATEGORIES has {len(names)} entries, expected {expected} non-empty names")
    return names
