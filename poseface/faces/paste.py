"""Paste restored faces back into the photo with a feathered mask that follows the face.

The mask is an ellipse placed on the model's 5-point template (centred a little below the eye line,
its long axis along the eyes-to-mouth direction, sized from the eyes-to-mouth distance), clipped
to stay away from the crop border and Gaussian-feathered, so no crop rectangle can show. It is
warped back with the inverse similarity (zero outside the crop), so faces cut by the image border
just lose the part outside the image.

Only the bounding box of each warped crop is processed (big photos stay fast). Overlapping faces
are blended one after the other from the smallest to the largest face, so the larger (usually
nearer) face wins where two masks overlap, and each blend is a convex mix of pixels that were
already there: no double-counting, no dark seams.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from poseface.faces.align import invert_affine, transform_points, warp_affine

# Ellipse on the template, in units of the eyes-to-mouth distance d (FFHQ 512: d = 131 px).
MASK_CENTRE_BELOW_EYES = 0.35  # ellipse centre = eye midpoint + 0.35 d towards the mouth
MASK_HALF_LENGTH = 1.55  # semi-axis along the eyes-to-mouth line (forehead to chin)
MASK_HALF_WIDTH = 1.30  # semi-axis across (cheek to cheek)
FEATHER_FRACTION = 1 / 50  # Gaussian sigma of the feather, as a fraction of the crop size


@lru_cache(maxsize=8)
def _face_mask_cached(size: int, template: tuple[tuple[float, float], ...]) -> np.ndarray:
    points = np.asarray(template, dtype=np.float64)
    eyes, mouth = points[:2].mean(axis=0), points[3:5].mean(axis=0)
    axis = mouth - eyes
    distance = float(np.linalg.norm(axis))
    centre = eyes + MASK_CENTRE_BELOW_EYES * axis
    angle = float(np.degrees(np.arctan2(axis[1], axis[0]))) - 90.0  # long axis along eyes -> mouth
    sigma = max(size * FEATHER_FRACTION, 1.0)
    margin = int(np.ceil(4 * sigma))
    hard = np.zeros((size, size), np.float32)
    cv2.ellipse(
        hard,
        (int(round(centre[0] * 16)), int(round(centre[1] * 16))),
        (int(round(MASK_HALF_WIDTH * distance * 16)), int(round(MASK_HALF_LENGTH * distance * 16))),
        angle,
        0,
        360,
        1.0,
        thickness=-1,
        lineType=cv2.LINE_AA,
        shift=4,
    )
    inner = np.zeros_like(hard)
    inner[margin : size - margin, margin : size - margin] = 1.0
    soft = cv2.GaussianBlur(hard * inner, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_CONSTANT)
    soft[soft < 2e-3] = 0.0
    soft[[0, -1], :] = 0.0
    soft[:, [0, -1]] = 0.0
    return np.clip(soft, 0.0, 1.0)


def face_mask(size: int, template) -> np.ndarray:
    """(size, size) float32 mask in [0, 1]: 1 on the face, feathered to 0 well inside the crop."""
    return _face_mask_cached(int(size), tuple((float(x), float(y)) for x, y in template)).copy()


def antialiased(face: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Gaussian-prefilter a crop that will be shrunk into the output (matrix: output -> crop).

    sigma = (k - 1) / 2 crop pixels for a shrink factor k (scikit-image's rule); nothing for k <= 1.
    Removes the aliasing of restored detail finer than the output's pixels (a 512-px face pasted
    into a 90-px face: k = 5.7), at the price of the last bit of sharpness in the input's round trip.
    """
    shrink = float(np.sqrt(abs(np.linalg.det(np.asarray(matrix)[:, :2]))))
    if shrink <= 1.0:
        return face
    return cv2.GaussianBlur(face, (0, 0), sigmaX=(shrink - 1.0) / 2.0, borderType=cv2.BORDER_REFLECT)


@dataclass
class PasteFace:
    face: np.ndarray  # (S, S, 3) float32, the face to paste, in the output's value range
    matrix: np.ndarray  # 2x3, input-image pixels -> crop pixels (as returned by align_face)
    base: np.ndarray | None = None  # the crop the network saw; with detail_share > 0 the photo keeps its own
    detail_share: float = 0.0  # fine detail above the crop's resolution: face + share (photo - warped base)


def upscale_matrix(matrix: np.ndarray, scale_x: float, scale_y: float | None = None) -> np.ndarray:
    """image->crop matrix for the image up-scaled by (scale_x, scale_y); pixel centres: x_up = s (x + 0.5) - 0.5."""
    sx, sy = scale_x, scale_x if scale_y is None else scale_y
    to_input = np.array([[1 / sx, 0, 0.5 / sx - 0.5], [0, 1 / sy, 0.5 / sy - 0.5], [0, 0, 1]])
    return np.asarray(matrix) @ to_input


def mask_bounds(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) crop pixels holding the mask's non-zero part (x1, y1 exclusive)."""
    ys, xs = np.nonzero(mask > 0)
    if len(xs) == 0:
        return 0, 0, 0, 0
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def paste_region(
    matrix: np.ndarray, size: int, height: int, width: int, bounds: tuple[int, int, int, int] | None = None
) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1) in the output of the warped crop (or of `bounds` inside it),
    clipped to the image; None if outside."""
    cx0, cy0, cx1, cy1 = bounds if bounds is not None else (0, 0, size, size)
    if cx1 <= cx0 or cy1 <= cy0:
        return None
    corners = transform_points(invert_affine(matrix), [[cx0 - 1, cy0 - 1], [cx1, cy0 - 1], [cx0 - 1, cy1], [cx1, cy1]])
    x0, y0 = np.floor(corners.min(axis=0)).astype(int)
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 <= x0 or y1 <= y0:
        return None
    return int(x0), int(y0), int(x1), int(y1)


def paste_faces(background: np.ndarray, faces: list[PasteFace], mask: np.ndarray, max_value: float) -> np.ndarray:
    """Blend `faces` into `background` (H, W, 3) (uint8, uint16 or float) in place and return it.

    Each face's `matrix` must already map `background` pixels to crop pixels (see upscale_matrix).
    """
    height, width = background.shape[:2]
    size = mask.shape[0]
    bounds = mask_bounds(mask)  # only where the mask is non-zero (about 40 % of the crop's area)
    order = sorted(range(len(faces)), key=lambda i: abs(np.linalg.det(faces[i].matrix[:, :2])), reverse=True)
    for index in order:  # largest scale = smallest face first, so bigger faces end on top
        face = faces[index]
        region = paste_region(face.matrix, size, height, width, bounds)
        if region is None:
            continue
        x0, y0, x1, y1 = region
        shift = np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], dtype=np.float64)
        local = np.asarray(face.matrix) @ shift  # region pixels -> crop pixels
        keep_detail = face.base is not None and face.detail_share > 0
        layers = [face.face.astype(np.float32), mask[..., None]] + (
            [face.base.astype(np.float32)] if keep_detail else []
        )
        warped = warp_affine(np.concatenate(layers, axis=2), invert_affine(local), y1 - y0, x1 - x0, border="zeros")
        alpha = np.clip(warped[..., 3:4], 0.0, 1.0)
        current = background[y0:y1, x0:x1].astype(np.float32)
        pixels = warped[..., :3]
        if keep_detail:  # the photo's detail finer than the crop holds (faces larger than the model size)
            pixels = pixels + face.detail_share * (current - warped[..., 4:7])
        pixels = np.clip(pixels, 0.0, max_value)
        blended = current + alpha * (pixels - current)
        if np.issubdtype(background.dtype, np.integer):
            changed = alpha[..., 0] > 0
            # untouched pixels keep their exact value; blended ones are rounded
            out = np.where(changed[..., None], np.clip(np.rint(blended), 0, max_value), current)
            background[y0:y1, x0:x1] = out.astype(background.dtype)
        else:
            background[y0:y1, x0:x1] = blended
    return background
