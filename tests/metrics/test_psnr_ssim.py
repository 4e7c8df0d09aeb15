import math

import numpy as np
import pytest
import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from poseface.errors import PoseFaceError
from poseface.metrics.psnr_ssim import psnr, rgb_to_y, ssim


def noisy(image: np.ndarray, sigma: float = 12.75, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(image + rng.normal(0, sigma, image.shape), 0, 255).round().astype(np.uint8)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].double()


def test_identical_images_give_inf_psnr_and_unit_ssim(astronaut):
    assert psnr(astronaut, astronaut) == math.inf
    assert ssim(astronaut, astronaut) == pytest.approx(1.0, abs=1e-12)


def test_psnr_of_a_constant_offset_matches_the_formula():
    gt = np.full((32, 32, 3), 100, np.uint8)
    restored = gt + 5  # MSE 25
    assert psnr(restored, gt) == pytest.approx(10 * math.log10(255**2 / 25))
    # only the border differs: cropping it away makes the images identical
    framed = gt.copy()
    framed[:2], framed[-2:], framed[:, :2], framed[:, -2:] = 0, 0, 0, 0
    assert psnr(framed, gt, crop_border=2) == math.inf
    assert psnr(framed, gt) < 20


def test_y_channel_uses_the_matlab_bt601_weights():
    gt = np.full((16, 16, 3), 50, np.uint8)
    restored = gt + 10  # grey offset of 10 in every channel -> Y offset 10 * 219 / 255
    y_offset = 10 * (65.481 + 128.553 + 24.966) / 255
    assert psnr(restored, gt, y_channel=True) == pytest.approx(10 * math.log10(255**2 / y_offset**2))
    assert rgb_to_y(np.array([[255, 255, 255]])) == pytest.approx([235.0])
    assert rgb_to_y(np.array([[0, 0, 0]])) == pytest.approx([16.0])


def test_ssim_of_two_flat_images_is_the_luminance_term():
    a = np.full((24, 24, 3), 80, np.uint8)
    b = np.full((24, 24, 3), 120, np.uint8)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 80 * 120 + c1) / (80**2 + 120**2 + c1)  # no variance: the structure term is 1
    assert ssim(a, b) == pytest.approx(expected, rel=1e-9)


def test_psnr_agrees_with_torchmetrics(astronaut):
    restored = noisy(astronaut)
    expected = float(peak_signal_noise_ratio(to_tensor(restored), to_tensor(astronaut), data_range=255.0))
    assert psnr(restored, astronaut) == pytest.approx(expected, abs=1e-5)


def test_ssim_agrees_with_torchmetrics_on_the_valid_region(astronaut):
    # torchmetrics pads by reflection and averages the whole map; the field's SSIM (MATLAB, BasicSR,
    # skimage) averages only windows inside the image. On those windows the maps are identical.
    crop = astronaut[100:228, 150:278]
    restored = noisy(crop)
    _, full_map = structural_similarity_index_measure(
        to_tensor(restored), to_tensor(crop), data_range=255.0, return_full_image=True
    )
    assert ssim(restored, crop) == pytest.approx(float(full_map[..., 5:-5, 5:-5].mean()), abs=1e-6)


def test_batches_give_one_value_per_image(astronaut):
    gt = np.stack([astronaut[:64, :64], astronaut[64:128, 64:128]])
    restored = np.stack([noisy(gt[0], 5), noisy(gt[1], 20)])
    values = psnr(restored, gt)
    assert values.shape == (2,) and values[0] > values[1]
    assert ssim(restored, gt)[0] == pytest.approx(ssim(restored[0], gt[0]))


def test_size_mismatch_is_a_one_line_error(astronaut):
    with pytest.raises(PoseFaceError, match="sizes differ"):
        psnr(astronaut[:100], astronaut)
