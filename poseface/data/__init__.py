"""Training data: eq. 17 degradations, HQ face sources (folder or tar), landmarks, reproducible test sets.

Import the submodules directly (`poseface.data.degradation`, `.landmarks`, `.sources`, `.dataset`,
`.testset`, `.visualize`); the names below are re-exported for convenience. `FaceDataset` is loaded
lazily so that importing `poseface.data` does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from poseface._lazy import lazy_exports
from poseface.data.degradation import DegradationConfig, apply_degradation, degrade, preset, sample_degradation
from poseface.data.landmarks import component_boxes, compute_landmarks, load_landmarks
from poseface.data.sources import ImageSource, open_source
from poseface.data.testset import make_test_set
from poseface.data.visualize import contact_sheet

_EXPORTS = {"FaceDataset": "poseface.data.dataset"}  # torch

__all__ = [
    "DegradationConfig",
    "FaceDataset",
    "ImageSource",
    "apply_degradation",
    "component_boxes",
    "compute_landmarks",
    "contact_sheet",
    "degrade",
    "load_landmarks",
    "make_test_set",
    "open_source",
    "preset",
    "sample_degradation",
]


if TYPE_CHECKING:  # what editors and type checkers see
    from poseface.data.dataset import FaceDataset

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__, globals())
