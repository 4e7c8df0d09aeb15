import cv2
import numpy as np
import pytest

from poseface.faces.align import (
    align_face,
    five_points_from_68,
    invert_affine,
    similarity_scale,
    transform_points,
    umeyama,
    warp_affine,
)
from poseface.models.config import ModelConfig


def similarity(scale: float, degrees: float, tx: float, ty: float) -> np.ndarray:
    a = np.radians(degrees)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


def test_umeyama_recovers_a_known_similarity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, size=(5, 2))
    known = similarity(2.7, -23.0, 40.0, -12.5)
    estimated = umeyama(src, transform_points(known, src))
    np.testing.assert_allclose(estimated, known, atol=1e-9)


def test_umeyama_is_the_least_squares_solution_and_never_reflects():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, size=(5, 2))
    dst = transform_points(similarity(1.3, 10, 5, 7), src) + rng.normal(0, 2.0, size=(5, 2))
    best = umeyama(src, dst)
    error = np.sum((transform_points(best, src) - dst) ** 2)
    for _ in range(50):  # any perturbed similarity fits worse
        params = np.array([1.3, 10, 5, 7]) + rng.normal(0, [0.02, 1.0, 1.0, 1.0])
        assert np.sum((transform_points(similarity(*params), src) - dst) ** 2) > error
    mirrored = src * [-1, 1]  # a reflection is not a similarity: the best fit keeps det > 0
    assert np.linalg.det(umeyama(src, mirrored)[:, :2]) > 0


def test_five_points_from_68_uses_eye_means_nose_tip_and_mouth_corners():
    landmarks = np.arange(136, dtype=np.float64).reshape(68, 2)
    points = five_points_from_68(landmarks)
    np.testing.assert_allclose(points[0], landmarks[36:42].mean(0))
    np.testing.assert_allclose(points[1], landmarks[42:48].mean(0))
    np.testing.assert_allclose(points[2:], landmarks[[30, 48, 54]])


def test_warp_affine_uses_pixel_centres_at_integers():
    image = np.zeros((20, 30, 1), np.float32)
    image[5, 7] = 1.0
    moved = warp_affine(image, np.array([[1.0, 0, 3], [0, 1.0, 2]]), 20, 30)  # shift by (3, 2)
    assert np.unravel_index(np.argmax(moved[..., 0]), (20, 30)) == (7, 10)
    assert moved[7, 10, 0] == pytest.approx(1.0, abs=1e-5)


def draw_face_pattern(points: np.ndarray, height: int, width: int, radius: float) -> np.ndarray:
    """Grey background, a skin-coloured head, dark blobs at the 5 points (a known face-like pattern)."""
    image = np.full((height, width, 3), 90, np.uint8)
    centre = points.mean(axis=0)
    eye_distance = np.linalg.norm(points[1] - points[0])
    cv2.ellipse(
        image,
        tuple(int(v) for v in centre),
        (int(eye_distance * 1.3), int(eye_distance * 1.7)),
        0,
        0,
        360,
        (220, 180, 150),
        -1,
    )
    yy, xx = np.mgrid[0:height, 0:width]
    for x, y in points:
        blob = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * radius**2))
        image = (image * (1 - 0.9 * blob[..., None])).astype(np.uint8)
    return image


def blob_centres(crop: np.ndarray, template: np.ndarray, window: int) -> np.ndarray:
    darkness = 255.0 - crop.astype(np.float64).mean(axis=2)
    centres = []
    for tx, ty in template:
        x0, y0 = int(tx) - window, int(ty) - window
        patch = darkness[y0 : y0 + 2 * window + 1, x0 : x0 + 2 * window + 1]
        patch = np.clip(patch - np.percentile(patch, 60), 0, None)
        yy, xx = np.mgrid[0 : patch.shape[0], 0 : patch.shape[1]]
        centres.append([x0 + (xx * patch).sum() / patch.sum(), y0 + (yy * patch).sum() / patch.sum()])
    return np.array(centres)


@pytest.mark.parametrize("scale, degrees", [(0.5, 20.0), (1.6, -35.0), (3.0, 8.0)])  # 3.0: face > 2x the crop
def test_aligned_crop_puts_the_pattern_on_the_template(scale, degrees):
    size = 128
    template = np.asarray(ModelConfig(size=size).template())
    to_image = similarity(scale, degrees, 0, 0)
    points = transform_points(to_image, template)
    points += np.array([300, 260]) - points.mean(axis=0)
    image = draw_face_pattern(points, 520, 600, radius=2.0 * scale)
    aligned = align_face(image, points, template, size)
    assert aligned.crop.shape == (size, size, 3)
    np.testing.assert_allclose(transform_points(aligned.matrix, points), template, atol=1e-6)
    assert similarity_scale(aligned.matrix) == pytest.approx(1 / scale, rel=1e-6)
    found = blob_centres(aligned.crop, template, window=6)
    assert np.abs(found - template).max() < 2.0, found - template  # eyes (and the rest) within 2 px
    eye_line = found[1] - found[0]
    assert abs(np.degrees(np.arctan2(eye_line[1], eye_line[0]))) < 1.5  # eye line horizontal


def test_inverse_warp_of_an_aligned_crop_gives_the_image_back(astronaut):
    points = np.array([[203.2, 101.5], [246.8, 104.0], [225.0, 127.0], [201.0, 140.0], [245.0, 141.0]])
    template = np.asarray(ModelConfig(size=512).template())
    aligned = align_face(astronaut, points, template, 512)
    back = warp_affine(aligned.crop, invert_affine(aligned.matrix), 512, 512)
    region = np.abs(back - astronaut)[95:165, 190:260]  # the face, well inside the crop
    # bicubic both ways: mean 0.12, max 2.5 grey levels (bilinear both ways: mean 0.8, max 25)
    assert region.mean() < 0.25 and np.percentile(region, 99) < 1.0 and region.max() < 3.0


def test_a_turned_face_is_aligned_on_its_eye_mouth_axis_and_keeps_its_size(astronaut):
    """A head turned by ~55 deg, made by squeezing the astronaut's face to cos(55 deg) of its width."""
    from poseface.faces.align import alignment_matrix, eye_mouth_ratio, umeyama
    from poseface.faces.detect import detect_faces
    from poseface.models.config import ModelConfig

    points = detect_faces(astronaut)[0].points5
    squeeze = np.array([[np.cos(np.radians(55)), 0, 0], [0, 1, 0]])
    squeeze[0, 2] = points[:, 0].mean() * (1 - squeeze[0, 0])
    turned = transform_points(squeeze, points)
    template = np.asarray(ModelConfig(size=128).template())
    assert eye_mouth_ratio(turned) < 0.7 * eye_mouth_ratio(points)
    matrix, rule = alignment_matrix(turned, template)
    assert rule == "eye-mouth axis"
    assert alignment_matrix(points, template)[1] == "5-point"

    def axis_error(m: np.ndarray) -> float:  # eye midpoint and mouth midpoint against the template's, pixels
        crop = transform_points(m, turned)
        return float(
            max(
                np.abs(crop[:2].mean(0) - template[:2].mean(0)).max(),
                np.abs(crop[3:].mean(0) - template[3:].mean(0)).max(),
            )
        )

    assert axis_error(matrix) < 1e-6 and axis_error(umeyama(turned, template)) > 1.5  # the 5-point fit shrinks the face
