"""Faces in real photos: dlib detection, 5-point alignment, batched restoration, seamless paste-back.

`Restorer` (poseface/faces/restorer.py) is the entry point; `poseface restore` wraps it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from poseface._lazy import lazy_exports

# Lazy, so that `import poseface.faces.dlib_models` does not pull in torch.
_EXPORTS = {
    "Restorer": "poseface.faces.restorer",
    "Result": "poseface.faces.restorer",
    "FaceResult": "poseface.faces.restorer",
    "DetectorOptions": "poseface.faces.detect",
    "DetectedFace": "poseface.faces.detect",
    "detect_faces": "poseface.faces.detect",
}
__all__ = ["DetectedFace", "DetectorOptions", "FaceResult", "Restorer", "Result", "detect_faces"]  # = _EXPORTS (tested)

if TYPE_CHECKING:  # what editors and type checkers see
    from poseface.faces.detect import DetectedFace, DetectorOptions, detect_faces
    from poseface.faces.restorer import FaceResult, Restorer, Result


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__, globals())
