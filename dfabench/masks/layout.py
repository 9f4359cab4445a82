"""The 21 MMTT face regions as a coarse mask: ellipses in a face frame placed by landmarks or by the layout.

A **face frame** is an origin ``E`` (the midpoint between the eyes) and two axes ``u`` (from the subject's
eye on the image's left to the other: one interocular distance) and ``v`` (downwards, the face's vertical
axis). A point of the frame ``(a, b)`` is the pixel position ``E + a·u + b·v``: the eyes are at ``(±0.5, 0)``,
the mouth about ``(0, 1.15)``.

Each region of :data:`dfabench.vocab.FACE_REGIONS` is a union of ellipses ``(a, b, ra, rb)`` in the frame
(:data:`REGION_ELLIPSES`): the pixels whose centres lie inside. Paired regions (eyes, cheeks, ears, ...) are
marked on both sides: an answer's "left" is the subject's left for some writers and the viewer's for others,
so a side is never guessed. The shapes are coarse on purpose (a region name says *where*, not the outline).

Frames (:func:`layout_frame`, :func:`face_box_frame`, :func:`eyes_frame`):

- **layout**: the image is an aligned face crop (MMTT and DFA-Bench images are); the eyes and the mouth sit where
  the standard five-point alignment template puts them (ArcFace's 112x112 template: eyes at (0.342, 0.462) and
  (0.658, 0.461), mouth centre at (0.502, 0.824) of the crop), so ``E = (0.5, 0.4615)`` and
  ``|u| = |v| = 0.316`` of the width and of the height;
- **face**: a detected face box (a Haar-cascade box: the eyes at 36% of its height, 0.45 of its width apart);
- **landmarks**: two detected eye centres ``L``, ``R``: ``E = (L + R) / 2``, ``u = R - L``, ``v`` = ``u`` turned
  by 90 degrees (a tilted face gets a tilted frame).
"""

from __future__ import annotations

from dataclasses import dataclass

#: the version of the layout (frames and ellipses): part of the identity of a text-derived mask
LAYOUT_VERSION = 1

#: region -> ellipses (a, b, ra, rb) in the face frame of the module docstring
REGION_ELLIPSES: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    "eye": ((-0.5, 0.0, 0.22, 0.11), (0.5, 0.0, 0.22, 0.11)),
    "pupil": ((-0.5, 0.0, 0.05, 0.05), (0.5, 0.0, 0.05, 0.05)),
    "lip": ((0.0, 1.15, 0.45, 0.16),),
    "mouth": ((0.0, 1.15, 0.5, 0.22),),
    "nose": ((0.0, 0.45, 0.2, 0.4),),
    "ear": ((-1.45, 0.3, 0.18, 0.4), (1.45, 0.3, 0.18, 0.4)),
    "cheek": ((-0.75, 0.65, 0.3, 0.35), (0.75, 0.65, 0.3, 0.35)),
    "forehead": ((0.0, -0.8, 0.9, 0.35),),
    "chin": ((0.0, 1.5, 0.42, 0.2),),
    "jaw": ((-0.95, 1.25, 0.25, 0.45), (0.95, 1.25, 0.25, 0.45)),
    "eyebrow": ((-0.5, -0.27, 0.28, 0.08), (0.5, -0.27, 0.28, 0.08)),
    "tooth": ((0.0, 1.15, 0.3, 0.07),),
    "tongue": ((0.0, 1.22, 0.2, 0.08),),
    "beard": ((0.0, 1.45, 1.0, 0.45),),
    "mustache": ((0.0, 0.9, 0.45, 0.1),),
    "skin": ((0.0, 0.4, 1.25, 1.5),),
    "hair": ((0.0, -1.5, 1.6, 0.6),),
    "wrinkle": ((0.0, -0.8, 0.9, 0.35), (-0.4, 0.85, 0.12, 0.3), (0.4, 0.85, 0.12, 0.3)),
    "freckle": ((-0.75, 0.65, 0.3, 0.35), (0.75, 0.65, 0.3, 0.35), (0.0, 0.45, 0.2, 0.4)),
    "scar": ((0.0, 0.4, 1.25, 1.5),),
    "dimple": ((-0.6, 1.1, 0.08, 0.08), (0.6, 1.1, 0.08, 0.08)),
}

#: the aligned-crop template (fractions of the crop): the eyes' midpoint and the interocular distance
LAYOUT_EYES_MIDPOINT = (0.5, 0.4615)
LAYOUT_INTEROCULAR = 0.316
#: where the eyes sit in a Haar-cascade face box (fractions of the box)
FACE_BOX_EYES_Y = 0.36
FACE_BOX_INTEROCULAR = 0.45


@dataclass(frozen=True)
class Frame:
    """A face frame: origin ``e`` and axes ``u``, ``v`` in pixels (the module docstring)."""

    e: tuple[float, float]
    u: tuple[float, float]
    v: tuple[float, float]

    def to_dict(self) -> dict[str, list[float]]:
        return {name: [round(float(c), 3) for c in getattr(self, name)] for name in ("e", "u", "v")}


def layout_frame(size: tuple[int, int]) -> Frame:
    """The frame of an aligned face crop of ``size`` = (width, height)."""
    width, height = size
    return Frame((LAYOUT_EYES_MIDPOINT[0] * width, LAYOUT_EYES_MIDPOINT[1] * height),
                 (LAYOUT_INTEROCULAR * width, 0.0), (0.0, LAYOUT_INTEROCULAR * height))


def face_box_frame(box: tuple[float, float, float, float]) -> Frame:
    """The frame of a detected face box ``(x, y, w, h)``."""
    x, y, w, h = box
    return Frame((x + 0.5 * w, y + FACE_BOX_EYES_Y * h), (FACE_BOX_INTEROCULAR * w, 0.0),
                 (0.0, FACE_BOX_INTEROCULAR * h))


def eyes_frame(left: tuple[float, float], right: tuple[float, float]) -> Frame:
    """The frame of two eye centres (``left``: the one on the image's left)."""
    ux, uy = right[0] - left[0], right[1] - left[1]
    return Frame(((left[0] + right[0]) / 2, (left[1] + right[1]) / 2), (ux, uy), (-uy, ux))


def region_mask(regions, size: tuple[int, int], frame: Frame):
    """The union of the ellipses of ``regions`` in ``frame`` as a boolean (height, width) array."""
    import numpy as np

    width, height = size
    mask = np.zeros((height, width), dtype=bool)
    ellipses = [e for region in regions for e in REGION_ELLIPSES[region]]
    if not ellipses:
        return mask
    (ux, uy), (vx, vy) = frame.u, frame.v
    det = ux * vy - vx * uy
    if det == 0:
        return mask
    dx = (np.arange(width) + 0.5 - frame.e[0])[None, :]
    dy = (np.arange(height) + 0.5 - frame.e[1])[:, None]
    # (a, b) of every pixel centre: the inverse of [u v] applied to (p - E)
    a = (dx * vy - dy * vx) / det
    b = (dy * ux - dx * uy) / det
    for ca, cb, ra, rb in dict.fromkeys(ellipses):
        mask |= ((a - ca) / ra) ** 2 + ((b - cb) / rb) ** 2 <= 1.0
    return mask
