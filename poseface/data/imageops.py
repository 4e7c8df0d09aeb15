"""Bringing a photo or a face to the model size, the same way in training, restore and evaluate.

`resize_to_model(face, size)` is the one resize to the network's input size: `cv2.INTER_AREA`
when shrinking (antialiased), `cv2.INTER_CUBIC` when enlarging. Training (`resize_to_square`:
an HQ photo is centre-cropped to a square first, so faces are not stretched), `poseface restore
--aligned` and `poseface evaluate` all go through it, so one model sees its inputs resized alike.
`component_boxes` in `landmarks.py` applies exactly the same crop and scale to landmark points.
"""

from __future__ import annotations

import cv2
import numpy as np


def square_crop_box(width: int, height: int) -> tuple[int, int, int]:
    """(x0, y0, side) of the centred square crop of a width x height image."""
    side = min(width, height)
    return (width - side) // 2, (height - side) // 2, side


def resize_to_model(face: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) face (uint8, uint16 or float32) -> (size, size, C): area when the longer side
    shrinks, bicubic when it grows; a face already at the size comes back as a contiguous copy."""
    height, width = face.shape[:2]
    if (height, width) == (size, size):
        return face.copy(order="C")
    interpolation = cv2.INTER_AREA if max(height, width) > size else cv2.INTER_CUBIC
    return cv2.resize(np.ascontiguousarray(face), (size, size), interpolation=interpolation)


def resize_to_square(image: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square and resize to (size, size, 3) with `resize_to_model`."""
    height, width = image.shape[:2]
    x0, y0, side = square_crop_box(width, height)
    return resize_to_model(image[y0 : y0 + side, x0 : x0 + side], size)
