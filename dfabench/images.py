"""Decoding benchmark images and masks to 8 bits: one rule wherever an image file is read.

Pillow's own ``convert("RGB")`` / ``convert("L")`` clips wider samples instead of scaling them:
a 16-bit PNG becomes saturated white and a float TIFF black. Here:

- 8-bit modes (``L``, ``P``, ``RGB``, ``RGBA``, ``LA``, ``CMYK``, ``1``, ...) are converted by Pillow as usual;
- 16-bit integer images (``I;16``, ``I;16B``, ``I;16L``, ``I;16N``) and 32-bit integer images (``I``,
  which is how Pillow opens many 16-bit files) are read as 16-bit samples: ``0..65535`` is mapped
  to ``0..255`` by dividing by 257 (rounded), so full scale stays full scale and the brightness of
  the file is kept (no per-image stretching, which would change what a detector sees). An ``I``
  image with values outside ``0..65535`` is refused: its scale is unknown;
- float images (``F``) are read as intensities in ``[0, 1]`` (multiplied by 255, rounded); values
  outside ``[0, 1]`` (or not finite) are refused: their scale is unknown.

A refused image raises :class:`UnsupportedImage` (a ``ValueError``) with the reason.

The pixel limit (``DFABENCH_MAX_IMAGE_PIXELS``, default :data:`DEFAULT_MAX_IMAGE_PIXELS`) is also
Pillow's: :func:`apply_pixel_limit` sets ``PIL.Image.MAX_IMAGE_PIXELS`` to it, so that neither
Pillow's smaller default refuses an image the user allowed nor its larger one lets through an image
the user did not (Pillow warns above its limit and raises above twice its limit).
"""

from __future__ import annotations

import os
from typing import Any

#: images with more pixels than this are refused (a decompression bomb guard); override with
#: the environment variable DFABENCH_MAX_IMAGE_PIXELS
DEFAULT_MAX_IMAGE_PIXELS = 64_000_000
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


class UnsupportedImage(ValueError):
    """An image whose samples cannot be mapped to 8 bits without guessing their scale."""


def max_image_pixels() -> int:
    """The pixel limit: ``DFABENCH_MAX_IMAGE_PIXELS`` when set to an integer, else the default."""
    try:
        return int(os.environ.get("DFABENCH_MAX_IMAGE_PIXELS", DEFAULT_MAX_IMAGE_PIXELS))
    except ValueError:
        return DEFAULT_MAX_IMAGE_PIXELS


def apply_pixel_limit(limit: int | None = None) -> int:
    """Make Pillow's decompression-bomb limit follow ours; returns the limit in force.

    Pillow raises ``DecompressionBombError`` only above twice ``Image.MAX_IMAGE_PIXELS``; with it
    set to our limit, our own check (which refuses anything above the limit, before decoding) is
    the one that applies, whether the limit is above or below Pillow's default."""
    from PIL import Image

    limit = max_image_pixels() if limit is None else int(limit)
    if Image.MAX_IMAGE_PIXELS != limit:
        Image.MAX_IMAGE_PIXELS = limit
    return limit


def to_8bit(image: Any) -> Any:
    """``image`` with 16-bit, 32-bit integer or float samples scaled to an 8-bit ``L`` image (see
    the module docstring); any other image is returned as it is."""
    mode = image.mode
    if mode not in _SIXTEEN_BIT and mode not in ("I", "F"):
        return image
    import numpy as np
    from PIL import Image

    array = np.asarray(image)
    if array.size == 0:
        raise UnsupportedImage(f"empty {mode} image")
    if mode == "F":
        array = array.astype(np.float64)
        if not np.isfinite(array).all():
            raise UnsupportedImage("float image with NaN or infinite samples")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise UnsupportedImage(f"float image with samples in [{low:g}, {high:g}]: only [0, 1] has a known scale; "
                                   "convert it to 8-bit")
        scaled = np.rint(array * 255.0)
    else:
        array = array.astype(np.int64)
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 65535:
            raise UnsupportedImage(f"integer image with samples in [{low}, {high}]: only 0..65535 (16-bit) has a "
                                   "known scale; convert it to 8-bit")
        scaled = np.rint(array / 257.0)
    return Image.fromarray(scaled.astype(np.uint8), mode="L")


def to_rgb(image: Any) -> Any:
    """``image`` as an 8-bit RGB image (wide samples scaled by :func:`to_8bit`)."""
    image = to_8bit(image)
    if image.mode == "RGB":
        return image
    return image.convert("RGB")


def to_gray(image: Any) -> Any:
    """``image`` as an 8-bit ``L`` image (masks; wide samples scaled by :func:`to_8bit`)."""
    image = to_8bit(image)
    if image.mode == "L":
        return image
    return image.convert("L")


def open_rgb(path: str | os.PathLike) -> Any:
    """Open and fully decode an image file as 8-bit RGB (the one rule; see the module docstring).
    Raises ``OSError`` / ``ValueError`` (:class:`UnsupportedImage` included) when it cannot be used."""
    from PIL import Image

    apply_pixel_limit()
    with Image.open(path) as image:
        image.load()
        return to_rgb(image)


class ImageError(Exception):
    """An image that exists but cannot be used (corrupt, truncated, too large)."""


def decode_image(path: str, limit: int | None = None):
    """Open and fully decode an image as 8-bit RGB; raise :class:`ImageError` with the reason.

    16-bit, 32-bit integer and float images are scaled to 8 bits or refused by the one rule of
    :mod:`dfabench.images` (a 16-bit PNG is divided by 257, a float TIFF in [0, 1] multiplied by 255);
    the pixel limit (``DFABENCH_MAX_IMAGE_PIXELS``) is checked before decoding and is Pillow's too."""
    from PIL import Image

    limit = apply_pixel_limit(limit)
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > limit:
                raise ImageError(f"image too large to decode safely ({width}x{height} pixels > {limit}; "
                                 "raise DFABENCH_MAX_IMAGE_PIXELS to allow it)")
            image.load()
            return to_rgb(image)
    except ImageError:
        raise
    except UnsupportedImage as exc:
        raise ImageError(f"cannot use image: {exc}") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image too large to decode safely ({exc})") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"cannot decode image: {exc}") from None
