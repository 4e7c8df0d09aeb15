"""Identity distance (IDS) and landmark distance (LMD) of restored faces against their ground truth.

Both use dlib's offline models from `face_recognition_models`. The face rectangle is found once, on the
ground truth (HOG detector, best score), or is the whole crop when detection fails (heavily cropped
aligned faces); the SAME rectangle is used for the restored and the ground-truth face, so LMD measures
how far the restored landmarks moved, not detector jitter.

* IDS: dlib's 128-D face descriptor (ResNet, 99.38% on LFW). Both face chips are aligned with the
  ground truth's 68 landmarks, so the distance compares appearance only. Reported as the Euclidean
  distance (dlib's same-person threshold is 0.6) and the cosine distance 1 - cos. Lower is better.
* LMD: mean Euclidean distance in pixels (at the evaluated image size) between the 68 dlib landmarks
  of the restored and the ground-truth face, and the same divided by the inter-ocular distance of
  the ground truth (eye centres). Lower is better.
* Batched IDS (`BatchedIdentityDistance`): the same descriptors from the PyTorch re-expression of
  dlib's ResNet (`poseface.losses.dlib_resnet`), all chips of a batch in one forward on any device;
  the chips are still cut by dlib (`dlib.get_face_chip(image, shape, 150, 0.25)`, what
  `compute_face_descriptor(image, shape)` does), so it matches `identity_distance` to about 1e-6.
* Optional ArcFace IDS: cosine distance and angle (degrees) between ArcFace embeddings of the two
  whole aligned faces, with the identity networks of `poseface.losses.arcface` when weights are given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from poseface.faces import dlib_models
from poseface.faces.detect import hog_faces, landmark_shape, shape_points
from poseface.faces.detect import landmarks_68 as box_landmarks_68
from poseface.faces.dlib_models import LEFT_EYE_68, RIGHT_EYE_68

SAME_PERSON_THRESHOLD = 0.6  # dlib's Euclidean threshold on its 128-D descriptors


@dataclass(frozen=True)
class FaceBox:
    left: int
    top: int
    right: int
    bottom: int
    detected: bool  # False: the whole crop was used

    @property
    def corners(self) -> tuple[int, int, int, int]:
        return self.left, self.top, self.right, self.bottom


def find_face_box(image: np.ndarray, upsample: int | None = None) -> FaceBox:
    """Best HOG detection on `image` (RGB uint8), else the whole image as the rectangle."""
    height, width = image.shape[:2]
    if upsample is None:
        upsample = 1 if min(height, width) < 300 else 0  # HOG finds faces from about 80 px
    found = hog_faces(image, upsample)
    if found:
        best, _ = max(found, key=lambda item: item[1])
        return FaceBox(*best, detected=True)
    return FaceBox(0, 0, width - 1, height - 1, detected=False)


def landmarks_68(image: np.ndarray, box: FaceBox) -> np.ndarray:
    """(68, 2) x, y landmarks of the face in `box`, at the image's own scale (as the ground truth's `landmark_shape`)."""
    return box_landmarks_68(image, box.corners, min_side=0)


def inter_ocular(points: np.ndarray) -> float:
    return float(np.linalg.norm(points[LEFT_EYE_68].mean(axis=0) - points[RIGHT_EYE_68].mean(axis=0)))


def face_descriptor(image: np.ndarray, shape) -> np.ndarray:
    """dlib's 128-D descriptor of the face chip aligned with `shape` (a dlib full_object_detection)."""
    return np.array(
        dlib_models.face_recognizer().compute_face_descriptor(np.ascontiguousarray(image), shape), dtype=np.float64
    )


def face_chip(image: np.ndarray, shape) -> np.ndarray:
    """The 150x150 chip dlib's descriptor sees (get_face_chip, padding 0.25)."""
    import dlib

    return np.asarray(dlib.get_face_chip(np.ascontiguousarray(image), shape, 150, 0.25))


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    if denominator == 0:
        return float("nan")
    return float(max(0.0, 1.0 - np.dot(a, b) / denominator))  # clip the -1e-16 of identical vectors


def _check(restored: np.ndarray, gt: np.ndarray) -> None:
    if restored.shape != gt.shape:
        raise ValueError(f"restored {restored.shape} and ground truth {gt.shape} differ in size")


def landmark_distance(restored: np.ndarray, gt: np.ndarray, box: FaceBox | None = None) -> dict[str, float]:
    """{'lmd': mean pixel distance of the 68 points, 'lmd_norm': that / inter-ocular distance}."""
    _check(restored, gt)
    box = box or find_face_box(gt)
    gt_points = landmarks_68(gt, box)
    shift = np.linalg.norm(landmarks_68(restored, box) - gt_points, axis=1).mean()
    return {"lmd": float(shift), "lmd_norm": float(shift / max(inter_ocular(gt_points), 1e-6))}


def identity_distance(restored: np.ndarray, gt: np.ndarray, box: FaceBox | None = None) -> dict[str, float]:
    """{'ids': Euclidean distance of dlib descriptors, 'ids_cos': cosine distance}; both chips use the GT landmarks."""
    _check(restored, gt)
    box = box or find_face_box(gt)
    shape = landmark_shape(gt, box.corners)
    a, b = face_descriptor(restored, shape), face_descriptor(gt, shape)
    return {"ids": float(np.linalg.norm(a - b)), "ids_cos": cosine_distance(a, b)}


def face_distances(restored: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """IDS and LMD with one detection on the ground truth; 'face_found' is 1.0 if HOG found it, else 0.0."""
    _check(restored, gt)
    box = find_face_box(gt)
    gt_shape = landmark_shape(gt, box.corners)
    gt_points = shape_points(gt_shape)
    shift = np.linalg.norm(landmarks_68(restored, box) - gt_points, axis=1).mean()
    a, b = face_descriptor(restored, gt_shape), face_descriptor(gt, gt_shape)
    return {
        "ids": float(np.linalg.norm(a - b)),
        "ids_cos": cosine_distance(a, b),
        "lmd": float(shift),
        "lmd_norm": float(shift / max(inter_ocular(gt_points), 1e-6)),
        "face_found": 1.0 if box.detected else 0.0,
    }


class ArcFaceDistance:
    """Cosine distance and angle between ArcFace embeddings (poseface.losses.arcface networks)."""

    def __init__(
        self, weights: str | os.PathLike | None, kind: str = "ir_se50", device: str = "cpu", pretrained: bool = True
    ):
        from poseface.losses.arcface import load_identity_encoder

        self.device = device
        self.encoder = load_identity_encoder(kind, weights, pretrained=pretrained).to(device).eval()

    def __call__(self, restored: np.ndarray, gt: np.ndarray) -> dict[str, float]:
        import torch

        from poseface.metrics.lpips import images_to_tensor

        _check(restored, gt)
        with torch.inference_mode():
            batch = images_to_tensor(np.stack([restored, gt]), self.device)
            embeddings = self.encoder(batch).double().cpu().numpy()
        distance = cosine_distance(embeddings[0], embeddings[1])
        angle = float(np.degrees(np.arccos(np.clip(1.0 - distance, -1.0, 1.0))))
        return {"ids_arcface": distance, "ids_arcface_deg": angle}


class BatchedIdentityDistance:
    """IDS like `identity_distance`, with dlib's ResNet run in PyTorch on batches of chips."""

    def __init__(self, device: str = "cpu", batch_size: int = 64):
        from poseface.losses.dlib_resnet import load_dlib_resnet

        self.device, self.batch_size = device, batch_size
        self.net = load_dlib_resnet().to(device)

    def descriptors(self, chips: np.ndarray) -> np.ndarray:
        """(N, 150, 150, 3) uint8 aligned chips -> (N, 128) float64 descriptors."""
        import torch

        from poseface.losses.dlib_resnet import chips_to_tensor

        out = []
        with torch.inference_mode():
            for start in range(0, len(chips), self.batch_size):
                out.append(
                    self.net(chips_to_tensor(chips[start : start + self.batch_size], self.device))
                    .double()
                    .cpu()
                    .numpy()
                )
        return np.concatenate(out) if out else np.zeros((0, 128))

    def __call__(self, restored: list[np.ndarray], gt: list[np.ndarray]) -> list[dict[str, float]]:
        if len(restored) != len(gt):
            raise ValueError(f"{len(restored)} restored faces for {len(gt)} ground-truth faces")
        chips = []
        for fake, real in zip(restored, gt):
            _check(fake, real)
            shape = landmark_shape(real, find_face_box(real).corners)
            chips += [face_chip(fake, shape), face_chip(real, shape)]
        found = self.descriptors(np.stack(chips)) if chips else np.zeros((0, 128))
        return [
            {"ids": float(np.linalg.norm(a - b)), "ids_cos": cosine_distance(a, b)}
            for a, b in zip(found[0::2], found[1::2])
        ]
