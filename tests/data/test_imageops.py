"""`resize_to_model`: the one resize to the model size (area down, bicubic up), used by training, restore and evaluate."""

import cv2
import numpy as np
import pytest

from poseface.data.imageops import resize_to_model, resize_to_square


@pytest.fixture
def face() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)


def test_shrinking_is_area_and_enlarging_is_bicubic(face):
    assert np.array_equal(resize_to_model(face, 64), cv2.resize(face, (64, 64), interpolation=cv2.INTER_AREA))
    assert np.array_equal(resize_to_model(face, 128), cv2.resize(face, (128, 128), interpolation=cv2.INTER_CUBIC))
    floats = face.astype(np.float32)  # the Restorer resizes full-depth float crops
    assert np.array_equal(resize_to_model(floats, 128), cv2.resize(floats, (128, 128), interpolation=cv2.INTER_CUBIC))


def test_a_face_at_the_size_is_a_copy(face):
    same = resize_to_model(face, 96)
    assert np.array_equal(same, face) and not np.shares_memory(same, face)


def test_training_crops_then_resizes_the_same_way(face):
    wide = np.concatenate([face[:, :10], face, face[:, :10]], axis=1)  # 116 x 96: a 10 px margin each side
    assert np.array_equal(resize_to_square(wide, 64), resize_to_model(face, 64))
