import dataclasses

import pytest
import torch

from poseface.losses.arcface import ARCFACE_KINDS  # noqa: F401  (import check: losses package present)
from poseface.losses.config import LossConfig
from poseface.models.config import ModelConfig
from poseface.train.config import DataConfig, ExperimentConfig, TrainConfig

SIZE = 32


class TinyFaces(torch.utils.data.Dataset):
    """Deterministic synthetic faces: item = f(seed, epoch, index); boxes around 'eyes' and 'mouth'."""

    def __init__(self, n: int = 12, seed: int = 0):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        g = torch.Generator().manual_seed(self.seed * 10_000 + self.epoch * 100 + index)
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, SIZE), torch.linspace(-1, 1, SIZE), indexing="ij")
        base = torch.stack([torch.exp(-(xx**2 + yy**2) * (1 + c)) for c in range(3)]) * 1.6 - 0.8
        gt = (base + 0.1 * torch.randn(3, SIZE, SIZE, generator=g)).clamp(-1, 1)
        lq = (
            torch.nn.functional.avg_pool2d(gt[None], 4).repeat_interleave(4, 2).repeat_interleave(4, 3)[0]
            + 0.05 * torch.randn(3, SIZE, SIZE, generator=g)
        ).clamp(-1, 1)
        boxes = torch.tensor([[6.0, 8, 14, 16], [18, 8, 26, 16], [10, 20, 22, 28]])
        return {"lq": lq, "gt": gt, "boxes": boxes, "has_boxes": torch.tensor(index % 3 != 0), "name": f"{index}.png"}


def tiny_config(out_dir, **train) -> ExperimentConfig:
    model = ModelConfig(size=SIZE, style_dim=32, n_mlp=2, narrow=1 / 32, channel_multiplier=1)
    losses = LossConfig(
        feature_matching=0.0, face_preserving=0.0, eye_crop=8, mouth_crop=12, crop_reference_size=SIZE, r1_every=2
    )
    settings = dict(
        out_dir=str(out_dir),
        batch_size=2,
        iterations=1000,
        freeze_d_layers=2,
        log_every=1,
        image_every=1000,
        val_every=1000,
        checkpoint_every=1000,
        local_d_channels=8,
        ema_decay=0.9,
    )
    settings.update(train)
    return ExperimentConfig(
        model=model,
        data=DataConfig(source="synthetic", num_workers=0, val_images=4),
        losses=losses,
        train=TrainConfig(**settings),
    )


@pytest.fixture
def make_trainer(tmp_path):
    from poseface.train.trainer import Trainer

    def build(out_dir=None, resume=False, loss_networks=None, **train):
        cfg = tiny_config(out_dir or tmp_path / "run", **train)
        if loss_networks is not None:
            cfg = dataclasses.replace(
                cfg, losses=dataclasses.replace(cfg.losses, feature_matching=0.02, face_preserving=10.0)
            )
        return Trainer(
            cfg, resume=resume, loss_networks=loss_networks, dataset=TinyFaces(), val_dataset=TinyFaces(4, seed=1)
        )

    return build
