"""The paper's degradation model, eq. 17:  x = [(y * k) down_s + n_delta]_JPEG_q.

Section 4.1 samples, per training pair, a 41x41 blur kernel k (Gaussian or motion), a scale
s in [0.4, 8], a noise level delta in [0, 25] (0-255 scale) and a JPEG quality q in [5, 50].
What the paper leaves open is our choice and marked "(ours)" in `DegradationConfig`: the Gaussian
sigma range ([0.1, 10], GFPGAN's), the kernel mix, the motion lengths, the interpolations, the share
of grey noise (Real-ESRGAN's 0.4), and the optional colour jitter / grey conversion (off in "paper").

Steps, all on RGB, in this order (GFPGAN's order; the steps after JPEG are not in eq. 17):
  1. blur: 2-D convolution with k (reflected borders);
  2. resample to round(W / s) x round(H / s) with a random interpolation. For s in [0.4, 1) this is an
     UP-sampling: noise and JPEG then act on a larger image and shrink when it is resized back;
  3. add Gaussian noise with sigma delta, independently per channel ("colour") or the same for all
     three ("grey"), clip and round to 8 bits;
  4. JPEG-compress at quality q (OpenCV's encoder) and decode;
  5. resize back to W x H with a random interpolation (the model sees inputs at its own size);
  6. optional: colour jitter (a per-channel shift), grey conversion.

`degrade(image, cfg, rng)` = `apply_degradation(image, sample_degradation(cfg, rng, H, W))`.
The sampled parameters are a flat JSON-serialisable dict; the noise is drawn from a `noise_seed`
stored in it, so `apply_degradation(image, params)` rebuilds the same image from the dict alone.

Size: the paper works at 512 px. With `reference_size=512` (default) the blur sigma, motion length
and kernel size scale with min(H, W) / 512, so a 128-px training pair looks like a 512-px pair shrunk
by 4 (a sigma of 10 px at 128 px would wipe out the face). Set `reference_size: null` to use the
values as pixels at every size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from poseface.config import from_dict, load_config, require_number, require_numbers, to_dict
from poseface.errors import PoseFaceError

KERNEL_TYPES = ("iso", "aniso", "motion")
INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
}
PRESETS = ("paper", "mild", "severe", "near_clean")
PRESET_DIR = Path(__file__).resolve().parents[2] / "configs" / "degradation"


@dataclass
class DegradationConfig:
    """Every parameter of eq. 17 and the extras; defaults are the paper's values (section 4.1)."""

    # blur kernel k
    kernel_size: int = 41  # paper: 41x41 (at 512 px, see reference_size)
    kernel_probs: tuple[float, float, float] = (
        0.35,
        0.35,
        0.3,
    )  # iso, aniso Gaussian, motion (ours; paper: "Gaussian and motion")
    blur_sigma: tuple[float, float] = (0.1, 10.0)  # Gaussian sigma in px (ours = GFPGAN's; the paper gives none)
    motion_length: tuple[float, float] = (5.0, 31.0)  # motion blur line length in px (ours; at most kernel_size - 1)
    reference_size: int | None = 512  # sizes above are for this image size and scale with it; None: pixels as given
    # down-sampling s
    downsample_range: tuple[float, float] = (0.4, 8.0)  # paper
    down_interpolations: tuple[str, ...] = ("area", "bilinear", "bicubic")  # ours
    up_interpolations: tuple[str, ...] = ("bilinear", "bicubic")  # resize back to the model size (ours)
    # noise n_delta
    noise_range: tuple[float, float] = (0.0, 25.0)  # paper, sigma on the 0-255 scale
    gray_noise_prob: float = 0.4  # ours (Real-ESRGAN's value)
    # JPEG q
    jpeg_range: tuple[int, int] = (5, 50)  # paper
    # beyond eq. 17 (off in the paper preset)
    color_jitter_prob: float = 0.0
    color_jitter_shift: float = 20.0  # max per-channel shift on the 0-255 scale (GFPGAN's 20/255)
    gray_prob: float = 0.0  # grey LQ, colour GT (GFPGAN uses 0.01)
    hflip_prob: float = 0.5  # applied by the data set to GT, LQ and boxes alike

    def __post_init__(self) -> None:
        def check_range(name: str, low_limit: float, high_limit: float | None = None) -> None:
            values = getattr(self, name)
            inside = len(values) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
            if not (inside and low_limit <= values[0] <= values[1] and (high_limit is None or values[1] <= high_limit)):
                limit = f"[{low_limit}, {high_limit}]" if high_limit is not None else f">= {low_limit}"
                raise ValueError(
                    f"degradation.{name} must be [low, high] with low <= high within {limit}, got {list(values)}"
                )

        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"degradation.kernel_size must be a positive odd number, got {self.kernel_size}")
        if len(self.kernel_probs) != 3 or sum(self.kernel_probs) <= 0:
            raise ValueError(
                f"degradation.kernel_probs must be three weights (iso, aniso, motion), not all 0, got {list(self.kernel_probs)}"
            )
        require_numbers("degradation.kernel_probs", self.kernel_probs, 0)
        check_range("blur_sigma", 1e-3)
        check_range("motion_length", 0.0)
        check_range("downsample_range", 0.05, 64.0)
        check_range("noise_range", 0.0, 255.0)
        check_range("jpeg_range", 1, 100)
        for name in ("down_interpolations", "up_interpolations"):
            values = getattr(self, name)
            unknown = [v for v in values if v not in INTERPOLATIONS]
            if not values or unknown:
                raise ValueError(
                    f"degradation.{name} must list some of {', '.join(INTERPOLATIONS)}, got {list(values)}"
                )
        for name in ("gray_noise_prob", "color_jitter_prob", "gray_prob", "hflip_prob"):
            require_number(f"degradation.{name} (a probability)", getattr(self, name), 0, 1)
        require_number("degradation.color_jitter_shift", self.color_jitter_shift, 0, 255)
        if self.reference_size is not None and self.reference_size < 1:
            raise ValueError(
                f"degradation.reference_size must be a positive number of pixels or null, got {self.reference_size}"
            )


def preset(name: str) -> DegradationConfig:
    """The "paper", "mild" or "severe" preset (configs/degradation/<name>.yaml), or any YAML file path."""
    if name in PRESETS:
        path = PRESET_DIR / f"{name}.yaml"
        if path.is_file():
            return load_config(path, DegradationConfig)
        return from_dict(DegradationConfig, dict(BUILTIN_PRESETS[name]), where=f"preset {name}")
    path = Path(name)
    if path.suffix.lower() in (".yaml", ".yml") or path.exists():
        return load_config(path, DegradationConfig)
    raise PoseFaceError(f"{name}: unknown degradation preset; use one of {', '.join(PRESETS)} or a path to a YAML file")


# The presets as code too, so an installed package (without the configs/ folder) still has them;
# tests check that these equal configs/degradation/*.yaml.
BUILTIN_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "mild": {
        "kernel_probs": [0.4, 0.4, 0.2],
        "blur_sigma": [0.1, 3.0],
        "motion_length": [3.0, 11.0],
        "downsample_range": [1.0, 2.0],
        "noise_range": [0.0, 5.0],
        "jpeg_range": [60, 95],
    },
    "severe": {
        "kernel_probs": [0.3, 0.3, 0.4],
        "blur_sigma": [3.0, 10.0],
        "motion_length": [15.0, 39.0],
        "downsample_range": [4.0, 8.0],
        "noise_range": [10.0, 25.0],
        "jpeg_range": [5, 20],
    },
    "near_clean": {
        "kernel_probs": [0.7, 0.3, 0.0],
        "blur_sigma": [0.1, 1.0],
        "motion_length": [1.0, 3.0],
        "downsample_range": [1.0, 1.25],
        "noise_range": [0.0, 2.0],
        "jpeg_range": [80, 100],
    },
}


# ---------------------------------------------------------------------------------------------
# Kernels


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """(size, size) float32 bivariate Gaussian, summing to 1; the sigma_x axis rotated by theta (radians, counter-clockwise)."""
    radius = size // 2
    grid = np.arange(-radius, radius + 1, dtype=np.float64)
    xx, yy = np.meshgrid(grid, -grid)  # yy points up so that theta turns counter-clockwise on screen
    cos, sin = math.cos(theta), math.sin(theta)
    u = cos * xx + sin * yy  # coordinates along the rotated axes
    v = -sin * xx + cos * yy
    kernel = np.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return (kernel / kernel.sum()).astype(np.float32)


def motion_kernel(size: int, length: float, angle_deg: float) -> np.ndarray:
    """(size, size) float32 straight-line motion blur through the centre, summing to 1.

    The line has `length` pixels (clipped to size - 1) and points at `angle_deg` degrees counter-clockwise
    from the +x axis as seen on screen. It is drawn anti-aliased: points every 1/8 px are splatted bilinearly.
    """
    radius = size // 2
    length = min(float(length), size - 1.0)
    kernel = np.zeros((size, size), dtype=np.float64)
    count = max(2, int(math.ceil(length * 8)) + 1)
    t = np.linspace(-length / 2.0, length / 2.0, count)
    angle = math.radians(angle_deg)
    xs = radius + t * math.cos(angle)
    ys = radius - t * math.sin(angle)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dx, dy, weight in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = np.clip(x0 + dx, 0, size - 1), np.clip(y0 + dy, 0, size - 1)
        np.add.at(kernel, (yi, xi), weight)
    return (kernel / kernel.sum()).astype(np.float32)


def gaussian_kernel_1d(size: int, sigma: float) -> np.ndarray:
    """The 1-D factor of the isotropic kernel: gaussian_kernel(size, s, s, 0) == outer(g, g)."""
    grid = np.arange(-(size // 2), size // 2 + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (grid / sigma) ** 2)
    return (kernel / kernel.sum()).astype(np.float32)


def trim_kernel(kernel: np.ndarray, tolerance: float = 1e-7) -> np.ndarray:
    """Drop the outer rings of a centred kernel that hold less than `tolerance` of its mass (speed only)."""
    size = kernel.shape[0]
    radius = size // 2
    total = float(kernel.sum(dtype=np.float64))
    while radius > 0:
        inner = kernel[size // 2 - radius + 1 : size // 2 + radius, size // 2 - radius + 1 : size // 2 + radius]
        if total - float(inner.sum(dtype=np.float64)) > tolerance * total:
            break
        radius -= 1
    trimmed = kernel[size // 2 - radius : size // 2 + radius + 1, size // 2 - radius : size // 2 + radius + 1]
    return (trimmed / trimmed.sum(dtype=np.float64)).astype(np.float32)


def blur(image: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Convolve a float32 image with the kernel in `params` (reflected borders).

    Same result as cv2.filter2D with the full kernel up to float rounding (max 1e-4 on 0-255 seen), but faster:
    the isotropic Gaussian is applied as two 1-D passes, other kernels lose their near-zero outer rings.
    """
    if params["kernel"] == "iso":
        g = gaussian_kernel_1d(params["kernel_size"], params["sigma_x"])
        return cv2.sepFilter2D(image, -1, g, g, borderType=cv2.BORDER_REFLECT_101)
    return cv2.filter2D(image, -1, trim_kernel(kernel_from_params(params)), borderType=cv2.BORDER_REFLECT_101)


def kernel_from_params(params: dict[str, Any]) -> np.ndarray:
    """Rebuild the blur kernel recorded in a params dict."""
    size = params["kernel_size"]
    if params["kernel"] == "motion":
        return motion_kernel(size, params["motion_length"], params["motion_angle_deg"])
    return gaussian_kernel(size, params["sigma_x"], params["sigma_y"], math.radians(params["theta_deg"]))


# ---------------------------------------------------------------------------------------------
# Sampling and applying


def _size_factor(cfg: DegradationConfig, height: int, width: int) -> float:
    return 1.0 if cfg.reference_size is None else min(height, width) / cfg.reference_size


def sample_degradation(cfg: DegradationConfig, rng: np.random.Generator, height: int, width: int) -> dict[str, Any]:
    """Draw every random choice of one degradation for an image of height x width; a flat JSON-ready dict."""
    factor = _size_factor(cfg, height, width)
    kernel_size = max(3, int(round(cfg.kernel_size * factor)) | 1) if factor != 1.0 else cfg.kernel_size
    probs = np.asarray(cfg.kernel_probs, dtype=np.float64)
    kind = KERNEL_TYPES[int(rng.choice(3, p=probs / probs.sum()))]
    params: dict[str, Any] = {"image_size": [int(width), int(height)], "kernel": kind, "kernel_size": int(kernel_size)}
    if kind == "iso":
        sigma = float(rng.uniform(*cfg.blur_sigma)) * factor
        params |= {"sigma_x": sigma, "sigma_y": sigma, "theta_deg": 0.0}
    elif kind == "aniso":
        params |= {
            "sigma_x": float(rng.uniform(*cfg.blur_sigma)) * factor,
            "sigma_y": float(rng.uniform(*cfg.blur_sigma)) * factor,
            "theta_deg": float(rng.uniform(-180.0, 180.0)),
        }
    else:
        length = float(rng.uniform(*cfg.motion_length)) * factor
        params |= {"motion_length": min(length, kernel_size - 1.0), "motion_angle_deg": float(rng.uniform(0.0, 180.0))}

    scale = float(rng.uniform(*cfg.downsample_range))
    params["scale"] = scale
    params["down_interpolation"] = str(rng.choice(list(cfg.down_interpolations)))
    params["down_size"] = [max(1, int(round(width / scale))), max(1, int(round(height / scale)))]
    params["noise_sigma"] = float(rng.uniform(*cfg.noise_range))
    params["noise_gray"] = bool(rng.random() < cfg.gray_noise_prob)
    params["noise_seed"] = int(rng.integers(0, 2**63 - 1))
    params["jpeg_quality"] = int(rng.integers(cfg.jpeg_range[0], cfg.jpeg_range[1] + 1))
    params["up_interpolation"] = str(rng.choice(list(cfg.up_interpolations)))
    jitter = rng.random() < cfg.color_jitter_prob
    shift = rng.uniform(-cfg.color_jitter_shift, cfg.color_jitter_shift, size=3)
    params["color_shift"] = [float(v) for v in shift] if jitter else None
    params["gray"] = bool(rng.random() < cfg.gray_prob)
    return params


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode an RGB uint8 image as JPEG at `quality` with OpenCV and decode it again (RGB)."""
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise PoseFaceError(f"JPEG encoding failed for an image of shape {image.shape}; check the image")
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def apply_degradation(image: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Degrade an (H, W, 3) uint8 RGB image exactly as `params` (from `sample_degradation`) says."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise PoseFaceError(f"degrade: expected an (H, W, 3) uint8 RGB image, got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    if [width, height] != list(params["image_size"]):
        raise PoseFaceError(
            f"degrade: parameters were drawn for {params['image_size']} but the image is {[width, height]}"
        )
    blurred = blur(image.astype(np.float32), params)
    down_w, down_h = params["down_size"]
    resized = cv2.resize(blurred, (down_w, down_h), interpolation=INTERPOLATIONS[params["down_interpolation"]])
    if params["noise_sigma"] > 0:
        noise_rng = np.random.default_rng(params["noise_seed"])
        channels = 1 if params["noise_gray"] else 3
        noise = noise_rng.standard_normal((down_h, down_w, channels), dtype=np.float32) * np.float32(
            params["noise_sigma"]
        )
        resized = resized + noise
    compressed = jpeg_roundtrip(_to_uint8(resized), params["jpeg_quality"])
    out = cv2.resize(
        compressed.astype(np.float32), (width, height), interpolation=INTERPOLATIONS[params["up_interpolation"]]
    )
    if params.get("color_shift") is not None:
        out = out + np.asarray(params["color_shift"], dtype=np.float32)
    out = _to_uint8(out)
    if params.get("gray"):
        out = np.repeat(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    return out


def degrade(image: np.ndarray, cfg: DegradationConfig, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """Eq. 17 on an (H, W, 3) uint8 RGB image: (LQ image of the same size, the parameters drawn).

    Blur, resample by 1/s, noise, JPEG, resize back to (H, W). A scale s in [0.4, 1) UP-samples the
    blurred image to round(W/s) x round(H/s) before noise and JPEG, then resizes it back down.
    """
    params = sample_degradation(cfg, rng, image.shape[0], image.shape[1])
    return apply_degradation(image, params), params


def describe(params: dict[str, Any]) -> str:
    """A short human label, e.g. 'motion L12 a45 | s3.1 | n7.5 | q21'."""
    if params["kernel"] == "motion":
        blur = f"motion L{params['motion_length']:.0f} a{params['motion_angle_deg']:.0f}"
    elif params["kernel"] == "iso":
        blur = f"iso s{params['sigma_x']:.1f}"
    else:
        blur = f"aniso {params['sigma_x']:.1f}x{params['sigma_y']:.1f}"
    noise = f"n{params['noise_sigma']:.0f}{'g' if params['noise_gray'] else ''}"
    return f"{blur} | x{params['scale']:.1f} | {noise} | q{params['jpeg_quality']}"


def config_dict(cfg: DegradationConfig) -> dict[str, Any]:
    return to_dict(cfg)
