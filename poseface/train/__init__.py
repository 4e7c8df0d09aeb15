"""Training (paper section 4.2): configs, the `Trainer` loop and its collaborators. See docs/training.md.

Lazy, so that the CLI, which imports `poseface.train.cli` for every command, does not load the trainer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from poseface._lazy import lazy_exports

_EXPORTS = {
    "DataConfig": "poseface.train.config",
    "ExperimentConfig": "poseface.train.config",
    "TrainConfig": "poseface.train.config",
    "Trainer": "poseface.train.trainer",
}
__all__ = ["DataConfig", "ExperimentConfig", "TrainConfig", "Trainer"]  # = _EXPORTS (tested)

if TYPE_CHECKING:  # what editors and type checkers see
    from poseface.train.config import DataConfig, ExperimentConfig, TrainConfig
    from poseface.train.trainer import Trainer

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__, globals())
