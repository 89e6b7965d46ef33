"""The peer's per-job computation: verdict's default pack, label-grounded, in Pillow + numpy + onnxruntime.

What a team that does not pick verdict would write to run the same pack
(models/default, docs/model-pack.md and docs/rule.md) in a Python task queue.
Per job, as a verdict worker does:

1. decode the image with Pillow (upright, 8-bit RGB, alpha over white);
2. centre crop `crop_fraction` of the short side, resize it to `size` x `size`
   (the pack says bicubic: Pillow's BICUBIC is the Catmull-Rom cubic, a = -0.5);
   this 8-bit square is what the model sees;
3. normalise ((x - mean) / std) into an NCHW float32 tensor;
4. run the image encoder (onnxruntime, one intra-op and one inter-op thread),
   softmax, and make the image's concept vector: the probability-weighted mean
   of its top-k classes' label embeddings, L2-normalised;
5. when a sentence of the job names a colour, the colours of the square
   (worker/src/engine/label_grounded/colours.rs):
   each pixel's HSV; the share of the middle 60 % of the square in each of
   eleven named colours, the mean saturation of the whole square
   ("colourful") and how far it is from having any clear colour ("black and
   white": 1 with no pixel of clear colour, 0 from 5 % of the square up);
6. when the pack has a `faces` section, the faces in the decoded image:
   MTCNN's cascade of scripts/model/face_detect.py (the build's reference for
   worker/src/engine/face_detector/) on three more onnxruntime sessions, one
   thread each; R-Net and O-Net read all of a stage's crops in one run; its
   resizes (the working copy, the pyramid, the crops) by Pillow's BOX filter
   on 8-bit images (`face_detect.PillowResampler`), as a Python team would write
   them, not by the reference's exact float area means in numpy (4 to 8
   times slower);
7. for each sentence, its evidence, cached by text as the worker caches it
   (worker/src/engine/label_grounded/evidence.rs): the mean-pooled,
   L2-normalised embedding; its cosine with every class (mean and best); its
   words (split as words.rs splits them), each embedded alone (cached by word)
   for its labelness (best class cosine) and weight (cosine with the sentence,
   floored at 0); the unverifiable share, and the part of it carried by words
   for people (people.rs's vocabulary, possessives included); the classes its
   words name outright (labelness >= `class_naming_threshold` and best minus
   mean label cosine >= 0.25, colour and person words excluded); the colours
   it names (colours.rs's words; "black" with "white" asks for black and
   white); its share of words for people;
8. the signals of the pair: concept similarity, relative support, the
   unverifiable share (less its people part when the pack has a face
   detector), the sentence probe's logit w . s + b (`rule.sentence_probe`),
   named presence (the largest log10 of a named class's probability, floored
   at 1e-6), colour match (the smallest log10 of a named colour's share +
   0.005), the person share and the number of faces;
9. the rule (worker/src/engine/label_grounded/rule.rs): yes / no / maybe scores
   and the label.

The one liberty, for speed: a JPEG is decoded with Pillow's `draft()`, which
asks libjpeg to scale by 1/2, 1/4 or 1/8 in the DCT while decoding. The scale
is the smallest that still leaves the centre crop at least `size` pixels on a
side, so the bicubic resize still only shrinks. verdict decodes every pixel;
`draft=False` makes the peer do the same. The face detector reads the same
drafted image (as the worker's detector reads its own 1/8 reading of a large
JPEG): it first shrinks the image to `faces.canvas` px (160) anyway.

Pillow's resize rounds differently from the worker's (up to about half a grey
level on a pixel), so the colour shares, counted on the resized square, may
differ from the worker's by a pixel here and there near a colour boundary;
labels are checked against the worker's by peer_parity.py.
"""

import io
import json
import math
import pathlib
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps
from tokenizers import Tokenizer

# The face detector's steps: the build's reference (scripts/model/face_detect.py,
# numpy only), appended so no module of scripts/model shadows one of the peer's.
sys.path.append(str(pathlib.Path(__file__).resolve().parent.parent / "model"))
import face_detect  # noqa: E402

# As worker/src/engine/label_grounded/words.rs: at most this many words of a
# sentence are analysed.
MAX_WORDS = 48

RESAMPLING = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
}


# As evidence.rs: a word names a class outright only if its best label cosine
# stands this far above its mean label cosine ("photo", "picture" do not).
NAMING_GAP = 0.25
# As evidence.rs: the floor of a named class's probability, and what is added
# to a colour's share before its log10.
PRESENCE_FLOOR = 1e-6
COLOUR_FLOOR = 0.005

# As people.rs: words for people (nouns, roles, personal pronouns).
PERSON_WORDS = frozenset("""
actor actors actress adult adults astronaut astronauts athlete athletes audience author babies baby barista
boy boyfriend boys bride brother businessman businesswoman cameraman chef child children cook couple crowd
crowds customer customers dad dancer dancers daughter diver divers doctor doctors driver drivers emperor face
faces families family farmer farmers father friend friends gentleman gentlemen girl girlfriend girls
grandfather grandmother groom guy guys he her herself him himself his human humans husband infant kid kids
king ladies lady man men mom monk monks mother musician musicians nurse nurses officer officers owner owners
parent parents passenger passengers pedestrian pedestrians people person persons photographer photographers
pilot pilots player players police policeman portrait portraits queen rider riders sailor sailors she singer
sister soldier soldiers somebody someone son spectators student students surfer swimmer swimmers teacher
teachers team teenager teenagers toddler tourist tourists visitor visitors waiter waitress wife woman women
worker workers
""".split())

# As colours.rs: the colours (in its order) and the words that name each.
COLOURS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "grey",
           "colourful", "black and white")
COLOUR_WORDS = {
    "red": "red", "orange": "orange", "yellow": "yellow", "green": "green", "blue": "blue",
    "purple": "purple", "violet": "purple", "pink": "pink", "brown": "brown",
    "black": "black", "dark": "black", "white": "white", "light": "white",
    "grey": "grey", "gray": "grey", "silver": "grey",
    "colourful": "colourful", "colorful": "colourful", "colours": "colourful", "colors": "colourful",
    "multicoloured": "colourful", "multicolored": "colourful",
}
ACHROMATIC_WORDS = ("monochrome", "greyscale", "grayscale")
# colours.rs's COLOURED_LIMIT: from this share of clear colour on, an image is
# not black and white at all.
COLOURED_LIMIT = np.float32(0.05)


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


def is_person_word(word):
    """Whether `word` (lowercased) names a person; a possessive counts as its noun (people.rs)."""
    if word.endswith("'s"):
        word = word[:-2]
    elif word.endswith("'"):
        word = word[:-1]
    return word in PERSON_WORDS


def is_colour_word(word):
    return word in COLOUR_WORDS or word in ACHROMATIC_WORDS


def colour_terms(ws):
    """The colours a sentence's words ask about, each once, in order; "black" and
    "white" together (or "monochrome", ...) ask for black and white (colours.rs)."""
    achromatic = ("black" in ws and "white" in ws) or any(w in ws for w in ACHROMATIC_WORDS)
    out = []
    for w in ws:
        colour = COLOUR_WORDS.get(w)
        if colour is None or (achromatic and colour in ("black", "white")):
            continue
        if colour not in out:
            out.append(colour)
    if achromatic:
        out.append("black and white")
    return out


def colour_fractions(square):
    """{colour: share} of an 8-bit RGB square [h, w, 3], as ColourFractions::measure
    (f32 HSV; named colours in the middle 60 %, the other two over all of it)."""
    rgb = square.astype(np.float32) / np.float32(255.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mx = np.maximum(np.maximum(r, g), b)
    mn = np.minimum(np.minimum(r, g), b)
    delta = mx - mn
    safe = np.where(delta > 0, delta, np.float32(1.0))
    six = np.float32(6.0)
    hue_r = np.float32(60.0) * np.mod((g - b) / safe, six)  # rem_euclid: non-negative
    hue_g = np.float32(60.0) * ((b - r) / safe + np.float32(2.0))
    hue_b = np.float32(60.0) * ((r - g) / safe + np.float32(4.0))
    h = np.where(delta <= np.float32(1e-6), np.float32(0.0),
                 np.where(mx == r, hue_r, np.where(mx == g, hue_g, hue_b)))
    s = np.where(mx > 0, delta / np.where(mx > 0, mx, np.float32(1.0)), np.float32(0.0)).astype(np.float32)
    v = mx
    height, width = s.shape
    y0, y1 = height // 5, height - height // 5
    x0, x1 = width // 5, width - width // 5
    hc, sc, vc = h[y0:y1, x0:x1], s[y0:y1, x0:x1], v[y0:y1, x0:x1]
    chromatic = (sc >= np.float32(0.3)) & (vc >= np.float32(0.25))

    def hue(lo, hi):
        return chromatic & (hc >= np.float32(lo)) & (hc < np.float32(hi))

    masks = {
        "black": vc < np.float32(0.3),
        "white": (sc < np.float32(0.2)) & (vc > np.float32(0.75)),
        "grey": (sc < np.float32(0.2)) & (vc >= np.float32(0.25)) & (vc <= np.float32(0.8)),
        "red": hue(0.0, 15.0) | hue(340.0, 361.0),
        "orange": hue(15.0, 40.0) & (vc >= np.float32(0.6)),
        "brown": hue(10.0, 45.0) & (vc < np.float32(0.6)),
        "yellow": hue(40.0, 70.0),
        "green": hue(70.0, 165.0),
        "blue": hue(165.0, 255.0),
        "purple": hue(255.0, 290.0),
        "pink": hue(290.0, 340.0),
    }
    centre = max(hc.size, 1)
    out = {name: float(np.float32(mask.sum()) / np.float32(centre)) for name, mask in masks.items()}
    everything = max(s.size, 1)
    out["colourful"] = float(s.astype(np.float64).sum() / everything)
    coloured = np.float32(((s >= np.float32(0.3)) & (v >= np.float32(0.25))).sum()) / np.float32(everything)
    out["black and white"] = float(max(np.float32(0.0), np.float32(1.0) - coloured / COLOURED_LIMIT))
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

        probe = self.rule.get("sentence_probe")
        self.probe = None
        if probe is not None:
            self.probe = (np.asarray(probe["weights"], dtype=np.float32), np.float32(probe["bias"]))

        # The face detector, when the pack has one (manifest section `faces`).
        self.faces_spec = manifest.get("faces")
        self.face_sessions = None
        if self.faces_spec is not None:
            by_path = {f["path"]: pack / f["path"] for f in manifest["files"]}
            self.face_sessions = {net: session(by_path[self.faces_spec[net]]) for net in ("pnet", "rnet", "onet")}
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

    def square(self, rgb):
        """The 8-bit `size` x `size` square the model sees: the centre crop, resized."""
        box = self.crop_box(rgb.width, rgb.height)
        if box[2] - box[0] == self.size:
            return np.asarray(rgb.crop(box))
        return np.asarray(rgb.resize((self.size, self.size), self.resample, box=box))

    def tensor_of_square(self, square):
        x = (square.astype(np.float32) - self.mean) / self.std
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None])

    def tensor(self, rgb):
        """RGB image to the encoder's [1, 3, size, size] float32 input."""
        return self.tensor_of_square(self.square(rgb))

    def faces(self, rgb):
        """The faces (x, y, w, h, score; fractions of the image) in an 8-bit RGB
        array [h, w, 3]; None when the pack has no face detector."""
        if self.face_sessions is None:
            return None
        spec = self.faces_spec

        def runner(net):
            sess = self.face_sessions[net]
            return lambda x: tuple(sess.run([spec["prob"], spec["reg"]], {spec["input"]: x}))

        return face_detect.detect(
            rgb, spec, runner("pnet"), runner("rnet"), runner("onet"), face_detect.PILLOW
        )

    def warm(self):
        """One run of each network on blank input, as a verdict worker does at load."""
        blank = np.zeros((1, 3, self.size, self.size), dtype=np.float32)
        self.image_session.run(None, {self.image_spec["input"]: blank})
        self.faces(np.zeros((48, 64, 3), dtype=np.uint8))

    def image_evidence(self, data, with_faces=True, with_colours=True):
        """Class probabilities, the top-k classes, the unit concept vector, the
        colour shares (None when not `with_colours`: as verdict, only a
        sentence that names a colour reads them) and the faces (None without
        a face detector, or when not `with_faces`: as verdict, only a sentence
        about people reads them)."""
        rgb = self.open_image(data)
        square = self.square(rgb)
        x = self.tensor_of_square(square)
        (logits,) = self.image_session.run([self.image_spec["output"]], {self.image_spec["input"]: x})
        logits = logits.reshape(-1).astype(np.float32)
        e = np.exp(logits - logits.max())
        probs = e / e.sum()
        k = int(self.rule.get("concept_top_k", 10))
        top = np.argsort(-probs, kind="stable")[:k]
        concept = (probs[top, None] * self.labels[top]).sum(axis=0)
        concept /= np.linalg.norm(concept)
        # The entropy of the probabilities over log(classes), in [0, 1]
        # (evidence.rs, ImageEvidence::uncertainty).
        positive = probs[probs > 0].astype(np.float64)
        uncertainty = float(-(positive * np.log(positive)).sum() / math.log(len(probs))) if len(probs) > 1 else 0.0
        return {
            "uncertainty": min(max(uncertainty, 0.0), 1.0),
            "probs": probs,
            "top": top,
            "concept": concept,
            "colours": colour_fractions(square) if with_colours else None,
            "faces": self.faces(np.asarray(rgb)) if with_faces else None,
        }

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
        """A sentence's evidence (evidence.rs): embedding, mean and best class
        cosine, unverifiable share and its people part, the classes it names,
        its colours, its share of words for people; cached by text."""
        cached = self.sentences.get(text)
        if cached is not None:
            return cached
        s = self.embed(text)
        sims = self.labels @ s
        threshold = float(self.rule.get("word_labelness_threshold", 0.35))
        naming = float(self.rule.get("class_naming_threshold", 0.55))
        ws = words(text)
        total = unverifiable = people = unverifiable_people = 0.0
        named = []
        for w in ws:
            vector, labelness = self.word(w)
            weight = max(float(vector @ s), 0.0)
            total += weight
            person = is_person_word(w)
            if labelness < threshold:
                unverifiable += weight
                if person:
                    unverifiable_people += weight
            if person:
                people += weight
            if labelness >= naming and not person and not is_colour_word(w):
                word_sims = self.labels @ vector
                k = int(np.argmax(word_sims))
                if word_sims[k] - word_sims.mean() >= NAMING_GAP:
                    named.append(k)
        share = (lambda x: x / total) if total > 0 else (lambda x: 0.0)
        cached = {
            "embedding": s,
            "mean": float(sims.mean()),
            "best": float(sims.max()),
            "unverifiable": share(unverifiable),
            "unverifiable_people": share(unverifiable_people),
            "person_share": share(people),
            "named": named,
            "colours": colour_terms(ws),
            "probe": self.probe_logit(s),
        }
        self.sentences[text] = cached
        return cached

    # -- rule ----------------------------------------------------------------

    def probe_logit(self, embedding):
        """The sentence probe's logit w . s + b (sentence_probe.rs); 0 without a
        probe or for an embedding of another size."""
        if self.probe is None or self.probe[0].shape != embedding.shape:
            return 0.0
        return float(self.probe[1] + self.probe[0] @ embedding)

    def signals(self, image, sentence):
        """The numbers the rule decides on, for one pair (evidence.rs, Signals::new)."""
        a = float(image["concept"] @ sentence["embedding"])
        gap = sentence["best"] - sentence["mean"]
        probs = image["probs"]
        named = [math.log10(max(float(probs[k]), PRESENCE_FLOOR)) for k in sentence["named"]]
        colours = [math.log10(image["colours"][c] + COLOUR_FLOOR) for c in sentence["colours"]]
        faces = image["faces"]
        unverifiable = sentence["unverifiable"]
        if faces is not None:
            # With a face detector, words for people can be checked.
            unverifiable = max(unverifiable - sentence["unverifiable_people"], 0.0)
        return {
            "concept_similarity": a,
            "relative_support": (a - sentence["mean"]) / max(gap, 1e-3),
            "unverifiable": unverifiable,
            "label_gap": gap,
            "sentence_probe": sentence["probe"],
            "named_presence": max(named) if named else None,
            "colour_match": min(colours) if colours else None,
            "person_share": sentence["person_share"],
            "faces": None if faces is None else len(faces),
            "image_uncertainty": image["uncertainty"],
        }

    def decide(self, signals):
        """Scores and label from the signals (rule.rs; argmax ties go maybe, no, yes)."""
        r = self.rule
        probe = r.get("probe_weight", 0.0) * signals["sentence_probe"]
        g = sigmoid((r["unverifiable_midpoint"] - signals["unverifiable"]) / r["unverifiable_width"] - probe)
        concept = min(
            r["similarity_slope"] * (signals["concept_similarity"] - r["similarity_midpoint"]),
            r["relative_slope"] * (signals["relative_support"] - r["relative_midpoint"]),
        )
        z = concept
        presence_slope = r.get("presence_slope", 0.0)
        if signals["named_presence"] is not None and presence_slope > 0:
            named = presence_slope * (signals["named_presence"] - r.get("presence_midpoint", 0.0))
            if named > concept:
                z = named
        if signals["colour_match"] is not None:
            z += r.get("colour_slope", 0.0) * (signals["colour_match"] - r.get("colour_midpoint", 0.0))
        if signals["faces"] is not None and signals["person_share"] > 0:
            sign = 1.0 if signals["faces"] > 0 else -1.0
            z += sign * r.get("people_slope", 0.0) * signals["person_share"]
        yes = g * sigmoid(z - r["margin"])
        doubt = r.get("uncertainty_weight", 0.0) * signals["image_uncertainty"]
        no = g * sigmoid(-z - r["margin"] - doubt)
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
        sentences = [self.sentence_evidence(text) for text in texts]
        # The face detector runs only when a sentence is about people, the
        # colour shares only when one names a colour (verdict's
        # LabelGroundedModel::image_evidence_for).
        image = self.image_evidence(
            data,
            with_faces=any(s["person_share"] > 0 for s in sentences),
            with_colours=any(s["colours"] for s in sentences),
        )
        probs = image["probs"]
        image_labels = [{"label": self.label_names[k], "score": round(float(probs[k]), 4)} for k in image["top"][:3]]
        out = []
        for text, sentence in zip(texts, sentences):
            label, scores = self.decide(self.signals(image, sentence))
            out.append({"text": text, "label": label, "scores": scores, "image_labels": image_labels})
        return out
