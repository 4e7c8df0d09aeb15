"""MATLAB-compatible bicubic `imresize` (with antialiasing when shrinking), in numpy.

NIQE's reference implementation downsamples with MATLAB's `imresize(img, 0.5)`; OpenCV and PIL
bicubic give different numbers, so this reproduces MATLAB's algorithm: a cubic kernel with a = -0.5,
stretched by 1/scale when shrinking (antialiasing), symmetric (mirror) padding at the borders, and the
dimensions resized one after the other, rows first.
"""

from __future__ import annotations

import math

import numpy as np


def cubic_kernel(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's `cubic`)."""
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def _contributions(in_length: int, out_length: int, scale: float, antialias: bool) -> tuple[np.ndarray, np.ndarray]:
    """Weights (out, taps) and 0-based source indices (out, taps) for one dimension."""
    kernel_width = 4.0
    stretch = antialias and scale < 1
    if stretch:
        kernel_width /= scale
    out_coords = np.arange(1, out_length + 1, dtype=np.float64)
    # position of each output pixel centre in input coordinates (1-based, as in MATLAB)
    centres = out_coords / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(centres - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    distance = centres[:, None] - indices
    weights = scale * cubic_kernel(scale * distance) if stretch else cubic_kernel(distance)
    weights /= weights.sum(axis=1, keepdims=True)
    # mirror out-of-range indices: 1..n, n..1, 1..n, ...
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    # drop tap columns that are zero for every output pixel (MATLAB does the same)
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], indices[:, keep]


def _resize_axis(image: np.ndarray, axis: int, out_length: int, scale: float, antialias: bool) -> np.ndarray:
    weights, indices = _contributions(image.shape[axis], out_length, scale, antialias)
    moved = np.moveaxis(image, axis, 0)  # (in, ...)
    gathered = moved[indices]  # (out, taps, ...)
    weights = weights.reshape(weights.shape + (1,) * (moved.ndim - 1))
    return np.moveaxis((gathered * weights).sum(axis=1), 0, axis)


def imresize(image: np.ndarray, scale: float, antialias: bool = True) -> np.ndarray:
    """Resize a (H, W) or (H, W, C) float array by `scale` like MATLAB's `imresize(image, scale)` (bicubic).

    Output size is ceil(H * scale) x ceil(W * scale); the result is float64 and not clipped.
    """
    image = np.asarray(image, dtype=np.float64)
    out_h = int(math.ceil(image.shape[0] * scale))
    out_w = int(math.ceil(image.shape[1] * scale))
    resized = _resize_axis(image, 0, out_h, scale, antialias)
    return _resize_axis(resized, 1, out_w, scale, antialias)
