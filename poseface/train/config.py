"""The experiment config: `model`, `data`, `losses` and `train` sections of one YAML file."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from poseface.config import require_number
from poseface.data.degradation import DegradationConfig
from poseface.losses.config import LossConfig
from poseface.models.config import ModelConfig

AMP_MODES = ("none", "bf16", "fp16")


@dataclass
class DataConfig:
    source: str = ""  # folder of HQ faces or a .tar of them (e.g. ../shared/data/utkface-faces.tar)
    landmarks: str | None = None  # JSON from `poseface landmarks` (eye/mouth boxes); None: no local losses
    landmark_methods: tuple[str, ...] | None = None  # keep only landmarks found this way (None: all)
    degradation: DegradationConfig = field(default_factory=DegradationConfig)  # eq. 17, paper defaults
    # share of training items degraded with other presets instead, e.g. {mild: 0.25, near_clean: 0.1}:
    # real photos range from almost clean to ruined, and a clean face should come back unchanged
    degradation_mix: dict[str, float] = field(default_factory=dict)
    keep_list: str | None = None  # JSON from `poseface curate`: train only on the sharpest faces (val split untouched)
    val_fraction: float = 0.02  # deterministic hold-out by file-name hash
    val_images: int = 16  # the fixed validation batch (images and PSNR/SSIM)
    num_workers: int = 2

    def __post_init__(self) -> None:
        if self.num_workers < 0:
            raise ValueError(f"data.num_workers must be >= 0 (0 = load in the main process), got {self.num_workers}")
        require_number("data.val_fraction", self.val_fraction, 0.0, 1.0)
        if self.val_fraction == 1.0:
            raise ValueError("data.val_fraction must be below 1 (the rest is the training split), got 1")
        require_number("data.val_images", self.val_images, 1)
        for name, share in (self.degradation_mix or {}).items():
            require_number(f"data.degradation_mix.{name}", share, 0.0, 1.0)
        if sum((self.degradation_mix or {}).values()) > 1.0 + 1e-9:
            raise ValueError(
                f"data.degradation_mix shares add up to {sum(self.degradation_mix.values()):g}; they must add up to at most 1"
            )


@dataclass
class TrainConfig:
    out_dir: str = "runs/experiment"
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    batch_size: int = 4  # per process (paper: 4)
    iterations: int = 700_000  # paper
    # Adam learning rates per part (paper section 4.2)
    lr_codec: float = 2e-3
    lr_prior: float = 2e-4
    lr_noise: float = 2e-3
    lr_local_d: float = 2e-3
    lr_global_d: float = 2e-5
    betas: tuple[float, float] = (0.0, 0.99)  # StyleGAN2/GPEN/GFPGAN practice (the paper names Adam only)
    lr_milestones: tuple[int, ...] = (400_000, 600_000)  # piece-wise decay (paper: "piece-wise"; steps ours)
    lr_gamma: float = 0.5
    freeze_d_layers: int = 5  # FreezeD: first five conv layers of the global D (paper 4.2)
    local_d_channels: int = 64
    ema: bool = True
    ema_decay: float = 0.5 ** (32 / 10_000)  # GPEN/GFPGAN half-life of 10k images at batch 32
    # decay min(ema_decay, (1 + t) / (10 + t)) at update t: early in a run the average follows the model
    # instead of holding on to the random initialisation (0.995 ** 100 = 0.61 of it after 100 steps)
    ema_warmup: bool = True
    # generator adversarial terms and discriminator updates start at this step. 0 = from the first step
    # (the paper: it fine-tunes GPEN). From scratch, a PSNR-oriented start (ESRGAN's practice) lets the
    # L1 terms shape the network before the discriminators' early, near-random gradients join in.
    adversarial_start: int = 0
    # discriminator updates start here (None = adversarial_start). Earlier than adversarial_start, the
    # discriminators learn real vs restored while the generator still trains on the L1 terms alone, so
    # their first gradients to the generator come from trained discriminators, not near-random ones.
    discriminator_start: int | None = None
    amp: str = "none"  # none | bf16 | fp16 autocast
    grad_clip: float = 0.0  # 0 = off
    max_bad_steps: int = 20  # consecutive non-finite steps before the run stops
    log_every: int = 10
    image_every: int = 500
    val_every: int = 500
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    init_weights: str | None = None  # a PoseFace .safetensors (or "bundled") to fine-tune: the whole restorer
    init_gpen: str | None = None  # GPEN generator .pth -> encoder + prior
    init_gpen_d: str | None = None  # GPEN discriminator .pth -> global D

    def first_discriminator_step(self) -> int:
        return self.adversarial_start if self.discriminator_start is None else self.discriminator_start

    def __post_init__(self) -> None:
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        if self.batch_size < 1 or self.iterations < 1:
            raise ValueError("batch_size and iterations must be >= 1")
        if self.adversarial_start < 0:
            raise ValueError(f"adversarial_start must be >= 0, got {self.adversarial_start}")
        if self.discriminator_start is not None and not 0 <= self.discriminator_start:
            raise ValueError(f"discriminator_start must be >= 0, got {self.discriminator_start}")
        for name in ("log_every", "image_every", "val_every", "checkpoint_every", "keep_checkpoints", "max_bad_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr_codec", "lr_prior", "lr_noise", "lr_local_d", "lr_global_d", "lr_gamma", "grad_clip"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"train.{name} must be a finite number >= 0, got {value}")
        if not 0 <= self.ema_decay < 1 or math.isnan(self.ema_decay):
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")


@dataclass
class ExperimentConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    losses: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
