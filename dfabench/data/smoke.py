"""The smoke benchmark: small, deterministic, built offline in seconds.

It is **not DFA-Bench**. It is made of synthetic manipulations of a few photographs that PyPI
packages ship (scikit-image's ``astronaut`` and ``lfw_subset`` faces, matplotlib's
``grace_hopper.jpg``), so that the harness, the metrics and the plugins can be exercised
end to end on any machine without downloading anything.

Each source photograph becomes several aligned 256x256 *frames* (a similarity transform with a
small random jitter, camera noise), like frames of a video. A frame is kept as a real sample or
manipulated, each category with the kind of trace it leaves in real deepfakes:

- **FS** (face swap): the inner face or a skin patch of another person, aligned on the eyes and
  mouth, blended in with a narrow feather (a seam), a partial colour correction and the donor's
  own resampling and noise;
- **FR** (face reenactment): a local geometric warp of the mouth or the eyes (bilinear
  resampling, which also softens the warped area);
- **FE** (face editing): a local attribute change: skin smoothing, a colour change, sharpening;
- **EFS** (entire face synthesis): a fully synthetic image, a morph of several faces at low
  resolution grown to 256x256 by generator-like upsampling layers (transposed convolutions with
  uneven kernels or nearest-neighbour upsampling), which leave periodic (checkerboard) spectral
  peaks.

Every local fake has its exact mask (``masks/<id>.png``, 255 where pixels were touched; outside
it the fake equals the real frame byte for byte), every fake a reference artifact description
in the numbered-by-region style of DFA-Bench written from what was actually done, and every
sample DFA-Instruct-style ``conversations`` (DF-D, then DF-C and AD for fakes).

Splits (train / val / test) are disjoint by ``source_id``: a source photograph and everything
derived from it (including the faces it donated to a swap or a synthesis) stay in one split.
The same seed gives a byte-identical manifest, images and masks.
"""

from __future__ import annotations

import io
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dfabench.data.importers.base import staged_folder, write_benchmark
from dfabench.data.manifest import Sample
from dfabench.data.synthetic import (
    IMAGE_SIZE,  # noqa: F401 - re-exported: the frame size of the smoke benchmark
    Source,
    Wording,
    edit,
    face_swap,
    reenact,
    render_frame,
    render_small,
    synthesize,
)
from dfabench.errors import DfabenchError
from dfabench.vocab import CATEGORIES

SMOKE_NAME = "dfabench-smoke"
#: version of the generator: bump it whenever the output for a given seed changes
SMOKE_VERSION = "1"

#: landmark positions (left eye, right eye, mouth centre; x, y) in the source photographs
_ASTRONAUT_LANDMARKS = ((202.5, 101.0), (246.0, 102.5), (224.0, 145.0))
_GRACE_HOPPER_LANDMARKS = ((221.0, 186.0), (304.0, 186.0), (262.5, 277.5))
_LFW_LANDMARKS = ((7.8, 8.5), (16.7, 8.5), (12.3, 18.0))
_LFW_PAD = 5

_SPLITS = ("train", "val", "test")
_SPLIT_SHARE = {"train": 0.5, "val": 0.15, "test": 0.35}


@dataclass(frozen=True)
class SmokeSize:
    """How many samples a build makes."""

    lfw_sources: int
    lfw_frames: int
    portrait_frames: int
    synthetic: int


SIZES: dict[str, SmokeSize] = {
    # 654 samples; for every seed the test split has 36 sources, >= 220 samples, >= 45 per category
    "default": SmokeSize(lfw_sources=100, lfw_frames=5, portrait_frames=12, synthetic=130),
    # 182 samples, for quick experiments (too small for tight confidence intervals)
    "small": SmokeSize(lfw_sources=30, lfw_frames=5, portrait_frames=6, synthetic=20),
    # 50 samples, for tests of the pipeline itself
    "tiny": SmokeSize(lfw_sources=8, lfw_frames=4, portrait_frames=5, synthetic=8),
}

_CATEGORY_ANSWER = {
    "FS": ["Face swapping is used.", "Face swapping is used: the face comes from another person.",
           "Face swapping is used; another person's face was blended into the image."],
    "FR": ["Face reenactment is used.", "Face reenactment is used: the facial motion was altered.",
           "Face reenactment is used; the expression was changed by moving facial parts."],
    "FE": ["Face editing is used.", "Face editing is used: local facial attributes were modified.",
           "Face editing is used; some attributes of the face were edited."],
    "EFS": ["Entire face synthesis is used.", "Entire face synthesis is used: the whole face was generated.",
            "Entire face synthesis is used; the image was generated from scratch."],
}
#: DF-D questions with the answers that fit them: (question, answers if fake, answers if real)
_DFD_TURNS = [
    ("Has this face been forged?", ("Yes.", "Yes, this face has been forged."), ("No.", "No, this face is real.")),
    ("Has this facial image been manipulated?", ("Yes, it has been manipulated.", "Yes."),
     ("No, it is authentic.", "No.")),
    ("Is this face real or fake?", ("It is fake.", "The face is fake."), ("It is real.", "The face is real.")),
    ("Is this a deepfake?", ("Yes, this is a deepfake.", "Yes."), ("No, this is a real photograph.", "No.")),
]
_DFC_QUESTIONS = ["What kind of technique is used to manipulate the image?",
                  "Which category of forgery technique was applied to this face?",
                  "What type of manipulation produced this face?"]
_AD_QUESTIONS = ["Can you detail the specific regions of the facial image where artifacts is evident?",
                 "Which regions of the face show artifacts, and what do they look like?",
                 "Describe the artifacts you see, region by region."]


# --------------------------------------------------------------------------- sources


def _load_sources(spec: SmokeSize, rng: np.random.Generator) -> list[Source]:
    try:
        import matplotlib
        from skimage import data as skdata
    except ImportError as exc:
        raise DfabenchError(
            f"the smoke benchmark is built from sample photographs shipped by scikit-image and matplotlib, "
            f"which are not installed ({exc.name}): pip install 'dfabench[smoke]'") from None
    from PIL import Image

    sources = [Source("astronaut", np.ascontiguousarray(skdata.astronaut()[..., :3]),
                       np.array(_ASTRONAUT_LANDMARKS), "scikit-image data.astronaut() (NASA, public domain)")]
    hopper_path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    with Image.open(hopper_path) as image:
        hopper = np.asarray(image.convert("RGB"))
    sources.append(Source("grace-hopper", hopper, np.array(_GRACE_HOPPER_LANDMARKS),
                           "matplotlib sample_data/grace_hopper.jpg (US Navy, public domain)"))
    subset = skdata.lfw_subset()
    faces = subset[:100].astype(np.float64)  # the first 100 are faces, the rest are not
    if subset.dtype.kind in "ui":  # documented as uint8; some versions give floats in [0, 1]
        faces /= 255.0
    chosen = np.sort(rng.permutation(len(faces))[: spec.lfw_sources])
    for index in chosen:
        grey = faces[index]
        # LFW subset faces are greyscale: give each one a skin tone (a duotone), documented in README
        tone = np.array([1.0, 0.80 + 0.08 * rng.random(), 0.64 + 0.12 * rng.random()])
        shadow = np.array([0.10, 0.06, 0.05]) * rng.random()
        rgb = shadow + (1 - shadow) * grey[..., None] ** 0.9 * tone
        # mirror the borders so that the jittered, upscaled frame never shows an empty edge
        rgb = np.pad(rgb, ((_LFW_PAD, _LFW_PAD), (_LFW_PAD, _LFW_PAD), (0, 0)), mode="reflect")
        sources.append(Source(f"lfw-{int(index):03d}", np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8),
                               np.array(_LFW_LANDMARKS) + _LFW_PAD,
                               f"scikit-image data.lfw_subset() (Labeled Faces in the Wild crops) #{int(index)}"))
    return sources


# --------------------------------------------------------------------------- build


def _conversations(label: str, category: str | None, description: str | None, say: Wording) -> list[dict]:
    question, if_fake, if_real = _DFD_TURNS[say.rng.randrange(len(_DFD_TURNS))]
    turns = [{"from": "human", "value": "<image>\n" + question},
             {"from": "gpt", "value": say.pick(*(if_fake if label == "fake" else if_real))}]
    if label == "fake":
        turns += [{"from": "human", "value": say.pick(*_DFC_QUESTIONS)},
                  {"from": "gpt", "value": say.pick(*_CATEGORY_ANSWER[category])},
                  {"from": "human", "value": say.pick(*_AD_QUESTIONS)},
                  {"from": "gpt", "value": description}]
    return turns


def _png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _assign_splits(sources: list[Source], rng: np.random.Generator) -> None:
    order = rng.permutation(len(sources))
    n = len(sources)
    n_train = round(n * _SPLIT_SHARE["train"])
    n_val = round(n * _SPLIT_SHARE["val"])
    for rank, index in enumerate(order):
        sources[index].split = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"


def _child(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def _plan_frames(count: int, slot: int) -> list[str]:
    """Which frames of a source stay real and which become which fake (balanced across sources)."""
    kinds = ["real", "FS", "FR", "FE"]
    extra = ["real", "FS", "FR", "FE"]
    while len(kinds) < count:
        kinds.append(extra[(slot + len(kinds)) % len(extra)])
    return kinds[:count]


_README = """# dfabench smoke benchmark

**This is not DFA-Bench.** It is a small synthetic benchmark, generated offline in seconds by
`dfabench bench smoke`, for testing the dfabench harness, its metrics and its plugins on any
machine. Numbers measured on it say nothing about how a model detects or explains real deepfakes.

What it is:
- built deterministically (seed {seed}, generator version {version}, size "{size}") from a few
  photographs that PyPI packages ship: scikit-image's `astronaut` (NASA, public domain),
  matplotlib's `grace_hopper.jpg` (US Navy, public domain), and the small (25x25) greyscale face
  crops of scikit-image's `lfw_subset()`, which come from Labeled Faces in the Wild
  (http://vis-www.cs.umass.edu/lfw/; news photographs, not public domain), tinted with a skin tone
  here;
- each source photo gives several aligned 256x256 frames (small random jitter, camera-like noise);
  a frame stays real or is manipulated:
  - FS: the inner face or a skin patch of another person blended in with a seam and a colour mismatch;
  - FR: a geometric warp of the mouth or the eyes;
  - FE: local skin smoothing, colour change or sharpening;
  - EFS: a whole image synthesised from a low-resolution morph of several faces by generator-like
    upsampling (transposed convolutions / nearest-neighbour), with periodic spectral artefacts;
- techniques are fictitious names (`smoke-blend-swap`, `smoke-mouth-warp`, ...);
- every local fake has its exact mask in `masks/` (255 = touched pixels; outside it the fake equals
  the real frame), every fake a reference artifact description written from what was done, and
  every sample DFA-Instruct-style conversations (DF-D, DF-C, AD turns);
- splits train / val / test are disjoint by `source_id` (a photo and everything derived from it).

What it is not: real deepfakes, aligned real faces at a useful resolution, or a measure of
anything beyond "the pipeline works and a detector can learn simple traces".

Counts: {counts}
"""


def build_smoke(out: str | Path, *, seed: int = 0, size: str = "default") -> Path:
    """Build the smoke benchmark into ``out`` and return its path.

    Deterministic: the same ``seed`` and ``size`` give a byte-identical manifest, images and
    masks. ``out`` must not exist, be empty, or hold an earlier smoke build (which is replaced).
    Needs scikit-image and matplotlib (``pip install 'dfabench[smoke]'``).
    """
    if size not in SIZES:
        raise DfabenchError(f"unknown smoke benchmark size {size!r} (known: {', '.join(SIZES)})")
    seed = int(seed)
    out = Path(out)
    _check_target(out)
    spec = SIZES[size]
    sources = _load_sources(spec, _child(seed, 0))
    _assign_splits(sources, _child(seed, 1))
    with staged_folder(out, "building", replace=True) as tmp:  # _check_target: out is empty or a smoke build
        (tmp / "images").mkdir()
        (tmp / "masks").mkdir()
        records = _assign_ids(_generate(sources, spec, seed, tmp), seed, tmp)
        samples = [Sample(**{k: v for k, v in r.items() if k != "conversations"},
                          conversations=tuple(r["conversations"])) for r in records]
        counts = _counts(records)
        write_benchmark(tmp, samples, {
            "name": SMOKE_NAME, "version": SMOKE_VERSION, "seed": seed, "size": size,
            "description": "dfabench smoke benchmark: synthetic manipulations of a few sample photographs "
                           "shipped by scikit-image and matplotlib, for testing the harness. It is not "
                           "DFA-Bench and its numbers say nothing about real deepfakes.",
            "sources": sorted({s.origin.split(" #")[0] for s in sources}),
            "counts": counts})
        (tmp / "README.md").write_text(_README.format(seed=seed, version=SMOKE_VERSION, size=size,
                                                      counts=json.dumps(counts)), encoding="utf-8")
    return out


def _generate(sources: list[Source], spec: SmokeSize, seed: int, tmp: Path) -> list[dict[str, Any]]:
    """Make every sample; each image (and mask) is written to ``tmp`` at once as ``_<n>.png``.

    Every item draws from its own seeded generator, so what one sample looks like does not
    depend on the others.
    """
    pending: list[dict[str, Any]] = []

    def keep(record: dict[str, Any], pixels: np.ndarray, mask: np.ndarray | None) -> None:
        n = len(pending)
        (tmp / "images" / f"_{n}.png").write_bytes(_png_bytes(pixels))
        if mask is not None:
            (tmp / "masks" / f"_{n}.png").write_bytes(_png_bytes(np.where(mask, 255, 0).astype(np.uint8)))
        pending.append({**record, "_n": n, "_mask": mask is not None})

    by_split = {s: [i for i, src in enumerate(sources) if src.split == s] for s in _SPLITS}
    slot_in_split = {index: rank for s in _SPLITS for rank, index in enumerate(by_split[s])}
    # the frames of every source: each stays real or becomes one kind of fake
    for index, source in enumerate(sources):
        count = spec.lfw_frames if source.source_id.startswith("lfw-") else spec.portrait_frames
        for frame_no, kind in enumerate(_plan_frames(count, slot_in_split[index])):
            rng = _child(seed, 2, index, frame_no)
            say = Wording(random.Random(int(rng.integers(1 << 62))))
            frame = render_frame(source, rng)
            record: dict[str, Any] = {"label": "real" if kind == "real" else "fake",
                                      "category": None if kind == "real" else kind,
                                      "source_id": source.source_id, "split": source.split}
            meta: dict[str, Any] = {"source": source.source_id, "frame": frame_no}
            if kind == "real":
                keep({**record, "technique": None, "description": None, "meta": meta,
                      "conversations": _conversations("real", None, None, say)}, frame.pixels, None)
                continue
            if kind == "FS":
                pool = [i for i in by_split[source.split] if i != index]
                donor_index = int(pool[int(rng.integers(len(pool)))])
                fake = face_swap(frame, render_frame(sources[donor_index], rng), rng, say)
                meta["donor"] = sources[donor_index].source_id
            elif kind == "FR":
                fake = reenact(frame, rng, say)
            else:
                fake = edit(frame, rng, say)
            meta.update(fake.meta)
            keep({**record, "technique": fake.technique, "description": fake.description, "meta": meta,
                  "conversations": _conversations("fake", kind, fake.description, say)}, fake.pixels, fake.mask)

    # entirely synthetic faces: the faces they merge come from one split, so they join that split
    n_synth = {s: round(spec.synthetic * _SPLIT_SHARE[s]) for s in _SPLITS}
    n_synth["train"] = spec.synthetic - n_synth["val"] - n_synth["test"]
    counter = 0
    for split in _SPLITS:
        for _ in range(n_synth[split]):
            rng = _child(seed, 3, counter)
            say = Wording(random.Random(int(rng.integers(1 << 62))))
            k = min(int(rng.integers(2, 4)), len(by_split[split]))
            chosen = [int(by_split[split][i]) for i in rng.choice(len(by_split[split]), size=k, replace=False)]
            fake = synthesize([render_small(sources[i], rng, 32) for i in chosen], rng, say)
            meta = {"source": f"synth-{counter:04d}", "faces": [sources[i].source_id for i in chosen], **fake.meta}
            keep({"label": "fake", "category": "EFS", "source_id": f"synth-{counter:04d}", "split": split,
                  "technique": fake.technique, "description": fake.description, "meta": meta,
                  "conversations": _conversations("fake", "EFS", fake.description, say)}, fake.pixels, None)
            counter += 1
    return pending


def _assign_ids(pending: list[dict[str, Any]], seed: int, tmp: Path) -> list[dict[str, Any]]:
    """Opaque ids (nothing in a name tells the label) in a seeded shuffled order; files renamed to them."""
    order = _child(seed, 4).permutation(len(pending))
    width = max(4, len(str(len(pending))))
    records = []
    for new_index, old_index in enumerate(order):
        item = pending[int(old_index)]
        sample_id = f"smoke-{new_index:0{width}d}"
        record = {"id": sample_id, "image": f"images/{sample_id}.png",
                  **{k: v for k, v in item.items() if not k.startswith("_")}}
        os.replace(tmp / "images" / f"_{item['_n']}.png", tmp / record["image"])
        if item["_mask"]:
            record["mask"] = f"masks/{sample_id}.png"
            os.replace(tmp / "masks" / f"_{item['_n']}.png", tmp / record["mask"])
        records.append(record)
    records.sort(key=lambda r: r["id"])
    return records


def _counts(records: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for record in records:
        key = record["category"] or "real"
        split = counts.setdefault(record["split"], dict.fromkeys(("real", *CATEGORIES), 0))
        split[key] += 1
    return {s: counts[s] for s in _SPLITS if s in counts}


def _check_target(out: Path) -> None:
    if not out.exists():
        if out.parent and not out.parent.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
        return
    if not out.is_dir():
        raise DfabenchError(f"{out}: exists and is not a folder")
    if not any(out.iterdir()):
        return
    if not is_smoke_build(out):
        raise DfabenchError(f"{out}: the folder is not empty and does not hold a smoke benchmark; "
                            "choose a new or empty folder")


def is_smoke_build(path: str | Path, *, seed: int | None = None, size: str | None = None) -> bool:
    """Whether ``path`` holds a complete smoke build (of this generator version, seed and size if given)."""
    path = Path(path)
    try:
        info = json.loads((path / "benchmark.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(info, dict) or info.get("name") != SMOKE_NAME or not (path / "manifest.jsonl").is_file():
        return False
    if seed is not None and (info.get("seed") != int(seed) or info.get("version") != SMOKE_VERSION):
        return False
    return size is None or info.get("size") == size


def ensure_smoke(out: str | Path, *, seed: int = 0, size: str = "default") -> Path:
    """Return ``out`` holding the smoke benchmark for ``seed``/``size``, building it only when needed.

    For ``--bench smoke``: a cached build of the same generator version, seed and size is reused.
    """
    out = Path(out)
    if is_smoke_build(out, seed=seed, size=size):
        return out
    return build_smoke(out, seed=seed, size=size)
