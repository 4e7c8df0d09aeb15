"""NIQE: Natural Image Quality Evaluator (Mittal, Soundararajan and Bovik, IEEE SPL 2013). Lower is better.

A no-reference metric: the distance between a multivariate Gaussian fitted to natural-scene
statistics of 96x96 patches of the image and the one fitted to a corpus of pristine images. The
pristine model parameters are the ones of the original MATLAB release (`niqe_release.zip`), carried in
`poseface/assets/metrics/niqe_pris_params.npz` (see ATTRIBUTION.md there). This follows the MATLAB
algorithm step by step (two scales, MATLAB bicubic downsampling, block size 96, no overlap), as
BasicSR's port does, so numbers are comparable with the papers that report BasicSR NIQE.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.special import gamma

from poseface.metrics.matlab_resize import imresize
from poseface.metrics.psnr_ssim import rgb_to_y

PARAMS_PATH = Path(__file__).resolve().parents[1] / "assets" / "metrics" / "niqe_pris_params.npz"
BLOCK_SIZE = 96  # the official recommended patch size


@dataclass(frozen=True)
class NiqeModel:
    mu: np.ndarray  # (36,) mean of the pristine features
    cov: np.ndarray  # (36, 36) their covariance
    window: np.ndarray  # (7, 7) Gaussian window for local mean / deviation (sigma 7/6)


@lru_cache(maxsize=1)
def pristine_model() -> NiqeModel:
    with np.load(PARAMS_PATH) as params:
        return NiqeModel(
            mu=params["mu_pris_param"].reshape(-1).astype(np.float64),
            cov=params["cov_pris_param"].astype(np.float64),
            window=params["gaussian_window"].astype(np.float64),
        )


# Grid search table of the generalized-Gaussian shape parameter, as in the MATLAB code.
_SHAPES = np.arange(0.2, 10.001, 0.001)
_SHAPE_RATIOS = gamma(2 / _SHAPES) ** 2 / (gamma(1 / _SHAPES) * gamma(3 / _SHAPES))


def _side_std(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(values**2))) if values.size else float("nan")


def fit_aggd(values: np.ndarray) -> tuple[float, float, float]:
    """Shape alpha and left/right scales of an asymmetric generalized Gaussian fitted by moment matching."""
    values = values.ravel()
    left_std = _side_std(values[values < 0])
    right_std = _side_std(values[values > 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma_hat = left_std / right_std
        r_hat = np.mean(np.abs(values)) ** 2 / np.mean(values**2)
        r_hat_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    alpha = float(_SHAPES[np.argmin((_SHAPE_RATIOS - r_hat_norm) ** 2)])
    spread = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return alpha, left_std * spread, right_std * spread


def block_features(block: np.ndarray) -> list[float]:
    """The 18 NIQE features of one normalised block: AGGD of the coefficients and of 4 neighbour products."""
    alpha, left, right = fit_aggd(block)
    features = [alpha, (left + right) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):  # horizontal, vertical, two diagonals
        product = block * np.roll(block, shift, axis=(0, 1))
        alpha, left, right = fit_aggd(product)
        mean = (right - left) * gamma(2 / alpha) / gamma(1 / alpha)
        features.extend([alpha, mean, left, right])
    return features


def _normalised(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients (MSCN, paper eq. 1), in the image's dtype."""
    mu = ndimage.convolve(image, window, mode="nearest")
    sigma = np.sqrt(np.abs(ndimage.convolve(image * image, window, mode="nearest") - mu * mu))
    return (image - mu) / (sigma + 1)


def niqe_gray(
    gray: np.ndarray, model: NiqeModel | None = None, block_size: int = BLOCK_SIZE, dtype: type = np.float32
) -> float:
    """NIQE of a grey image (H, W) on the 0..255 scale (it is rounded first, as the reference does).

    `dtype` is the precision of the image filtering. NIQE is numerically touchy in flat regions (the
    local deviation is a difference of two large numbers), and the published BFR numbers come from
    BasicSR's port, which filters in float32; float32 (the default) reproduces it (astronaut, grey:
    3.0617). Pass np.float64 for double precision like MATLAB (3.0632 on the same image).
    """
    model = model or pristine_model()
    image = np.round(np.asarray(gray, dtype=np.float64)).astype(dtype)
    rows, cols = image.shape[0] // block_size, image.shape[1] // block_size
    if rows == 0 or cols == 0:
        raise ValueError(f"NIQE needs an image of at least {block_size}x{block_size} pixels, got {image.shape[:2]}")
    image = image[: rows * block_size, : cols * block_size]

    per_scale = []
    for scale in (1, 2):
        coefficients = _normalised(image, model.window)
        size = block_size // scale
        per_scale.append(
            np.array(
                [
                    block_features(coefficients[r * size : (r + 1) * size, c * size : (c + 1) * size])
                    for r in range(rows)
                    for c in range(cols)
                ]
            )
        )
        if scale == 1:
            image = (imresize(image / 255.0, 0.5) * 255.0).astype(dtype)
    features = np.concatenate(per_scale, axis=1)  # (blocks, 36)

    mu = np.nanmean(features, axis=0)
    complete = features[~np.isnan(features).any(axis=1)]
    if len(complete) < 2:
        # one 96x96 block (images under 192 px): no covariance can be estimated; the reference code
        # fails here, we use the pristine covariance alone
        cov = np.zeros_like(model.cov)
    else:
        cov = np.cov(complete, rowvar=False)
    difference = model.mu - mu
    distance = difference @ np.linalg.pinv((model.cov + cov) / 2) @ difference
    return float(np.sqrt(distance))


def niqe(image: np.ndarray, crop_border: int = 0, convert_to: str = "y") -> float | np.ndarray:
    """NIQE of an RGB uint8 image (H, W, 3), a grey image (H, W), or a batch (N, H, W, 3).

    `convert_to="y"` (BasicSR's default and the usual choice in BFR papers) evaluates the MATLAB Y
    channel; "gray" uses OpenCV's RGB->grey weights (0.299, 0.587, 0.114).
    """
    image = np.asarray(image)
    if image.ndim == 4:
        return np.array([niqe(one, crop_border, convert_to) for one in image])
    image = image.astype(np.float64)
    if image.ndim == 3:
        if convert_to == "y":
            image = rgb_to_y(image)
        elif convert_to == "gray":
            image = image @ np.array([0.299, 0.587, 0.114])
        else:
            raise ValueError(f"convert_to must be 'y' or 'gray', got {convert_to!r}")
    if crop_border:
        image = image[crop_border:-crop_border, crop_border:-crop_border]
    return niqe_gray(image)
