"""The synthetic manipulations of the smoke benchmark (:mod:`dfabench.data.smoke` builds it from them).

A source photograph (:class:`Source`) gives aligned 256x256 frames (:func:`render_frame`); a frame
becomes a fake of one category, with its exact mask and a reference description of what was done:
:func:`face_swap` (FS), :func:`reenact` (FR), :func:`edit` (FE); :func:`synthesize` makes a whole
face (EFS) from low-resolution views (:func:`render_small`) of several sources. Every function draws
only from the generators it is given, so the same seed gives the same pixels.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np

IMAGE_SIZE = 256

#: where the canonical aligned face puts the eyes and the mouth (x, y) in a 256x256 frame
TEMPLATE = np.array([[86.0, 104.0], [170.0, 104.0], [128.0, 188.0]])


@dataclass
class Source:
    """A source photograph: pixels (uint8 RGB) and its landmarks."""

    source_id: str
    pixels: np.ndarray
    landmarks: np.ndarray  # (3, 2): left eye, right eye, mouth
    origin: str
    split: str = ""


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
class Frame:
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


def render_frame(source: Source, rng: np.random.Generator) -> Frame:
    """An aligned, jittered view of a source photograph with camera-like noise."""
    scale = rng.uniform(0.94, 1.06)
    rotation = math.radians(rng.uniform(-5, 5))
    shift = rng.uniform(-5, 5, size=2)
    centre = TEMPLATE.mean(0)
    rot = np.array([[math.cos(rotation), -math.sin(rotation)], [math.sin(rotation), math.cos(rotation)]])
    target = (TEMPLATE - centre) @ rot.T * scale + centre + shift
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
    return Frame(np.clip(np.rint(pixels), 0, 255), landmarks, noise)


def render_small(source: Source, rng: np.random.Generator, size: int) -> np.ndarray:
    """A jittered aligned view of a source at low resolution (no noise): the base of a synthesis."""
    shift = rng.uniform(-4, 4, size=2)
    matrix = _similarity(source.landmarks, (TEMPLATE + shift) * (size / IMAGE_SIZE))
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


class Wording:
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
class Fake:
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


def face_swap(target: Frame, donor: Frame, rng: np.random.Generator, say: Wording) -> Fake:
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
    return Fake(fake, "FS", "smoke-blend-swap" if whole else "smoke-patch-swap", say.numbered(items),
                 alpha > 0, {"region": region, "feather": round(feather, 4), "colour_correction": round(correction, 4),
                             "detail_ratio": round(detail, 3)})


def reenact(target: Frame, rng: np.random.Generator, say: Wording) -> Fake:
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
    return Fake(fake, "FR", technique, say.numbered(items), alpha > 0,
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


def edit(target: Frame, rng: np.random.Generator, say: Wording) -> Fake:
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
    return Fake(pixels, "FE", technique, say.numbered(items), support, {"edits": meta})


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


def synthesize(donors: list[np.ndarray], rng: np.random.Generator, say: Wording) -> Fake:
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
    return Fake(fake, "EFS", technique, say.numbered(items), None,
                 {"upsampling": "nearest" if nearest else "transposed-conv", "faces_merged": len(donors)})
