"""modelscope's own OFA code, imported from the pinned modelscope wheel.

modelscope's package `__init__` files import the whole framework (datasets,
audio, CV helpers and their dependencies). OFA itself needs only torch and
transformers, so this module registers the packages on the way to the OFA files
as plain namespaces that point into the unpacked wheel, and imports the real
files below them unchanged:

- `modelscope/models/multi_modal/ofa/modeling_ofa.py`, `resnet.py`,
  `configuration_ofa.py`, `tokenization_ofa.py` (the model and tokenizer);
- `modelscope/preprocessors/ofa/base.py` and `visual_entailment.py` (the
  prompt, `pre_caption`, tokenization and truncation of visual entailment).

Stubs stand in only for modules that these files import but that visual
entailment never calls: `fairseq.modules` (the ViT backbone, unused with a
ResNet), `torchaudio`, `modelscope.fileio`, `modelscope.preprocessors.image`
(URL loading) and the audio helper. The stubs raise if they are ever called.
torchvision's transforms are replaced by `PilTransforms` below: for a PIL image,
torchvision's `Resize` calls PIL's `resize` with the same filter, so the
preprocessing is the same computation.
"""

import importlib
import importlib.machinery
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

WHEEL_NAME = "modelscope-1.40.2-py3-none-any.whl"


def _unpack(wheel: Path, into: Path) -> Path:
    stamp = into / ".unpacked"
    if not stamp.exists():
        into.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                if name.startswith(("modelscope/models/multi_modal/ofa/", "modelscope/preprocessors/ofa/",
                                    "modelscope/utils/constant.py", "modelscope/utils/trie.py",
                                    "modelscope/outputs/")):
                    zf.extract(name, into)
        stamp.write_text(wheel.name)
    return into


def _namespace(name: str, path: Path | None = None) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=path is not None)
    if path is not None:
        module.__path__ = [str(path)]
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return module


def _refuse(what):
    def call(*_args, **_kwargs):
        raise RuntimeError(f"{what} is not part of OFA visual entailment and is stubbed out here")

    return call


class _InterpolationMode:
    BICUBIC = Image.Resampling.BICUBIC
    BILINEAR = Image.Resampling.BILINEAR
    NEAREST = Image.Resampling.NEAREST


class PilTransforms:
    """torchvision.transforms' PIL path, for the four transforms OFA uses."""

    InterpolationMode = _InterpolationMode

    class Compose:
        def __init__(self, steps):
            self.steps = steps

        def __call__(self, x):
            for step in self.steps:
                x = step(x)
            return x

    class Resize:
        def __init__(self, size, interpolation=Image.Resampling.BILINEAR):
            self.size, self.interpolation = size, interpolation

        def __call__(self, image):
            height, width = self.size
            return image.resize((width, height), self.interpolation)

    class ToTensor:
        def __call__(self, image):
            array = np.asarray(image, dtype=np.float32) / 255.0
            return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))

    class Normalize:
        def __init__(self, mean, std):
            self.mean = torch.tensor(mean, dtype=torch.float32)[:, None, None]
            self.std = torch.tensor(std, dtype=torch.float32)[:, None, None]

        def __call__(self, x):
            return (x - self.mean) / self.std


def load(cache_dir: Path, wheel_dir: Path) -> types.SimpleNamespace:
    """Imports modelscope's OFA modules; returns them by name."""
    if "modelscope.models.multi_modal.ofa.modeling_ofa" in sys.modules:
        return _loaded()
    # transformers probes optional packages when first imported: import it
    # before the stubs exist, so that it sees torchvision and torchaudio absent.
    importlib.import_module("transformers.modeling_utils")
    importlib.import_module("transformers.models.bart.tokenization_bart")
    wheel = wheel_dir / WHEEL_NAME
    if not wheel.is_file():
        raise FileNotFoundError(f"{wheel} is missing (scripts/lib/ofa-venv downloads it)")
    root = _unpack(wheel, cache_dir / "modelscope-1.40.2") / "modelscope"

    # Stubs for what the OFA files import but visual entailment never runs.
    fairseq = _namespace("fairseq")
    fairseq_modules = _namespace("fairseq.modules")
    fairseq_modules.LayerNorm = torch.nn.LayerNorm
    torchaudio = _namespace("torchaudio")
    torchaudio.load = _refuse("torchaudio")
    tv = _namespace("torchvision")
    transforms = _namespace("torchvision.transforms")
    for name in ("InterpolationMode", "Compose", "Resize", "ToTensor", "Normalize"):
        setattr(transforms, name, getattr(PilTransforms, name))
    del tv

    _namespace("modelscope", root)
    _namespace("modelscope.utils", root / "utils")
    _namespace("modelscope.models", root / "models")
    _namespace("modelscope.models.multi_modal", root / "models/multi_modal")
    ofa = _namespace("modelscope.models.multi_modal.ofa", root / "models/multi_modal/ofa")
    _namespace("modelscope.models.multi_modal.ofa.generate", root / "models/multi_modal/ofa/generate")
    _namespace("modelscope.models.multi_modal.ofa.utils", root / "models/multi_modal/ofa/utils")
    fileio = _namespace("modelscope.fileio")
    fileio.File = types.SimpleNamespace(read=_refuse("modelscope.fileio.File"))
    _namespace("modelscope.preprocessors", root / "preprocessors")
    image = _namespace("modelscope.preprocessors.image")
    image.load_image = _refuse("loading an image by path or URL")
    _namespace("modelscope.preprocessors.ofa", root / "preprocessors/ofa")
    _namespace("modelscope.preprocessors.ofa.utils", root / "preprocessors/ofa/utils")
    audio = _namespace("modelscope.preprocessors.ofa.utils.audio_helper")
    for name in ("_get_kaldi_fbank", "_get_torchaudio_fbank", "convert_waveform"):
        setattr(audio, name, _refuse(name))

    configuration = importlib.import_module("modelscope.models.multi_modal.ofa.configuration_ofa")
    tokenization = importlib.import_module("modelscope.models.multi_modal.ofa.tokenization_ofa")
    ofa.OFATokenizer = tokenization.OFATokenizer
    ofa.OFATokenizerZH = tokenization.OFATokenizerZH
    importlib.import_module("modelscope.models.multi_modal.ofa.modeling_ofa")
    importlib.import_module("modelscope.preprocessors.ofa.visual_entailment")
    del configuration
    return _loaded()


def _loaded() -> types.SimpleNamespace:
    modeling = sys.modules["modelscope.models.multi_modal.ofa.modeling_ofa"]
    return types.SimpleNamespace(
        OFAConfig=sys.modules["modelscope.models.multi_modal.ofa.configuration_ofa"].OFAConfig,
        OFAModel=modeling.OFAModel,
        OFATokenizer=sys.modules["modelscope.models.multi_modal.ofa.tokenization_ofa"].OFATokenizer,
        expand_mask=modeling._expand_mask,
        OfaVisualEntailmentPreprocessor=sys.modules[
            "modelscope.preprocessors.ofa.visual_entailment"
        ].OfaVisualEntailmentPreprocessor,
        OfaBasePreprocessor=sys.modules["modelscope.preprocessors.ofa.base"].OfaBasePreprocessor,
    )
