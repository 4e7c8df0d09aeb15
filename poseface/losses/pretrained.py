"""Finding pretrained loss-network files (VGG19, ArcFace) and freezing the networks read from them
(reading them: `poseface.models.state_dict`)."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import torch.nn as nn

from poseface.errors import PoseFaceError
from poseface.weights import WeightsSpec, cache_dir, full_pin, resolve, sha256_of

log = logging.getLogger("poseface.losses")


def find_weights(
    spec: WeightsSpec, local_path: str | os.PathLike | None, sha256: str = "", path_key: str = ""
) -> tuple[Path, bool]:
    """A local file for `spec`: `local_path`, else the cache, else one download (if `spec.url`).

    Returns (path, checksummed). `sha256` (the full 64-hex digest; prefixes are refused) pins a file
    whose spec has no published checksum; `path_key` names the config key for a local file. Files
    without any checksum are left to the caller to report once they have loaded (`report_unpinned`).
    """
    if sha256:
        spec = dataclasses.replace(spec, sha256=full_pin(sha256, f"{spec.what} pin (sha256)"))
    report = spec.check != "unverified"
    if spec.url:
        path = resolve(spec, local_path, report=report, path_key=path_key)
    elif local_path is not None:
        path = resolve(spec, local_path, download=False, report=report)
    else:
        cached = cache_dir() / spec.name
        if not cached.is_file():
            hint = f", or {spec.switch_off}" if spec.switch_off else ""
            where = f"set {path_key} to its path" if path_key else "pass its path"
            raise PoseFaceError(
                f"{cached}: {spec.what} not found and it has no public download URL; put the file there "
                f"or {where}{hint}"
            )
        path = resolve(spec, cached, download=False, report=report)
    return path, spec.check != "unverified"


def report_unpinned(path: Path, what: str, pin_key: str) -> None:
    """Log the sha256 of a weights file that was accepted without a checksum, so the user can pin it."""
    log.warning(
        "%s: loaded %s without a published checksum; sha256 %s (pin it with %s)", path, what, sha256_of(path), pin_key
    )


def freeze(module: nn.Module) -> nn.Module:
    """Eval mode and no parameter gradients (BatchNorm statistics and dropout frozen)."""
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module
