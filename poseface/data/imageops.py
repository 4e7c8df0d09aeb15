"""Bringing an HQ photo to the model size.

A non-square photo is centre-cropped to a square first (faces are not stretched), then resized
to `size` x `size`: `cv2.INTER_AREA` when shrinking (antialiased), `cv2.INTER_CUBIC` when enlarging.
`component_boxes` in `landmarks.py` applies exactly the same crop and scale to landmark points.
"""

from __future__ import annotations

import cv2
import numpy as np


def square_crop_box(width: int, height: int) -> tuple[int, int, int]:
    """(x0, y0, side) of the centred square crop of a width x height image."""
    side = min(width, height)
    return (width - side) // 2, (height - side) // 2, side


def resize_to_square(image: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square and resize to (size, size, 3) with antialiasing."""
    height, width = image.shape[:2]
    x0, y0, side = square_crop_box(width, height)
    square = image[y0 : y0 + side, x0 : x0 + side]
    if side == size:
        return np.ascontiguousarray(square)
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return cv2.resize(square, (size, size), interpolation=interpolation)


def to_tensor_range(image: np.ndarray):
    """(H, W, 3) uint8 RGB -> float32 torch tensor (3, H, W) in [-1, 1]."""
    import torch

    # the arithmetic is done in numpy: small torch ops in data-loader workers can stall on its thread pool
    array = image.transpose(2, 0, 1).astype(np.float32) * np.float32(1.0 / 127.5) - np.float32(1.0)
    return torch.from_numpy(np.ascontiguousarray(array))
