import cv2
import numpy as np
import pytest

from poseface.metrics.matlab_resize import imresize
from poseface.metrics.niqe import niqe, niqe_gray, pristine_model

# Reference values of BasicSR 1.4.2 `calculate_niqe` (the implementation behind the BFR papers' NIQE),
# computed once with its own code on skimage's astronaut (see docs/metrics.md).
BASICSR_GRAY = 3.061741  # cv2.COLOR_RGB2GRAY uint8, input_order='HW', crop_border=0
BASICSR_Y = 3.064948  # its default: MATLAB Y channel of the colour image


def test_niqe_matches_basicsr_on_the_grey_astronaut(astronaut):
    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    assert niqe(gray) == pytest.approx(BASICSR_GRAY, abs=2e-5)  # README: "to 1.4e-5 on the grey image"


def test_niqe_matches_basicsr_on_the_y_channel(astronaut):
    assert niqe(astronaut, convert_to="y") == pytest.approx(BASICSR_Y, abs=4e-4)  # README: "to 3.2e-4 on Y"


def test_niqe_is_higher_for_a_blurred_image(astronaut):
    blurred = cv2.GaussianBlur(astronaut, (0, 0), 2.5)
    assert niqe(blurred) > niqe(astronaut) + 1.0


def test_batch_and_crop_border(astronaut):
    batch = np.stack([astronaut[:200, :200], astronaut[200:400, 200:400]])
    values = niqe(batch)
    assert values.shape == (2,)
    assert values[1] == pytest.approx(niqe(batch[1]))
    assert niqe(astronaut, crop_border=16) != pytest.approx(niqe(astronaut))


def test_single_block_images_still_get_a_value(astronaut):
    value = niqe(astronaut[100:228, 150:278])  # 128 px: one 96x96 block, no covariance of its own
    assert np.isfinite(value) and value > 0


def test_too_small_image_is_refused():
    with pytest.raises(ValueError, match="96x96"):
        niqe_gray(np.zeros((64, 200)))


def test_pristine_model_has_the_official_shapes():
    model = pristine_model()
    assert model.mu.shape == (36,) and model.cov.shape == (36, 36) and model.window.shape == (7, 7)
    assert np.allclose(model.cov, model.cov.T)
    assert model.window.sum() == pytest.approx(1.0)


def test_matlab_imresize_matches_reference_values():
    # BasicSR's port of MATLAB imresize (bicubic, antialiasing) on a 6x8 ramp, computed once.
    ramp = np.arange(48, dtype=np.float64).reshape(6, 8) / 47.0
    half = np.array(
        [
            [0.086021, 0.129405, 0.172457, 0.215841],
            [0.43509, 0.478474, 0.521526, 0.56491],
            [0.784159, 0.827543, 0.870595, 0.913979],
        ]
    )
    np.testing.assert_allclose(imresize(ramp, 0.5), half, atol=2e-6)
    double = imresize(ramp, 2.0)
    assert double.shape == (12, 16)
    np.testing.assert_allclose(
        double[:2, :5],
        [[-0.017952, -0.012134, -0.000499, 0.010638, 0.021277], [0.02859, 0.034408, 0.046044, 0.057181, 0.067819]],
        atol=2e-6,
    )


def test_matlab_imresize_keeps_constants_and_sizes():
    flat = np.full((37, 50, 3), 0.25)
    out = imresize(flat, 0.37)
    assert out.shape == (14, 19, 3)  # ceil(37 * 0.37), ceil(50 * 0.37)
    np.testing.assert_allclose(out, 0.25, atol=1e-12)
