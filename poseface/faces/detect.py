"""Offline face detection and 68-point landmarks with dlib: a multi-scale policy.

dlib's HOG detector scans an 80x80 window over a pyramid that only shrinks the image, so one pass
finds faces from 80 px up to the whole image. The policy (measured in docs/faces.md, printed by
`benchmarks/detect.py`):

1. HOG on the photo (shrunk to `max_side` if larger): faces from 80 px, boxes exactly dlib's.
2. HOG on copies up-sampled by s = 80 / `min_face_size` and s / 1.41 (at most `max_side` pixels
   long): faces down to `min_face_size` (JPEG'd small faces score best on the smaller copy). Strong
   boxes of pass 1 are kept as dlib gives them; all other boxes are merged by score (non-maximum
   suppression), and a box lying mostly inside another (an eye or mouth taken for a small face) is dropped.
3. Weak boxes (score below `verify_below`) are kept only if dlib's MMOD CNN confirms them on a small
   crop around them (about 0.05 s each): the up-sampled suit of `skimage.data.astronaut()` scores 0.05.
4. `auto`: when HOG finds nothing, the MMOD CNN on the photo (about 2 s at 512 px on 2 CPU cores), which
   finds rotated and heavily degraded faces HOG misses.

Landmarks are predicted on the full-resolution photo; faces smaller than the HOG window get them on
an up-sampled crop (the predictor samples single pixels, which alias on a 30 px face).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from poseface.errors import PoseFaceError
from poseface.faces import dlib_models
from poseface.faces.align import five_points_from_68

DETECTORS = ("auto", "hog", "cnn")
HOG_WINDOW = 80  # pixels: dlib's frontal HOG filters are 80x80
BOX_SLACK = 0.8  # HOG boxes come in 1.2x steps: a 17 px face gets a 14.4 px box, which min_face_size 16 keeps
Box = tuple[float, float, float, float]


@dataclass
class DetectorOptions:
    method: str = "auto"  # "hog", "cnn", or "auto" (HOG, then the MMOD CNN if HOG finds nothing)
    # HOG score below which a detection is dropped (MMOD keeps its own 0 unless this is higher). With
    # every weak box confirmed by MMOD, the composite group photos lose 5.7% of their faces at -0.5,
    # 2.9% at -0.7 and 2.3% at -0.8 and below (docs/faces.md, benchmarks/detect.py).
    min_score: float = -0.8
    min_face_size: int = (
        16  # pixels (box side at full resolution): the smallest face looked for (boxes >= 0.8x it kept)
    )
    max_side: int = 4096  # longest side of the largest detection copy (bounds time and memory); 0 = no bound
    # HOG detections scoring below this are kept only if MMOD confirms them on a crop around them in
    # which the box is 80 px (~0.05 s each); 0 = trust every HOG detection. Unconfirmed weak boxes
    # on the astronaut photo, rotated or mirrored: her suit, the flag, a glove.
    verify_below: float = 0.5

    def __post_init__(self) -> None:
        if self.method not in DETECTORS:
            raise PoseFaceError(f"--detector {self.method}: unknown detector; use one of {', '.join(DETECTORS)}")
        if self.min_face_size < 1 or self.max_side < 0:
            raise PoseFaceError(
                f"detector options: --min-face-size must be >= 1 and --detect-size >= 0 (got {self.min_face_size}, {self.max_side})"
            )

    def upsampling(self, height: int, width: int) -> float:
        """Scale of the detection copy that finds faces of `min_face_size` px, bounded by `max_side`."""
        return self.bounded(HOG_WINDOW / self.min_face_size, height, width)

    def bounded(self, scale: float, height: int, width: int) -> float:
        """`scale`, lowered so that the scaled photo's longer side is at most `max_side` (0: no bound)."""
        return min(scale, self.max_side / max(height, width)) if self.max_side else scale


@dataclass
class DetectedFace:
    box: Box  # x0, y0, x1, y1 in full-resolution pixels
    score: float  # HOG score or MMOD confidence
    detector: str  # "hog" or "cnn"
    landmarks: np.ndarray = field(repr=False)  # (68, 2) float64
    points5: np.ndarray = field(repr=False)  # (5, 2): eye centres, nose tip, mouth corners

    @property
    def size(self) -> float:
        return float(min(self.box[2] - self.box[0], self.box[3] - self.box[1]))


@dataclass
class Detection:
    box: Box
    score: float
    detector: str


def resized(image: np.ndarray, scale: float) -> np.ndarray:
    """`image` scaled by `scale` (area averaging down, bicubic up)."""
    if scale == 1.0:
        return image
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def _scaled_box(box: tuple[float, ...], scale: float) -> Box:
    return tuple(float(v) / scale for v in box)  # type: ignore[return-value]


def hog_faces(
    image: np.ndarray, upsample: int = 0, min_score: float = 0.0
) -> list[tuple[tuple[int, int, int, int], float]]:
    """dlib's HOG detector on the RGB uint8 `image` (up-sampled 2x `upsample` times inside dlib):
    (left, top, right, bottom) boxes in `image`'s pixels, dlib's inclusive corners, and their scores."""
    rects, scores, _ = dlib_models.hog_detector().run(np.ascontiguousarray(image), upsample, min_score)
    return [((r.left(), r.top(), r.right(), r.bottom()), float(s)) for r, s in zip(rects, scores)]


def _run_hog(image: np.ndarray, scale: float, min_score: float) -> list[Detection]:
    """HOG on `image` scaled by `scale`; boxes in `image`'s pixels."""
    return [
        Detection(_scaled_box(box, scale), score, "hog")
        for box, score in hog_faces(resized(image, scale), 0, min_score)
    ]


MMOD_MIN_SIDE = 48  # dlib's MMOD network raises on images smaller than its filter windows
MMOD_MAX_SIDE = 1280  # the MMOD fallback runs on a copy at most this long: about 2 s per 512x512 area on 2 cores


def _run_cnn(image: np.ndarray, scale: float, min_score: float) -> list[Detection]:
    small = np.ascontiguousarray(resized(image, scale))
    if min(small.shape[:2]) < MMOD_MIN_SIDE:
        return []
    found = dlib_models.cnn_detector()(small, 0)
    return [
        Detection(
            _scaled_box((d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()), scale),
            float(d.confidence),
            "cnn",
        )
        for d in found
        if d.confidence >= min_score
    ]


VERIFY_CONTEXT = 1.5  # the MMOD check sees a crop this many times the box's side (2.0: same recall, 1.6x the time)
VERIFY_BOX = 80.0  # ...scaled so that the box is this many pixels (MMOD's cost grows with the crop's area)


def _confirmed_by_cnn(image: np.ndarray, box: Box, min_score: float) -> bool:
    """Does MMOD find a face centred inside `box` in a crop of VERIFY_CONTEXT times the box (box ~VERIFY_BOX px)?"""
    x0, y0, x1, y1 = box
    side = VERIFY_CONTEXT * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    rx0, ry0 = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
    rx1, ry1 = int(min(cx + side / 2, image.shape[1])), int(min(cy + side / 2, image.shape[0]))
    if rx1 - rx0 < 2 or ry1 - ry0 < 2:
        return False
    factor = VERIFY_CONTEXT * VERIFY_BOX / side
    for found in _run_cnn(np.ascontiguousarray(image[ry0:ry1, rx0:rx1]), factor, min_score):
        centre_x, centre_y = rx0 + (found.box[0] + found.box[2]) / 2, ry0 + (found.box[1] + found.box[3]) / 2
        if x0 <= centre_x <= x1 and y0 <= centre_y <= y1:
            return True
    return False


def box_overlap(a: Box, b: Box) -> tuple[float, float]:
    """(intersection over union, intersection over the smaller box's area)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0, 0.0
    inter = w * h
    area_a, area_b = (a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area_a + area_b - inter), inter / min(area_a, area_b)


def merge_detections(
    preferred: list[Detection], others: list[Detection], max_iou: float = 0.3, max_inside: float = 0.5
) -> list[Detection]:
    """Non-maximum suppression: `preferred` boxes first, then `others` by score; a box is dropped when
    it overlaps a kept one by IoU > `max_iou` or lies more than `max_inside` inside it (or around it)."""
    kept: list[Detection] = []
    for candidate in sorted(preferred, key=lambda d: -d.score) + sorted(others, key=lambda d: -d.score):
        if all(
            max(o[0] / max_iou, o[1] / max_inside) <= 1.0 for o in (box_overlap(candidate.box, k.box) for k in kept)
        ):
            kept.append(candidate)
    return kept


def _hog_policy(image: np.ndarray, options: DetectorOptions) -> list[Detection]:
    height, width = image.shape[:2]
    native = options.bounded(1.0, height, width)
    found = _run_hog(image, native, options.min_score)
    # Strong detections at the photo's own scale keep dlib's boxes; everything else competes by score.
    strong = [d for d in found if d.score >= options.verify_below]
    others = [d for d in found if d.score < options.verify_below]
    top = options.upsampling(height, width)
    # two up-sampled passes: JPEG'd small faces score best 1.4x below the top scale
    for scale in (top, top / np.sqrt(2)):
        if scale > 1.25 * native:
            others += _run_hog(image, scale, options.min_score)
    return [
        d
        for d in merge_detections(strong, others)
        if d.score >= options.verify_below or _confirmed_by_cnn(image, d.box, max(options.min_score, 0.0))
    ]


def _mmod_policy(image: np.ndarray, options: DetectorOptions) -> list[Detection]:
    # MMOD's confidences are not HOG scores: it keeps its own threshold (0) unless --min-score is higher
    height, width = image.shape[:2]
    scale = options.bounded(min(1.0, MMOD_MAX_SIDE / max(height, width)), height, width)
    return merge_detections(_run_cnn(image, scale, max(options.min_score, 0.0)), [])


LANDMARK_MIN_SIDE = HOG_WINDOW  # smaller faces get their landmarks on a crop up-sampled to this size


def landmark_shape(image: np.ndarray, box: Box):
    """dlib's 68-point `full_object_detection` of the face in `box` (corners rounded to pixels), at the image's own scale."""
    import dlib

    rect = dlib.rectangle(*(int(round(v)) for v in box))
    return dlib_models.shape_predictor()(np.ascontiguousarray(image), rect)


def shape_points(shape) -> np.ndarray:
    """(68, 2) float64 x, y of a dlib `full_object_detection`."""
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


def landmarks_68(image: np.ndarray, box: Box, min_side: int = LANDMARK_MIN_SIDE) -> np.ndarray:
    """68 landmarks (x, y) of the face in `box` of the RGB uint8 `image`.

    A face smaller than `min_side` px is first cut out with one box of margin and up-sampled
    (bicubic) to that size: dlib's predictor compares single pixels, which alias on small faces.
    `min_side=0` predicts at the image's own scale whatever the size (`landmark_shape`).
    """
    side = min(box[2] - box[0], box[3] - box[1])
    origin, factor, region = np.zeros(2), 1.0, image
    if 0 < side < min_side:
        factor = min_side / side
        x0, y0 = max(int(box[0] - side), 0), max(int(box[1] - side), 0)
        x1, y1 = min(int(np.ceil(box[2] + side)), image.shape[1]), min(int(np.ceil(box[3] + side)), image.shape[0])
        region = np.ascontiguousarray(resized(image[y0:y1, x0:x1], factor))
        origin = np.array([x0, y0], dtype=np.float64)
        box = tuple((v - o + 0.5) * factor - 0.5 for v, o in zip(box, (x0, y0, x0, y0)))  # type: ignore[assignment]
    points = shape_points(landmark_shape(region, box))
    return (points + 0.5) / factor - 0.5 + origin if factor != 1.0 else points


def detect_faces(image: np.ndarray, options: DetectorOptions | None = None) -> list[DetectedFace]:
    """Faces in an RGB uint8 (H, W, 3) image, sorted left to right, with landmarks and 5 points."""
    options = options or DetectorOptions()
    image = np.ascontiguousarray(image)
    policies = {"hog": (_hog_policy,), "cnn": (_mmod_policy,), "auto": (_hog_policy, _mmod_policy)}[options.method]
    found: list[Detection] = []
    for policy in policies:
        try:
            found = [
                d
                for d in policy(image, options)
                if min(d.box[2] - d.box[0], d.box[3] - d.box[1]) >= BOX_SLACK * options.min_face_size
            ]
        except RuntimeError as exc:  # dlib's own errors: report them as one line
            name = "hog" if policy is _hog_policy else "cnn"
            raise PoseFaceError(f"dlib {name} face detection failed ({str(exc).strip().splitlines()[-1]})") from None
        if found:
            break
    faces = []
    for detection in sorted(found, key=lambda d: d.box[0]):
        landmarks = landmarks_68(image, detection.box)
        points5 = five_points_from_68(landmarks)
        if np.linalg.norm(points5[1] - points5[0]) < 3:  # eyes closer than 3 px: not a usable face
            continue
        faces.append(
            DetectedFace(
                box=detection.box,
                score=detection.score,
                detector=detection.detector,
                landmarks=landmarks,
                points5=points5,
            )
        )
    return faces


def center_face(faces: list[DetectedFace], height: int, width: int) -> list[DetectedFace]:
    """The one face whose box centre is nearest the image centre (empty list if none)."""
    if not faces:
        return []
    centre = np.array([width / 2, height / 2])
    distance = [np.linalg.norm([(f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2] - centre) for f in faces]
    return [faces[int(np.argmin(distance))]]
