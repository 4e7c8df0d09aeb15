"""Evaluate a folder of restored faces against a folder of ground truths, paired by file name.

Files are paired by their path relative to the folder without the extension (`a/001.png` pairs with
`a/001.jpg`). Anything that cannot be paired or compared is skipped and reported in one line per
reason: restored files without ground truth, ground truths without restored file, size mismatches,
unreadable files. Without a ground-truth folder only the no-reference metrics run.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from poseface.errors import PoseFaceError
from poseface.faces.run import SIDE_FOLDERS
from poseface.imageio import IMAGE_SUFFIXES, list_images, read_rgb
from poseface.metrics.suite import MetricSet


@dataclass
class Pairing:
    pairs: list[tuple[str, Path, Path | None]]  # (name, restored path, gt path or None)
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> names


@dataclass
class EvaluationResult:
    """Per-image values and the set summary of one restored folder."""

    label: str
    columns: list[str]
    rows: dict[str, dict[str, float]]  # name -> column -> value
    summary: dict[str, float]
    skipped: dict[str, list[str]]
    unavailable: dict[str, str]
    descriptions: list[str]

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "columns": self.columns,
            "summary": self.summary,
            "per_image": self.rows,
            "skipped": self.skipped,
            "unavailable": self.unavailable,
            "metrics": self.descriptions,
        }


def _keyed(folder: Path, skip_folders: tuple[str, ...] = ()) -> dict[str, Path]:
    """Images of `folder` by relative name without suffix; sub-folders named in `skip_folders` are left out."""
    keyed: dict[str, Path] = {}
    for path in list_images(folder):
        relative = path.relative_to(folder)
        if len(relative.parts) > 1 and relative.parts[0] in skip_folders:
            continue
        keyed.setdefault(relative.with_suffix("").as_posix(), path)
    return keyed


def _require_images(folder: Path, what: str, skip_folders: tuple[str, ...] = ()) -> dict[str, Path]:
    if not folder.is_dir():
        raise PoseFaceError(f"{folder}: no such folder ({what}); check the path")
    keyed = _keyed(folder, skip_folders)
    if not keyed:
        raise PoseFaceError(
            f"{folder}: no images ({', '.join(s.lstrip('.') for s in IMAGE_SUFFIXES)}) in this folder ({what}); point {what} at "
            "the folder with the image files"
        )
    return keyed


def pair_folders(restored_dir: str | os.PathLike, gt_dir: str | os.PathLike | None) -> Pairing:
    """Pair restored and ground-truth files by name; one-line error when nothing can be paired."""
    # `poseface restore -o OUT` also writes OUT/faces/, OUT/compare/ and OUT/boxes/: they are not restored photos
    restored = _require_images(Path(restored_dir), "--restored", SIDE_FOLDERS)
    if gt_dir is None:
        return Pairing([(name, path, None) for name, path in restored.items()])
    gt = _require_images(Path(gt_dir), "--gt")
    pairing = Pairing([(name, restored[name], gt[name]) for name in restored if name in gt])
    no_gt = [restored[n].name for n in restored if n not in gt]
    no_restored = [gt[n].name for n in gt if n not in restored]
    if no_gt:
        pairing.skipped["restored file without a ground truth of the same name"] = no_gt
    if no_restored:
        pairing.skipped["ground truth without a restored file of the same name"] = no_restored
    if not pairing.pairs:
        raise PoseFaceError(
            f"{restored_dir}: none of its {len(restored)} file names matches one of the {len(gt)} in {gt_dir} "
            f"(e.g. {next(iter(restored.values())).name} vs {next(iter(gt.values())).name}); name restored files like their ground truth"
        )
    return pairing


def summarise(rows: dict[str, dict[str, float]], columns: list[str]) -> dict[str, float]:
    """Mean of each column over the images where it is finite (PSNR of identical images is inf)."""
    summary = {}
    for column in columns:
        values = [r[column] for r in rows.values() if column in r and math.isfinite(r[column])]
        if values:
            summary[column] = float(np.mean(values))
        elif any(column in r for r in rows.values()):
            summary[column] = (
                float("inf") if any(r.get(column) == float("inf") for r in rows.values()) else float("nan")
            )
    return summary


def skipped_lines(skipped: dict[str, list[str]], limit: int = 8) -> list[str]:
    """One line per reason, naming the files (the first `limit`, then a count)."""
    lines = []
    for reason, names in skipped.items():
        shown = ", ".join(names[:limit]) + (f" (+{len(names) - limit} more)" if len(names) > limit else "")
        lines.append(f"skipped {len(names)} file(s), {reason}: {shown}")
    return lines


def evaluate_pairs(
    pairing: Pairing, metric_set: MetricSet, label: str, progress: bool = True, has_gt: bool = True
) -> EvaluationResult:
    """Run every metric over the pairs (with a progress bar) and summarise."""
    from tqdm import tqdm

    rows: dict[str, dict[str, float]] = {}
    skipped = {k: list(v) for k, v in pairing.skipped.items()}
    for metric in metric_set.metrics:
        metric.reset()
    for name, restored_path, gt_path in tqdm(
        pairing.pairs, desc=f"evaluate {label}", unit="img", disable=not progress, dynamic_ncols=True
    ):
        try:
            restored = read_rgb(restored_path)
            gt = read_rgb(gt_path) if gt_path is not None else None
        except PoseFaceError as exc:
            skipped.setdefault("unreadable", []).append(f"{Path(str(exc).split(':')[0]).name}")
            continue
        if gt is not None and restored.shape != gt.shape:
            reason = "size differs from its ground truth (resize restored images to the ground-truth size)"
            skipped.setdefault(reason, []).append(
                f"{restored_path.name} {restored.shape[1]}x{restored.shape[0]} vs {gt.shape[1]}x{gt.shape[0]}"
            )
            continue
        values: dict[str, float] = {}
        for metric in metric_set.metrics:
            if metric.needs_gt and gt is None:
                continue
            values.update(metric.measure(restored, gt))
        rows[name] = values
    if not rows:
        raise PoseFaceError(f"{label}: no image pair could be evaluated ({'; '.join(skipped_lines(skipped, 3))})")
    columns = metric_set.columns
    summary = summarise(rows, columns)
    for metric in metric_set.metrics:
        summary.update(metric.finish())
    return EvaluationResult(
        label=label,
        columns=columns,
        rows=rows,
        summary=summary,
        skipped=skipped,
        unavailable=dict(metric_set.unavailable),
        descriptions=[m.describe() for m in metric_set.metrics],
    )


def evaluate_folder(
    restored_dir: str | os.PathLike,
    gt_dir: str | os.PathLike | None,
    metric_set: MetricSet,
    label: str | None = None,
    progress: bool = True,
) -> EvaluationResult:
    """Pair the folders by name and evaluate; `label` defaults to the restored folder's name."""
    pairing = pair_folders(restored_dir, gt_dir)
    return evaluate_pairs(pairing, metric_set, label or Path(restored_dir).resolve().name, progress, gt_dir is not None)
