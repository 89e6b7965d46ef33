"""The peer's per-job computation: verdict's default pack, label-grounded, in Pillow + numpy + onnxruntime.

What a team that does not pick verdict would write to run the same pack
(models/default, docs/model-pack.md and docs/rule.md) in a Python task queue.
Per job, as a verdict worker does:

1. decode the image with Pillow (upright, 8-bit RGB, alpha over white);
2. centre crop `crop_fraction` of the short side, resize it to `size` x `size`
   (the pack says bicubic: Pillow's BICUBIC is the Catmull-Rom cubic, a = -0.5);
3. normalise ((x - mean) / std) into an NCHW float32 tensor;
4. run the image encoder (onnxruntime, one intra-op and one inter-op thread),
   softmax, and make the image's concept vector: the probability-weighted mean
   of its top-k classes' label embeddings, L2-normalised;
5. for each sentence, its evidence, cached by text as the worker caches it:
   the mean-pooled, L2-normalised embedding; its cosine with every class
   (mean and best); its words (split as worker/src/engine/label_grounded/words.rs
   splits them), each embedded alone (cached by word) for its labelness (best
   class cosine) and weight (cosine with the sentence, floored at 0); the
   unverifiable share;
6. the rule (worker/src/engine/label_grounded/rule.rs): yes / no / maybe scores
   and the label.

The one liberty, for speed: a JPEG is decoded with Pillow's `draft()`, which
asks libjpeg to scale by 1/2, 1/4 or 1/8 in the DCT while decoding. The scale
is the smallest that still leaves the centre crop at least `size` pixels on a
side, so the bicubic resize still only shrinks. verdict decodes every pixel;
`draft=False` makes the peer do the same.
"""

import io
import json
import math
import pathlib

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps
from tokenizers import Tokenizer

# As worker/src/engine/label_grounded/words.rs: at most this many words of a
# sentence are analysed.
MAX_WORDS = 48

RESAMPLING = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
}


class JobError(Exception):
    """A job the peer refuses (an image it cannot read, no sentence)."""


def words(text):
    """The words of `text`, lowercased: runs of letters and digits, keeping an
    apostrophe or hyphen between two of them ("cat's", "close-up"). A port of
    words.rs."""
    chars = list(text)
    out, current = [], []
    for i, c in enumerate(chars):
        joiner = c in "'\u2019-" and current and i + 1 < len(chars) and chars[i + 1].isalnum()
        if c.isalnum():
            current.append(c.lower())
        elif joiner:
            current.append("'" if c == "\u2019" else c)
        elif current:
            out.append("".join(current))
            current = []
            if len(out) == MAX_WORDS:
                return out
    if current and len(out) < MAX_WORDS:
        out.append("".join(current))
    return out


def session(path):
    """An onnxruntime CPU session on one thread: one process per core."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def upright_rgb(image):
    """8-bit RGB, EXIF orientation applied, transparency over white (as verdict's decode)."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


class PeerModel:
    """A label-grounded pack loaded for judging; one per worker process."""

    def __init__(self, pack_dir, draft=True, resample=None):
        pack = pathlib.Path(pack_dir)
        manifest = json.loads((pack / "manifest.json").read_text())
        if manifest.get("kind") != "label-grounded":
            raise ValueError(f"{pack}: kind {manifest.get('kind')!r}, the peer runs label-grounded packs")
        files = {f["role"]: pack / f["path"] for f in manifest["files"]}
        self.image_spec = manifest["image"]
        self.text_spec = manifest["text"]
        self.rule = manifest["rule"]
        if self.image_spec["layout"] != "nchw" or self.image_spec.get("resize", "crop") != "crop":
            raise ValueError("the peer implements the default pack's nchw centre-crop preprocessing only")
        if self.text_spec["pooling"] != "mean":
            raise ValueError("the peer implements mean pooling only")
        self.size = int(self.image_spec["size"])
        self.crop_fraction = float(self.image_spec["crop_fraction"])
        self.resample_name = resample or self.image_spec["resize_filter"]
        self.resample = RESAMPLING[self.resample_name]
        self.mean = np.asarray(self.image_spec["mean"], dtype=np.float32)
        self.std = np.asarray(self.image_spec["std"], dtype=np.float32)
        self.draft = draft

        self.label_names = manifest["labels"]["names"]
        dim = int(self.text_spec["dim"])
        labels = np.fromfile(files["label_embeddings"], dtype="<f4")
        self.labels = labels.reshape(len(self.label_names), dim).astype(np.float32)

        self.tokenizer = Tokenizer.from_file(str(files["tokenizer"]))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=int(self.text_spec["max_tokens"]))
        self.image_session = session(files["image_encoder"])
        self.text_session = session(files["text_encoder"])
        self.sentences = {}
        self.word_vectors = {}

    # -- image ---------------------------------------------------------------

    def open_image(self, data):
        """Encoded bytes to upright RGB; a JPEG is drafted (decoded at 1/2, 1/4 or
        1/8 scale) just large enough for the crop to keep `size` pixels."""
        try:
            image = Image.open(io.BytesIO(data))
            if self.draft and image.format == "JPEG":
                short = min(image.size)
                need = math.ceil(self.size / self.crop_fraction)
                if short > need:
                    w, h = image.size
                    image.draft("RGB", (math.ceil(w * need / short), math.ceil(h * need / short)))
            return upright_rgb(image)
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise JobError(f"image_unreadable: {e}") from None

    def crop_box(self, width, height):
        """The centre square: side round(crop_fraction x short side) (half away from
        zero, as Rust's f32::round), the odd margin pixel right and bottom."""
        short = min(width, height)
        side = min(max(int(math.floor(short * self.crop_fraction + 0.5)), 1), short)
        left, top = (width - side) // 2, (height - side) // 2
        return left, top, left + side, top + side

    def tensor(self, rgb):
        """RGB image to the encoder's [1, 3, size, size] float32 input."""
        box = self.crop_box(rgb.width, rgb.height)
        if box[2] - box[0] == self.size:
            square = rgb.crop(box)
        else:
            square = rgb.resize((self.size, self.size), self.resample, box=box)
        x = (np.asarray(square, dtype=np.float32) - self.mean) / self.std
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None])

    def image_evidence(self, data):
        """Class probabilities, the top-k classes and the unit concept vector."""
        x = self.tensor(self.open_image(data))
        (logits,) = self.image_session.run([self.image_spec["output"]], {self.image_spec["input"]: x})
        logits = logits.reshape(-1).astype(np.float32)
        e = np.exp(logits - logits.max())
        probs = e / e.sum()
        k = int(self.rule.get("concept_top_k", 10))
        top = np.argsort(-probs, kind="stable")[:k]
        concept = (probs[top, None] * self.labels[top]).sum(axis=0)
        concept /= np.linalg.norm(concept)
        return probs, top, concept

    # -- text ----------------------------------------------------------------

    def embed(self, text):
        """Mean-pooled, L2-normalised embedding of `text` (special tokens included)."""
        ids = np.asarray(self.tokenizer.encode(text).ids, dtype=np.int64).reshape(1, -1)
        names = self.text_spec["inputs"]
        feed = {names["input_ids"]: ids, names["attention_mask"]: np.ones_like(ids), names["token_type_ids"]: np.zeros_like(ids)}
        (hidden,) = self.text_session.run([self.text_spec["output"]], feed)
        v = hidden[0].mean(axis=0)
        if self.text_spec["normalize"]:
            v = v / np.linalg.norm(v)
        return v.astype(np.float32)

    def word(self, word):
        """A word's embedding and labelness (best cosine with any class); cached."""
        cached = self.word_vectors.get(word)
        if cached is None:
            vector = self.embed(word)
            cached = (vector, float((self.labels @ vector).max()))
            self.word_vectors[word] = cached
        return cached

    def sentence_evidence(self, text):
        """Embedding, mean and best class cosine, unverifiable share; cached by text."""
        cached = self.sentences.get(text)
        if cached is not None:
            return cached
        s = self.embed(text)
        sims = self.labels @ s
        threshold = float(self.rule.get("word_labelness_threshold", 0.35))
        total = unverifiable = 0.0
        for w in words(text):
            vector, labelness = self.word(w)
            weight = max(float(vector @ s), 0.0)
            total += weight
            if labelness < threshold:
                unverifiable += weight
        cached = {
            "embedding": s,
            "mean": float(sims.mean()),
            "best": float(sims.max()),
            "unverifiable": unverifiable / total if total > 0 else 0.0,
        }
        self.sentences[text] = cached
        return cached

    # -- rule ----------------------------------------------------------------

    def decide(self, concept, sentence):
        """Scores and label from the evidence (rule.rs; argmax ties go maybe, no, yes)."""
        r = self.rule
        a = float(concept @ sentence["embedding"])
        gap = sentence["best"] - sentence["mean"]
        rel = (a - sentence["mean"]) / max(gap, 1e-3)
        g = sigmoid((r["unverifiable_midpoint"] - sentence["unverifiable"]) / r["unverifiable_width"])
        z = min(r["similarity_slope"] * (a - r["similarity_midpoint"]), r["relative_slope"] * (rel - r["relative_midpoint"]))
        yes = g * sigmoid(z - r["margin"])
        no = g * sigmoid(-z - r["margin"])
        maybe = max(1.0 - yes - no, 0.0)
        total = yes + no + maybe
        scores = {"yes": yes / total, "no": no / total, "maybe": maybe / total}
        if scores["maybe"] >= scores["yes"] and scores["maybe"] >= scores["no"]:
            label = "maybe"
        elif scores["no"] >= scores["yes"]:
            label = "no"
        else:
            label = "yes"
        return label, scores

    def judge(self, data, texts):
        """One job: image bytes and sentences to one verdict per sentence."""
        if not texts:
            raise JobError("no_texts: a job needs at least one sentence")
        probs, top, concept = self.image_evidence(data)
        image_labels = [{"label": self.label_names[k], "score": round(float(probs[k]), 4)} for k in top[:3]]
        out = []
        for text in texts:
            label, scores = self.decide(concept, self.sentence_evidence(text))
            out.append({"text": text, "label": label, "scores": scores, "image_labels": image_labels})
        return out
