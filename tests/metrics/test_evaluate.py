"""`poseface evaluate` restores with the Restorer: it measures what `poseface restore --aligned` gives."""

import numpy as np
import pytest
import torch

from poseface.faces.restorer import Restorer
from poseface.metrics.evaluate import restore_aligned
from poseface.models.config import ModelConfig


class HalfContrast(torch.nn.Module):
    def __init__(self, size: int = 32):
        super().__init__()
        self.config = ModelConfig(size=size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0.5


@pytest.mark.parametrize("keep_detail", [True, False])
def test_restore_aligned_is_the_restorers_aligned_mode(keep_detail):
    rng = np.random.default_rng(0)
    faces = [rng.integers(0, 256, (24, 24, 3), dtype=np.uint8) for _ in range(3)]
    model = HalfContrast()
    outputs = list(restore_aligned(model, faces, batch_size=2, upscale=2.0, keep_detail=keep_detail))
    restorer = Restorer(model=model, device="cpu", aligned=True, upscale=2.0, keep_detail=keep_detail)
    assert len(outputs) == 3 and outputs[0].shape == (48, 48, 3)
    for face, output in zip(faces, outputs):
        assert np.array_equal(output, restorer.restore_image(face).image)
