"""PoseFace: blind face restoration for pose-varied faces (MMRB codec + StyleGAN2 prior)."""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

# Lazy exports keep `import poseface` fast and free of torch until a model is needed.
_EXPORTS = {
    "convert_gpen": "poseface.models",
    "load_model": "poseface.models",
    "save_model": "poseface.models",
    "PoseFaceNet": "poseface.models",
    "ModelConfig": "poseface.models",
    "Restorer": "poseface.faces.restorer",
    "Result": "poseface.faces.restorer",
    "PoseFaceError": "poseface.errors",
}
__all__ = [  # literal, so that tools read it; tests/test_exit_codes.py checks it against _EXPORTS
    "ModelConfig",
    "PoseFaceError",
    "PoseFaceNet",
    "Restorer",
    "Result",
    "__version__",
    "convert_gpen",
    "load_model",
    "save_model",
]

if TYPE_CHECKING:  # what editors and type checkers see
    from poseface.errors import PoseFaceError
    from poseface.faces.restorer import Restorer, Result
    from poseface.models import ModelConfig, PoseFaceNet, convert_gpen, load_model, save_model


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'poseface' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
