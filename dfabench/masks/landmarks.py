"""The optional face and eye detector of text-derived masks: OpenCV's Haar cascades, shipped inside the
``opencv-python-headless`` wheel (4.x; 5.x ships none). Nothing here is imported unless a spec asks for the
detector, and dfabench works without it (:func:`available` says why not; masks then use the layout).

:func:`detect` finds the largest frontal face (``haarcascade_frontalface_default``) and, in the upper 60% of
its box, the eyes (``haarcascade_eye``): the largest detection whose centre lies in the box's left half and
the largest in its right half, kept when they are 0.25-0.75 of the box's width apart and less than a quarter
of it apart vertically. The grey image is Pillow's ``convert("L")`` of the image; the cascades run with fixed
parameters, so the result depends only on the image and the OpenCV version (part of the identity).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache

NAME = "opencv-haar"
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Detection:
    """The largest face ``(x, y, w, h)`` and, when both were found, the eye centres (image's left first)."""

    face: tuple[float, float, float, float]
    eyes: tuple[tuple[float, float], tuple[float, float]] | None


@lru_cache(maxsize=1)
def available() -> tuple[str | None, str | None]:
    """(OpenCV's version, None) when the detector can run, else (None, why not)."""
    try:
        import cv2
    except ImportError as exc:
        return None, f"opencv-python-headless is not installed ({exc})"
    try:
        _cascades()
    except (OSError, AttributeError, RuntimeError) as exc:
        return None, str(exc)
    return str(cv2.__version__), None


@lru_cache(maxsize=1)
def _cascades():
    import os

    import cv2

    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if not folder:
        raise RuntimeError(f"OpenCV {cv2.__version__} ships no Haar cascades (opencv-python-headless 4.x does)")
    out = []
    for name in ("haarcascade_frontalface_default.xml", "haarcascade_eye.xml"):
        path = os.path.join(folder, name)
        cascade = cv2.CascadeClassifier(path)
        if cascade.empty():
            raise RuntimeError(f"OpenCV cannot load its cascade {path}")
        out.append(cascade)
    return tuple(out)


def _largest(rects) -> tuple[int, int, int, int] | None:
    rects = [tuple(int(v) for v in r) for r in rects]
    if not rects:
        return None
    return min(rects, key=lambda r: (-r[2] * r[3], r[1], r[0]))


def detect(image) -> Detection | None:
    """The face (and eyes) in a PIL image, or None when no face is found."""
    import numpy as np

    faces_cascade, eyes_cascade = _cascades()
    grey = np.asarray(image.convert("L"), dtype=np.uint8)
    height, width = grey.shape
    side = max(24, min(width, height) // 5)
    with _LOCK:  # one classifier object, shared by the threads of a process
        face = _largest(faces_cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(side, side)))
        if face is None:
            return None
        x, y, w, h = face
        roi = np.ascontiguousarray(grey[y:y + int(h * 0.6), x:x + w])
        eye_side = max(8, w // 10)
        found = eyes_cascade.detectMultiScale(roi, scaleFactor=1.1, minNeighbors=5, minSize=(eye_side, eye_side))
    centres = [(ex + ew / 2, ey + eh / 2, ew * eh) for ex, ey, ew, eh in (tuple(int(v) for v in r) for r in found)]
    left = [c for c in centres if c[0] < w / 2]
    right = [c for c in centres if c[0] >= w / 2]
    eyes = None
    if left and right:
        a = min(left, key=lambda c: (-c[2], c[1], c[0]))
        b = min(right, key=lambda c: (-c[2], c[1], c[0]))
        if 0.25 * w <= b[0] - a[0] <= 0.75 * w and abs(b[1] - a[1]) < 0.25 * w:
            eyes = ((x + a[0], y + a[1]), (x + b[0], y + b[1]))
    return Detection((float(x), float(y), float(w), float(h)), eyes)
