"""Training checkpoints: weights as safetensors, optimiser/scheduler/RNG state as a tensor-only
`state.pt` (loads with `weights_only=True`), written into a temporary folder and renamed, so a
crash never leaves a half-written checkpoint; `latest` names the newest complete one.

A write that fails (disk full, the folder made read-only) removes the temporary folder and is one
line naming the checkpoint and the one `--resume` would continue from; a damaged file in a checkpoint
is one line naming it and what to delete."""

from __future__ import annotations

import errno
import io
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from poseface.errors import PoseFaceError
from poseface.models.checkpoint import refuse_non_finite, save_model
from poseface.models.state_dict import load_exact

LATEST = "latest"


def checkpoint_root(out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / "checkpoints"


def _write_bytes(path: Path, data: bytes) -> None:
    """Every file of a checkpoint is serialised in memory and written here, so a failing write is an
    OSError with its errno (safetensors and torch.save writing themselves raise their own error types)."""
    with open(path, "wb") as handle:
        handle.write(data)


def save_module(module: nn.Module, path: Path, metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save

    _write_bytes(
        path, save({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, metadata=metadata or {})
    )


def _save_state(state: dict[str, Any], path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    _write_bytes(path, buffer.getvalue())


def unwritable(path: Path, exc: OSError, out_dir: str | os.PathLike) -> str:
    """The one-line message for a failed write under `out_dir`, with the fix and where --resume continues."""
    fix = "free space" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else f"make {out_dir} writable"
    last = latest_checkpoint(out_dir)
    return (
        f"{path}: could not be written ({exc.strerror or exc}); {fix} and resume with --resume: "
        f"the last complete checkpoint is {last or 'none yet (start again without --resume)'}"
    )


def damaged(path: Path, reason: str) -> str:
    """The one-line message for a damaged file in a checkpoint folder: delete the folder, resume from the one before."""
    folder = path.parent
    earlier = latest_checkpoint(folder.parent.parent, before=folder)
    then = (
        f"--resume then continues from {earlier}" if earlier else "no earlier checkpoint: start again without --resume"
    )
    return f"{path}: {reason}; the checkpoint is damaged: delete {folder} ({then})"


def load_module(module: nn.Module, path: Path) -> None:
    from safetensors.torch import load_file

    if not path.is_file():
        raise PoseFaceError(damaged(path, "missing from the checkpoint"))
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for short files and corrupt headers
        raise PoseFaceError(damaged(path, f"not a readable safetensors file ({type(exc).__name__})")) from None
    refuse_non_finite(state, path)
    load_exact(module, state, path, "configured", fix="resume with the config of that run")


def write_checkpoint(
    out_dir: str | os.PathLike,
    step: int,
    modules: dict[str, nn.Module],
    state: dict[str, Any],
    model_writer=None,
    keep: int = 3,
) -> Path:
    """modules: name -> module, saved as <name>.safetensors; state: tensors/numbers/strings for state.pt.
    `model_writer(folder)` may add files (e.g. the restorer with its JSON config)."""
    root = checkpoint_root(out_dir)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for name, module in modules.items():
            save_module(module, tmp / f"{name}.safetensors")
        if model_writer is not None:
            model_writer(tmp)
        _save_state(state, tmp / "state.pt")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        pointer_tmp = root / f".{LATEST}.tmp"
        pointer_tmp.write_text(final.name + "\n")
        os.replace(pointer_tmp, root / LATEST)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)  # the space it took, and nothing --resume could mistake for a checkpoint
        raise PoseFaceError(unwritable(final, exc, out_dir)) from None
    complete = sorted(p for p in root.glob("step-*") if p.is_dir())
    for old in complete[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(out_dir: str | os.PathLike, before: Path | None = None) -> Path | None:
    """The folder `--resume` continues from: the one `latest` names, else the newest complete one
    (with `before`: the newest complete one older than that folder)."""
    root = checkpoint_root(out_dir)
    pointer = root / LATEST
    if before is None and pointer.is_file():
        folder = root / pointer.read_text().strip()
        if (folder / "state.pt").is_file():
            return folder
    folders = sorted(
        p for p in root.glob("step-*") if (p / "state.pt").is_file() and (before is None or p.name < before.name)
    )
    return folders[-1] if folders else None


def read_state(folder: Path) -> dict[str, Any]:
    try:
        return torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
    except Exception as exc:
        raise PoseFaceError(damaged(folder / "state.pt", f"unreadable training state ({type(exc).__name__})")) from None


# ---------------------------------------------------------------- a run's checkpoint: its modules and training state
def refuse_non_finite_weights(modules: Mapping[str, nn.Module], out_dir: str | os.PathLike, step: int) -> None:
    """No checkpoint of weights that are NaN or infinite: the error names the module and the way back."""
    for name, module in modules.items():
        if not all(torch.isfinite(p).all() for p in module.parameters()):
            raise PoseFaceError(
                f"{out_dir}: {name} weights are not finite at step {step}; not saving; resume from the last good checkpoint"
            )


def training_state(
    step: int,
    skipped_steps: int,
    optimizers: Mapping[str, torch.optim.Optimizer],
    schedulers: Mapping[str, torch.optim.lr_scheduler.LRScheduler],
    scalers: Mapping[str, torch.amp.GradScaler],
    config_yaml: str,
    device: torch.device,
) -> dict[str, Any]:
    """What state.pt holds besides the weights: step counts, optimiser / scheduler / loss-scaler states, RNGs, the config."""
    state = {
        "step": step,
        "skipped_steps": skipped_steps,
        "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
        "schedulers": {name: s.state_dict() for name, s in schedulers.items()},
        "scalers": {name: s.state_dict() for name, s in scalers.items()},
        "torch_rng": torch.get_rng_state(),
        "config_yaml": config_yaml,
    }
    if torch.cuda.is_available() and device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    return state


def save_run(
    out_dir: Path,
    step: int,
    modules: Mapping[str, nn.Module],
    state: dict[str, Any],
    model: nn.Module,
    provenance: dict[str, Any],
    keep: int,
) -> Path:
    """The checkpoint of `step` (modules, state and the restorer `model` with its config) and `out_dir`/model.safetensors."""

    def write_model(folder: Path) -> None:
        save_model(model, folder / "model.safetensors", provenance)

    folder = write_checkpoint(out_dir, step, dict(modules), state, write_model, keep)
    try:
        save_model(model, out_dir / "model.safetensors", provenance)
    except OSError as exc:
        raise PoseFaceError(unwritable(out_dir / "model.safetensors", exc, out_dir)) from None
    return folder


def load_modules(folder: Path, modules: Mapping[str, nn.Module]) -> None:
    for name, module in modules.items():
        load_module(module, folder / f"{name}.safetensors")


def load_optimizers(folder: Path, state: Mapping[str, Any], optimizers: Mapping[str, torch.optim.Optimizer]) -> None:
    for name, optimizer in optimizers.items():
        if name not in state["optimizers"]:
            raise PoseFaceError(
                f"{folder}: no state for optimizer {name!r}; the config's losses changed since this run started"
            )
        optimizer.load_state_dict(state["optimizers"][name])


def load_scalers(state: Mapping[str, Any], scalers: Mapping[str, torch.amp.GradScaler]) -> None:
    """Loss scalers saved with the run (older checkpoints have none: the scalers start afresh)."""
    for name, scaler in scalers.items():
        if name in state.get("scalers", {}):
            scaler.load_state_dict(state["scalers"][name])


def load_rng(state: Mapping[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"], device)
