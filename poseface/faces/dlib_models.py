"""Paths to the offline dlib models that the `face_recognition_models` package ships, and the index
ranges of the 68-point layout (eyes, mouth) and the facial components every other module uses.

The package's own `__init__` imports `pkg_resources`, which recent setuptools no longer has, so
the model folder is found from the import spec without importing the package.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

from poseface.errors import PoseFaceError

LANDMARKS_68 = "shape_predictor_68_face_landmarks.dat"
LANDMARKS_5 = "shape_predictor_5_face_landmarks.dat"
MMOD_DETECTOR = "mmod_human_face_detector.dat"
FACE_RECOGNITION = "dlib_face_recognition_resnet_model_v1.dat"

# Index ranges of the 68-point (iBUG 300-W) layout that LANDMARKS_68 predicts. "Left" is the eye on the
# image left in a frontal photo (points 36-41: the subject's right eye).
LEFT_EYE_68 = slice(36, 42)
RIGHT_EYE_68 = slice(42, 48)
MOUTH_68 = slice(48, 68)
NOSE_TIP_68 = 30
MOUTH_LEFT_68 = 48
MOUTH_RIGHT_68 = 54
# The facial components with their own boxes and local discriminators, in box order.
COMPONENTS: tuple[str, ...] = ("left_eye", "right_eye", "mouth")


def model_path(file_name: str) -> Path:
    """Absolute path of one of the four dlib model files; one-line error if the package is missing."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise PoseFaceError(
            f"{file_name}: the package face_recognition_models is not installed; run `pip install face_recognition_models`"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / file_name
    if not path.is_file():
        raise PoseFaceError(
            f"{path}: missing from face_recognition_models; reinstall it with `pip install --force-reinstall face_recognition_models`"
        )
    return path


@lru_cache(maxsize=None)
def shape_predictor(file_name: str = LANDMARKS_68):
    import dlib

    return dlib.shape_predictor(str(model_path(file_name)))


@lru_cache(maxsize=None)
def hog_detector():
    import dlib

    return dlib.get_frontal_face_detector()


@lru_cache(maxsize=None)
def cnn_detector():
    import dlib

    return dlib.cnn_face_detection_model_v1(str(model_path(MMOD_DETECTOR)))


@lru_cache(maxsize=None)
def face_recognizer():
    import dlib

    return dlib.face_recognition_model_v1(str(model_path(FACE_RECOGNITION)))
