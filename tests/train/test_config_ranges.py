import math
from pathlib import Path

import pytest

from poseface.data.degradation import DegradationConfig
from poseface.losses.config import LossConfig
from poseface.models.config import ModelConfig
from poseface.train.config import DataConfig, TrainConfig


@pytest.mark.parametrize(
    "field, value",
    [
        ("log_every", 0),
        ("checkpoint_every", 0),
        ("val_every", 0),
        ("image_every", 0),
        ("lr_codec", -1e-3),
        ("lr_global_d", float("nan")),
        ("grad_clip", -1.0),
    ],
)
def test_train_config_rejects_out_of_range(field, value):
    with pytest.raises(ValueError, match=f"train.{field}"):
        TrainConfig(**{field: value})


def test_data_config_rejects_negative_workers():
    with pytest.raises(ValueError, match="num_workers"):
        DataConfig(num_workers=-1)


@pytest.mark.parametrize(
    "values,key",
    [
        ({"val_fraction": 1.0}, "data.val_fraction"),
        ({"val_fraction": -0.1}, "data.val_fraction"),
        ({"val_fraction": math.nan}, "data.val_fraction"),
        ({"val_images": 0}, "data.val_images"),
        ({"degradation_mix": {"mild": 1.5}}, "data.degradation_mix.mild"),
        ({"degradation_mix": {"mild": -0.1}}, "data.degradation_mix.mild"),
        ({"degradation_mix": {"mild": 0.7, "near_clean": 0.5}}, "add up to 1.2"),
    ],
)
def test_data_config_rejects_split_and_mixture_out_of_range(values, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        DataConfig(**values)
    DataConfig(
        val_fraction=0.0, val_images=1, degradation_mix={"mild": 0.6, "near_clean": 0.4}
    )  # the limits are accepted


def test_defaults_are_valid():
    TrainConfig()
    DataConfig()


# --- losses, model and degradation: each field checked in its own dataclass, shown by the CLI as one line


CONFIG = Path(__file__).resolve().parents[2] / "configs" / "small-128.yaml"


@pytest.mark.parametrize(
    "field, value",
    [
        ("l1", float("nan")),
        ("global_adv", math.inf),
        ("face_preserving", -1.0),
        ("r1_gamma", float("nan")),
        ("local_r1_gamma", -0.5),
        ("r1_every", 0),
        ("eye_crop", 0),
        ("mouth_crop", -8),
        ("crop_reference_size", 0),
        ("crop_sampling_ratio", 0),
        ("vgg_layer_weights", (1.0, 1.0, math.inf, 1.0, 1.0)),
    ],
)
def test_loss_config_rejects_out_of_range(field, value):
    with pytest.raises(ValueError, match=rf"^losses\.{field}\b"):
        LossConfig(**{field: value})


@pytest.mark.parametrize(
    "field, value",
    [
        ("size", 4),
        ("size", 100),
        ("size", 4096),
        ("style_dim", 0),
        ("n_mlp", -1),
        ("channel_multiplier", 0.0),
        ("narrow", float("nan")),
        ("lr_mlp", 0.0),
        ("decoder_width", -0.5),
        ("mmrb_expansion", 0),
        ("stddev_group", 0),
        ("discriminator_narrow", math.inf),
        ("blur_kernel", ()),
        ("blur_kernel", (1, math.nan)),
        ("face_template", ((0.0, 0.0),) * 4),
        ("face_template", ((10.0, 900.0),) * 5),
    ],
)
def test_model_config_rejects_out_of_range(field, value):
    with pytest.raises(ValueError, match=rf"^model\.{field}\b"):
        ModelConfig(**{field: value})


@pytest.mark.parametrize("narrow, problem", [(1e-4, "leave no channels"), (3 / 512, "odd channel count at 8 px")])
def test_model_config_rejects_channel_tables_the_network_cannot_build(narrow, problem):
    with pytest.raises(ValueError, match=problem):
        ModelConfig(size=128, narrow=narrow)


@pytest.mark.parametrize(
    "field, value",
    [
        ("blur_sigma", (0.1, math.inf)),
        ("motion_length", (math.nan, 5.0)),
        ("noise_range", (10.0, 5.0)),
        ("jpeg_range", (0, 50)),
        ("jpeg_range", (5, 101)),
        ("kernel_probs", (math.nan, 1.0, 1.0)),
        ("kernel_probs", (-1.0, 1.0, 1.0)),
        ("color_jitter_shift", -1.0),
        ("color_jitter_shift", math.inf),
        ("hflip_prob", 1.5),
        ("gray_prob", float("nan")),
        ("kernel_size", 40),
    ],
)
def test_degradation_config_rejects_out_of_range(field, value):
    with pytest.raises(ValueError, match=rf"^degradation\.{field}\b"):
        DegradationConfig(**{field: value})


def test_defaults_of_losses_model_and_degradation_are_valid():
    LossConfig()
    ModelConfig()
    DegradationConfig()


@pytest.mark.parametrize(
    "override, message",
    [
        ("losses.l1=nan", "command line.losses: losses.l1 must be a finite number >= 0, got nan"),
        ("model.lr_mlp=0", "command line.model: model.lr_mlp must be a finite number > 0, got 0.0"),
        (
            "data.degradation.blur_sigma=[0.1,.inf]",
            "command line.data.degradation: degradation.blur_sigma must be [low, high] with low <= high within >= 0.001, got [0.1, inf]",
        ),
    ],
)
def test_a_bad_value_on_the_command_line_is_one_line_naming_the_key(override, message, tmp_path, capsys, monkeypatch):
    from poseface.cli import main
    from poseface.train import distributed

    monkeypatch.setattr(distributed, "setup", lambda device: (_ for _ in ()).throw(AssertionError("training started")))
    assert main(["train", str(CONFIG), "--out-dir", str(tmp_path / "run"), "--set", override]) == 2
    assert capsys.readouterr().err == f"poseface: error: {message}\n"
