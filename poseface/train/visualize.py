"""Pictures of a run: degraded | restored | clean grids and loss / validation curves."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
import torch

from poseface.data.visualize import contact_sheet
from poseface.errors import PoseFaceError, import_optional
from poseface.imageio import write_image
from poseface.losses.objectives import is_discriminator_term
from poseface.tensorimage import tensor_to_images as to_uint8  # the trainer's name for it
from poseface.train.runlog import TRAIN_LOG, VAL_LOG, read_csv

logger = logging.getLogger("poseface.train")


def write_grid(
    path: Path, lq: torch.Tensor, restored: torch.Tensor, gt: torch.Tensor, title: str = "", rows: int = 8
) -> Path:
    lq_u8, out_u8, gt_u8 = to_uint8(lq[:rows]), to_uint8(restored[:rows]), to_uint8(gt[:rows])
    cell = max(128, min(256, lq.shape[-1]))
    sheet = contact_sheet(
        [[a, b, c] for a, b, c in zip(lq_u8, out_u8, gt_u8)],
        [f"degraded {title}".strip(), "restored", "clean"],
        cell_size=cell,
    )
    return write_image(path, sheet)


@functools.lru_cache(maxsize=None)
def _warn_once(message: str) -> None:
    logger.warning("%s", message)


def _pyplot(what: str):
    """matplotlib's pyplot on the Agg backend (no screen needed); one-line error without matplotlib."""
    matplotlib = import_optional("matplotlib", "train", what)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(out_dir: Path, path: Path | None = None) -> Path | None:
    """Training losses (smoothed) and validation PSNR/SSIM against steps, as one PNG (None without
    matplotlib, said once: training goes on, the CSV logs hold the same numbers)."""
    try:
        plt = _pyplot("curves.png")
    except PoseFaceError as exc:
        _warn_once(str(exc))
        return None

    train = read_csv(out_dir / TRAIN_LOG)
    val = read_csv(out_dir / VAL_LOG)
    if not train.get("step"):
        return None
    names = [k for k in train if k not in ("step", "seconds", "lr_codec") and not is_discriminator_term(k)]
    d_names = [k for k in train if is_discriminator_term(k)]
    figure, axes = plt.subplots(1, 3, figsize=(16, 4.5))

    def smooth(values: list[float]) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64)
        k = max(1, len(v) // 50)
        return np.convolve(v, np.ones(k) / k, mode="valid") if len(v) > k else v

    steps = np.asarray(train["step"])
    for name in names:
        y = smooth(train[name])
        axes[0].plot(steps[len(steps) - len(y) :], y, label=name)
    axes[0].set_title("generator terms (unweighted)")
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=7)
    for name in d_names:
        y = smooth(train[name])
        axes[1].plot(steps[len(steps) - len(y) :], y, label=name)
    axes[1].set_title("discriminator losses")
    if d_names:
        axes[1].legend(fontsize=7)
    if val.get("step"):
        axes[2].plot(val["step"], val["psnr"], "o-", label="restored PSNR")
        axes[2].plot(val["step"], val["psnr_input"], "--", label="degraded input PSNR")
        axes[2].set_ylabel("PSNR (dB)")
        twin = axes[2].twinx()
        twin.plot(val["step"], val["ssim"], "s-", color="tab:green", label="restored SSIM")
        twin.plot(val["step"], val["ssim_input"], ":", color="tab:green", label="input SSIM")
        twin.set_ylabel("SSIM")
        axes[2].legend(loc="lower left", fontsize=7)
        twin.legend(loc="lower right", fontsize=7)
    axes[2].set_title("validation")
    for axis in axes:
        axis.set_xlabel("step")
    figure.tight_layout()
    path = path or out_dir / "curves.png"
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def compare_validation(runs: dict[str, Path], path: Path, title: str = "") -> Path:
    """Validation PSNR and SSIM against steps for several runs (e.g. ablations) in one PNG, with the
    degraded input's values as a dashed line."""
    plt = _pyplot("the validation comparison figure")

    figure, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    input_drawn = False
    for label, run in runs.items():
        val = read_csv(Path(run) / VAL_LOG)
        if not val.get("step"):
            raise PoseFaceError(f"{run}: no val_log.csv with rows; is it a `poseface train` output folder?")
        axes[0].plot(val["step"], val["psnr"], "o-", markersize=3, label=label)
        axes[1].plot(val["step"], val["ssim"], "o-", markersize=3, label=label)
        if not input_drawn:
            axes[0].axhline(val["psnr_input"][0], color="grey", linestyle="--", label="degraded input")
            axes[1].axhline(val["ssim_input"][0], color="grey", linestyle="--", label="degraded input")
            input_drawn = True
    for axis, name in zip(axes, ("PSNR (dB)", "SSIM")):
        axis.set_xlabel("step")
        axis.set_ylabel(name)
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
