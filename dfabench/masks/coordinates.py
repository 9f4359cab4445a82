"""Boxes and polygons written as coordinates in an answer's text, and their rasterisation.

The grammar (strict: what does not match it exactly is *malformed*, never guessed at):

- a **shape** is a square-bracketed group whose content holds only digits, ``.``, ``+``, ``-``, commas,
  parentheses and white space, and at least two numbers; any other bracketed text (``[1]``, ``[see above]``)
  is not a shape and is ignored;
- a **box** is ``[x1, y1, x2, y2]``: exactly four bare numbers, the top-left and the bottom-right corner,
  with ``x1 < x2`` and ``y1 < y2``;
- a **polygon** is ``[(x1, y1), (x2, y2), (x3, y3), ...]``: three or more parenthesised ``(x, y)`` pairs,
  separated by commas, the vertices in order;
- a number is unsigned decimal (``12``, ``12.5``, ``0.25``): a signed number (``-3``, ``+3``) is malformed, as
  a coordinate is never negative;
- **units**, per shape: a shape is *normalised* (fractions of the image's width and height) when all its
  numbers are in [0, 1] and at least one is written with a decimal point (``[0.1, 0.2, 0.5, 0.75]``); otherwise
  its numbers are *pixels* (``[0, 0, 1, 1]`` is the top-left pixel), and must lie within the image (x <= width,
  y <= height);
- coordinates are continuous, with (0, 0) the top-left corner of the top-left pixel: a pixel (column c, row r)
  is inside a shape when its centre (c + 0.5, r + 0.5) is: ``x1 <= c + 0.5 < x2`` and ``y1 <= r + 0.5 < y2``
  for a box, the even-odd rule for a polygon, with the same half-open edges (a
  centre on a left or top edge is inside, on a right or bottom edge outside; :func:`rasterise`);
- several shapes in one answer: their union.

:func:`find_shapes` returns the shapes, or the problem of the first malformed one; the caller
(:mod:`dfabench.masks`) then gives the answer no mask (``none``) rather than fall back to its region names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: a bracketed group made only of what coordinates are written with
_GROUP = re.compile(r"\[([0-9.,()+\-\s]*)\]")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_BOX = re.compile(r"\s*(NUM)\s*,\s*(NUM)\s*,\s*(NUM)\s*,\s*(NUM)\s*".replace("NUM", r"[^,()\s]+"))
_PAIR = re.compile(r"\s*\(\s*([^,()\s]+)\s*,\s*([^,()\s]+)\s*\)\s*")
_UNSIGNED = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)")


class ShapeError(ValueError):
    """A coordinate shape that breaks the grammar of the module docstring."""


@dataclass(frozen=True)
class Shape:
    """A box (``kind="box"``, points = the two corners) or a polygon, in pixel coordinates."""

    kind: str
    points: tuple[tuple[float, float], ...]
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "points": [list(p) for p in self.points]}


def _number(token: str, shown: str) -> tuple[float, bool]:
    if token[:1] in "+-":
        raise ShapeError(f"{shown}: signed number {token!r} (coordinates are never negative)")
    if not _UNSIGNED.fullmatch(token):
        raise ShapeError(f"{shown}: {token!r} is not a number")
    return float(token), "." in token


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def parse_shape(group: str, size: tuple[int, int]) -> Shape:
    """One bracketed group (with its brackets) as a :class:`Shape` in pixels of an image of ``size`` =
    (width, height); :class:`ShapeError` naming the problem when it breaks the grammar."""
    width, height = size
    shown = _short(group)
    inner = group[1:-1]
    box = _BOX.fullmatch(inner)
    if box is not None:
        kind, tokens = "box", [(box.group(1), box.group(2)), (box.group(3), box.group(4))]
    elif "(" in inner or ")" in inner:
        kind, tokens = "polygon", _pairs(inner, shown)
        if len(tokens) < 3:
            raise ShapeError(f"{shown}: a polygon needs at least three (x, y) points, got {len(tokens)}")
    else:
        n = len(_NUMBER.findall(inner))
        raise ShapeError(f"{shown}: {n} numbers; a box is [x1, y1, x2, y2] (four numbers) and a polygon "
                         "[(x, y), (x, y), (x, y), ...]")
    parsed = [(_number(x, shown), _number(y, shown)) for x, y in tokens]
    values = [item for pair in parsed for item in pair]
    normalised = all(0.0 <= v <= 1.0 for v, _ in values) and any(dot for _, dot in values)
    if normalised:
        points = [(x * width, y * height) for (x, _), (y, _) in parsed]
    else:
        points = [(x, y) for (x, _), (y, _) in parsed]
        for x, y in points:
            if x > width or y > height:
                raise ShapeError(f"{shown}: the point ({x:g}, {y:g}) lies outside the {width}x{height} image "
                                 "(pixel coordinates; fractions are written with a decimal point, in [0, 1])")
    if kind == "box":
        (x1, y1), (x2, y2) = points
        if not (x1 < x2 and y1 < y2):
            raise ShapeError(f"{shown}: a box is [x1, y1, x2, y2] with x1 < x2 and y1 < y2")
    return Shape(kind, tuple(points), group)


def _pairs(inner: str, shown: str) -> list[tuple[str, str]]:
    """The ``(x, y)`` tokens of a polygon's content, refused unless it is exactly pairs separated by commas."""
    problem = f"{shown}: a polygon is a list of (x, y) pairs separated by commas"
    pairs = []
    rest = inner
    while True:
        match = _PAIR.match(rest)
        if match is None:
            raise ShapeError(problem)
        pairs.append((match.group(1), match.group(2)))
        rest = rest[match.end():]
        if not rest.strip():
            return pairs
        if not rest.startswith(","):
            raise ShapeError(problem)
        rest = rest[1:]


def find_shapes(text: str | None, size: tuple[int, int]) -> tuple[list[Shape], str | None]:
    """The shapes written in ``text`` (in order), and the problem of the first malformed one (None when all
    keep the grammar). A bracketed group with fewer than two numbers is not a shape."""
    if not text:
        return [], None
    shapes: list[Shape] = []
    for match in _GROUP.finditer(text):
        group = match.group(0)
        if len(_NUMBER.findall(match.group(1))) < 2:
            continue
        try:
            shapes.append(parse_shape(group, size))
        except ShapeError as exc:
            return shapes, f"malformed coordinates {exc}"
    return shapes, None


def rasterise(shapes: list[Shape], size: tuple[int, int]):
    """The union of ``shapes`` as a boolean (height, width) array: the pixels whose centres are inside."""
    import numpy as np

    width, height = size
    mask = np.zeros((height, width), dtype=bool)
    centres_x = np.arange(width) + 0.5
    centres_y = np.arange(height) + 0.5
    for shape in shapes:
        if shape.kind == "box":
            (x1, y1), (x2, y2) = shape.points
            cols = (centres_x >= x1) & (centres_x < x2)
            rows = (centres_y >= y1) & (centres_y < y2)
            mask |= rows[:, None] & cols[None, :]
            continue
        # the even-odd rule, row by row: an edge crosses the row's centre line y when exactly one of its ends
        # lies at or above y (half-open, so a vertex on the line counts once)
        xs = np.array([p[0] for p in shape.points], dtype=float)
        ys = np.array([p[1] for p in shape.points], dtype=float)
        x_next, y_next = np.roll(xs, -1), np.roll(ys, -1)
        for row, y in enumerate(centres_y):
            crosses = (ys <= y) != (y_next <= y)
            if not crosses.any():
                continue
            x0, y0, x1_, y1_ = xs[crosses], ys[crosses], x_next[crosses], y_next[crosses]
            at = x0 + (y - y0) * (x1_ - x0) / (y1_ - y0)
            # a centre is inside when an odd number of crossings lies at or left of it (so, as for a box, a centre
            # on a left edge is inside and one on a right edge is not)
            inside = (np.count_nonzero(at[None, :] <= centres_x[:, None], axis=1) % 2) == 1
            mask[row] |= inside
    return mask
