"""uint8 <-> [-1, 1]: the one conversion (poseface/tensorimage.py) is exact both ways."""

import numpy as np
import pytest
import torch

from poseface.tensorimage import images_to_tensor, tensor_to_images

LEVELS = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=3)  # every uint8 value, 3 channels


def test_uint8_to_tensor_to_uint8_is_the_identity():
    tensor = images_to_tensor(LEVELS)
    assert tensor.shape == (1, 3, 16, 16) and tensor.dtype == torch.float32
    assert np.array_equal(tensor_to_images(tensor), LEVELS)
    assert np.array_equal(
        tensor_to_images(images_to_tensor(LEVELS[0])[0]), LEVELS
    )  # one (H, W, 3) image, one (3, H, W) tensor


def test_forward_is_value_over_127_5_minus_1_to_the_bit():
    tensor = images_to_tensor(LEVELS)
    expected = torch.from_numpy(LEVELS).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    assert torch.equal(tensor, expected)
    assert tensor.min() == -1.0 and tensor.max() == 1.0


def test_back_rounds_to_nearest_and_clamps():
    # (t + 1) * 127.5 rounded: 0.4 -> 0, 0.6 -> 1, 63.75 -> 64, 191.25 -> 191; t = 0 is the tie 127.5 -> 128 (even)
    values = torch.tensor([0.4 / 127.5 - 1.0, 0.6 / 127.5 - 1.0, -0.5, 0.5, 0.0, -3.0, 7.0, float("nan"), float("inf")])
    image = tensor_to_images(values.view(1, 1, 1, -1).expand(1, 3, 1, -1))
    assert image[0, 0, :, 0].tolist() == [0, 1, 64, 191, 128, 0, 255, 128, 255]  # out of range clamped, NaN -> 0 -> 128


def test_dtype_and_shape_are_checked():
    assert images_to_tensor(LEVELS, dtype=torch.bfloat16).dtype == torch.bfloat16
    with pytest.raises(ValueError, match=r"expected \(N, H, W, 3\)"):
        images_to_tensor(np.zeros((4, 4), np.uint8))
