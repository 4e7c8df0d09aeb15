import numpy as np

from poseface.faces.align import transform_points, umeyama
from poseface.faces.paste import PasteFace, face_mask, mask_bounds, paste_faces, paste_region, upscale_matrix
from poseface.models.config import ModelConfig


def template(size: int) -> np.ndarray:
    return np.asarray(ModelConfig(size=size).template())


def test_mask_follows_the_face_and_fades_out_inside_the_crop():
    mask = face_mask(128, template(128))
    assert mask.shape == (128, 128) and mask.dtype == np.float32
    border = np.concatenate([mask[:2].ravel(), mask[-2:].ravel(), mask[:, :2].ravel(), mask[:, -2:].ravel()])
    assert border.max() < 0.01 and mask[[0, -1]].max() == 0 and mask[:, [0, -1]].max() == 0
    eyes_and_mouth = np.rint(template(128)).astype(int)
    assert (mask[eyes_and_mouth[:, 1], eyes_and_mouth[:, 0]] > 0.99).all()
    assert mask[5, 5] == 0 and mask[5, 122] == 0  # corners: an ellipse, not a rectangle
    values = np.unique(np.round(mask, 2))
    assert len(values) > 20  # feathered, not a hard edge


def test_paste_region_is_clipped_to_the_image_and_none_when_outside():
    matrix = np.array([[1.0, 0, 10], [0, 1.0, 20]])  # crop pixel = image pixel + (10, 20)
    assert paste_region(matrix, 64, 100, 100) == (0, 0, 55, 45)
    assert paste_region(np.array([[1.0, 0, -500], [0, 1.0, 0]]), 64, 100, 100) is None


def test_upscale_matrix_maps_upscaled_pixel_centres():
    matrix = umeyama([[0, 0], [10, 0], [0, 10]], [[5, 5], [25, 5], [5, 25]])
    up = upscale_matrix(matrix, 2.0)
    # up-scaled pixel x_up corresponds to input pixel (x_up + 0.5) / 2 - 0.5
    point_up = np.array([[7.0, 9.0]])
    np.testing.assert_allclose(transform_points(up, point_up), transform_points(matrix, (point_up + 0.5) / 2 - 0.5))


def test_constant_face_changes_only_the_masked_region_also_at_the_border():
    size = 64
    background = np.full((100, 120, 3), 50, np.uint8)
    # face half outside the image on the left
    matrix = umeyama(template(size), template(size) - [40, 0] + [0, 10])
    face = np.full((size, size, 3), 200.0, np.float32)
    out = paste_faces(
        background.copy(),
        [PasteFace(face, np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2])],
        face_mask(size, template(size)),
        255.0,
    )
    changed = (out != 50).any(axis=2)
    assert changed.any()
    assert not changed[:, 70:].any() and not changed[80:].any()  # outside the warped crop: untouched
    centre = np.rint(template(size)[:2].mean(axis=0) - [40, -10]).astype(int)
    assert (out[centre[1], max(centre[0], 0)] == 200).all()
    assert set(np.unique(out)) <= set(range(50, 201))  # a convex blend: never outside [bg, face]


def test_overlapping_faces_the_larger_one_ends_on_top():
    size = 64
    mask = face_mask(size, template(size))
    background = np.zeros((200, 200, 3), np.float32)
    small = umeyama(template(size) + [60, 60], template(size))  # image -> crop, face at scale 1
    large = umeyama(template(size) * 2 + [40, 40], template(size))  # face twice as big, overlapping
    red = np.zeros((size, size, 3), np.float32)
    red[..., 0] = 255
    blue = np.zeros((size, size, 3), np.float32)
    blue[..., 2] = 255
    out = paste_faces(background.copy(), [PasteFace(red, large), PasteFace(blue, small)], mask, 255.0)
    overlap_point = np.rint(template(size)[2] + [60, 60]).astype(int)  # nose of the small face
    assert out[overlap_point[1], overlap_point[0], 0] > 250 and out[overlap_point[1], overlap_point[0], 2] < 5


def test_paste_region_of_the_mask_bounds_is_inside_the_crop_region():
    size = 128
    mask = face_mask(size, template(size))
    bounds = mask_bounds(mask)
    assert 0 < bounds[0] < bounds[2] < size and 0 < bounds[1] < bounds[3] < size
    assert mask[:, : bounds[0]].max() == 0 and mask[: bounds[1]].max() == 0 and mask[:, bounds[2] :].max() == 0
    matrix = umeyama(template(size) * 2 + [100, 100], template(size))  # face at 2x inside a 600 px image
    full = paste_region(matrix, size, 600, 600)
    part = paste_region(matrix, size, 600, 600, bounds)
    assert full[0] <= part[0] < part[2] <= full[2] and full[1] <= part[1] < part[3] <= full[3]
    assert (part[2] - part[0]) * (part[3] - part[1]) < 0.7 * (full[2] - full[0]) * (full[3] - full[1])
