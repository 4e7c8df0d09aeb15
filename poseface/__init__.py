"""PoseFace: blind face restoration for pose-varied faces (MMRB codec + StyleGAN2 prior).

Re-export policy, the same for every package: its `__init__` names its public API in a literal
`__all__` (tests/test_exports.py checks that every name resolves) and imports it eagerly, except where
the package's import must stay light (`poseface`, `poseface.faces`, `poseface.data`: no torch;
`poseface.train`: not the trainer), which lists those names in `_EXPORTS` and loads each on first use
(`poseface._lazy.lazy_exports`, with a `__dir__` that shows them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from poseface._lazy import lazy_exports

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
__all__ = [  # literal, so that tools read it; tests/test_exports.py checks it against _EXPORTS
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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__, globals())
