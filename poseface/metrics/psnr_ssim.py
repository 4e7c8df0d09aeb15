"""PSNR and SSIM with the conventions face-restoration papers use (BasicSR / MATLAB).

Inputs are uint8-range RGB images (H, W, 3) or batches (N, H, W, 3). Values are computed in float64
on the 0..255 scale. `crop_border` removes that many pixels from every edge first; `y_channel`
evaluates the MATLAB BT.601 luma (16..235) instead of the three RGB channels. SSIM is Wang et al.'s
single-scale SSIM with an 11x11 Gaussian window (sigma 1.5), "valid" filtering, averaged over
channels, as in BasicSR's `calculate_ssim` and MATLAB's `ssim_index`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from poseface.errors import PoseFaceError

# MATLAB rgb2ycbcr luma row for RGB in [0, 1]; output offset 16 (ITU-R BT.601, "studio swing").
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966])


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """MATLAB `rgb2ycbcr` Y channel of RGB in 0..255, returned on the 0..255 scale (16..235), float64."""
    image = np.asarray(image, dtype=np.float64)
    return image @ _Y_WEIGHTS / 255.0 + 16.0


def _prepare(image: np.ndarray, crop_border: int, y_channel: bool) -> np.ndarray:
    """(H, W, C) float64 on 0..255, cropped, optionally reduced to Y with a channel axis kept."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 2:
        image = image[..., None]
    if crop_border:
        image = image[crop_border:-crop_border, crop_border:-crop_border]
    if y_channel:
        if image.shape[-1] != 3:
            raise ValueError("the Y-channel variant needs RGB images")
        image = rgb_to_y(image)[..., None]
    return image


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if np.shape(a) != np.shape(b):
        raise PoseFaceError(
            f"image sizes differ: {np.shape(a)} vs {np.shape(b)}; resize the restored image to the ground truth first"
        )


def _batched(function):
    """Let a metric on one (H, W[, C]) pair also take (N, H, W, C) batches, returning one value per image."""

    def wrapper(restored: np.ndarray, gt: np.ndarray, crop_border: int = 0, y_channel: bool = False):
        _check_pair(restored, gt)
        if np.ndim(restored) == 4:
            return np.array([function(r, g, crop_border, y_channel) for r, g in zip(restored, gt)])
        return function(restored, gt, crop_border, y_channel)

    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    return wrapper


@_batched
def psnr(restored: np.ndarray, gt: np.ndarray, crop_border: int = 0, y_channel: bool = False) -> float:
    """Peak signal-to-noise ratio in dB for peak 255; `inf` for identical images."""
    a = _prepare(restored, crop_border, y_channel)
    b = _prepare(gt, crop_border, y_channel)
    mse = np.mean((a - b) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(255.0**2 / mse))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    offsets = np.arange(size) - (size - 1) / 2
    line = np.exp(-(offsets**2) / (2 * sigma**2))
    line /= line.sum()
    return np.outer(line, line)


def _ssim_one_channel(a: np.ndarray, b: np.ndarray) -> float:
    c1 = (0.01 * 255) ** 2
    c2 = (0.03 * 255) ** 2
    window = _gaussian_window()
    half = window.shape[0] // 2

    def local_mean(x: np.ndarray) -> np.ndarray:
        # correlate then keep only windows fully inside the image ("valid", MATLAB filter2 'valid')
        return ndimage.correlate(x, window, mode="constant")[half:-half, half:-half]

    if a.shape[0] <= 2 * half or a.shape[1] <= 2 * half:
        raise ValueError(f"SSIM needs images larger than 11x11 after cropping, got {a.shape}")
    mu_a, mu_b = local_mean(a), local_mean(b)
    var_a = local_mean(a * a) - mu_a**2
    var_b = local_mean(b * b) - mu_b**2
    cov = local_mean(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


@_batched
def ssim(restored: np.ndarray, gt: np.ndarray, crop_border: int = 0, y_channel: bool = False) -> float:
    """Structural similarity (1.0 for identical images), mean over channels."""
    a = _prepare(restored, crop_border, y_channel)
    b = _prepare(gt, crop_border, y_channel)
    return float(np.mean([_ssim_one_channel(a[..., c], b[..., c]) for c in range(a.shape[-1])]))
