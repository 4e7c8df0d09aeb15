import pytest

from poseface.train.config import DataConfig, TrainConfig


@pytest.mark.parametrize("field, value", [("log_every", 0), ("checkpoint_every", 0), ("val_every", 0), ("image_every", 0),
                                          ("lr_codec", -1e-3), ("lr_global_d", float("nan")), ("grad_clip", -1.0)])
def test_train_config_rejects_out_of_range(field, value):
    with pytest.raises(ValueError, match=f"train.{field}"):
        TrainConfig(**{field: value})


def test_data_config_rejects_negative_workers():
    with pytest.raises(ValueError, match="num_workers"):
        DataConfig(num_workers=-1)


def test_defaults_are_valid():
    TrainConfig()
    DataConfig()
