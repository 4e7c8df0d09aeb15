import cv2
import numpy as np
import pytest

from poseface.metrics.identity import (
    SAME_PERSON_THRESHOLD,
    face_distances,
    find_face_box,
    identity_distance,
    landmark_distance,
)


def degrade(image: np.ndarray) -> np.ndarray:
    blurred = cv2.GaussianBlur(image, (0, 0), 3)
    small = cv2.resize(blurred, (128, 128), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, image.shape[1::-1], interpolation=cv2.INTER_CUBIC)


def test_identical_faces_have_zero_distances(astronaut):
    values = face_distances(astronaut, astronaut)
    assert values["ids"] == 0.0 and values["lmd"] == 0.0 and values["lmd_norm"] == 0.0
    assert values["ids_cos"] == pytest.approx(0.0, abs=1e-9)
    assert values["face_found"] == 1.0


def test_degraded_face_is_further_but_same_person(astronaut):
    values = face_distances(degrade(astronaut), astronaut)
    assert 0.05 < values["ids"] < SAME_PERSON_THRESHOLD
    assert values["ids_cos"] > 0
    assert 0 < values["lmd"] < 10  # pixels; the face is about 90 px wide
    assert values["lmd_norm"] == pytest.approx(values["lmd"] / 43.5, rel=0.15)  # inter-ocular distance about 43 px
    # the separate functions agree with the combined one
    assert identity_distance(degrade(astronaut), astronaut)["ids"] == pytest.approx(values["ids"])
    assert landmark_distance(degrade(astronaut), astronaut)["lmd"] == pytest.approx(values["lmd"])


def test_no_detected_face_falls_back_to_the_whole_crop():
    noise = np.random.default_rng(0).integers(0, 256, (120, 100, 3), dtype=np.uint8)
    box = find_face_box(noise)
    assert not box.detected and (box.left, box.top, box.right, box.bottom) == (0, 0, 99, 119)
    values = face_distances(noise, noise)
    assert values["face_found"] == 0.0 and values["lmd"] == 0.0


def test_size_mismatch_is_refused(astronaut):
    with pytest.raises(ValueError, match="differ in size"):
        face_distances(astronaut[:256], astronaut)


def test_arcface_distance_plumbing_with_random_weights(astronaut):
    import torch

    from poseface.metrics.identity import ArcFaceDistance

    torch.manual_seed(0)
    arcface = ArcFaceDistance(None, kind="resnet18", pretrained=False)
    face = astronaut[60:220, 140:300]
    same = arcface(face, face)
    assert same["ids_arcface"] == pytest.approx(0.0, abs=1e-6) and same["ids_arcface_deg"] < 0.1
    other = arcface(np.ascontiguousarray(face[:, ::-1]), face)
    assert other["ids_arcface"] > 0 and 0 < other["ids_arcface_deg"] <= 180


def test_batched_ids_matches_dlib_per_image(astronaut):
    from poseface.metrics.identity import BatchedIdentityDistance

    pairs = [
        (degrade(astronaut), astronaut),
        (astronaut, astronaut),
        (np.ascontiguousarray(astronaut[:, ::-1]), astronaut),
    ]
    batched = BatchedIdentityDistance(batch_size=4)([p[0] for p in pairs], [p[1] for p in pairs])
    for (restored, gt), values in zip(pairs, batched):
        reference = identity_distance(restored, gt)
        assert values["ids"] == pytest.approx(reference["ids"], abs=1e-4)
        assert values["ids_cos"] == pytest.approx(reference["ids_cos"], abs=1e-4)
    assert batched[1]["ids"] == 0.0 and batched[0]["ids"] > 0.05
