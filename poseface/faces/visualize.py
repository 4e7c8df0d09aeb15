"""A picture of what the pipeline did to one photo: detection and landmarks, the aligned crop on
the template, the paste mask, and where the mask lands in the photo (`pipeline_figure`; rebuilt for
docs/images/faces_pipeline.png by tools/figure_faces_pipeline.py); the numbered face boxes of
`--draw-boxes` (`draw_boxes`)."""

from __future__ import annotations

import cv2
import numpy as np

from poseface.faces.align import invert_affine, transform_points, warp_affine
from poseface.faces.detect import detect_faces
from poseface.faces.restorer import Result

PANEL = 320
GREEN, RED, YELLOW, CYAN = (60, 220, 60), (235, 60, 60), (250, 220, 40), (40, 220, 250)


def _fit(image: np.ndarray, side: int = PANEL) -> tuple[np.ndarray, float]:
    scale = side / max(image.shape[:2])
    resized = cv2.resize(
        image,
        (round(image.shape[1] * scale), round(image.shape[0] * scale)),
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
    )
    canvas = np.full((side, side, 3), 255, np.uint8)
    canvas[: resized.shape[0], : resized.shape[1]] = resized
    return canvas, scale


def _label(panel: np.ndarray, text: str) -> np.ndarray:
    out = np.full((panel.shape[0] + 28, panel.shape[1], 3), 255, np.uint8)
    out[28:] = panel
    cv2.putText(out, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def _dot(image: np.ndarray, point, color, radius: int = 3) -> None:
    cv2.circle(
        image, (int(round(point[0] * 16)), int(round(point[1] * 16))), radius * 16, color, -1, cv2.LINE_AA, shift=4
    )


def draw_boxes(image: np.ndarray, faces: list, scale: float = 1.0) -> np.ndarray:
    """`image` (RGB uint8) with each face's box, number and detection score (`--draw-boxes`).

    `faces` are FaceResults (or anything with .box and .score) in input pixels; `scale` maps them
    to `image` (the output of --upscale). Numbers follow the order of the faces (left to right).
    """
    out = np.ascontiguousarray(image.copy())
    thickness = max(1, round(max(image.shape[:2]) / 800))
    font = max(0.35, max(image.shape[:2]) / 2000)
    for k, face in enumerate(faces):
        if face.box is None:
            continue
        x0, y0, x1, y1 = (int(round(v * scale)) for v in face.box)
        color = GREEN if face.score >= 0.5 or face.detector == "cnn" else YELLOW
        cv2.rectangle(out, (x0, y0), (x1, y1), color, thickness, cv2.LINE_AA)
        text = f"{k} {face.score:.2f}"
        (width, height), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
        top = y0 - height - 4 if y0 - height - 4 >= 0 else y1 + 2
        cv2.rectangle(out, (x0, top), (x0 + width + 4, top + height + 4), color, -1)
        cv2.putText(out, text, (x0 + 2, top + height + 1), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def pipeline_figure(image: np.ndarray, result: Result, template: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Four labelled panels (RGB uint8) for the first face of `result` (from Restorer.restore_image)."""
    face = result.faces[0]
    size = mask.shape[0]
    # 1: detection box, 68 landmarks, 5 points
    detected, scale = _fit(image)
    x0, y0, x1, y1 = (v * scale for v in face.box)
    cv2.rectangle(detected, (int(x0), int(y0)), (int(x1), int(y1)), GREEN, 2)
    landmarks = [f for f in detect_faces(image) if np.allclose(f.box, face.box)]
    if landmarks:
        for point in landmarks[0].landmarks * scale:
            _dot(detected, point, YELLOW, 1)
    for point in face.points5 * scale:
        _dot(detected, point, RED, 3)
    # 2: aligned crop with the template (red) and the face's 5 points (yellow)
    crop, crop_scale = _fit(face.crop)
    for point in template * crop_scale:
        _dot(crop, point, RED, 4)
    for point in transform_points(face.matrix, face.points5) * crop_scale:
        _dot(crop, point, YELLOW, 2)
    # 3: the feathered mask in crop coordinates
    mask_panel, _ = _fit(np.repeat((mask * 255).astype(np.uint8)[..., None], 3, axis=2))
    # 4: the mask warped back into the photo, the crop square's outline, and the paste box
    height, width = image.shape[:2]
    warped = np.clip(warp_affine(mask[..., None], invert_affine(face.matrix), height, width)[..., 0], 0, 1)
    tinted = (
        image.astype(np.float32) * (1 - 0.55 * warped[..., None])
        + np.array(CYAN, np.float32) * 0.55 * warped[..., None]
    )
    region, region_scale = _fit(tinted.astype(np.uint8))
    square = transform_points(invert_affine(face.matrix), [[0, 0], [size, 0], [size, size], [0, size]]) * region_scale
    cv2.polylines(region, [np.round(square * 16).astype(np.int32)], True, RED, 1, cv2.LINE_AA, shift=4)
    panels = [
        _label(detected, f"{face.detector.upper()} box, 68 + 5 points"),
        _label(crop, f"aligned {size}px crop, template"),
        _label(mask_panel, "feathered face mask"),
        _label(region, "mask pasted back, crop outline"),
    ]
    gap = np.full((panels[0].shape[0], 8, 3), 255, np.uint8)
    row = [panels[0]]
    for panel in panels[1:]:
        row += [gap, panel]
    return np.concatenate(row, axis=1)
