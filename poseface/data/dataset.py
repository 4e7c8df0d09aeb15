"""Training pairs: a folder or tar of HQ faces -> (degraded, clean, eye/mouth boxes) tensors.

Each item is reproducible from (seed, epoch, index): its generator is
`numpy.random.default_rng(SeedSequence([seed, epoch, index]))`, so the same item is the same in any
data-loader worker and after a restart. Call `set_epoch(epoch)` at the start of every epoch to get
new degradations. Item:

    {"lq": (3, S, S) float32 in [-1, 1], "gt": the same for the clean face,
     "boxes": (3, 4) float32 [left_eye, right_eye, mouth] x1 y1 x2 y2 in S pixels (zeros if unknown),
     "has_boxes": bool tensor, "name": source name}

`degradation_mix={"mild": 0.25, "near_clean": 0.1}` degrades that share of the items with those presets
(and the rest with `degradation`); `keep_names` (from `poseface curate`) keeps only those training faces.

Faces without landmarks (not in the cache, or recorded as "no_face") still train; they just get no
local eye/mouth loss (`has_boxes` False). Their number is logged when the data set is built.
`landmark_methods=("hog", "hog_upsampled", "hog_padded")` ignores the less reliable "full_crop" fits.
An unreadable image is skipped with one warning line and replaced by the next readable one.
"""

from __future__ import annotations

import hashlib
import logging
import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from poseface.data.degradation import DegradationConfig, degrade, preset
from poseface.data.imageops import resize_to_square
from poseface.data.landmarks import component_boxes, face_template, load_landmarks
from poseface.data.sources import ImageSource, open_source
from poseface.errors import PoseFaceError
from poseface.tensorimage import images_to_tensor

logger = logging.getLogger("poseface.data")

SPLITS = ("all", "train", "val")


def worker_init(_worker_id: int) -> None:
    """`DataLoader(worker_init_fn=worker_init)`: one OpenCV thread per worker (workers already run in parallel)."""
    import cv2

    cv2.setNumThreads(1)


def degradation_mixture(
    main: DegradationConfig, extras: dict[str, float]
) -> list[tuple[str, DegradationConfig, float]]:
    """[(name, config, probability)] with a share > 0 each: the extra presets and the main degradation with the
    rest; [] when no extra preset has a share (every item then uses `main`, with no extra random draw)."""
    shares = {str(name): float(share) for name, share in extras.items()}
    if any(not 0.0 <= share <= 1.0 for share in shares.values()) or sum(shares.values()) > 1.0:
        raise PoseFaceError(f"degradation_mix {shares}: shares must be in [0, 1] and add up to at most 1")
    extra = [(name, preset(name), share) for name, share in shares.items() if share > 0]
    if not extra:
        return []
    rest = 1.0 - sum(share for _, _, share in extra)
    return ([("main", main, rest)] if rest > 0 else []) + extra


def in_validation_split(name: str, val_fraction: float) -> bool:
    """Deterministic split: the first 8 bytes of sha256(file name) as a fraction in [0, 1)."""
    value = int.from_bytes(hashlib.sha256(name.rsplit("/", 1)[-1].encode("utf-8")).digest()[:8], "little") / 2.0**64
    return value < val_fraction


class FaceDataset(Dataset):
    def __init__(
        self,
        source: str | os.PathLike | ImageSource,
        size: int,
        degradation: DegradationConfig | str,
        landmarks: str | os.PathLike | dict | None = None,
        seed: int = 0,
        split: str = "all",
        val_fraction: float = 0.02,
        augment_flip: bool = True,
        landmark_methods: tuple[str, ...] | None = None,
        keep_names: set[str] | None = None,
        degradation_mix: dict[str, float] | None = None,
    ):
        if split not in SPLITS:
            raise PoseFaceError(f"split {split!r}: use one of {', '.join(SPLITS)}")
        if not 0.0 <= val_fraction < 1.0:
            raise PoseFaceError(f"val_fraction {val_fraction}: must be in [0, 1)")
        self.source = open_source(source)
        self.size = int(size)
        self.degradation = preset(degradation) if isinstance(degradation, str) else degradation
        self.mixture = degradation_mixture(self.degradation, degradation_mix or {})
        self.seed = int(seed)
        self.epoch = 0
        self.augment_flip = augment_flip
        self.split = split
        if split == "all":
            self.indices = list(range(len(self.source)))
        else:
            want_val = split == "val"
            self.indices = [
                i for i, n in enumerate(self.source.names) if in_validation_split(n, val_fraction) == want_val
            ]
        if keep_names is not None and split == "train":
            self.indices = [i for i in self.indices if self.source.names[i] in keep_names]
            logger.info("curated: %d training faces kept of %s by the keep list", len(self.indices), self.source.root)
        if not self.indices:
            raise PoseFaceError(
                f"{self.source.root}: the {split!r} split is empty (val_fraction {val_fraction}); use more images or another val_fraction"
            )

        document = load_landmarks(landmarks) if isinstance(landmarks, (str, os.PathLike)) else landmarks
        faces = (document.get("faces", document) if document is not None else {}) or {}
        self.landmarks: dict[str, dict[str, Any]] = {}
        for index in self.indices:
            entry = faces.get(self.source.names[index])
            if entry is not None and landmark_methods is not None and entry.get("method") not in landmark_methods:
                entry = None  # e.g. leave out the less reliable "full_crop" fits
            if entry is not None:
                points = np.asarray(entry["points"], dtype=np.float32)
                points.setflags(write=False)
                self.landmarks[self.source.names[index]] = {
                    "points": points,
                    "size": tuple(int(v) for v in entry["size"]),
                }
        self.missing_landmarks = len(self.indices) - len(self.landmarks)
        self._size_mismatch_warned: set[str] = set()
        if landmarks is not None and self.missing_landmarks:
            logger.warning(
                "%d of %d faces in %s (%s split) have no landmarks; they train without the local eye/mouth loss",
                self.missing_landmarks,
                len(self.indices),
                self.source.root,
                split,
            )
        elif landmarks is None:
            logger.info(
                "no landmarks given for %s: no eye/mouth boxes, local losses off for all %d faces",
                self.source.root,
                len(self.indices),
            )

    def face_template(self) -> list[tuple[float, float]] | None:
        """The mean 5-point template of this split's crops (None without landmarks); see `landmarks.face_template`."""
        if not self.landmarks:
            return None
        entries = [(entry["points"], entry["size"]) for entry in self.landmarks.values()]
        return face_template(entries, self.size, mirror=self.augment_flip and self.degradation.hflip_prob > 0)

    def __len__(self) -> int:
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _read(self, position: int) -> tuple[int, np.ndarray]:
        """The image at `position`, or the next readable one (wrapping); error if none is readable."""
        for step in range(len(self.indices)):
            source_index = self.indices[(position + step) % len(self.indices)]
            image = self.source.read_or_skip(source_index)
            if image is not None:
                return source_index, image
        raise PoseFaceError(
            f"{self.source.root}: none of the {len(self.indices)} images could be read; check the data folder"
        )

    def item_with_params(self, position: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """The item and the degradation parameters drawn for it (plus "hflip")."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, int(position)]))
        source_index, image = self._read(position)
        name = self.source.names[source_index]
        gt = resize_to_square(image, self.size)
        flip = bool(rng.random() < self.degradation.hflip_prob) and self.augment_flip
        if flip:
            gt = np.ascontiguousarray(gt[:, ::-1])
        config, params_preset = self.degradation, None
        if self.mixture:  # one extra draw, only for mixtures
            choice = int(rng.choice(len(self.mixture), p=[weight for _, _, weight in self.mixture]))
            params_preset, config, _ = self.mixture[choice]
        lq, params = degrade(gt, config, rng)
        params["hflip"] = flip
        if params_preset is not None:
            params["preset"] = params_preset
        entry = self.landmarks.get(name)
        if entry is not None and tuple(entry["size"]) != (image.shape[1], image.shape[0]):
            if name not in self._size_mismatch_warned:
                self._size_mismatch_warned.add(name)
                logger.warning(
                    "%s: landmarks were computed on a %dx%d image but it is %dx%d now; no boxes for it (recompute the landmarks)",
                    self.source.label(source_index),
                    *entry["size"],
                    image.shape[1],
                    image.shape[0],
                )
            entry = None
        if entry is not None:
            boxes = component_boxes(entry["points"], entry["size"], self.size, hflip=flip)
        else:
            boxes = np.zeros((3, 4), dtype=np.float32)
        item = {
            "lq": images_to_tensor(lq)[0],
            "gt": images_to_tensor(gt)[0],
            "boxes": torch.from_numpy(boxes),
            "has_boxes": torch.tensor(entry is not None),
            "name": name,
        }
        return item, params

    def __getitem__(self, position: int) -> dict[str, Any]:
        return self.item_with_params(position)[0]
