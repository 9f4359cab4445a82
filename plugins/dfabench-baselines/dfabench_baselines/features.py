"""Spectrum features (Durall et al., "Watch your up-convolution", CVPR 2020).

An image is turned into greyscale, resized to ``size`` x ``size``, and its 2-D FFT magnitude is
taken on a log scale; the feature vector is the azimuthal average of that log spectrum: one value
per integer frequency radius, from 0 (DC) to the corner of the spectrum, so that both the
horizontal/vertical Nyquist band and the diagonal one (where checkerboard artefacts of
up-convolutions show) are covered. Each profile is centred (its mean subtracted), which makes it
independent of the image's overall contrast.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

FEATURE_KIND = "azimuthal-log-fft"
FEATURE_VERSION = 1
DEFAULT_SIZE = 256


@lru_cache(maxsize=8)
def _radius_index(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer frequency radius of each rfft2 coefficient, and how many coefficients each radius has."""
    fy = np.fft.fftfreq(size) * size
    fx = np.fft.rfftfreq(size) * size
    radius = np.rint(np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)).astype(np.intp).ravel()
    counts = np.bincount(radius)
    radius.setflags(write=False)
    return radius, counts


def n_features(size: int = DEFAULT_SIZE) -> int:
    """Length of the feature vector for images resized to ``size``."""
    return len(_radius_index(size)[1])


def to_grey(image, size: int = DEFAULT_SIZE) -> np.ndarray:
    """A PIL image or an HxW(xC) uint8 array -> float64 greyscale ``size`` x ``size`` array."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    grey = image.convert("L")
    if grey.size != (size, size):
        grey = grey.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(grey, dtype=np.float64)


def spectrum_profile(grey: np.ndarray) -> np.ndarray:
    """Azimuthal average of the log FFT magnitude of a square greyscale array, centred."""
    size = grey.shape[0]
    if grey.ndim != 2 or grey.shape[1] != size:
        raise ValueError(f"expected a square greyscale array, got shape {grey.shape}")
    radius, counts = _radius_index(size)
    magnitude = np.log(np.abs(np.fft.rfft2(grey)) + 1e-8).ravel()
    profile = np.bincount(radius, weights=magnitude, minlength=len(counts)) / counts
    return profile - profile.mean()


def spectrum_features(image, size: int = DEFAULT_SIZE) -> np.ndarray:
    """The feature vector (length :func:`n_features`) of one image (PIL image or uint8 array)."""
    return spectrum_profile(to_grey(image, size))
