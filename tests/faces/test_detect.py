import io

import cv2
import numpy as np
import pytest
from PIL import Image

from poseface.errors import PoseFaceError
from poseface.faces.align import align_face, transform_points
from poseface.faces.detect import DetectorOptions, center_face, detect_faces
from poseface.models.config import ModelConfig

from .conftest import ASTRONAUT_BOX


def degraded(image: np.ndarray) -> np.ndarray:
    """Gaussian blur 3, bicubic 4x down and up, JPEG q30 (the reference note's 'degraded')."""
    blurred = cv2.GaussianBlur(image, (0, 0), 3)
    h, w = image.shape[:2]
    small = cv2.resize(blurred, (w // 4, h // 4), interpolation=cv2.INTER_CUBIC)
    buffer = io.BytesIO()
    Image.fromarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)).save(buffer, "JPEG", quality=30)
    return np.asarray(Image.open(buffer).convert("RGB"))


def test_astronaut_face_is_found_and_aligns_with_a_horizontal_eye_line(astronaut):
    faces = detect_faces(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert face.detector == "hog"
    np.testing.assert_allclose(face.box, ASTRONAUT_BOX, atol=2)
    assert face.landmarks.shape == (68, 2)
    x0, y0, x1, y1 = face.box
    assert ((face.points5 >= [x0, y0]) & (face.points5 <= [x1, y1])).all()
    template = np.asarray(ModelConfig(size=512).template())
    crop_points = transform_points(align_face(astronaut, face.points5, template, 512).matrix, face.points5)
    eye_line = crop_points[1] - crop_points[0]
    assert abs(np.degrees(np.arctan2(eye_line[1], eye_line[0]))) < 1.0
    # Least squares over 5 points: the smile puts the mouth corners 15 px off the FFHQ template,
    # which leaves the eyes 7-8 px (1.5 % of 512) from theirs.
    assert np.abs(crop_points[:2] - template[:2]).max() < 0.02 * 512
    # at a 128-px model (the small preset) that is within 2 px
    template_128 = np.asarray(ModelConfig(size=128).template())
    crop_points_128 = transform_points(align_face(astronaut, face.points5, template_128, 128).matrix, face.points5)
    assert np.abs(crop_points_128[:2] - template_128[:2]).max() < 2.0


def test_jpeg_false_positive_is_dropped_by_mmod_confirmation(astronaut):
    buffer = io.BytesIO()
    Image.fromarray(astronaut).save(buffer, "JPEG", quality=90)
    jpeg = np.asarray(Image.open(buffer))
    everything = detect_faces(jpeg, DetectorOptions(method="hog", verify_below=0.0, min_score=0.0, min_face_size=80))
    assert len(everything) == 2  # HOG scores the suit at 0.10
    confirmed = detect_faces(jpeg, DetectorOptions(method="hog"))
    assert len(confirmed) == 1
    np.testing.assert_allclose(confirmed[0].box, ASTRONAUT_BOX, atol=2)


def test_auto_falls_back_to_mmod_when_hog_misses_a_rotated_degraded_face(astronaut):
    rotation = cv2.getRotationMatrix2D((256, 256), 30, 1.0)
    hard = degraded(cv2.warpAffine(astronaut, rotation, (512, 512), borderMode=cv2.BORDER_REFLECT))
    expected_eyes = transform_points(rotation, [[203.2, 101.5], [246.8, 104.0]])
    native_only = dict(min_score=0.0, min_face_size=80)  # HOG at the photo's own scale, dlib's default threshold
    assert detect_faces(hard, DetectorOptions(method="hog", **native_only)) == []
    faces = detect_faces(hard, DetectorOptions(method="auto", **native_only))
    assert len(faces) == 1 and faces[0].detector == "cnn"
    assert np.abs(faces[0].points5[:2] - expected_eyes).max() < 6
    # the default policy finds it with HOG: a weak box (score < 0.5) that MMOD confirms
    faces = detect_faces(hard, DetectorOptions(method="hog"))
    assert len(faces) == 1 and faces[0].score < 0.5
    assert np.abs(faces[0].points5[:2] - expected_eyes).max() < 3


def test_large_images_are_detected_on_a_shrunk_copy_with_boxes_in_full_resolution(astronaut):
    big = cv2.resize(astronaut, (2048, 2048), interpolation=cv2.INTER_CUBIC)
    faces = detect_faces(big, DetectorOptions(method="hog", max_side=512))
    assert len(faces) == 1
    np.testing.assert_allclose(faces[0].box, np.array(ASTRONAUT_BOX) * 4, atol=8)


def test_blank_image_min_face_size_and_min_score(astronaut):
    assert detect_faces(np.full((200, 300, 3), 128, np.uint8)) == []
    assert detect_faces(astronaut, DetectorOptions(method="hog", min_face_size=100)) == []
    assert detect_faces(astronaut, DetectorOptions(method="hog", min_score=2.0)) == []
    with pytest.raises(PoseFaceError, match="unknown detector"):
        DetectorOptions(method="retinaface")


def test_center_face_picks_the_face_nearest_the_centre(astronaut):
    faces = detect_faces(astronaut)
    left = np.zeros((512, 1024, 3), np.uint8)
    left[:, :512] = astronaut
    assert center_face(faces, 512, 512) == faces
    assert center_face([], 512, 512) == []
    doubled = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)
    two = detect_faces(doubled, DetectorOptions(method="hog"))
    assert len(two) == 2
    chosen = center_face(two, 512, 1024)[0]
    assert chosen.box[0] > 512  # the mirrored face (x ~ 800) is nearer the centre (512) than the original (x ~ 222)
