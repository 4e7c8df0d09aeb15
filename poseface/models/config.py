"""Architecture configuration of the PoseFace restorer (paper section 3, GPEN's channel table)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Five-point face template (eye centres, nose tip, mouth corners; image-left first) of FFHQ-aligned
# 512 px faces, as used by the GFPGAN/CodeFormer family; scaled to the model size when used.
FFHQ_TEMPLATE_512: tuple[tuple[float, float], ...] = (
    (192.98138, 239.94708),
    (318.90277, 240.19360),
    (256.63416, 314.01935),
    (201.26117, 371.41043),
    (313.08905, 371.15118),
)


@dataclass
class ModelConfig:
    """Everything needed to build the network; saved as JSON beside every weights file."""

    size: int = 512  # face resolution (power of two, >= 8)
    style_dim: int = 512  # dimension of Z and W
    n_mlp: int = 8  # mapping network depth (eq. 2)
    channel_multiplier: float = 2.0  # GPEN/StyleGAN2 channel table
    narrow: float = 1.0  # GPEN's width factor on the whole table
    lr_mlp: float = 0.01  # learning-rate multiplier of the mapping MLP
    blur_kernel: tuple[int, ...] = (1, 3, 3, 1)  # FIR resampling filter
    mmrb: bool = True  # one MMRB per encoder scale except the first and last (paper Fig. 2); False = ablation (a)
    mmrb_expansion: int = 1  # width of the MMRB second stage, in halves of C (see models/mmrb.py)
    decoder_width: float = 0.5  # width of the decoder's residual path, as a fraction of its scale's channels
    # 5-point face template in pixels of a `size` x `size` face (None = FFHQ template scaled to size)
    face_template: tuple[tuple[float, float], ...] | None = None
    discriminator_channel_multiplier: float | None = None  # None = same as the generator
    discriminator_narrow: float | None = None
    stddev_group: int = 4  # minibatch-stddev group of the global discriminator: min(batch, group)

    def __post_init__(self) -> None:
        log_size = math.log2(self.size) if self.size > 0 else 0.5
        if self.size < 8 or log_size != int(log_size):
            raise ValueError(f"size must be a power of two >= 8, got {self.size}")
        if self.face_template is not None and len(self.face_template) != 5:
            raise ValueError("face_template needs exactly 5 (x, y) points")

    @property
    def log_size(self) -> int:
        return int(math.log2(self.size))

    @property
    def n_latent(self) -> int:
        return self.log_size * 2 - 2

    def channels(self, narrow: float | None = None, channel_multiplier: float | None = None) -> dict[int, int]:
        """GPEN's channel table {resolution: channels}."""
        n = self.narrow if narrow is None else narrow
        cm = self.channel_multiplier if channel_multiplier is None else channel_multiplier
        table = {4: 512 * n, 8: 512 * n, 16: 512 * n, 32: 512 * n, 64: 256 * cm * n, 128: 128 * cm * n,
                 256: 64 * cm * n, 512: 32 * cm * n, 1024: 16 * cm * n, 2048: 8 * cm * n}
        return {res: int(ch) for res, ch in table.items()}

    def discriminator_channels(self) -> dict[int, int]:
        return self.channels(self.discriminator_narrow, self.discriminator_channel_multiplier)

    def template(self) -> list[tuple[float, float]]:
        """The 5-point template in pixels of this model's face size."""
        if self.face_template is not None:
            return [tuple(map(float, p)) for p in self.face_template]
        scale = self.size / 512.0
        return [(x * scale, y * scale) for x, y in FFHQ_TEMPLATE_512]
