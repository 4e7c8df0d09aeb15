"""68-point landmarks for a data set, and the eye/mouth boxes the local discriminators crop.

`compute_landmarks` runs dlib's 68-point shape predictor (offline, from `face_recognition_models`)
once over a folder or tar and writes a JSON cache. Each face records how its face rectangle was found,
trying in order:

    "hog"           dlib's HOG detector on the image
    "hog_upsampled" the same detector on a 2x upsampled copy (small faces)
    "hog_padded"    on a copy padded by 25 % per side (tightly cropped, aligned faces fill the frame
                    and HOG misses them), upsampled 2x if the image is small
    "full_crop"     no detection: the whole (aligned) crop is used as the face rectangle

The largest detection is used. Every result must pass a plausibility check (eyes left/right of each
other, mouth below the eyes, eye distance a sensible share of the image, points inside the image);
an image where no method gives plausible points is recorded under "no_face" and trains without the
local losses. The run is resumable (already processed names are skipped) and saves every few hundred
images, atomically.

JSON layout (coordinates are dlib pixel coordinates of the source image, pixel centres at integers):

    {"format": "poseface-landmarks-68", "version": 1, "source": ..., "predictor": ...,
     "faces": {name: {"size": [w, h], "method": "hog", "points": [[x, y] * 68]}},
     "no_face": {name: {"size": [w, h]}}, "unreadable": [name, ...]}

Component boxes follow GFPGAN's FFHQ_eye_mouth_landmarks convention (scripts/parse_landmark.py):
centre = mean of points 36-41 (image-left eye), 42-47 (image-right eye), 48-67 (mouth);
half size = max(max(x range, y range) / 2, 16 * out_size / 512), times 1.4 for the eyes.
Boxes are [cx - h, cy - h, cx + h, cy + h] (GFPGAN adds 1 to x1, y1; we keep the box centred).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from poseface.data.atomic import write_json_atomic
from poseface.data.imageops import square_crop_box
from poseface.data.sources import ImageSource, open_source
from poseface.errors import PoseFaceError
from poseface.faces.dlib_models import LEFT_EYE_68, MOUTH_68, RIGHT_EYE_68

logger = logging.getLogger("poseface.data")

FORMAT = "poseface-landmarks-68"
FORMAT_VERSION = 1
METHODS = ("hog", "hog_upsampled", "hog_padded", "full_crop")
EYE_ENLARGE = 1.4
MIN_HALF_SIZE_AT_512 = 16.0


# ---------------------------------------------------------------------------------------------
# Boxes


def _source_to_output(points: np.ndarray, source_size: tuple[int, int] | int, out_size: int) -> np.ndarray:
    """Map source pixel coordinates through the centred square crop and resize used by `resize_to_square`."""
    width, height = (source_size, source_size) if isinstance(source_size, (int, np.integer)) else source_size
    x0, y0, side = square_crop_box(int(width), int(height))
    scale = out_size / side
    mapped = np.empty_like(points, dtype=np.float64)
    mapped[:, 0] = (points[:, 0] - x0 + 0.5) * scale - 0.5
    mapped[:, 1] = (points[:, 1] - y0 + 0.5) * scale - 0.5
    return mapped


def _box(points: np.ndarray, min_half: float, enlarge: float) -> np.ndarray:
    centre = points.mean(axis=0)
    spread = points.max(axis=0) - points.min(axis=0)
    half = max(float(spread.max()) / 2.0, min_half) * enlarge
    return np.array([centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half])


def component_boxes(
    landmarks68: np.ndarray,
    source_size: tuple[int, int] | int,
    out_size: int,
    hflip: bool = False,
) -> np.ndarray:
    """(3, 4) float32 boxes [left_eye, right_eye, mouth] as x1, y1, x2, y2 in out_size pixels.

    `landmarks68` are (68, 2) points in the source image (size (w, h)); the image is assumed to be
    centre-cropped to a square and resized to out_size (as `resize_to_square` does). With `hflip`
    the points are mirrored (x -> out_size - 1 - x) and the eyes swapped, so "left" stays the eye on
    the image left. The input array is never modified.
    """
    points = np.asarray(landmarks68, dtype=np.float64)
    if points.shape != (68, 2):
        raise PoseFaceError(
            f"landmarks: expected (68, 2) points, got shape {points.shape}; recompute with `poseface landmarks`"
        )
    mapped = _source_to_output(points, source_size, out_size)  # a new array: the cache is untouched
    left, right = mapped[LEFT_EYE_68], mapped[RIGHT_EYE_68]
    if hflip:
        mapped[:, 0] = (out_size - 1) - mapped[:, 0]
        left, right = mapped[RIGHT_EYE_68], mapped[LEFT_EYE_68]
    min_half = MIN_HALF_SIZE_AT_512 * out_size / 512.0
    boxes = np.stack(
        [
            _box(left, min_half, EYE_ENLARGE),
            _box(right, min_half, EYE_ENLARGE),
            _box(mapped[MOUTH_68], min_half, 1.0),
        ]
    )
    return boxes.astype(np.float32)


def face_template(
    entries: list[tuple[np.ndarray, tuple[int, int]]],
    out_size: int,
    mirror: bool = True,
) -> list[tuple[float, float]]:
    """The mean 5-point face template (eye centres, nose tip, mouth corners) of training crops.

    `entries` are (68-point landmarks, source (w, h)) pairs; each is mapped through the same square
    crop and resize as the training images. With `mirror` (training with horizontal flips) the mean
    is averaged with its mirror image, so the template is left-right symmetric, as the crops the
    network saw were. Restoring aligns faces to this template: the faces then sit where the
    network learned them.
    """
    from poseface.faces.align import five_points_from_68

    if not entries:
        raise PoseFaceError(
            "face template: no landmarks to average; compute them with `poseface landmarks DATA -o FILE`"
        )
    mean = np.mean(
        [five_points_from_68(_source_to_output(np.asarray(p, np.float64), size, out_size)) for p, size in entries],
        axis=0,
    )
    if mirror:
        mirrored = mean[[1, 0, 2, 4, 3]].copy()  # swap the eyes and the mouth corners
        mirrored[:, 0] = (out_size - 1) - mirrored[:, 0]
        mean = (mean + mirrored) / 2.0
    return [(round(float(x), 3), round(float(y), 3)) for x, y in mean]


# ---------------------------------------------------------------------------------------------
# Detection


def plausible_landmarks(points: np.ndarray, width: int, height: int) -> bool:
    """A sanity check that rejects landmarks fitted to something that is not a face."""
    left_eye = points[LEFT_EYE_68].mean(axis=0)
    right_eye = points[RIGHT_EYE_68].mean(axis=0)
    mouth = points[MOUTH_68].mean(axis=0)
    side = min(width, height)
    eye_distance = float(np.linalg.norm(right_eye - left_eye))
    inside = (
        (points[:, 0] >= -0.1 * width)
        & (points[:, 0] <= 1.1 * width)
        & (points[:, 1] >= -0.1 * height)
        & (points[:, 1] <= 1.1 * height)
    )
    return bool(
        left_eye[0] < right_eye[0]
        and mouth[1] > max(left_eye[1], right_eye[1])
        and 0.08 * side <= eye_distance <= 0.9 * side
        and inside.mean() >= 0.9
    )


class LandmarkDetector:
    """dlib HOG detector + 68-point predictor with the fallbacks described in the module docstring."""

    def __init__(self, full_crop_fallback: bool = True, detect_max_side: int = 640):
        from poseface.faces.dlib_models import hog_detector, shape_predictor

        hog_detector(), shape_predictor()  # load both now: a missing model is an error before the first image
        self.full_crop_fallback = full_crop_fallback
        self.detect_max_side = detect_max_side

    @staticmethod
    def _largest(image: np.ndarray, upsample: int) -> tuple[int, int, int, int] | None:
        from poseface.faces.detect import hog_faces

        boxes = [box for box, _ in hog_faces(image, upsample)]
        return max(boxes, key=lambda b: (b[2] - b[0] + 1) * (b[3] - b[1] + 1), default=None)

    @staticmethod
    def _predict(image: np.ndarray, left: float, top: float, right: float, bottom: float) -> np.ndarray:
        """(68, 2) float32 points at the image's own scale: the cached training landmarks stay as they were."""
        from poseface.faces.detect import landmarks_68

        return landmarks_68(image, (left, top, right, bottom), min_side=0).astype(np.float32)

    def detect(self, image: np.ndarray) -> tuple[np.ndarray | None, str | None]:
        """(68, 2) points and the method that found the face, or (None, None)."""
        height, width = image.shape[:2]
        image = np.ascontiguousarray(image)
        scale = min(1.0, self.detect_max_side / max(height, width))
        small = (
            image
            if scale == 1.0
            else cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        )
        small_enough_to_upsample = max(small.shape[:2]) <= 400
        pad = round(0.25 * max(small.shape[:2]))
        attempts = [("hog", small, 0, 0)]
        if small_enough_to_upsample:
            attempts.append(("hog_upsampled", small, 1, 0))
        attempts.append(("hog_padded", None, 1 if small_enough_to_upsample else 0, pad))
        for method, candidate, upsample, offset in attempts:
            if candidate is None:
                candidate = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
            box = self._largest(candidate, upsample)
            if box is None:
                continue
            left, top, right, bottom = ((v - offset) / scale for v in box)
            points = self._predict(image, left, top, right, bottom)
            if plausible_landmarks(points, width, height):
                return points, method
        if self.full_crop_fallback:
            points = self._predict(image, 0, 0, width - 1, height - 1)
            if plausible_landmarks(points, width, height):
                return points, "full_crop"
        return None, None


# ---------------------------------------------------------------------------------------------
# The cache file


def _empty_document(source: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "source": source,
        "predictor": "dlib shape_predictor_68_face_landmarks.dat (face_recognition_models)",
        "faces": {},
        "no_face": {},
        "unreadable": [],
    }


def _read_document(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PoseFaceError(
            f"{path}: not a readable landmarks JSON ({type(exc).__name__}); recompute it with `poseface landmarks DATA -o {path.name}`"
        ) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise PoseFaceError(
            f'{path}: not a PoseFace landmarks file (no "format": "{FORMAT}"); choose another output path'
        )
    return document


def load_landmarks(path: str | os.PathLike) -> dict[str, Any]:
    """Read a landmarks JSON. `result["faces"][name]["points"]` is a read-only (68, 2) float32 array."""
    document = _read_document(Path(path))
    for name, entry in document.get("faces", {}).items():
        points = np.asarray(entry["points"], dtype=np.float32)
        if points.shape != (68, 2):
            raise PoseFaceError(
                f"{path}: face {name!r} has points of shape {points.shape}, expected (68, 2); recompute the file"
            )
        points.setflags(write=False)  # shared by every item and worker: make accidental mutation an error
        entry["points"] = points
        entry["size"] = tuple(int(v) for v in entry["size"])
    return document


def compute_landmarks(
    paths_or_source: str | os.PathLike | ImageSource | list,
    out_json: str | os.PathLike,
    resume: bool = True,
    limit: int | None = None,
    full_crop_fallback: bool = True,
    save_every: int = 500,
    progress: bool = True,
) -> dict[str, int]:
    """Detect 68-point landmarks for every image and write `out_json`; returns counts per outcome.

    With `resume`, names already in an existing `out_json` are skipped. Without it an existing
    landmarks file is replaced; a file that is not a landmarks file is never overwritten.
    """
    from tqdm import tqdm

    source = open_source(paths_or_source)
    out_path = Path(out_json)
    if out_path.exists():
        existing = _read_document(out_path)  # refuses to touch files that are not ours
        document = existing if resume else _empty_document(str(source.root))
    else:
        document = _empty_document(str(source.root))
    done = set(document["faces"]) | set(document["no_face"]) | set(document["unreadable"])
    indices = range(len(source)) if limit is None else range(min(limit, len(source)))
    todo = [i for i in indices if source.names[i] not in done]
    detector = LandmarkDetector(full_crop_fallback=full_crop_fallback)
    counts = {m: 0 for m in METHODS} | {"no_face": 0, "unreadable": 0, "already_done": len(indices) - len(todo)}
    last_save = time.monotonic()
    try:
        bar = tqdm(todo, desc="landmarks", unit="img", disable=not progress, dynamic_ncols=True)
        for step, index in enumerate(bar, 1):
            name = source.names[index]
            image = source.read_or_skip(index)
            if image is None:
                document["unreadable"].append(name)
                counts["unreadable"] += 1
                continue
            height, width = image.shape[:2]
            points, method = detector.detect(image)
            if points is None:
                document["no_face"][name] = {"size": [width, height]}
                counts["no_face"] += 1
            else:
                document["faces"][name] = {
                    "size": [width, height],
                    "method": method,
                    "points": np.round(points, 2).tolist(),
                }
                counts[method] += 1
            if step % 50 == 0:
                bar.set_postfix(no_face=counts["no_face"], fallback=counts["full_crop"], refresh=False)
            if step % save_every == 0 or time.monotonic() - last_save > 120:
                write_json_atomic(out_path, document)
                last_save = time.monotonic()
    finally:
        write_json_atomic(out_path, document)
    if not document["faces"] and not document["no_face"]:
        raise PoseFaceError(f"{source.root}: none of the {len(source)} images could be read; check the data folder")
    logger.info("landmarks %s: %s", out_path, ", ".join(f"{k} {v}" for k, v in counts.items()))
    return counts
