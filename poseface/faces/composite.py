"""Composite test photos built from aligned face crops (UTKFace's 200x200 faces).

A group photo is rows of faces pasted on a textured background, optionally grey or sepia and JPEG
compressed; each face's box is known, so detectors can be scored by recall and false positives.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

FACE_FRACTION = 0.9  # dlib HOG's box on a UTKFace crop is 180 of its 200 px


@dataclass
class GroupPhotoConfig:
    faces: int = 29  # the 1927 Solvay photo has 29
    min_face: int = 30  # face box width in pixels (the crop is this / FACE_FRACTION)
    max_face: int = 45
    per_row: int = 10
    tone: str = "color"  # "color", "grey" or "sepia"
    jpeg_quality: int = 0  # 0 = no compression


@dataclass
class Composite:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    boxes: list[tuple[float, float, float, float]]  # true face boxes (x0, y0, x1, y1)


def textured_background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth colour noise plus fine grain: something a detector could mistake for structure."""
    coarse = rng.uniform(40, 200, size=(max(2, height // 40), max(2, width // 40), 3)).astype(np.float32)
    base = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0, 12, size=(height, width, 3)).astype(np.float32)
    return np.clip(base + grain, 0, 255).astype(np.uint8)


def toned(image: np.ndarray, tone: str) -> np.ndarray:
    if tone == "color":
        return image
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    if tone == "grey":
        return np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)
    sepia = np.stack([grey * 1.07, grey * 0.74, grey * 0.43], axis=2) + np.array([20, 14, 8], np.float32)
    return np.clip(sepia, 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    if quality <= 0:
        return image
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def group_photo(crops: list[np.ndarray], config: GroupPhotoConfig, seed: int = 0) -> Composite:
    """`config.faces` crops in rows, each resized so its face box is min_face..max_face wide."""
    rng = np.random.default_rng(seed)
    cell = int(np.ceil(config.max_face / FACE_FRACTION * 1.6))
    rows = int(np.ceil(config.faces / config.per_row))
    height, width = rows * cell + cell // 2, config.per_row * cell + cell // 2
    image = textured_background(height, width, rng)
    boxes = []
    for k in range(config.faces):
        crop = crops[k % len(crops)]
        side = int(round(rng.uniform(config.min_face, config.max_face) / FACE_FRACTION))
        face = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
        row, col = divmod(k, config.per_row)
        x = col * cell + cell // 4 + int(rng.integers(0, cell - side + 1))
        y = row * cell + cell // 4 + int(rng.integers(0, cell - side + 1))
        image[y : y + side, x : x + side] = face
        margin = side * (1 - FACE_FRACTION) / 2
        boxes.append((x + margin, y + margin, x + side - margin, y + side - margin))
    return Composite(jpeg(toned(image, config.tone), config.jpeg_quality), boxes)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def score_detections(
    truth: list[tuple[float, ...]], found: list[tuple[float, ...]], min_iou: float = 0.3
) -> tuple[int, int]:
    """(true faces found, false positives): a detection matches a face if their IoU is >= min_iou."""
    matched: set[int] = set()
    false_positives = 0
    for box in found:
        best = max(range(len(truth)), key=lambda i: iou(truth[i], box), default=None)
        if best is not None and best not in matched and iou(truth[best], box) >= min_iou:
            matched.add(best)
        else:
            false_positives += 1
    return len(matched), false_positives


@dataclass
class BenchmarkPhoto:
    name: str
    kind: str  # "group" (29 faces of 30-45 px), "tiny" (16-24 px), "small" (4 faces in a small image) or "none"
    image: np.ndarray
    boxes: list[tuple[float, float, float, float]]


GROUP_TONES = (("color", 0), ("grey", 0), ("sepia", 0), ("color", 40), ("grey", 35), ("sepia", 30))


def detection_benchmark(crops: list[np.ndarray], negatives: list[tuple[str, np.ndarray]] = ()) -> list[BenchmarkPhoto]:
    """The detection test set: 6 group photos (colour, grey, sepia, each clean and JPEG'd), 2 of tiny
    faces, 4 small images of 4 faces, plus `negatives` (images holding no face). Needs 216 crops."""
    if len(crops) < 216:
        raise ValueError(f"the detection benchmark needs 216 face crops, got {len(crops)}")
    photos = []
    for k, (tone, quality) in enumerate(GROUP_TONES):
        made = group_photo(crops[k * 29 : (k + 1) * 29], GroupPhotoConfig(tone=tone, jpeg_quality=quality), seed=k)
        photos.append(
            BenchmarkPhoto(f"group-{tone}" + (f"-q{quality}" if quality else ""), "group", made.image, made.boxes)
        )
    for k in range(2):
        made = group_photo(
            crops[174 + k * 15 : 189 + k * 15],
            GroupPhotoConfig(faces=15, per_row=5, min_face=16, max_face=24, jpeg_quality=60 if k else 0),
            seed=10 + k,
        )
        photos.append(BenchmarkPhoto(f"tiny-{k}", "tiny", made.image, made.boxes))
    for k in range(3):
        made = group_photo(
            crops[204 + k * 4 : 208 + k * 4],
            GroupPhotoConfig(faces=4, per_row=2, min_face=40, max_face=60, jpeg_quality=50),
            seed=20 + k,
        )
        photos.append(BenchmarkPhoto(f"small-{k}", "small", made.image, made.boxes))
    for k in range(3):
        photos.append(
            BenchmarkPhoto(f"texture-{k}", "none", textured_background(480, 720, np.random.default_rng(100 + k)), [])
        )
    photos += [BenchmarkPhoto(name, "none", image, []) for name, image in negatives]
    return photos
