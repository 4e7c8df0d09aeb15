"""Face alignment: 5 landmarks -> similarity transform (Umeyama) -> a crop at the model's face template.

Conventions: a 2x3 `matrix` maps image pixel coordinates to crop pixel coordinates, (x, y) with
pixel centres at integers (OpenCV's convention). Warping is done in float32 with bicubic sampling:
a crop warped back to the image with the inverse transform reproduces the photo to about one grey
level (bilinear loses up to 25 levels at sharp edges on the astronaut photo; measured in
docs/faces.md), which is what lets an identity model give the photo back unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from poseface.faces.dlib_models import LEFT_EYE_68, MOUTH_LEFT_68, MOUTH_RIGHT_68, NOSE_TIP_68, RIGHT_EYE_68


def five_points_from_68(landmarks: np.ndarray) -> np.ndarray:
    """(68, 2) landmarks -> (5, 2): eye centres (means of the eye contours), nose tip, mouth corners (image-left first)."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {landmarks.shape}")
    return np.stack(
        [
            landmarks[LEFT_EYE_68].mean(axis=0),
            landmarks[RIGHT_EYE_68].mean(axis=0),
            landmarks[NOSE_TIP_68],
            landmarks[MOUTH_LEFT_68],
            landmarks[MOUTH_RIGHT_68],
        ]
    )


def umeyama(src: np.ndarray, dst: np.ndarray, estimate_scale: bool = True) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping `src` onto `dst`.

    Umeyama, "Least-squares estimation of transformation parameters between two point patterns",
    TPAMI 1991, eqs. (34)-(43). Returns a 2x3 matrix A with dst ~ A[:, :2] @ src + A[:, 2].
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"need matching (N>=2, 2) point sets, got {src.shape} and {dst.shape}")
    mean_src, mean_dst = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - mean_src, dst - mean_dst
    covariance = dst_c.T @ src_c / len(src)  # eq. (38)
    u, singular, vt = np.linalg.svd(covariance)
    signs = np.ones(2)
    if np.linalg.det(covariance) < 0:  # eq. (39): avoid a reflection
        signs[-1] = -1.0
    rotation = u @ np.diag(signs) @ vt  # eq. (40)
    variance_src = (src_c**2).sum() / len(src)  # eq. (36)
    scale = (singular * signs).sum() / variance_src if estimate_scale and variance_src > 0 else 1.0  # eq. (42)
    translation = mean_dst - scale * rotation @ mean_src  # eq. (41)
    return np.hstack([scale * rotation, translation[:, None]])


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    full = np.vstack([np.asarray(matrix, dtype=np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    return points @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]


def similarity_scale(matrix: np.ndarray) -> float:
    """Uniform scale of a similarity matrix (crop pixels per image pixel)."""
    return float(np.sqrt(abs(np.linalg.det(np.asarray(matrix)[:, :2]))))


def warp_affine(
    image: np.ndarray, matrix: np.ndarray, out_height: int, out_width: int, border: str = "zeros"
) -> np.ndarray:
    """Float32 bicubic warp: output pixel q takes image at inverse(matrix) @ q.

    `image` is (H, W, C) of any dtype; the result is (out_height, out_width, C) float32, not
    clamped (bicubic may overshoot slightly). `border` is "zeros" or "reflection".
    """
    source = np.asarray(image, dtype=np.float32)
    if source.ndim == 2:
        source = source[..., None]
    height, width = source.shape[:2]
    inverse = invert_affine(matrix)
    ys, xs = np.mgrid[0:out_height, 0:out_width].astype(np.float64)
    sx = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    sy = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    # grid_sample with align_corners=False: pixel i spans [i, i+1) in units where -1..1 is the image.
    grid = np.stack([(sx + 0.5) / width * 2 - 1, (sy + 0.5) / height * 2 - 1], axis=-1)
    tensor = torch.from_numpy(np.ascontiguousarray(source.transpose(2, 0, 1)))[None]
    out = F.grid_sample(
        tensor,
        torch.from_numpy(grid.astype(np.float32))[None],
        mode="bicubic",
        padding_mode=border,
        align_corners=False,
    )
    return out[0].permute(1, 2, 0).numpy()


TURNED_RATIO = 0.8  # eye distance / eye-to-mouth distance below 0.8x the template's: a turned face (frontal faces measure 0.9-1.2x)
ALIGNMENT_RULES = ("5-point", "eye-mouth axis")


def _eye_mouth_axis(points5: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    points5 = np.asarray(points5, dtype=np.float64)
    return points5[:2].mean(axis=0), points5[3:].mean(axis=0)


def eye_mouth_ratio(points5: np.ndarray) -> float:
    """Eye distance over eye-midpoint-to-mouth-midpoint distance: shrinks as cos(yaw) when the head turns."""
    eyes, mouth = _eye_mouth_axis(points5)
    return float(np.linalg.norm(points5[1] - points5[0]) / max(np.linalg.norm(mouth - eyes), 1e-6))


def axis_similarity(points5: np.ndarray, template: np.ndarray) -> np.ndarray:
    """The similarity that maps the eye midpoint and the mouth midpoint exactly onto the template's.

    Both lie on the face's midline, and their distance barely changes when the head turns left or
    right, so a turned face keeps its size and uprightness, where the least-squares fit over 5 points
    shrinks and tilts it (the eyes move together as the head turns; the mouth corners do too).
    """
    (s1, s2), (d1, d2) = (
        (complex(*p) for p in _eye_mouth_axis(points5)),
        (complex(*p) for p in _eye_mouth_axis(template)),
    )
    a = (d2 - d1) / (s2 - s1)  # z -> a z + b: rotation and scale in a, translation in b
    b = d1 - a * s1
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def alignment_matrix(points5: np.ndarray, template: np.ndarray) -> tuple[np.ndarray, str]:
    """(image -> crop matrix, rule): the 5-point fit for faces seen from the front, the eye-mouth axis
    for turned faces (3/4 and profile views, where the eye distance no longer gives the face's size)."""
    if eye_mouth_ratio(points5) < TURNED_RATIO * eye_mouth_ratio(template):
        return axis_similarity(points5, template), ALIGNMENT_RULES[1]
    return umeyama(points5, template), ALIGNMENT_RULES[0]


@dataclass
class AlignedCrop:
    """One face warped to the model's template."""

    crop: np.ndarray  # (S, S, 3) float32 in the source image's value range (0..255 or 0..65535)
    matrix: np.ndarray  # 2x3, image -> crop
    rule: str = ALIGNMENT_RULES[0]  # how the matrix was found (alignment_matrix)


def align_face(image: np.ndarray, points5: np.ndarray, template: np.ndarray, size: int) -> AlignedCrop:
    """Warp `image` (H, W, C) so that `points5` land on `template` in a `size` x `size` crop.

    Faces larger than the crop are first shrunk with area averaging (no aliasing); borders are
    reflected (as in FFHQ's alignment) so that faces cut by the image edge still look like faces.
    Turned faces are aligned on their eye-mouth axis (`alignment_matrix`).
    """
    matrix, rule = alignment_matrix(points5, template)
    scale = similarity_scale(matrix)
    # Work on the part of the image the crop covers (+3 px for the bicubic taps, more if shrunk
    # first), not on the whole photo.
    margin = 3 if scale >= 0.5 else int(np.ceil(3 * 0.8 / scale))
    corners = transform_points(invert_affine(matrix), [[0, 0], [size, 0], [0, size], [size, size]])
    x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int) - margin, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + margin + 1, [image.shape[1], image.shape[0]])
    if x1 <= x0 or y1 <= y0:  # the crop misses the image entirely: use it all
        x0, y0, x1, y1 = 0, 0, image.shape[1], image.shape[0]
    source = np.asarray(image[y0:y1, x0:x1], dtype=np.float32)
    to_region = np.array([[1.0, 0, x0], [0, 1.0, y0], [0, 0, 1]])  # region pixel -> image pixel
    source_matrix = matrix @ to_region
    if scale < 0.5:  # big face: shrink the region with INTER_AREA first, leave a mild 0.8x to the warp
        shrink = scale / 0.8
        new_w, new_h = max(1, round((x1 - x0) * shrink)), max(1, round((y1 - y0) * shrink))
        sx, sy = new_w / (x1 - x0), new_h / (y1 - y0)
        source = cv2.resize(source, (new_w, new_h), interpolation=cv2.INTER_AREA)
        small_to_region = np.array([[1 / sx, 0, (0.5 / sx) - 0.5], [0, 1 / sy, (0.5 / sy) - 0.5], [0, 0, 1]])
        source_matrix = source_matrix @ small_to_region
    crop = warp_affine(source, source_matrix, size, size, border="reflection")
    if crop.shape[2] == 1:
        crop = np.repeat(crop, 3, axis=2)
    return AlignedCrop(crop=crop, matrix=matrix, rule=rule)
