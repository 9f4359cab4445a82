"""Masks from chat models: the FL answer of a model that cannot return a mask, read from its text.

A model with the ``generate`` capability only answers FL in text. When the FL spec asks for it
(``metric_options: {mask: {from_text: {version: 1, detector: opencv-haar | none}}}``), dfabench derives
a mask from that text, in this order (:meth:`TextMasker.derive`):

1. **coordinates**: boxes ``[x1, y1, x2, y2]`` and polygons ``[(x, y), (x, y), (x, y), ...]`` in pixels or
   as fractions of the image, by the strict grammar of :mod:`dfabench.masks.coordinates`, rasterised (their
   union). An answer with a malformed shape gets **no mask** (source ``none``, the problem recorded): it tried
   to give coordinates and is not guessed at;
2. **regions**: otherwise the face regions the text names (:func:`dfabench.metrics.regions.regions_named`,
   the rule MMTT's ``multilabel`` is made by, so the same words) become the coarse ellipses of
   :mod:`dfabench.masks.layout`, placed by the detector when it finds the eyes (``regions:landmarks``) or only
   a face (``regions:face``), else by the canonical layout of an aligned face crop (``regions:layout``: no
   detector asked for, none installed, or no face found);
3. otherwise **none**: the text names no region and gives no coordinates.

Each sample's record says how its mask was obtained: ``mask_source`` is ``model`` (the model's own mask),
``coordinates``, ``regions:landmarks``, ``regions:face``, ``regions:layout`` or ``none``, and
``mask_derivation`` holds the method's identity (:attr:`TextMasker.identity`: this method's version, the
layout's, the detector and its version, or why it could not run), the regions or shapes used, the face frame
and the problem, if any. The derived mask is written into the run folder like a model's mask (hashed in
run.json, checked by ``dfabench verify``); the FL results count each source (``mask_source_*`` beside
``coverage``) and list the identities in the ``mask`` breakdown, so runs are compared only when their masks
were derived the same way. Nothing here imports OpenCV unless the spec asks for the detector; without it
the layout is used (deterministic, the same on every machine).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dfabench.errors import InputError
from dfabench.masks.layout import LAYOUT_VERSION

#: the version of the mask-from-text method (grammar, order, layout use)
VERSION = 1
METHOD = "dfabench-text-masks"
DETECTORS = ("opencv-haar", "none")
#: every value of a sample's ``mask_source``, in the order results list them
SOURCES = ("model", "coordinates", "regions:landmarks", "regions:face", "regions:layout", "none")
#: the groups the results count (``mask_source_<group>``)
SOURCE_GROUPS = ("model", "coordinates", "regions", "none")
_OPTION_KEYS = {"version", "detector"}


def source_group(source: str) -> str:
    """``regions:layout`` -> ``regions``; the other sources are their own group."""
    return source.split(":", 1)[0]


@dataclass
class TextMask:
    """What :meth:`TextMasker.derive` found: the mask (boolean, height x width) or None, and how."""

    mask: Any
    source: str
    regions: list[str] = field(default_factory=list)
    shapes: list[dict[str, Any]] = field(default_factory=list)
    frame: dict[str, Any] | None = None
    problem: str | None = None


def options_problem(options: Any) -> str | None:
    """Why a spec's ``from_text`` options are not valid (None: valid)."""
    if not isinstance(options, Mapping):
        return "metric_options.mask.from_text must be a mapping {version: 1, detector: opencv-haar|none}"
    unknown = sorted(set(options) - _OPTION_KEYS)
    if unknown:
        return f"metric_options.mask.from_text: unknown key(s) {unknown} (known: version, detector)"
    version = options.get("version", VERSION)
    if isinstance(version, bool) or version != VERSION:
        return f"metric_options.mask.from_text.version must be {VERSION}, not {version!r}"
    if options.get("detector", "none") not in DETECTORS:
        return (f"metric_options.mask.from_text.detector must be one of {', '.join(DETECTORS)}, "
                f"not {options.get('detector')!r}")
    return None


class TextMasker:
    """Derives masks from answers' text with one detector setting (``opencv-haar`` or ``none``)."""

    def __init__(self, detector: str = "none"):
        self.detector = detector
        self.detector_version: str | None = None
        self.unavailable: str | None = None
        if detector == "opencv-haar":
            from dfabench.masks import landmarks

            self.detector_version, self.unavailable = landmarks.available()

    @property
    def identity(self) -> str:
        """The method, its version, the layout's version and the detector as it ran here: masks whose
        identities differ were derived differently."""
        if self.detector == "none":
            detector = "no detector"
        elif self.unavailable is not None:
            detector = f"{self.detector} unavailable"
        else:
            detector = f"{self.detector}/{self.detector_version}"
        return f"{METHOD}/{VERSION}; layout/{LAYOUT_VERSION}; {detector}"

    def derive(self, text: str | None, image) -> TextMask:
        """The mask of one answer (``image``: the PIL image the model saw)."""
        from dfabench.masks import coordinates, layout
        from dfabench.metrics.regions import regions_named

        size = tuple(image.size)
        shapes, problem = coordinates.find_shapes(text, size)
        if problem is not None:
            return TextMask(None, "none", shapes=[s.to_dict() for s in shapes], problem=problem)
        if shapes:
            return TextMask(coordinates.rasterise(shapes, size), "coordinates", shapes=[s.to_dict() for s in shapes])
        regions = regions_named(text)
        if not regions:
            return TextMask(None, "none", problem="the answer names no face region and gives no coordinates")
        frame, source, note = self._frame(image, size)
        return TextMask(layout.region_mask(regions, size, frame), source, regions=regions, frame=frame.to_dict(),
                        problem=note)

    def _frame(self, image, size):
        from dfabench.masks import layout

        if self.detector == "none":
            return layout.layout_frame(size), "regions:layout", None
        if self.unavailable is not None:
            return layout.layout_frame(size), "regions:layout", f"the detector is unavailable: {self.unavailable}"
        from dfabench.masks import landmarks

        try:
            found = landmarks.detect(image)
        except Exception as exc:  # noqa: BLE001 - a detector failure falls back to the layout, said per sample
            return layout.layout_frame(size), "regions:layout", f"the detector failed: {type(exc).__name__}: {exc}"
        if found is None:
            return layout.layout_frame(size), "regions:layout", "no face found"
        if found.eyes is not None:
            return layout.eyes_frame(*found.eyes), "regions:landmarks", None
        return layout.face_box_frame(found.face), "regions:face", "a face but not both eyes found"

    def payload(self, text: str | None, image) -> dict[str, Any]:
        """The fields a cached answer payload gets: ``mask`` (base64 PNG, absent for ``none``),
        ``mask_source`` and ``mask_derivation``."""
        from dfabench.answers import encode_mask

        derived = self.derive(text, image)
        out: dict[str, Any] = {"mask_source": derived.source, "mask_derivation": {
            "method": self.identity, "regions": derived.regions, "shapes": derived.shapes, "frame": derived.frame,
            "problem": derived.problem}}
        if derived.mask is not None:
            out["mask"] = encode_mask(derived.mask)
        return out


_MASKERS: dict[str, TextMasker] = {}


def masker_for(task) -> TextMasker | None:
    """The masker a task spec asks for (``metric_options.mask.from_text``), or None when it asks for none;
    :class:`InputError` naming the spec when its options are not valid."""
    if getattr(task, "reference", None) != "mask_and_description":
        return None
    options = ((getattr(task, "metric_options", None) or {}).get("mask") or {})
    if not isinstance(options, Mapping) or options.get("from_text") is None:
        return None
    problem = options_problem(options["from_text"])
    if problem is not None:
        raise InputError(getattr(task, "source", None) or f"the {task.id} task spec", problem)
    key = json.dumps(dict(options["from_text"]), sort_keys=True)
    if key not in _MASKERS:
        _MASKERS[key] = TextMasker(options["from_text"].get("detector", "none"))
    return _MASKERS[key]
