"""Stand-in restoration models (identity, constant colour) carrying a ModelConfig, and test photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from poseface.models.config import ModelConfig


class IdentityModel(torch.nn.Module):
    """output = input; counts calls and batch sizes."""

    def __init__(self, size: int = 512):
        super().__init__()
        self.config = ModelConfig(size=size)
        self.batch_sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batch_sizes.append(int(x.shape[0]))
        return x.clone()


class ConstantModel(torch.nn.Module):
    """Every output pixel is one RGB colour (given in 0..255)."""

    def __init__(self, color=(250, 20, 200), size: int = 128):
        super().__init__()
        self.config = ModelConfig(size=size)
        self.register_buffer("color", torch.tensor(color, dtype=torch.float32).view(1, 3, 1, 1) / 127.5 - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.color.expand(x.shape[0], 3, x.shape[2], x.shape[3]).clone()


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return data.astronaut()


# skimage.data.astronaut(): the dlib HOG box of its face (x0, y0, x1, y1)
ASTRONAUT_BOX = (179, 83, 266, 170)
