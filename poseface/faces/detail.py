"""Never return a face blurrier than it came in: keep the input's detail where the model adds none.

A restorer trained on heavy damage smooths a face that was already sharp. Two rules undo that,
both measured on the input itself, so a damaged face is restored as before:

1. At the model size (`keep_input_detail`): split input I and restored R into detail bands
   D_k(x) = G(x, s_{k-1}) - G(x, s_k) (Gaussians, s_0 = 0). Where the input's local energy in a band
   exceeds the restored face's by more than the input's noise floor in that band, the input's detail
   is real (skin, eyelashes, hair) and the model removed it, so it is put back:

       w_k = clip((E_I - E_R - m N_k) / (r E_I + eps), 0, 1),     E_x = box(D_k(x)^2) over a small window
       out = R + sum_k w_k (D_k(I) - D_k(R))

   N_k is the energy white noise of the input's level (Immerkaer's estimator, below) leaves in band
   k, m a margin and r the ramp width: noise and JPEG grain do not count as detail and are not put back.

   A model can carry a *fitted* version of rule 1 instead (`FusionRule`, fitted by `poseface
   fit-detail`, see faces/fit_detail.py): per pixel and per band k (the three detail bands and the
   low-pass rest), a weight w_k = sigmoid(MLP(features)) in [0, 1] blends the two faces,

       out = R + sum_k w_k (B_k(I) - B_k(R)),     B_3(x) = G(x, 4 px), so w = 1 everywhere gives I exactly,

   where the features are local and image-mean log energies of both faces' bands, of their
   differences, and the input's noise level. Fitted on degraded training faces against their clean
   originals, it learns from measurements where the input is the better estimate (a mildly damaged
   face) and where the model is (noise, blocks, heavy blur), instead of fixed margins.

2. Above the model size (`detail_share`, used by the paste): a face larger than the model's crop
   loses every frequency the crop cannot hold. The paste adds the network's *change* to the photo
   instead of replacing the face with the up-sampled crop, in proportion to how much larger the
   face is, so a 400-px face keeps its own fine detail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from poseface.errors import PoseFaceError

DETAIL_SIGMAS = (1.0, 2.0, 4.0)  # px at the model size: three octaves of detail bands
RAMP = 0.25  # w reaches 1 once the model keeps less than 75% of the input's real detail energy
NOISE_MARGIN = 3.0  # detail must exceed 3x the noise energy of its band to count as real
ENERGY_WINDOW = 7  # px, local window of the detail energy
WEIGHT_SMOOTHING = 1.5  # px, Gaussian sigma applied to the weight map so no mask edge can show
FULL_DETAIL_AT = 1.5  # a face this many times the model size keeps all of its own fine detail


def noise_sigma(grey: np.ndarray) -> float:
    """Gaussian noise level of a grey image (0-255 scale), J. Immerkaer, "Fast Noise Variance
    Estimation", CVIU 1996: sigma = sqrt(pi / 2) / (6 (W - 2) (H - 2)) * sum |I * N|."""
    grey = np.asarray(grey, dtype=np.float64)
    height, width = grey.shape
    if height < 3 or width < 3:
        return 0.0
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
    response = cv2.filter2D(grey, cv2.CV_64F, kernel, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2.0) * np.abs(response).sum() / (6.0 * (width - 2) * (height - 2)))


def _bands(image: np.ndarray) -> list[np.ndarray]:
    """Detail bands D_k = G(x, sigma_{k-1}) - G(x, sigma_k) with sigma_0 = 0 (a Laplacian stack)."""
    bands, previous = [], image
    for sigma in DETAIL_SIGMAS:
        blurred = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
        bands.append(previous - blurred)
        previous = blurred
    return bands


def _local_energy(detail: np.ndarray) -> np.ndarray:
    energy = (detail**2).mean(axis=2) if detail.ndim == 3 else detail**2
    return cv2.blur(energy, (ENERGY_WINDOW, ENERGY_WINDOW), borderType=cv2.BORDER_REFLECT)


def _weight(band_in: np.ndarray, band_out: np.ndarray, noise_floor: float) -> np.ndarray:
    energy_in, energy_out = _local_energy(band_in), _local_energy(band_out)
    weight = np.clip((energy_in - energy_out - noise_floor) / (RAMP * energy_in + 1e-3), 0.0, 1.0)
    return cv2.GaussianBlur(weight, (0, 0), sigmaX=WEIGHT_SMOOTHING, borderType=cv2.BORDER_REFLECT)


@lru_cache(maxsize=1)
def _band_noise_gains() -> tuple[float, ...]:
    """Energy a unit-variance white noise leaves in each band: sum of the band's impulse response squared."""
    impulse = np.zeros((33, 33), np.float64)
    impulse[16, 16] = 1.0
    return tuple(float((band**2).sum()) for band in _bands(impulse))


def band_noise_floors(noise: float) -> list[float]:
    """Energy of white noise of level `noise` in each band."""
    return [noise**2 * gain for gain in _band_noise_gains()]


def _weights(crop: np.ndarray, bands_in: list[np.ndarray], bands_out: list[np.ndarray]) -> list[np.ndarray]:
    """Per band, an (S, S) weight in [0, 1]: where the input's detail is real and the restored face lacks it."""
    grey = cv2.cvtColor(np.clip(crop, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
    floors = band_noise_floors(noise_sigma(grey))
    return [
        _weight(band_in, band_out, NOISE_MARGIN * floor)
        for band_in, band_out, floor in zip(bands_in, bands_out, floors)
    ]


def keep_input_detail(crop: np.ndarray, restored: np.ndarray) -> np.ndarray:
    """Rule 1 on (S, S, 3) uint8 crops: the restored face with the input's real detail put back (uint8)."""
    crop_f = crop.astype(np.float32)
    restored_f = restored.astype(np.float32)
    bands_in, bands_out = _bands(crop_f), _bands(restored_f)
    out = restored_f.copy()
    for weight, band_in, band_out in zip(_weights(crop_f, bands_in, bands_out), bands_in, bands_out):
        out += weight[..., None] * (band_in - band_out)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


FUSION_BANDS = len(DETAIL_SIGMAS) + 1  # the detail bands and the low-pass rest
FUSION_FEATURES = 2 * (3 * len(DETAIL_SIGMAS) + 1) + 1  # local and image-mean log energies, and the noise
ENERGY_FLOOR = 1e-2  # added before the log: an energy of 0 (a flat band) stays finite


def fusion_bands(image: np.ndarray) -> list[np.ndarray]:
    """The detail bands D_1..D_3 and the low-pass rest G(x, 4 px): they add up to the image exactly."""
    bands = _bands(image)
    return bands + [image - sum(bands)]


def fusion_features(crop: np.ndarray, bands_in: list[np.ndarray], bands_out: list[np.ndarray]) -> np.ndarray:
    """(FUSION_FEATURES, S, S) float32: log local energies of the input's and restored face's detail
    bands and of the four band differences; the image means of these ten; log(noise sigma + 0.1)."""
    diffs = [b_in - b_out for b_in, b_out in zip(bands_in, bands_out)]
    energies = [_local_energy(b) for b in bands_in[:-1]] + [_local_energy(b) for b in bands_out[:-1]]
    energies += [_local_energy(d) for d in diffs]
    grey = cv2.cvtColor(np.clip(crop, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    shape = crop.shape[:2]
    local = [np.log(e + ENERGY_FLOOR) for e in energies]
    means = [np.full(shape, np.log(e.mean() + ENERGY_FLOOR)) for e in energies]
    noise = [np.full(shape, np.log(noise_sigma(grey) + 0.1))]
    return np.stack(local + means + noise).astype(np.float32)


@dataclass(frozen=True)
class FusionRule:
    """A fitted blend of input and restored face (module docstring, rule 1 fitted): a one-hidden-layer
    MLP from the normalised features (`fusion_features`) to one weight per band."""

    mean: np.ndarray  # (F,) feature means of the fitting pixels
    std: np.ndarray  # (F,) and their standard deviations
    w1: np.ndarray  # (F, H)
    b1: np.ndarray  # (H,)
    w2: np.ndarray  # (H, FUSION_BANDS)
    b2: np.ndarray  # (FUSION_BANDS,)

    def weights(self, features: np.ndarray) -> np.ndarray:
        """(F, S, S) features -> (FUSION_BANDS, S, S) weights in [0, 1]."""
        x = (np.moveaxis(features, 0, -1) - self.mean) / self.std
        hidden = np.maximum(x @ self.w1 + self.b1, 0.0)
        return np.moveaxis(1.0 / (1.0 + np.exp(-(hidden @ self.w2 + self.b2))), -1, 0).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name).astype(np.float64).tolist() for name in FUSION_RULE_FIELDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> FusionRule:
        """From `to_dict`'s form; a missing field or a wrong shape is one error line naming `where`."""
        try:
            arrays = {name: np.asarray(data[name], dtype=np.float32) for name in FUSION_RULE_FIELDS}
        except (KeyError, TypeError, ValueError) as exc:
            raise PoseFaceError(
                f"{where}: detail rule is not readable ({exc}); fit it again with `poseface fit-detail`"
            )
        hidden = arrays["b1"].shape[0] if arrays["b1"].ndim == 1 else -1
        expected = {
            "mean": (FUSION_FEATURES,),
            "std": (FUSION_FEATURES,),
            "w1": (FUSION_FEATURES, hidden),
            "b1": (hidden,),
            "w2": (hidden, FUSION_BANDS),
            "b2": (FUSION_BANDS,),
        }
        for name, shape in expected.items():
            if arrays[name].shape != shape or not np.isfinite(arrays[name]).all():
                raise PoseFaceError(
                    f"{where}: detail rule field {name} has shape {arrays[name].shape}, expected {shape} of finite "
                    "numbers; fit it again with `poseface fit-detail`"
                )
        if (arrays["std"] <= 0).any():
            raise PoseFaceError(f"{where}: detail rule std must be > 0; fit it again with `poseface fit-detail`")
        return cls(**arrays)


FUSION_RULE_FIELDS = ("mean", "std", "w1", "b1", "w2", "b2")


def fuse_input_detail(crop: np.ndarray, restored: np.ndarray, rule: FusionRule) -> np.ndarray:
    """The fitted rule on (S, S, 3) uint8 crops: R + sum_k w_k (B_k(I) - B_k(R)), as uint8."""
    crop_f, restored_f = crop.astype(np.float32), restored.astype(np.float32)
    bands_in, bands_out = fusion_bands(crop_f), fusion_bands(restored_f)
    weights = rule.weights(fusion_features(crop_f, bands_in, bands_out))
    out = restored_f.copy()
    for weight, band_in, band_out in zip(weights, bands_in, bands_out):
        out += weight[..., None] * (band_in - band_out)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def restore_detail(crop: np.ndarray, restored: np.ndarray, rule: FusionRule | None) -> np.ndarray:
    """Rule 1 for one face: the model's fitted rule when it carries one, else the fixed-margin rule."""
    return keep_input_detail(crop, restored) if rule is None else fuse_input_detail(crop, restored, rule)


def detail_share(matrix: np.ndarray) -> float:
    """Rule 2: the share of the photo's own fine detail to keep for a face (matrix: photo -> crop pixels).

    0 for faces at or below the model size, rising linearly to 1 at FULL_DETAIL_AT times the model size.
    """
    crop_pixels_per_photo_pixel = float(np.sqrt(abs(np.linalg.det(np.asarray(matrix)[:, :2]))))
    face_scale = 1.0 / max(crop_pixels_per_photo_pixel, 1e-9)  # > 1: the face is larger than the crop
    return float(np.clip((face_scale - 1.0) / (FULL_DETAIL_AT - 1.0), 0.0, 1.0))
