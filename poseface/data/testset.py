"""Reproducible synthetic test sets (the paper's CelebA Data, and its x4 super-resolution inputs).

`make_test_set(hq, out, seed)` writes

    OUT/gt/<name>.png          the clean face (resized to `size` x `size` if given, else as it is)
    OUT/lq/<name>.png          eq. 17 applied to it (same size as gt); with `sr=K`: the gt bicubic-
                               down-sampled by K (PIL's antialiased bicubic), NOT up-sampled back,
                               so each method can use its own up-sampling (the paper up-samples to
                               the original scale before its network, Table 2). Down-sampling the
                               CLEAN gt is our reading of Table 2 (the paper does not say whether it
                               down-sampled the clean or the degraded CelebA faces; docs/data.md)
    OUT/params.json            seed, settings, degradation config, package version and every drawn
                               parameter per image (plus images skipped as unreadable)
    OUT/contact_sheet.png      the first rows as clean | degraded, parameters under each LQ image

Each image's random generator is seeded with SeedSequence([seed, hash(name)]) where name is the
output name (the path without the folder all images share), so an image degrades the same whether
the set is read from the tar or from its extracted folder, and whatever `limit` is. The same
settings rebuild the same files bit for bit.

Safety: OUT must be new, empty, or a folder written by an earlier run with exactly the same settings
(then its files are rewritten with identical content). Anything else is refused with a one-line error:
PoseFace never overwrites files it did not make.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from poseface.config import to_dict
from poseface.data.atomic import write_json_atomic
from poseface.data.degradation import DegradationConfig, degrade, describe
from poseface.data.degradation import preset as load_preset
from poseface.data.imageops import resize_to_square
from poseface.data.sources import open_source, output_stems
from poseface.data.visualize import contact_sheet
from poseface.errors import ParameterError, PoseFaceError
from poseface.imageio import write_image

logger = logging.getLogger("poseface.data")

FORMAT = "poseface-testset"
FORMAT_VERSION = 1
CONTACT_ROWS = 8


def package_version() -> str:
    try:
        from importlib.metadata import version

        return version("poseface")
    except Exception:  # not installed (running from a checkout)
        return "0.1.0+checkout"


def name_seed(seed: int, name: str) -> np.random.SeedSequence:
    """The per-image seed: the run seed plus 64 bits of sha256(name)."""
    digest = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")
    return np.random.SeedSequence([int(seed), digest])


def bicubic_down(image: np.ndarray, factor: int) -> np.ndarray:
    """Antialiased bicubic down-sampling by an integer factor (PIL), the usual SR input."""
    height, width = image.shape[:2]
    size = (max(1, round(width / factor)), max(1, round(height / factor)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))


def _check_out_dir(out: Path, settings: dict[str, Any]) -> None:
    if out.exists() and not out.is_dir():
        raise PoseFaceError(f"{out}: exists and is not a folder; choose a new output folder")
    if not out.exists() or not any(out.iterdir()):
        return
    marker = out / "params.json"
    try:
        previous = json.loads(marker.read_text())
    except (OSError, ValueError):
        previous = None
    if not isinstance(previous, dict) or previous.get("format") != FORMAT:
        raise PoseFaceError(
            f"{out}: folder is not empty and was not made by `poseface degrade`; choose a new or empty folder (existing files are "
            "never overwritten)"
        )
    if previous.get("settings") != settings:
        raise PoseFaceError(
            f"{out}: holds a test set made with other settings (seed, preset, sr, size, limit or source); choose a new folder or "
            "delete it yourself"
        )


def skipped_images(out_dir: str | os.PathLike) -> list[str]:
    """The unreadable HQ images a finished test set in `out_dir` left out (from its params.json)."""
    return list(json.loads((Path(out_dir) / "params.json").read_text()).get("skipped", []))


def make_test_set(
    hq_source: str | os.PathLike,
    out_dir: str | os.PathLike,
    seed: int,
    preset: str | DegradationConfig = "paper",
    sr: int | None = None,
    size: int | None = None,
    limit: int | None = None,
    progress: bool = True,
    split: str | None = None,
    val_fraction: float = 0.02,
) -> Path:
    """Degrade every HQ image reproducibly and write OUT/lq, OUT/gt, OUT/params.json, OUT/contact_sheet.png.

    `split` ("val" or "train") keeps only that side of the training split (`FaceDataset`'s
    hash of the file name with `val_fraction`), so a model is measured on faces it never saw.
    """
    from tqdm import tqdm

    from poseface.data.dataset import in_validation_split

    if sr is not None and sr < 2:
        raise ParameterError("sr", sr, "the super-resolution factor must be an integer >= 2 (the paper uses 4)")
    if size is not None and size < 8:
        raise ParameterError("size", size, "too small; use the model size, e.g. 512")
    if limit is not None and limit < 1:
        raise ParameterError("limit", limit, "must be at least 1")
    cfg = preset if isinstance(preset, DegradationConfig) else load_preset(preset)
    if sr and preset != "paper":
        logger.warning(
            "--sr %d makes bicubic x%d inputs only; the degradation preset %r is not used", sr, sr, str(preset)
        )
    preset_name = "custom" if isinstance(preset, DegradationConfig) else str(preset)
    if split not in (None, "val", "train"):
        raise ParameterError(
            "split", split, "use val or train (the split of `poseface train` with the same val_fraction)"
        )
    source = open_source(hq_source)
    selected = [
        i
        for i in range(len(source))
        if split is None or in_validation_split(source.names[i], val_fraction) == (split == "val")
    ]
    if not selected:
        raise PoseFaceError(
            f"{source.root}: no image in the {split!r} split with val_fraction {val_fraction}; use a larger --val-fraction"
        )
    selected = selected if limit is None else selected[:limit]
    stems = output_stems(source.names)
    out = Path(out_dir)
    settings = {
        "seed": int(seed),
        "preset": preset_name,
        "degradation": None if sr else to_dict(cfg),
        "sr": sr,
        "size": size,
        "limit": limit,
        "source": str(Path(source.root).resolve()),
    }
    if split is not None:
        settings |= {"split": split, "val_fraction": float(val_fraction)}
    _check_out_dir(out, settings)
    out.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "poseface": package_version(),
        "settings": settings,
        "complete": False,
    }
    write_json_atomic(
        out / "params.json", document, indent=1, sort_keys=True
    )  # marks the folder as ours before any image is written

    images: dict[str, Any] = {}
    sheet_rows, sheet_captions = [], []
    for index in tqdm(selected, desc="degrade", unit="img", disable=not progress, dynamic_ncols=True):
        image = source.read_or_skip(index)
        if image is None:
            continue
        stem = stems[index]
        gt = resize_to_square(image, size) if size else image
        if sr:
            lq = bicubic_down(gt, sr)
            params: dict[str, Any] = {
                "sr_scale": sr,
                "interpolation": "bicubic (PIL, antialiased)",
                "lq_size": [lq.shape[1], lq.shape[0]],
            }
            caption = f"bicubic x{sr}: {lq.shape[1]}x{lq.shape[0]}"
        else:
            lq, params = degrade(gt, cfg, np.random.default_rng(name_seed(seed, stem)))
            caption = describe(params)
        write_image(out / "gt" / f"{stem}.png", gt)
        write_image(out / "lq" / f"{stem}.png", lq)
        images[stem] = {"source_name": source.names[index], "gt_size": [gt.shape[1], gt.shape[0]], "params": params}
        if len(sheet_rows) < CONTACT_ROWS:
            sheet_rows.append([gt, lq])
            sheet_captions.append([stem[:40], caption])
    if not images:
        raise PoseFaceError(f"{source.root}: none of the {len(selected)} images could be read; check the data folder")
    if source.skipped:
        logger.warning("%d unreadable image(s) skipped (listed in %s)", len(source.skipped), out / "params.json")
    lq_label = f"bicubic x{sr} down" if sr else f"degraded ({preset_name}, seed {seed})"
    write_image(
        out / "contact_sheet.png",
        contact_sheet(sheet_rows, ["clean", lq_label], cell_size=256, captions=sheet_captions),
    )
    document |= {"complete": True, "images": images, "skipped": list(source.skipped)}
    write_json_atomic(out / "params.json", document, indent=1, sort_keys=True)
    return out
