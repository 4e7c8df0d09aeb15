"""Faces in real photos: dlib detection, 5-point alignment, batched restoration, seamless paste-back.

`Restorer` (poseface/faces/restorer.py) is the entry point; `poseface restore` wraps it.
"""


def __getattr__(name: str):
    # Lazy, so that `import poseface.faces.dlib_models` does not pull in torch.
    if name in ("Restorer", "Result", "FaceResult"):
        from poseface.faces import restorer

        return getattr(restorer, name)
    if name in ("DetectorOptions", "DetectedFace", "detect_faces"):
        from poseface.faces import detect

        return getattr(detect, name)
    raise AttributeError(f"module 'poseface.faces' has no attribute {name!r}")
