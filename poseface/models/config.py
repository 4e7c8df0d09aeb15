"""Architecture configuration of the PoseFace restorer (paper section 3, GPEN's channel table)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from poseface.config import require_number, require_numbers

SIZES = (8, 16, 32, 64, 128, 256, 512, 1024, 2048)  # the face sizes `channels()` has a table for

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
        if self.size not in SIZES:
            raise ValueError(
                f"model.size must be a power of two from {SIZES[0]} to {SIZES[-1]} (the channel table's), got {self.size}"
            )
        require_number("model.style_dim", self.style_dim, 1)
        require_number("model.n_mlp", self.n_mlp, 0)  # 0: W = the normalised Z
        require_number("model.mmrb_expansion", self.mmrb_expansion, 1)
        require_number("model.stddev_group", self.stddev_group, 1)
        for name in (
            "channel_multiplier",
            "narrow",
            "lr_mlp",
            "decoder_width",
            "discriminator_channel_multiplier",
            "discriminator_narrow",
        ):
            if getattr(self, name) is not None:
                require_number(f"model.{name}", getattr(self, name), 0, low_open=True)
        if not self.blur_kernel or sum(self.blur_kernel) <= 0:
            raise ValueError(
                f"model.blur_kernel must be FIR taps with a positive sum, e.g. [1, 3, 3, 1], got {list(self.blur_kernel)}"
            )
        require_numbers("model.blur_kernel", self.blur_kernel)
        self._check_channel_table("model.channel_multiplier and model.narrow", self.channels())
        self._check_channel_table(
            "model.discriminator_channel_multiplier and model.discriminator_narrow", self.discriminator_channels()
        )
        if self.face_template is not None:
            if len(self.face_template) != 5 or any(len(point) != 2 for point in self.face_template):
                raise ValueError("model.face_template needs exactly 5 (x, y) points")
            require_numbers("model.face_template", [v for point in self.face_template for v in point], 0, self.size)

    def _check_channel_table(self, names: str, channels: dict[int, int]) -> None:
        """Every resolution the network has needs a channel; the MMRBs (encoder scales between the
        first and the last) split theirs into two halves."""
        used = {res: ch for res, ch in channels.items() if res <= self.size}
        if min(used.values()) < 1:
            raise ValueError(f"{names} leave no channels at some resolutions ({used}); raise them")
        odd = [res for res, ch in used.items() if self.mmrb and 4 < res < self.size and ch % 2]
        if odd:
            raise ValueError(
                f"{names} give an odd channel count at {odd[0]} px ({used[odd[0]]}), which an MMRB cannot split in halves"
            )

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
        table = {
            4: 512 * n,
            8: 512 * n,
            16: 512 * n,
            32: 512 * n,
            64: 256 * cm * n,
            128: 128 * cm * n,
            256: 64 * cm * n,
            512: 32 * cm * n,
            1024: 16 * cm * n,
            2048: 8 * cm * n,
        }
        return {res: int(ch) for res, ch in table.items()}

    def discriminator_channels(self) -> dict[int, int]:
        return self.channels(self.discriminator_narrow, self.discriminator_channel_multiplier)

    def template(self) -> list[tuple[float, float]]:
        """The 5-point template in pixels of this model's face size."""
        if self.face_template is not None:
            return [tuple(map(float, p)) for p in self.face_template]
        scale = self.size / 512.0
        return [(x * scale, y * scale) for x, y in FFHQ_TEMPLATE_512]
