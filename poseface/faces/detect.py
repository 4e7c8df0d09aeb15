"""Offline face detection and 68-point landmarks with dlib.

HOG first (about 20 ms at 512 px), the MMOD CNN when HOG finds nothing or when asked (about 2 s at
512 px on 2 CPU cores): HOG misses heavily degraded, rotated and squeezed faces that MMOD finds
(/work/shared/reference/dependencies_here.md section 2). Detection runs on a copy shrunk to at most
`max_side` pixels; landmarks are then predicted on the full-resolution image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from poseface.errors import PoseFaceError
from poseface.faces import dlib_models
from poseface.faces.align import five_points_from_68

DETECTORS = ("auto", "hog", "cnn")


@dataclass
class DetectorOptions:
    method: str = "auto"  # "hog", "cnn", or "auto" (HOG, then MMOD CNN if HOG finds nothing)
    min_score: float = 0.0  # HOG score / MMOD confidence below which a detection is dropped
    min_face_size: int = 20  # pixels (box side in the full-resolution image); smaller faces are ignored
    max_side: int = 1280  # detect on a copy whose longer side is at most this (0 = never shrink)
    upsample: int = 0  # dlib's upsampling of the detection copy (1 finds ~40 px faces, 4x slower)
    # HOG detections scoring below this are kept only if MMOD confirms them on a small crop around
    # them (~0.15 s each): a JPEG'd astronaut gives a 0.10 false positive on the suit, the face
    # itself scores 0.28 when heavily degraded (MMOD: 1.0). 0 = trust every HOG detection.
    verify_below: float = 0.5

    def __post_init__(self) -> None:
        if self.method not in DETECTORS:
            raise PoseFaceError(f"--detector {self.method}: unknown detector; use one of {', '.join(DETECTORS)}")
        if self.min_face_size < 1 or self.max_side < 0 or self.upsample < 0:
            raise PoseFaceError("detector options: min_face_size must be >= 1, max_side >= 0 and upsample >= 0")


@dataclass
class DetectedFace:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in full-resolution pixels
    score: float  # HOG score or MMOD confidence
    detector: str  # "hog" or "cnn"
    landmarks: np.ndarray = field(repr=False)  # (68, 2) float64
    points5: np.ndarray = field(repr=False)  # (5, 2): eye centres, nose tip, mouth corners

    @property
    def size(self) -> float:
        return float(min(self.box[2] - self.box[0], self.box[3] - self.box[1]))


def _shrunk(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    longest = max(image.shape[:2])
    if max_side <= 0 or longest <= max_side:
        return image, 1.0
    factor = max_side / longest
    size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), factor


def _run_hog(image: np.ndarray, options: DetectorOptions) -> list[tuple[tuple[int, int, int, int], float]]:
    rects, scores, _ = dlib_models.hog_detector().run(image, options.upsample, options.min_score)
    return [((r.left(), r.top(), r.right(), r.bottom()), float(s)) for r, s in zip(rects, scores)]


MMOD_MIN_SIDE = 48  # dlib's MMOD network raises on images smaller than its filter windows


def _run_cnn(image: np.ndarray, options: DetectorOptions) -> list[tuple[tuple[int, int, int, int], float]]:
    if min(image.shape[:2]) * 2**options.upsample < MMOD_MIN_SIDE:
        return []
    found = dlib_models.cnn_detector()(image, options.upsample)
    return [((d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()), float(d.confidence)) for d in found]


def _confirmed_by_cnn(image: np.ndarray, box: tuple[float, float, float, float], options: DetectorOptions) -> bool:
    """Does MMOD find a face centred inside `box` in a crop twice the box size (box ~80 px)?"""
    x0, y0, x1, y1 = box
    side = 2.0 * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    rx0, ry0 = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
    rx1, ry1 = int(min(cx + side / 2, image.shape[1])), int(min(cy + side / 2, image.shape[0]))
    if rx1 - rx0 < 2 or ry1 - ry0 < 2:
        return False
    factor = 160.0 / side
    region = cv2.resize(
        image[ry0:ry1, rx0:rx1], (max(1, round((rx1 - rx0) * factor)), max(1, round((ry1 - ry0) * factor))),
        interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC,
    )
    for (l, t, r, b), score in _run_cnn(np.ascontiguousarray(region), DetectorOptions(upsample=0)):
        centre_x, centre_y = rx0 + (l + r) / 2 / factor, ry0 + (t + b) / 2 / factor
        if score >= options.min_score and x0 <= centre_x <= x1 and y0 <= centre_y <= y1:
            return True
    return False


def landmarks_68(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """68 landmarks (x, y) of the face in `box` of the RGB uint8 `image`."""
    import dlib

    rect = dlib.rectangle(*(int(round(v)) for v in box))
    shape = dlib_models.shape_predictor()(image, rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


def detect_faces(image: np.ndarray, options: DetectorOptions | None = None) -> list[DetectedFace]:
    """Faces in an RGB uint8 (H, W, 3) image, sorted left to right, with landmarks and 5 points."""
    options = options or DetectorOptions()
    image = np.ascontiguousarray(image)
    small, factor = _shrunk(image, options.max_side)
    runs = {"hog": (_run_hog,), "cnn": (_run_cnn,), "auto": (_run_hog, _run_cnn)}[options.method]
    found: list[tuple[tuple[float, ...], float, str]] = []
    for run in runs:
        name = "hog" if run is _run_hog else "cnn"
        try:
            detections = run(small, options)
        except RuntimeError as exc:  # dlib's own errors: report them as one line
            raise PoseFaceError(f"dlib {name} face detection failed ({str(exc).strip().splitlines()[-1]})") from None
        for box, score in detections:
            if score < options.min_score:
                continue
            full_box = tuple(v / factor for v in box)
            if min(full_box[2] - full_box[0], full_box[3] - full_box[1]) < options.min_face_size:
                continue
            if name == "hog" and score < options.verify_below and not _confirmed_by_cnn(image, full_box, options):
                continue
            found.append((full_box, score, name))
        if found:
            break
    faces = []
    for box, score, name in sorted(found, key=lambda item: item[0][0]):
        landmarks = landmarks_68(image, box)
        points5 = five_points_from_68(landmarks)
        if np.linalg.norm(points5[1] - points5[0]) < 5:  # eye distance below 5 px: not a usable face
            continue
        faces.append(DetectedFace(box=box, score=score, detector=name, landmarks=landmarks, points5=points5))
    return faces


def center_face(faces: list[DetectedFace], height: int, width: int) -> list[DetectedFace]:
    """The one face whose box centre is nearest the image centre (empty list if none)."""
    if not faces:
        return []
    centre = np.array([width / 2, height / 2])
    distance = [np.linalg.norm([(f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2] - centre) for f in faces]
    return [faces[int(np.argmin(distance))]]
