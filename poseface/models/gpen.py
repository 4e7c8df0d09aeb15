"""Load GPEN's released checkpoints (`GPEN-BFR-512.pth`, `GPEN-BFR-512-D.pth`) into PoseFace.

GPEN's generator is our model without MMRBs and with an identity decoder: its encoder convs
(`ecd{j}`) and latent layer (`final_linear`) become our encoder, its StyleGAN2 (`generator.*`)
our prior. MMRBs and decoder start as identities (zero-initialised residual paths), so the
converted model computes GPEN's output. GPEN's discriminator keys equal ours.

Sizes are inferred from tensor shapes: size from the number of encoder convs, style dim and
mapping depth from `generator.style.*`, narrow from the 4x4 constant (512 * narrow channels),
channel multiplier from the full-resolution channels.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import warnings
from pathlib import Path

import torch
from torch import nn

from poseface.errors import PoseFaceError
from poseface.models.config import ModelConfig
from poseface.models.discriminator import GlobalDiscriminator
from poseface.models.network import PoseFaceNet
from poseface.models.state_dict import GPEN_WRAPPER_KEYS, read_state_dict

logger = logging.getLogger("poseface.train")

GPEN_PARTS = ("prior.", "encoder.convs.", "encoder.to_latent.")  # PoseFaceNet keys that GPEN's generator holds
# GPEN channel-table entries that depend on the channel multiplier: res -> base (channels = base * cm * narrow)
_CM_BASE = {64: 256, 128: 128, 256: 64, 512: 32, 1024: 16, 2048: 8}


def _shape(state: dict[str, torch.Tensor], key: str, path: Path, what: str) -> torch.Size:
    if key not in state:
        raise PoseFaceError(f"{path}: key {key!r} missing; this is not {what}")
    return state[key].shape


def _channel_multiplier(size: int, full_channels: int, narrow: float) -> float:
    """GPEN's channel multiplier from the channels at full resolution (2 where the table has no entry)."""
    return float(full_channels / (_CM_BASE[size] * narrow)) if size in _CM_BASE else 2.0


def infer_generator_config(state: dict[str, torch.Tensor], path: Path) -> ModelConfig:
    what = "a GPEN generator checkpoint (e.g. GPEN-BFR-512.pth, keys ecd0.*, final_linear.*, generator.*)"
    encoder_convs = sorted(int(m.group(1)) for k in state if (m := re.fullmatch(r"ecd(\d+)\.0\.\d+\.weight", k)))
    if not encoder_convs or "generator.input.input" not in state:
        raise PoseFaceError(f"{path}: no GPEN encoder/generator keys found; expected {what}")
    size = 2 ** (max(encoder_convs) + 2)
    style_dim = _shape(state, "generator.style.1.weight", path, what)[0]
    n_mlp = len([k for k in state if re.fullmatch(r"generator\.style\.\d+\.weight", k)])
    narrow = _shape(state, "generator.input.input", path, what)[1] / 512
    channel_multiplier = _channel_multiplier(size, _shape(state, "ecd0.0.0.weight", path, what)[0], narrow)
    return ModelConfig(
        size=size, style_dim=style_dim, n_mlp=n_mlp, channel_multiplier=channel_multiplier, narrow=narrow
    )


def _generator_key_map(key: str) -> str | None:
    """GPEN FullGenerator key -> PoseFaceNet key (None: not a GPEN generator key)."""
    if m := re.fullmatch(r"ecd(\d+)\.0\.(.+)", key):
        return f"encoder.convs.{m.group(1)}.{m.group(2)}"
    if key.startswith("final_linear.0."):
        return "encoder.to_latent." + key.removeprefix("final_linear.0.")
    if key.startswith("generator.style."):
        return "prior.mapping." + key.removeprefix("generator.style.")
    if key.startswith("generator."):
        return "prior." + key.removeprefix("generator.")
    return None


def _load_into(module: nn.Module, source: dict[str, tuple[str, torch.Tensor]], path: Path, what: str) -> list[str]:
    """Copy `source` ({our key: (file key, tensor)}) into `module`. Shape mismatches are errors
    naming the file's key; returns the file keys that were not used."""
    target = module.state_dict()
    unused = []
    for key, (file_key, tensor) in source.items():
        if key not in target:
            unused.append(file_key)
            continue
        if target[key].shape != tensor.shape:
            raise PoseFaceError(
                f"{path}: {file_key} has shape {tuple(tensor.shape)} but the inferred architecture needs {tuple(target[key].shape)}; "
                f"the file is not {what} or was built with unusual options"
            )
        if key.endswith(".kernel") and not torch.allclose(target[key], tensor.to(target[key].dtype), atol=1e-6):
            raise PoseFaceError(
                f"{path}: {file_key} is not the [1,3,3,1] FIR kernel GPEN uses; unsupported blur kernel"
            )
        target[key] = tensor.to(target[key].dtype)
    module.load_state_dict(target)
    return unused


def _refuse_missing(needed: set[str], found: set[str], path: Path, part: str, what: str) -> None:
    """One-line error if the file lacks any of the `needed` parameters."""
    missing = sorted(needed - found)
    if missing:
        raise PoseFaceError(f"{path}: {len(missing)} {part} weights missing (first: {missing[0]}); expected {what}")


def load_gpen_generator(path: str | os.PathLike) -> tuple[PoseFaceNet, list[str]]:
    """PoseFaceNet computing GPEN's function, and the file keys that were not used (reported)."""
    path = Path(path)
    what = "a GPEN generator checkpoint (GPEN-BFR-512.pth)"
    state = read_state_dict(path, what, unwrap=GPEN_WRAPPER_KEYS)
    config = infer_generator_config(state, path)
    model = PoseFaceNet(config)
    renamed: dict[str, tuple[str, torch.Tensor]] = {}
    unused = []
    for key, tensor in state.items():
        new_key = _generator_key_map(key)
        if new_key is None:
            unused.append(key)
        else:
            renamed[new_key] = (key, tensor)
    unused += _load_into(model, renamed, path, what)
    _refuse_missing(
        {k for k, _ in model.named_parameters() if k.startswith(GPEN_PARTS)}, set(renamed), path, "GPEN", what
    )
    return model, unused


def init_from_gpen(model: PoseFaceNet, path: str) -> None:
    """Copy GPEN's encoder convs, latent layer and StyleGAN2 into `model` (shapes must agree)."""
    gpen, _ = load_gpen_generator(path)
    g, m = gpen.config, model.config
    if (g.size, g.style_dim, g.n_mlp, g.channel_multiplier, g.narrow) != (
        m.size,
        m.style_dim,
        m.n_mlp,
        m.channel_multiplier,
        m.narrow,
    ):
        raise PoseFaceError(
            f"{path}: GPEN model is {g.size} px / style {g.style_dim} / cm {g.channel_multiplier:g} / narrow {g.narrow:g}, "
            f"the config asks for {m.size} / {m.style_dim} / {m.channel_multiplier:g} / {m.narrow:g}; use the matching preset "
            "(paper-512 for GPEN-BFR-512)"
        )
    source = gpen.state_dict()
    target = model.state_dict()
    copied = {k: v for k, v in source.items() if k.startswith(GPEN_PARTS)}
    target.update(copied)
    model.load_state_dict(target)
    logger.info("initialised encoder and prior from %s (%d tensors)", path, len(copied))


def infer_discriminator_size(state: dict[str, torch.Tensor], path: Path) -> tuple[int, dict[int, int]]:
    what = "a GPEN discriminator checkpoint (GPEN-BFR-512-D.pth, keys convs.*, final_conv.*, final_linear.*)"
    blocks = sorted({int(m.group(1)) for k in state if (m := re.fullmatch(r"convs\.(\d+)\.conv1\.0\.weight", k))})
    if not blocks or "final_conv.0.weight" not in state or "convs.0.0.weight" not in state:
        raise PoseFaceError(f"{path}: no GPEN discriminator keys found; expected {what}")
    size = 2 ** (max(blocks) + 2)
    channels = {size: state["convs.0.0.weight"].shape[0]}
    for index in blocks:
        channels[size // 2**index] = state[f"convs.{index}.conv2.1.weight"].shape[0]
    return size, channels


def load_gpen_discriminator(path: str | os.PathLike, stddev_group: int = 4) -> tuple[GlobalDiscriminator, list[str]]:
    path = Path(path)
    what = "a GPEN discriminator checkpoint (GPEN-BFR-512-D.pth)"
    state = read_state_dict(path, what, unwrap=GPEN_WRAPPER_KEYS)
    size, channels = infer_discriminator_size(state, path)
    discriminator = GlobalDiscriminator(size, channels, stddev_group=stddev_group)
    unused = _load_into(discriminator, {k: (k, v) for k, v in state.items()}, path, what)
    _refuse_missing({k for k, _ in discriminator.named_parameters()}, set(state), path, "discriminator", what)
    return discriminator, unused


def discriminator_config_fields(discriminator: GlobalDiscriminator, config: ModelConfig) -> ModelConfig:
    """`config` with the discriminator's channel table recorded (GPEN's D may be wider than G); a new config."""
    narrow = discriminator.final_conv[0].weight.shape[0] / 512
    cm = _channel_multiplier(discriminator.size, discriminator.convs[0][0].weight.shape[0], narrow)
    return dataclasses.replace(config, discriminator_narrow=narrow, discriminator_channel_multiplier=cm)


def convert_gpen(
    generator_path: str | os.PathLike, discriminator_path: str | os.PathLike | None = None, verbose: bool = True
):
    """Read GPEN's released generator (and optionally discriminator) files.

    Returns the PoseFace model, or (model, discriminator) when a discriminator path is given.
    Keys of the files that are not used are reported as a warning.
    """
    model, unused = load_gpen_generator(generator_path)
    if unused and verbose:
        warnings.warn(
            f"{generator_path}: {len(unused)} keys not used: {', '.join(unused[:8])}{' ...' if len(unused) > 8 else ''}",
            stacklevel=2,
        )
    if discriminator_path is None:
        return model
    discriminator, unused_d = load_gpen_discriminator(discriminator_path, stddev_group=model.config.stddev_group)
    if unused_d and verbose:
        warnings.warn(f"{discriminator_path}: {len(unused_d)} keys not used: {', '.join(unused_d[:8])}", stacklevel=2)
    if discriminator.size != model.config.size:
        raise PoseFaceError(
            f"{discriminator_path}: discriminator is for {discriminator.size} px faces but the generator is {model.config.size} "
            "px; pass the matching -D file"
        )
    model.config = discriminator_config_fields(discriminator, model.config)
    return model, discriminator
