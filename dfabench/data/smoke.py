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
import math
import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dfabench.errors import DfabenchError

SMOKE_NAME = "dfabench-smoke"
#: version of the generator: bump it whenever the output for a given seed changes
SMOKE_VERSION = "1"
IMAGE_SIZE = 256

#: where the canonical aligned face puts the eyes and the mouth (x, y) in a 256x256 frame
_TEMPLATE = np.array([[86.0, 104.0], [170.0, 104.0], [128.0, 188.0]])

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


@dataclass
class _Source:
    """A source photograph: pixels (uint8 RGB) and its landmarks."""

    source_id: str
    pixels: np.ndarray
    landmarks: np.ndarray  # (3, 2): left eye, right eye, mouth
    origin: str
    split: str = ""


def _load_sources(spec: SmokeSize, rng: np.random.Generator) -> list[_Source]:
    try:
        import matplotlib
        from skimage import data as skdata
    except ImportError as exc:
        raise DfabenchError(
            f"the smoke benchmark is built from sample photographs shipped by scikit-image and matplotlib, "
            f"which are not installed ({exc.name}): pip install 'dfabench[smoke]'") from None
    from PIL import Image

    sources = [_Source("astronaut", np.ascontiguousarray(skdata.astronaut()[..., :3]),
                       np.array(_ASTRONAUT_LANDMARKS), "scikit-image data.astronaut() (NASA, public domain)")]
    hopper_path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    with Image.open(hopper_path) as image:
        hopper = np.asarray(image.convert("RGB"))
    sources.append(_Source("grace-hopper", hopper, np.array(_GRACE_HOPPER_LANDMARKS),
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
        sources.append(_Source(f"lfw-{int(index):03d}", np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8),
                               np.array(_LFW_LANDMARKS) + _LFW_PAD,
                               f"scikit-image data.lfw_subset() (Labeled Faces in the Wild crops) #{int(index)}"))
    return sources


# --------------------------------------------------------------------------- geometry


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (2x3) mapping points ``src`` onto ``dst``."""
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    s, d = src - src_mean, dst - dst_mean
    denom = (s ** 2).sum()
    a = (s * d).sum() / denom
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / denom
    rot = np.array([[a, -b], [b, a]])
    return np.hstack([rot, (dst_mean - rot @ src_mean)[:, None]])


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def _invert(matrix: np.ndarray) -> np.ndarray:
    inv = np.linalg.inv(matrix[:, :2])
    return np.hstack([inv, (-inv @ matrix[:, 2])[:, None]])


def _warp_affine(pixels: np.ndarray, matrix: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """Render ``pixels`` through the forward transform ``matrix`` into a ``size`` x ``size`` frame."""
    from PIL import Image

    inv = _invert(matrix)
    coeffs = (inv[0, 0], inv[0, 1], inv[0, 2], inv[1, 0], inv[1, 1], inv[1, 2])
    image = Image.fromarray(pixels).transform((size, size), Image.Transform.AFFINE, coeffs,
                                              resample=Image.Resampling.BICUBIC, fillcolor=(0, 0, 0))
    return np.asarray(image, dtype=np.float32)


_YY, _XX = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float32)


@dataclass
class _Frame:
    """An aligned 256x256 frame (float32, integer values 0..255) and its landmarks."""

    pixels: np.ndarray
    landmarks: np.ndarray
    noise: float

    @property
    def eye_distance(self) -> float:
        return float(np.linalg.norm(self.landmarks[1] - self.landmarks[0]))

    @property
    def angle(self) -> float:
        left, right = self.landmarks[0], self.landmarks[1]
        return float(math.atan2(right[1] - left[1], right[0] - left[0]))

    def region(self, name: str) -> list[tuple[np.ndarray, tuple[float, float]]]:
        """Ellipses (centre, semi-axes) of a named facial region, oriented with the face."""
        left, right, mouth = self.landmarks
        eyes_mid = (left + right) / 2
        d = self.eye_distance
        down = mouth - eyes_mid
        height = float(np.linalg.norm(down))
        unit_down = down / max(height, 1e-6)
        across = (right - left) / max(d, 1e-6)
        if name == "eyes":
            return [(left, (0.34 * d, 0.2 * d)), (right, (0.34 * d, 0.2 * d))]
        if name == "left eye":
            return [(left, (0.34 * d, 0.2 * d))]
        if name == "right eye":
            return [(right, (0.34 * d, 0.2 * d))]
        if name == "mouth":
            return [(mouth, (0.44 * d, 0.24 * d))]
        if name == "forehead":
            return [(eyes_mid - 0.62 * d * unit_down, (0.7 * d, 0.26 * d))]
        if name == "cheeks":
            return [(left + 0.55 * down - 0.08 * d * across, (0.27 * d, 0.3 * d)),
                    (right + 0.55 * down + 0.08 * d * across, (0.27 * d, 0.3 * d))]
        if name == "left cheek":
            return [(left + 0.55 * down - 0.08 * d * across, (0.3 * d, 0.33 * d))]
        if name == "right cheek":
            return [(right + 0.55 * down + 0.08 * d * across, (0.3 * d, 0.33 * d))]
        if name == "inner face":
            return [(eyes_mid + 0.42 * down, (0.9 * d, 0.95 * height + 0.1 * d))]
        raise ValueError(name)

    def alpha(self, name: str, feather: float) -> np.ndarray:
        """Soft weight of a region: 1 inside, falling to exactly 0 at the ellipse border.

        ``feather`` is the width of the falloff as a fraction of the radius; the support
        (alpha > 0) is exactly the inside of the ellipse(s).
        """
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        out = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
        for centre, (ax, ay) in self.region(name):
            dx, dy = _XX - np.float32(centre[0]), _YY - np.float32(centre[1])
            u = (dx * cos + dy * sin) / ax
            v = (-dx * sin + dy * cos) / ay
            t = np.clip((1 - np.sqrt(u * u + v * v)) / feather, 0, 1)
            out = np.maximum(out, t * t * (3 - 2 * t))
        return out


def _render_frame(source: _Source, rng: np.random.Generator) -> _Frame:
    """An aligned, jittered view of a source photograph with camera-like noise."""
    scale = rng.uniform(0.94, 1.06)
    rotation = math.radians(rng.uniform(-5, 5))
    shift = rng.uniform(-5, 5, size=2)
    centre = _TEMPLATE.mean(0)
    rot = np.array([[math.cos(rotation), -math.sin(rotation)], [math.sin(rotation), math.cos(rotation)]])
    target = (_TEMPLATE - centre) @ rot.T * scale + centre + shift
    flip = bool(rng.random() < 0.5)
    matrix = _similarity(source.landmarks, target)
    if flip:
        mirror = np.array([[-1.0, 0.0, IMAGE_SIZE - 1.0], [0.0, 1.0, 0.0]])
        matrix = mirror[:, :2] @ matrix
        matrix[:, 2] += mirror[:, 2]
    pixels = _warp_affine(source.pixels, matrix)
    landmarks = _apply(matrix, source.landmarks)
    if flip:
        landmarks = landmarks[[1, 0, 2]]
    gain = np.float32(rng.uniform(0.9, 1.1))
    offset = np.float32(rng.uniform(-8, 8))
    noise = float(rng.uniform(1.5, 3.5))
    pixels = pixels * gain + offset + rng.standard_normal(pixels.shape, dtype=np.float32) * np.float32(noise)
    return _Frame(np.clip(np.rint(pixels), 0, 255), landmarks, noise)


def _render_small(source: _Source, rng: np.random.Generator, size: int) -> np.ndarray:
    """A jittered aligned view of a source at low resolution (no noise): the base of a synthesis."""
    shift = rng.uniform(-4, 4, size=2)
    matrix = _similarity(source.landmarks, (_TEMPLATE + shift) * (size / IMAGE_SIZE))
    return _warp_affine(source.pixels, matrix, size)


def _compose(real: np.ndarray, edited: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Blend ``edited`` into ``real`` with ``alpha``; pixels where alpha == 0 stay byte-identical."""
    out = real + alpha[..., None] * (edited - real)
    out = np.clip(np.rint(out), 0, 255).astype(np.float32)
    return np.where(alpha[..., None] > 0, out, real)


def _blur(pixels: np.ndarray, radius: float) -> np.ndarray:
    from PIL import Image, ImageFilter

    image = Image.fromarray(pixels.astype(np.uint8)).filter(ImageFilter.GaussianBlur(radius))
    return np.asarray(image, dtype=np.float32)


def _sharpen(pixels: np.ndarray, radius: float, percent: int) -> np.ndarray:
    from PIL import Image, ImageFilter

    image = Image.fromarray(pixels.astype(np.uint8)).filter(ImageFilter.UnsharpMask(radius, percent, 0))
    return np.asarray(image, dtype=np.float32)


def _detail(pixels: np.ndarray, where: np.ndarray) -> float:
    """Mean high-frequency energy (fine detail and grain) of ``pixels`` inside ``where``."""
    return float(np.abs(pixels - _blur(np.clip(pixels, 0, 255), 1.0))[where].mean())


def _sample_bilinear(pixels: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    h, w = pixels.shape[:2]
    xs = np.clip(xs, 0, w - 1.001)
    ys = np.clip(ys, 0, h - 1.001)
    x0, y0 = np.floor(xs).astype(np.intp), np.floor(ys).astype(np.intp)
    fx, fy = (xs - x0)[..., None], (ys - y0)[..., None]
    top = pixels[y0, x0] * (1 - fx) + pixels[y0, x0 + 1] * fx
    bottom = pixels[y0 + 1, x0] * (1 - fx) + pixels[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


# --------------------------------------------------------------------------- wording


class _Wording:
    """Varied, seeded phrasing of the reference descriptions."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def pick(self, *options: str) -> str:
        return options[self.rng.randrange(len(options))]

    def numbered(self, items: list[tuple[str, str]]) -> str:
        intro = self.pick("", "The image shows the following artifacts:\n",
                          "Artifacts are visible in these regions:\n", "")
        lines = [f"{i}. {title}: {text}" for i, (title, text) in enumerate(items, 1)]
        return intro + "\n".join(lines)


# --------------------------------------------------------------------------- manipulations


@dataclass
class _Fake:
    pixels: np.ndarray
    category: str
    technique: str
    description: str
    mask: np.ndarray | None
    meta: dict[str, Any] = field(default_factory=dict)


def _region_title(region: str) -> str:
    return {"eyes": "Eyes", "left eye": "Eyes", "right eye": "Eyes", "mouth": "Mouth and lips",
            "forehead": "Forehead", "cheeks": "Cheeks and jawline", "left cheek": "Cheeks and jawline",
            "right cheek": "Cheeks and jawline", "inner face": "Face boundary"}[region]


def _face_swap(target: _Frame, donor: _Frame, rng: np.random.Generator, say: _Wording) -> _Fake:
    whole = rng.random() < 0.6
    region = "inner face" if whole else str(rng.choice(["left cheek", "right cheek", "forehead"]))
    # align the donor's landmarks on the target's, with a small misalignment
    misalign = rng.uniform(-0.04, 0.04, size=(3, 2)) * target.eye_distance
    matrix = _similarity(donor.landmarks, target.landmarks + misalign)
    aligned = _warp_affine(donor.pixels.astype(np.uint8), matrix)
    feather = float(rng.uniform(0.05, 0.14))
    alpha = target.alpha(region, feather)
    inside = alpha > 0.5
    # partial colour correction: the rest of the difference stays as a skin-tone mismatch
    correction = float(rng.uniform(0.2, 0.7))
    t_mean, d_mean = target.pixels[inside].mean(0), aligned[inside].mean(0)
    shift = (t_mean - d_mean) * correction
    pasted = aligned + shift
    fake = _compose(target.pixels, pasted, alpha)
    residual = (d_mean + shift) - t_mean
    items: list[tuple[str, str]] = []
    seam = say.pick("a visible seam", "a noticeable blending boundary", "a faint but clear edge")
    if whole:
        items.append(("Face boundary", f"{seam} {say.pick('runs around', 'surrounds', 'traces')} the pasted "
                      f"face, across the cheeks and towards the jawline, "
                      f"{say.pick('where the skin texture changes abruptly', 'with an abrupt change of texture')}."))
    else:
        items.append((_region_title(region), f"{seam} {say.pick('outlines', 'surrounds')} a patch of skin "
                      f"on the {region.replace('left ', '').replace('right ', '')} that "
                      f"{say.pick('comes from another face', 'does not belong to this face')}."))
    brightness = float(residual.mean())
    warmth = float(residual[0] - residual[2])
    if abs(brightness) > 4 or abs(warmth) > 6:
        if abs(warmth) > abs(brightness):
            tone = "warmer (more reddish)" if warmth > 0 else "cooler (more bluish)"
        else:
            tone = "brighter" if brightness > 0 else "darker"
        where = "inner face" if whole else "patch"
        items.append(("Skin tone", f"the {where} is {tone} than the "
                      f"{say.pick('surrounding skin', 'rest of the face')}, "
                      f"{say.pick('an inconsistent skin tone', 'a mismatch in colour')} between the two parts."))
    detail = _detail(pasted, inside) / max(_detail(target.pixels, inside), 1e-6)
    if detail < 0.75 or detail > 1.33:
        grain = (say.pick("blurrier, with less fine detail and grain", "smoother and less detailed")
                 if detail < 1 else say.pick("sharper and grainier", "noisier, with more fine grain"))
        items.append(("Texture", f"the {say.pick('swapped', 'pasted')} area looks {grain} than the "
                      f"{say.pick('surrounding image', 'rest of the photograph')}."))
    if whole and float(np.abs(misalign).max()) > 0.025 * target.eye_distance:
        items.append(("Eyes", f"the eyes and the mouth {say.pick('do not quite line up', 'are slightly misaligned')} "
                      f"with the {say.pick('head', 'rest of the head')}, "
                      f"{say.pick('giving a subtly distorted geometry', 'so the face looks slightly off')}."))
    return _Fake(fake, "FS", "smoke-blend-swap" if whole else "smoke-patch-swap", say.numbered(items),
                 alpha > 0, {"region": region, "feather": round(feather, 4), "colour_correction": round(correction, 4),
                             "detail_ratio": round(detail, 3)})


def _reenact(target: _Frame, rng: np.random.Generator, say: _Wording) -> _Fake:
    kind = str(rng.choice(["mouth-open", "mouth-widen", "smile", "eyes-narrow", "eyes-widen"]))
    region = "mouth" if kind.startswith("mouth") or kind == "smile" else "eyes"
    cos, sin = math.cos(target.angle), math.sin(target.angle)
    alpha = target.alpha(region, 1.0)  # smooth displacement window, exactly 0 at the border
    xs, ys = _XX.copy(), _YY.copy()
    strength = float(rng.uniform(0.25, 0.45))
    for centre, (ax, _ay) in target.region(region):
        dx, dy = _XX - np.float32(centre[0]), _YY - np.float32(centre[1])
        u = dx * cos + dy * sin  # along the face's horizontal axis
        v = -dx * sin + dy * cos  # along its vertical axis
        su, sv = np.zeros_like(u), np.zeros_like(v)
        if kind in ("mouth-open", "eyes-widen"):
            sv = -strength * v * alpha  # sample closer to the centre: stretch vertically
        elif kind == "eyes-narrow":
            sv = strength * v * alpha  # sample farther out: squeeze vertically
        elif kind == "mouth-widen":
            su = -strength * u * alpha
        else:  # smile: lift the corners
            sv = strength * 0.5 * ax * (np.abs(u) / ax) ** 2 * alpha
        xs = xs + su * cos - sv * sin
        ys = ys + su * sin + sv * cos
    support = alpha > 0
    rows, cols = np.nonzero(support.any(1))[0], np.nonzero(support.any(0))[0]
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    warped = target.pixels.copy()
    warped[box] = _sample_bilinear(target.pixels, xs[box], ys[box])
    # the moved part is re-rendered at a lower resolution, as reenactment generators do
    factor = float(rng.uniform(2.0, 3.0))
    warped[box] = _rerender(warped[box], factor, target.alpha(region, 0.5)[box])
    fake = _compose(target.pixels, warped, support.astype(np.float32))
    items: list[tuple[str, str]] = []
    if region == "mouth":
        shape = {"mouth-open": say.pick("stretched vertically", "pulled open"),
                 "mouth-widen": say.pick("stretched sideways", "unnaturally wide"),
                 "smile": say.pick("bent upwards at the corners", "pulled into a forced smile")}[kind]
        items.append(("Mouth and lips", f"the lips are {shape}, "
                      f"{say.pick('an implausible mouth shape', 'an unnatural expression')}; the "
                      f"{say.pick('skin around the mouth', 'area around the lips')} is "
                      f"{say.pick('warped', 'slightly distorted', 'smeared')}."))
    else:
        shape = say.pick("narrowed", "squeezed") if kind == "eyes-narrow" else say.pick("enlarged", "opened wider")
        items.append(("Eyes", f"both eyes look {shape} compared with the rest of the face; the eyelid "
                      f"contours are {say.pick('bent', 'distorted', 'irregular')}."))
    items.append(("Texture", f"the warped area is {say.pick('softer', 'blurrier')} than its surroundings, "
                  f"{say.pick('losing the fine grain of the photograph', 'with the image grain smoothed out')}, "
                  f"{say.pick('as if rendered at a lower resolution', 'like a low-resolution patch')}."))
    technique = "smoke-mouth-warp" if region == "mouth" else "smoke-eye-warp"
    return _Fake(fake, "FR", technique, say.numbered(items), alpha > 0,
                 {"region": region, "motion": kind, "strength": round(strength, 4),
                  "render_scale": round(1 / factor, 4)})


def _rerender(patch: np.ndarray, factor: float, weight: np.ndarray) -> np.ndarray:
    """Blend into ``patch`` (with ``weight``) a copy of it rendered ``factor`` times smaller and upscaled."""
    from PIL import Image

    h, w = patch.shape[:2]
    image = Image.fromarray(np.clip(np.rint(patch), 0, 255).astype(np.uint8))
    small = image.resize((max(1, round(w / factor)), max(1, round(h / factor))), Image.Resampling.BILINEAR)
    low = np.asarray(small.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)
    return patch + weight[..., None] * (low - patch)


_TINTS = {"red": (1.25, 0.8, 0.8), "pink": (1.2, 0.85, 1.0), "purple": (1.05, 0.8, 1.2),
          "orange": (1.25, 1.0, 0.7), "green": (0.85, 1.2, 0.85), "blue": (0.85, 0.95, 1.25)}
#: plausible colour edits per region (lipstick, blush, eye shadow)
_REGION_TINTS = {"mouth": ("red", "pink", "purple"), "cheeks": ("red", "pink", "orange"),
                 "eyes": ("purple", "green", "blue")}


def _edit(target: _Frame, rng: np.random.Generator, say: _Wording) -> _Fake:
    kinds = ["smooth", "colour", "sharpen"]
    first = str(rng.choice(kinds))
    ops = [first]
    if rng.random() < 0.35:
        ops.append(str(rng.choice([k for k in kinds if k != first])))
    pixels = target.pixels
    support = np.zeros((IMAGE_SIZE, IMAGE_SIZE), bool)
    items: list[tuple[str, str]] = []
    meta: list[dict[str, Any]] = []
    used: list[str] = []
    for op in ops:
        if op == "smooth":
            region = str(rng.choice([r for r in ("cheeks", "forehead") if r not in used]))
            radius = float(rng.uniform(1.5, 3.0))
            alpha = target.alpha(region, 0.45)
            pixels = _compose(pixels, _blur(pixels, radius), alpha)
            smooth = say.pick("unnaturally smooth", "overly smooth", "waxy")
            items.append((_region_title(region), f"the skin is {smooth}, "
                          f"{say.pick('without pores or grain', 'with its fine texture wiped out')}, unlike the "
                          f"{say.pick('rest of the face', 'neighbouring skin')}."))
            entry: dict[str, Any] = {"op": op, "region": region, "radius": round(radius, 3)}
        elif op == "colour":
            region = str(rng.choice([r for r in ("mouth", "cheeks", "eyes") if r not in used]))
            tint_name = str(rng.choice(_REGION_TINTS[region]))
            gain = np.array(_TINTS[tint_name], np.float32)
            strength = float(rng.uniform(0.45, 0.8))
            alpha = target.alpha(region, 0.5) * strength
            pixels = _compose(pixels, np.clip(pixels * gain, 0, 255), alpha)
            what = {"mouth": "the lip colour", "cheeks": "the skin of the cheeks", "eyes": "the area around the eyes"}
            items.append((_region_title(region), f"{what[region]} is shifted towards {tint_name}, "
                          f"{say.pick('an unnatural colour', 'an implausible tint')} that "
                          f"{say.pick('does not match the lighting', 'stands out from the rest of the face')}."))
            entry = {"op": op, "region": region, "tint": tint_name, "strength": round(strength, 4)}
        else:
            region = str(rng.choice([r for r in ("eyes", "mouth") if r not in used]))
            percent = int(rng.integers(150, 300))
            alpha = target.alpha(region, 0.45)
            pixels = _compose(pixels, _sharpen(pixels, 2.0, percent), alpha)
            items.append((_region_title(region), f"the edges are {say.pick('over-sharpened', 'unnaturally crisp')}, "
                          f"with {say.pick('bright halos', 'ringing', 'exaggerated contrast')} along the "
                          f"{'eyelids' if region == 'eyes' else 'lips'}."))
            entry = {"op": op, "region": region, "percent": percent}
        used.append(region)
        support |= alpha > 0
        meta.append(entry)
    technique = {"smooth": "smoke-skin-smooth", "colour": "smoke-color-edit", "sharpen": "smoke-sharpen-edit"}[first]
    return _Fake(pixels, "FE", technique, say.numbered(items), support, {"edits": meta})


def _upsample_transposed(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Stride-2 transposed convolution (separable 4-tap kernel) of an HxWxC array."""
    for axis in (0, 1):
        n = x.shape[axis]
        shape = list(x.shape)
        shape[axis] = 2 * n + 2
        out = np.zeros(shape, np.float32)
        for tap in range(4):
            index = [slice(None)] * 3
            index[axis] = slice(tap, tap + 2 * n, 2)
            out[tuple(index)] += kernel[tap] * x
        crop = [slice(None)] * 3
        crop[axis] = slice(1, 2 * n + 1)
        x = out[tuple(crop)]
    return x


def _synthesize(donors: list[np.ndarray], rng: np.random.Generator, say: _Wording) -> _Fake:
    weights = rng.dirichlet(np.ones(len(donors)) * 2.0)
    low = np.zeros_like(donors[0])
    for weight, donor in zip(weights, donors, strict=True):
        low += np.float32(weight) * donor
    colour = rng.uniform(0.9, 1.1, size=3).astype(np.float32)
    x = low * colour
    nearest = rng.random() < 0.4
    for _stage in range(3):
        if nearest:
            x = x.repeat(2, axis=0).repeat(2, axis=1)
            x = 0.3 * x + 0.7 * _blur(np.clip(x, 0, 255), 0.8)
        else:
            # a bilinear kernel [.25 .75 .75 .25] perturbed so its two phases have unequal gains
            kernel = np.array([0.25, 0.75, 0.75, 0.25], np.float32) + rng.uniform(-0.03, 0.03, 4).astype(np.float32)
            x = _upsample_transposed(x, kernel)
            phase_gain = kernel[0::2].sum() * 0.5 + kernel[1::2].sum() * 0.5
            x = x / phase_gain
        x = x + rng.normal(0.0, 1.2, x.shape[:2])[..., None].astype(np.float32)  # per-layer noise input
    fake = np.clip(np.rint(x), 0, 255).astype(np.float32)
    items = [("Overall texture", f"a {say.pick('faint', 'regular', 'fine')} "
              f"{say.pick('grid-like', 'checkerboard')} pattern repeats across smooth areas such as the "
              f"{say.pick('cheeks and forehead', 'forehead and background')}, "
              f"{say.pick('typical of generator upsampling', 'left by the upsampling layers of a generator')}.")]
    items.append(("Fine detail", f"{say.pick('skin pores, hair strands', 'hair, skin texture')} and the background "
                  f"lack natural fine detail; the image looks {say.pick('painted', 'over-smoothed', 'plastic')}."))
    if len(donors) > 1 and float(weights.max()) < 0.85:
        items.append(("Eyes", f"{say.pick('faint double contours', 'ghosting')} around the eyes and the mouth, "
                      f"{say.pick('as if several faces were merged', 'like a blend of different faces')}."))
    technique = "smoke-nearest-gen" if nearest else "smoke-deconv-gen"
    return _Fake(fake, "EFS", technique, say.numbered(items), None,
                 {"upsampling": "nearest" if nearest else "transposed-conv", "faces_merged": len(donors)})


# --------------------------------------------------------------------------- build


def _conversations(label: str, category: str | None, description: str | None, say: _Wording) -> list[dict]:
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


def _assign_splits(sources: list[_Source], rng: np.random.Generator) -> None:
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
    from dfabench.data.manifest import MANIFEST, Sample, write_manifest

    if size not in SIZES:
        raise DfabenchError(f"unknown smoke benchmark size {size!r} (known: {', '.join(SIZES)})")
    seed = int(seed)
    out = Path(out)
    _check_target(out)
    spec = SIZES[size]
    sources = _load_sources(spec, _child(seed, 0))
    _assign_splits(sources, _child(seed, 1))
    tmp = out.with_name(f".{out.name}.building-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "images").mkdir(parents=True)
    (tmp / "masks").mkdir()
    try:
        records = _assign_ids(_generate(sources, spec, seed, tmp), seed, tmp)
        samples = [Sample(**{k: v for k, v in r.items() if k != "conversations"},
                          conversations=tuple(r["conversations"])) for r in records]
        write_manifest(tmp / MANIFEST, samples)
        counts = _counts(records)
        info = {"name": SMOKE_NAME, "version": SMOKE_VERSION, "seed": seed, "size": size,
                "description": "dfabench smoke benchmark: synthetic manipulations of a few sample photographs "
                               "shipped by scikit-image and matplotlib, for testing the harness. It is not "
                               "DFA-Bench and its numbers say nothing about real deepfakes.",
                "sources": sorted({s.origin.split(" #")[0] for s in sources}),
                "counts": counts}
        (tmp / "benchmark.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(_README.format(seed=seed, version=SMOKE_VERSION, size=size,
                                                      counts=json.dumps(counts)), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _generate(sources: list[_Source], spec: SmokeSize, seed: int, tmp: Path) -> list[dict[str, Any]]:
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
            say = _Wording(random.Random(int(rng.integers(1 << 62))))
            frame = _render_frame(source, rng)
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
                fake = _face_swap(frame, _render_frame(sources[donor_index], rng), rng, say)
                meta["donor"] = sources[donor_index].source_id
            elif kind == "FR":
                fake = _reenact(frame, rng, say)
            else:
                fake = _edit(frame, rng, say)
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
            say = _Wording(random.Random(int(rng.integers(1 << 62))))
            k = min(int(rng.integers(2, 4)), len(by_split[split]))
            chosen = [int(by_split[split][i]) for i in rng.choice(len(by_split[split]), size=k, replace=False)]
            fake = _synthesize([_render_small(sources[i], rng, 32) for i in chosen], rng, say)
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
        split = counts.setdefault(record["split"], {"real": 0, "FS": 0, "FR": 0, "FE": 0, "EFS": 0})
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
