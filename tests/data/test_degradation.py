import dataclasses
import json
import math

import cv2
import numpy as np
import pytest
import yaml

from poseface.config import from_dict, to_dict
from poseface.data.degradation import (
    BUILTIN_PRESETS,
    PRESET_DIR,
    PRESETS,
    DegradationConfig,
    apply_degradation,
    degrade,
    gaussian_kernel,
    jpeg_roundtrip,
    motion_kernel,
    preset,
    sample_degradation,
)
from poseface.errors import PoseFaceError


def second_moments(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and covariance of a kernel with x to the right and y UP (the angle convention)."""
    size = kernel.shape[0]
    ys, xs = np.mgrid[0:size, 0:size]
    coords = np.stack([xs - size // 2, size // 2 - ys], axis=-1).reshape(-1, 2).astype(np.float64)
    weights = kernel.reshape(-1).astype(np.float64)
    centre = weights @ coords
    centred = coords - centre
    return centre, (centred * weights[:, None]).T @ centred


def major_axis(cov: np.ndarray) -> tuple[float, float, float]:
    """(angle of the major axis in degrees in [0, 180), major variance, minor variance)."""
    values, vectors = np.linalg.eigh(cov)
    vx, vy = vectors[:, 1]
    return math.degrees(math.atan2(vy, vx)) % 180.0, values[1], values[0]


def angle_difference(a: float, b: float) -> float:
    d = abs(a - b) % 180.0
    return min(d, 180.0 - d)


# --- kernels -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sx,sy,theta", [(0.1, 0.1, 0.0), (3.0, 3.0, 0.0), (10.0, 10.0, 0.0), (4.0, 1.0, 0.5), (0.5, 9.0, -2.0)]
)
def test_gaussian_kernel_is_normalised_and_non_negative(sx, sy, theta):
    kernel = gaussian_kernel(41, sx, sy, theta)
    assert kernel.shape == (41, 41) and kernel.dtype == np.float32
    assert abs(float(kernel.sum(dtype=np.float64)) - 1.0) < 1e-5
    assert kernel.min() >= 0


def test_anisotropic_gaussian_has_the_asked_sigmas_and_rotation():
    kernel = gaussian_kernel(41, 4.0, 1.5, math.radians(30.0))
    centre, cov = second_moments(kernel)
    angle, major, minor = major_axis(cov)
    assert np.allclose(centre, 0, atol=1e-6)
    assert angle_difference(angle, 30.0) < 0.5
    assert major == pytest.approx(16.0, rel=0.02) and minor == pytest.approx(2.25, rel=0.02)
    iso = gaussian_kernel(41, 3.0, 3.0, 0.0)
    np.testing.assert_allclose(iso, iso.T, atol=1e-7)


@pytest.mark.parametrize("length,angle", [(21.0, 0.0), (21.0, 45.0), (15.0, 120.0), (30.0, 90.0), (9.5, 163.0)])
def test_motion_kernel_is_a_line_of_the_asked_length_and_angle(length, angle):
    kernel = motion_kernel(41, length, angle)
    assert abs(float(kernel.sum(dtype=np.float64)) - 1.0) < 1e-5 and kernel.min() >= 0
    centre, cov = second_moments(kernel)
    measured_angle, major, minor = major_axis(cov)
    assert np.allclose(centre, 0, atol=0.05)
    assert angle_difference(measured_angle, angle) < 1.0
    # a uniform segment of length L has variance L^2 / 12 along it; the anti-aliasing adds < 1/4 px^2
    assert math.sqrt(12 * major) == pytest.approx(length, rel=0.03)
    assert minor < 0.3
    # every weighted pixel lies within 1.5 px of the segment
    ys, xs = np.nonzero(kernel > 1e-6)
    px, py = xs - 20.0, 20.0 - ys
    direction = np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
    along = px * direction[0] + py * direction[1]
    across = np.abs(-px * direction[1] + py * direction[0])
    assert across.max() <= 1.5 and np.abs(along).max() <= length / 2 + 1.5


def test_motion_kernel_length_is_clipped_to_the_kernel():
    kernel = motion_kernel(41, 100.0, 0.0)
    assert np.count_nonzero(kernel.sum(axis=0)) <= 41
    _, cov = second_moments(kernel)
    assert math.sqrt(12 * major_axis(cov)[1]) == pytest.approx(40.0, rel=0.03)


# --- eq. 17 steps ------------------------------------------------------------------------------


def blockiness(image: np.ndarray) -> float:
    """Mean |horizontal + vertical step| across 8x8 block borders divided by the mean step inside blocks."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
    dx = np.abs(np.diff(grey, axis=1))
    dy = np.abs(np.diff(grey, axis=0))
    border_x = (np.arange(dx.shape[1]) % 8) == 7
    border_y = (np.arange(dy.shape[0]) % 8) == 7
    across = dx[:, border_x].mean() + dy[border_y, :].mean()
    inside = dx[:, ~border_x].mean() + dy[~border_y, :].mean()
    return across / inside


def test_jpeg_at_quality_5_is_blockier_than_at_50(textured_image):
    q5, q50 = blockiness(jpeg_roundtrip(textured_image, 5)), blockiness(jpeg_roundtrip(textured_image, 50))
    assert q5 > 1.5 * q50, (q5, q50)
    assert q50 < 1.3  # q=50 is only mildly blocky
    # and the JPEG step keeps RGB order (a pure red image stays red)
    red = np.zeros((64, 64, 3), np.uint8)
    red[..., 0] = 255
    assert jpeg_roundtrip(red, 50)[..., 0].mean() > 240 and jpeg_roundtrip(red, 50)[..., 2].mean() < 15


def only_scale(scale: float, interpolation: str = "area") -> DegradationConfig:
    """A config whose only effect is resampling by `scale` and back (delta blur, no noise, JPEG q=100)."""
    return DegradationConfig(
        kernel_probs=(1.0, 0.0, 0.0),
        blur_sigma=(0.01, 0.01),
        downsample_range=(scale, scale),
        noise_range=(0.0, 0.0),
        jpeg_range=(100, 100),
        down_interpolations=(interpolation,),
        up_interpolations=("bicubic",),
    )


def band_energy(image: np.ndarray, low: float, high: float) -> float:
    grey = image.astype(np.float64).mean(axis=2)
    spectrum = np.abs(np.fft.fft2(grey - grey.mean())) ** 2
    fy = np.fft.fftfreq(grey.shape[0])[:, None]
    fx = np.fft.fftfreq(grey.shape[1])[None, :]
    radius = np.maximum(np.abs(fx), np.abs(fy))
    return float(spectrum[(radius >= low) & (radius < high)].sum())


def test_downsampling_by_4_removes_the_frequencies_above_the_new_nyquist():
    noise = np.random.default_rng(0).integers(0, 256, size=(256, 256, 3), dtype=np.uint8)
    noise = np.repeat(noise[..., :1], 3, axis=2)  # grey, so JPEG chroma subsampling plays no part
    kept = degrade(noise, only_scale(1.0), np.random.default_rng(1))[0]
    lost = degrade(noise, only_scale(4.0), np.random.default_rng(1))[0]
    high_before, high_after = band_energy(kept, 0.15, 0.51), band_energy(lost, 0.15, 0.51)  # above 1/8 cycle/px
    low_before, low_after = band_energy(kept, 0.0, 0.06), band_energy(lost, 0.0, 0.06)
    assert high_after < 0.02 * high_before
    assert low_after > 0.6 * low_before
    assert high_before > 0.9 * band_energy(noise, 0.15, 0.51)  # s=1 keeps them: the loss is the down-sampling's


def test_scale_below_one_upsamples_then_resizes_back(textured_image):
    lq, params = degrade(textured_image, only_scale(0.5, "bicubic"), np.random.default_rng(0))
    assert params["down_size"] == [512, 512]
    assert lq.shape == textured_image.shape and lq.dtype == np.uint8
    assert np.abs(lq.astype(int) - textured_image).mean() < 3  # up and down again is nearly lossless


def test_grey_noise_is_the_same_in_every_channel():
    flat = np.full((128, 128, 3), 128, np.uint8)
    base = dict(
        kernel_probs=(1.0, 0.0, 0.0),
        blur_sigma=(0.01, 0.01),
        downsample_range=(1.0, 1.0),
        noise_range=(20.0, 20.0),
        jpeg_range=(100, 100),
    )
    grey = degrade(flat, DegradationConfig(**base, gray_noise_prob=1.0), np.random.default_rng(0))[0].astype(int)
    colour = degrade(flat, DegradationConfig(**base, gray_noise_prob=0.0), np.random.default_rng(0))[0].astype(int)
    assert grey[..., 1].std() > 15 and colour[..., 1].std() > 10
    assert np.abs(grey[..., 0] - grey[..., 1]).mean() < 2.0
    assert np.abs(colour[..., 0] - colour[..., 1]).mean() > 5.0  # chroma subsampling halves it


def test_gray_and_colour_jitter_options(textured_image):
    grey_cfg = DegradationConfig(gray_prob=1.0)
    lq, params = degrade(textured_image, grey_cfg, np.random.default_rng(3))
    assert params["gray"] and np.array_equal(lq[..., 0], lq[..., 1]) and np.array_equal(lq[..., 1], lq[..., 2])
    jitter_cfg = DegradationConfig(color_jitter_prob=1.0, color_jitter_shift=20.0)
    _, params = degrade(textured_image, jitter_cfg, np.random.default_rng(3))
    assert len(params["color_shift"]) == 3 and all(abs(v) <= 20.0 for v in params["color_shift"])
    assert degrade(textured_image, DegradationConfig(), np.random.default_rng(3))[1]["color_shift"] is None


# --- reproducibility and parameters ------------------------------------------------------------


def test_same_seed_same_output_and_params_rebuild_the_image(textured_image):
    cfg = preset("paper")
    lq_a, params_a = degrade(textured_image, cfg, np.random.default_rng(42))
    lq_b, params_b = degrade(textured_image, cfg, np.random.default_rng(42))
    assert np.array_equal(lq_a, lq_b) and params_a == params_b
    lq_c, _ = degrade(textured_image, cfg, np.random.default_rng(43))
    assert not np.array_equal(lq_a, lq_c)
    replayed = json.loads(json.dumps(params_a))  # through JSON, as in params.json
    assert np.array_equal(apply_degradation(textured_image, replayed), lq_a)
    assert lq_a.shape == textured_image.shape and lq_a.dtype == np.uint8


def test_sampled_parameters_stay_in_the_paper_ranges_and_follow_the_kernel_mix():
    cfg = DegradationConfig(reference_size=None)
    rng = np.random.default_rng(0)
    draws = [sample_degradation(cfg, rng, 512, 512) for _ in range(1500)]
    json.dumps(draws)
    kinds = [d["kernel"] for d in draws]
    for kind, prob in zip(("iso", "aniso", "motion"), cfg.kernel_probs):
        assert kinds.count(kind) / len(kinds) == pytest.approx(prob, abs=0.05)
    assert (
        all(0.4 <= d["scale"] <= 8.0 for d in draws)
        and min(d["scale"] for d in draws) < 0.5
        and max(d["scale"] for d in draws) > 7.5
    )
    assert all(5 <= d["jpeg_quality"] <= 50 for d in draws) and {5, 50} <= {d["jpeg_quality"] for d in draws}
    assert all(0.0 <= d["noise_sigma"] <= 25.0 for d in draws)
    assert all(0.1 <= d["sigma_x"] <= 10.0 for d in draws if d["kernel"] != "motion")
    assert all(d["kernel_size"] == 41 for d in draws)
    assert sum(d["noise_gray"] for d in draws) / len(draws) == pytest.approx(0.4, abs=0.05)


def test_blur_sizes_scale_with_the_image_size():
    cfg = DegradationConfig(kernel_probs=(1.0, 0.0, 0.0), blur_sigma=(8.0, 8.0))
    small = sample_degradation(cfg, np.random.default_rng(0), 128, 128)
    assert small["kernel_size"] == 11 and small["sigma_x"] == pytest.approx(2.0)
    fixed = sample_degradation(dataclasses.replace(cfg, reference_size=None), np.random.default_rng(0), 128, 128)
    assert fixed["kernel_size"] == 41 and fixed["sigma_x"] == pytest.approx(8.0)


def test_wrong_image_type_or_size_is_a_one_line_error(textured_image):
    params = sample_degradation(DegradationConfig(), np.random.default_rng(0), 256, 256)
    with pytest.raises(PoseFaceError, match="uint8"):
        apply_degradation(textured_image.astype(np.float32), params)
    with pytest.raises(PoseFaceError, match="drawn for"):
        apply_degradation(textured_image[:128], params)


# --- config and presets ------------------------------------------------------------------------


def test_paper_preset_is_the_dataclass_default_and_has_the_paper_values():
    cfg = preset("paper")
    assert cfg == DegradationConfig()
    assert cfg.kernel_size == 41 and cfg.downsample_range == (0.4, 8.0)
    assert cfg.noise_range == (0.0, 25.0) and cfg.jpeg_range == (5, 50) and cfg.blur_sigma == (0.1, 10.0)


@pytest.mark.parametrize("name", PRESETS)
def test_yaml_presets_match_the_builtin_copies(name):
    from_yaml = preset(name)
    builtin = from_dict(DegradationConfig, dict(BUILTIN_PRESETS[name]))
    assert from_yaml == builtin
    assert set(yaml.safe_load((PRESET_DIR / f"{name}.yaml").read_text()) or {}) <= set(to_dict(DegradationConfig()))


def test_presets_are_ordered_by_strength():
    mild, paper, severe = preset("mild"), preset("paper"), preset("severe")
    assert mild.downsample_range[1] <= severe.downsample_range[0]
    assert mild.jpeg_range[0] > paper.jpeg_range[1] >= severe.jpeg_range[1]
    assert mild.noise_range[1] < severe.noise_range[0]


def test_bad_configs_are_one_line_errors(tmp_path):
    with pytest.raises(PoseFaceError, match="jpeg_range"):
        from_dict(DegradationConfig, {"jpeg_range": [50, 5]})
    with pytest.raises(PoseFaceError, match="down_interpolations"):
        from_dict(DegradationConfig, {"down_interpolations": ["bogus"]})
    with pytest.raises(PoseFaceError, match="kernel_size"):
        from_dict(DegradationConfig, {"kernel_size": 40})
    with pytest.raises(PoseFaceError, match="unknown degradation preset"):
        preset("extreme")
    custom = tmp_path / "custom.yaml"
    custom.write_text("jpeg_range: [30, 40]\nnoise_rnage: [0, 1]\n")
    with pytest.raises(PoseFaceError, match="noise_rnage"):
        preset(str(custom))


@pytest.mark.parametrize("seed", range(12))
def test_fast_blur_equals_the_full_41x41_convolution(textured_image, seed):
    from poseface.data.degradation import blur, kernel_from_params

    params = sample_degradation(DegradationConfig(reference_size=None), np.random.default_rng(seed), 256, 256)
    image = textured_image.astype(np.float32)
    full = cv2.filter2D(image, -1, kernel_from_params(params), borderType=cv2.BORDER_REFLECT_101)
    assert np.abs(blur(image, params) - full).max() < 0.01


def test_isotropic_kernel_is_the_outer_product_of_its_1d_factor():
    from poseface.data.degradation import gaussian_kernel_1d

    g = gaussian_kernel_1d(41, 3.3)
    np.testing.assert_allclose(np.outer(g, g), gaussian_kernel(41, 3.3, 3.3, 0.0), atol=1e-7)
