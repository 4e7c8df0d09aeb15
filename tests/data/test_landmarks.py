import json

import numpy as np
import pytest

from poseface.data.landmarks import LandmarkDetector, component_boxes, compute_landmarks, face_template, load_landmarks
from poseface.errors import PoseFaceError


def synthetic_landmarks() -> np.ndarray:
    """68 points with known groups: image-left eye around (60, 80), right eye around (140, 82), mouth (100, 150)."""
    points = np.zeros((68, 2), np.float32)
    points[:36] = [100, 120]  # jaw, brows, nose: unused by the boxes
    points[36:42] = [[50, 80], [55, 76], [65, 76], [70, 80], [65, 84], [55, 84]]  # 20 wide, 8 high
    points[42:48] = [[130, 82], [135, 78], [145, 78], [150, 82], [145, 86], [135, 86]]
    mouth = np.array([[70 + 60 * i / 19.0, 150 + (10 if i % 2 else -10)] for i in range(20)])  # 60 wide, 20 high
    points[48:68] = mouth
    return points


def test_component_boxes_follow_the_gfpgan_rule():
    points = synthetic_landmarks()
    boxes = component_boxes(points, (200, 200), 200)
    assert boxes.shape == (3, 4) and boxes.dtype == np.float32
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    np.testing.assert_allclose(centres[0], points[36:42].mean(0), atol=1e-4)
    np.testing.assert_allclose(centres[2], points[48:68].mean(0), atol=1e-4)
    min_half = 16 * 200 / 512  # 6.25
    # eye: x range 20 -> half 10 (> 6.25) -> x1.4 = 14; mouth: x range 60 -> half 30, no enlargement
    np.testing.assert_allclose(boxes[0, 2] - boxes[0, 0], 2 * 14.0, atol=1e-4)
    np.testing.assert_allclose(boxes[2, 2] - boxes[2, 0], 60.0, atol=1e-4)
    tiny = points.copy()
    tiny[42:48] = [140, 80]  # all eye points on one spot -> the minimum size applies
    np.testing.assert_allclose(
        component_boxes(tiny, 200, 200)[1, 2] - component_boxes(tiny, 200, 200)[1, 0], 2 * min_half * 1.4, atol=1e-4
    )


def test_boxes_scale_and_crop_like_the_image_resize():
    points = synthetic_landmarks()
    big = component_boxes(points * 2 + 0.5, (400, 400), 512)  # the same face at 400 px (pixel centres), model size 512
    small = component_boxes(points, (200, 200), 512)
    np.testing.assert_allclose(big, small, atol=1e-3)
    # a 300 x 200 landscape photo is centre-cropped by 50 px on each side before resizing
    wide = points.copy()
    wide[:, 0] += 50
    np.testing.assert_allclose(component_boxes(wide, (300, 200), 512), small, atol=1e-3)


def test_flip_swaps_the_eyes_mirrors_x_and_never_mutates_the_cache():
    points = synthetic_landmarks()
    points.setflags(write=False)  # as load_landmarks returns them
    before = points.copy()
    plain = component_boxes(points, (200, 200), 128)
    flipped = component_boxes(points, (200, 200), 128, hflip=True)
    assert np.array_equal(points, before)

    def mirror(box):
        return np.array([127 - box[2], box[1], 127 - box[0], box[3]], np.float32)

    np.testing.assert_allclose(flipped[0], mirror(plain[1]), atol=1e-4)  # new left eye = old right eye, mirrored
    np.testing.assert_allclose(flipped[1], mirror(plain[0]), atol=1e-4)
    np.testing.assert_allclose(flipped[2], mirror(plain[2]), atol=1e-4)
    assert flipped[0, 0] < flipped[1, 0]  # "left" is still the eye with the smaller x
    # and flipping twice gives back the original boxes
    np.testing.assert_allclose(component_boxes(points, (200, 200), 128, hflip=False), plain)


def test_flip_boxes_match_landmarks_detected_on_the_flipped_image(face_crop):
    detector = LandmarkDetector()
    points, method = detector.detect(face_crop)
    flipped_points, flipped_method = detector.detect(np.ascontiguousarray(face_crop[:, ::-1]))
    assert method == "hog" and flipped_method == "hog"
    predicted = component_boxes(points, (200, 200), 512, hflip=True)
    measured = component_boxes(flipped_points, (200, 200), 512, hflip=False)
    centres = lambda b: (b[:, :2] + b[:, 2:]) / 2  # noqa: E731
    assert np.abs(centres(predicted) - centres(measured)).max() < 8.0  # a few pixels at 512 (dlib is not flip-exact)


def test_wrong_landmark_shape_is_a_one_line_error():
    with pytest.raises(PoseFaceError, match=r"\(68, 2\)"):
        component_boxes(np.zeros((5, 2)), 200, 512)


def test_compute_landmarks_records_faces_no_faces_and_unreadable_files_and_resumes(image_folder, tmp_path):
    out = tmp_path / "landmarks.json"
    counts = compute_landmarks(image_folder, out, full_crop_fallback=False, progress=False)
    document = load_landmarks(out)
    assert set(document["faces"]) == {"face.png", "face_flipped.jpg"}
    assert document["faces"]["face.png"]["method"] == "hog" and document["faces"]["face.png"]["size"] == (200, 200)
    assert set(document["no_face"]) == {"sub/grey.png"}
    assert sorted(document["unreadable"]) == ["broken.jpg", "notes.txt"]
    assert counts["no_face"] == 1 and counts["unreadable"] == 2 and counts["hog"] == 2
    points = document["faces"]["face.png"]["points"]
    assert points.shape == (68, 2) and not points.flags.writeable
    with pytest.raises(ValueError):
        points[0, 0] = 1.0

    # resume: nothing is recomputed; a new image is the only work
    again = compute_landmarks(image_folder, out, full_crop_fallback=False, progress=False)
    assert again["already_done"] == 5 and again["hog"] == 0
    (image_folder / "face_copy.png").write_bytes((image_folder / "face.png").read_bytes())
    more = compute_landmarks(image_folder, out, full_crop_fallback=False, progress=False)
    assert more["already_done"] == 5 and more["hog"] == 1
    assert "face_copy.png" in load_landmarks(out)["faces"]


def test_full_crop_fallback_is_recorded_as_such(image_folder, tmp_path):
    out = tmp_path / "landmarks.json"
    compute_landmarks(image_folder, out, limit=5, progress=False)
    document = json.loads(out.read_text())
    # the flat grey image has no detection; the whole image as the face rectangle gives the mean face shape
    assert document["faces"]["sub/grey.png"]["method"] == "full_crop"


def test_an_existing_file_that_is_not_a_landmarks_cache_is_never_overwritten(image_folder, tmp_path):
    precious = tmp_path / "notes.json"
    precious.write_text('{"my": "data"}')
    with pytest.raises(PoseFaceError, match="not a PoseFace landmarks file"):
        compute_landmarks(image_folder, precious, progress=False)
    assert precious.read_text() == '{"my": "data"}'


@pytest.mark.utkface
def test_landmarks_on_utkface_members(utkface_tar, tmp_path):
    out = tmp_path / "utk.json"
    counts = compute_landmarks(utkface_tar, out, limit=4, progress=False)
    document = load_landmarks(out)
    assert len(document["faces"]) + len(document["no_face"]) == 4 and counts["unreadable"] == 0
    for entry in document["faces"].values():
        boxes = component_boxes(entry["points"], entry["size"], 512)
        assert boxes[0, 0] < boxes[1, 0] and boxes[2, 1] > boxes[0, 1]  # eyes left/right, mouth below
        assert (boxes >= -64).all() and (boxes <= 576).all()


def test_large_ffhq_style_images_are_detected_at_reduced_size_and_fitted_at_full_size(face_crop):
    import cv2

    big = cv2.resize(face_crop, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    detector = LandmarkDetector()
    points_small, _ = detector.detect(face_crop)
    points_big, method = detector.detect(big)
    assert method == "hog"
    np.testing.assert_allclose(
        component_boxes(points_big, 1024, 512), component_boxes(points_small, 200, 512), atol=6.0
    )


def test_face_template_is_the_mean_of_the_mapped_five_points():
    rng = np.random.default_rng(0)
    entries = [(synthetic_landmarks() + rng.normal(0, 3, (68, 2)), (200, 100)) for _ in range(3)]
    # a 200x100 source is centre-cropped to x in [50, 150) and resized to 50 px: scale 0.5
    direct = []
    for points, _ in entries:
        p = (np.asarray(points, np.float64) - [50, 0] + 0.5) * 0.5 - 0.5
        direct.append([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])
    mean = np.mean(direct, axis=0)
    np.testing.assert_allclose(face_template(entries, 50, mirror=False), mean, atol=1e-3)

    mirrored = mean[[1, 0, 2, 4, 3]].copy()
    mirrored[:, 0] = 49 - mirrored[:, 0]
    symmetric = np.asarray(face_template(entries, 50, mirror=True))
    np.testing.assert_allclose(symmetric, (mean + mirrored) / 2, atol=1e-3)
    assert symmetric[0, 0] + symmetric[1, 0] == pytest.approx(49, abs=1e-3) and symmetric[0, 1] == pytest.approx(
        symmetric[1, 1]
    )
    assert symmetric[2, 0] == pytest.approx(24.5, abs=1e-3)


def test_face_template_without_landmarks_is_a_one_line_error():
    with pytest.raises(PoseFaceError, match="no landmarks to average; compute them with `poseface landmarks"):
        face_template([], 128)
