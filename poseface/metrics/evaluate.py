"""`poseface evaluate --weights W --hq DIR --degrade-seed N`: degrade, restore, measure, compare.

The HQ faces are degraded reproducibly with the data package's test-set maker; every model restores
the LQ faces as `poseface restore --aligned` does (`restore_aligned`: the `Restorer` in aligned mode,
so what is measured is what users get; `keep_detail=False`, `--no-keep-detail`, gives the raw network
output instead); baselines need no model: `input` (the LQ face resized with nearest neighbour, i.e.
the input as it is), `bicubic` (bicubic up-sampling, the paper's Table 2 baseline; left out when the LQ
faces already have the ground-truth size, as with the degradation presets), `classical` (bicubic to
the ground-truth size, then non-local means and an unsharp mask: `classical_restoration`) and `gt` (the ground
truth itself, a sanity row and the NIQE of clean faces). All rows are measured with the same metrics
into one table, and one comparison grid PNG shows rows = faces, columns = methods.

Layout of the work folder: WORK/testset/{lq,gt,params.json}, WORK/restored/<label>/<name>.png,
WORK/evaluation.json (marks the folder as made by this command).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sized
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from poseface.errors import ParameterError, PoseFaceError
from poseface.imageio import atomic_write, list_images, read_rgb, write_image
from poseface.metrics.folders import EvaluationResult, evaluate_folder
from poseface.metrics.suite import MetricOptions, build_metrics
from poseface.zoo import weights_file

BASELINES = ("input", "bicubic", "classical", "gt")
UNSHARP_AMOUNT, UNSHARP_SIGMA = 0.6, 1.5  # the classical baseline's sharpening (px)
MARKER = "evaluation.json"


@dataclass
class Method:
    label: str
    weights: Path | None = None  # None: a baseline named by `label`


def resize_rgb(image: np.ndarray, width: int, height: int, method: str = "bicubic") -> np.ndarray:
    """PIL resize (bicubic is antialiased when shrinking, Keys a = -0.5 like MATLAB)."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    resample = {"bicubic": Image.BICUBIC, "nearest": Image.NEAREST}[method]
    return np.asarray(Image.fromarray(image).resize((width, height), resample))


def classical_restoration(image: np.ndarray) -> np.ndarray:
    """The classical baseline: OpenCV's non-local means at the image's own noise level (Immerkaer's
    estimate), then an unsharp mask (amount 0.6, sigma 1.5 px). RGB uint8 in and out."""
    import cv2

    from poseface.faces.detail import noise_sigma

    strength = max(3.0, noise_sigma(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)))
    denoised = cv2.fastNlMeansDenoisingColored(np.ascontiguousarray(image), None, strength, strength, 7, 21).astype(
        np.float32
    )
    sharpened = denoised + UNSHARP_AMOUNT * (denoised - cv2.GaussianBlur(denoised, (0, 0), UNSHARP_SIGMA))
    return np.clip(np.rint(sharpened), 0, 255).astype(np.uint8)


def restore_aligned(
    model,
    images: Iterable[np.ndarray],
    batch_size: int = 4,
    device: str = "cpu",
    upscale: float = 1.0,
    keep_detail: bool = True,
    progress: bool = False,
) -> Iterator[np.ndarray]:
    """Restore aligned faces exactly as `poseface restore --aligned` does (the `Restorer` in aligned
    mode: `resize_to_model`, batches, crops off the model's template re-aligned, never blurrier than
    the input unless `keep_detail` is False); each output is its input's size times `upscale`."""
    from tqdm import tqdm

    from poseface.faces.restorer import Restorer

    restorer = Restorer(
        model=model, device=device, batch_size=batch_size, upscale=upscale, aligned=True, keep_detail=keep_detail
    )
    total = len(images) if isinstance(images, Sized) else None
    for _, result in tqdm(
        restorer.restore_stream(enumerate(images)),
        desc="restore",
        unit="face",
        total=total,
        disable=not progress,
        dynamic_ncols=True,
    ):
        yield result.image


def _prepare_work_dir(work: Path, settings: dict) -> None:
    if work.exists() and any(work.iterdir()):
        marker = work / MARKER
        if not marker.is_file():
            raise PoseFaceError(
                f"{work}: folder is not empty and was not made by `poseface evaluate`; choose a new --work-dir (files are never "
                "overwritten)"
            )
    text = json.dumps(settings, indent=2, default=str) + "\n"
    atomic_write(work / MARKER, lambda tmp: Path(tmp).write_text(text))


def _write_method_outputs(
    method: Method, test_set: Path, target: Path, batch_size: int, device: str, progress: bool, keep_detail: bool = True
) -> Path:
    """Fill `target` with one image per GT name, produced by the method; returns the folder to evaluate."""
    if method.label == "gt" and method.weights is None:
        return test_set / "gt"
    lq_paths = list_images(test_set / "lq")
    gt_dir = test_set / "gt"
    names = [p.relative_to(test_set / "lq").with_suffix(".png") for p in lq_paths]
    gt_sizes = [read_rgb(gt_dir / n).shape[:2] for n in names]
    if method.weights is None:
        interpolation = "nearest" if method.label == "input" else "bicubic"
        for path, name, (h, w) in zip(lq_paths, names, gt_sizes):
            image = resize_rgb(read_rgb(path), w, h, interpolation)
            write_image(target / name, classical_restoration(image) if method.label == "classical" else image)
        return target
    from poseface.models import load_model

    model = load_model(method.weights, device=device)
    upscale = max(1.0, gt_sizes[0][1] / read_rgb(lq_paths[0]).shape[1])  # the test set's LQ -> GT factor (--sr)
    images = (read_rgb(p) for p in lq_paths)  # streamed: the Restorer holds about batch_size faces
    restored = restore_aligned(model, images, batch_size, device, upscale, keep_detail, progress)
    for name, image, (h, w) in zip(names, restored, gt_sizes):
        write_image(target / name, resize_rgb(image, w, h))
    return target


def _lq_has_gt_size(test_set: Path) -> bool:
    first = list_images(test_set / "lq")[0]
    return (
        read_rgb(first).shape
        == read_rgb(test_set / "gt" / first.relative_to(test_set / "lq").with_suffix(".png")).shape
    )


def comparison_grid(
    folders: dict[str, Path], gt_dir: Path, results: dict[str, EvaluationResult], rows: int = 6, cell_size: int = 192
) -> np.ndarray:
    """Rows = the first `rows` faces, columns = methods then ground truth; PSNR / LPIPS under each cell."""
    from poseface.data.visualize import contact_sheet

    names = sorted(p.relative_to(gt_dir).with_suffix("").as_posix() for p in list_images(gt_dir))[:rows]
    labels = [label for label in folders if label != "gt"] + ["ground truth"]
    images, captions = [], []
    for name in names:
        row, caption = [], []
        for label in labels:
            folder = gt_dir if label == "ground truth" else folders[label]
            row.append(read_rgb(folder / f"{name}.png"))
            values = results.get(label).rows.get(name, {}) if label in results else {}
            caption.append(
                " ".join(
                    f"{k} {values[k]:.3f}" if k != "psnr" else f"{values[k]:.2f}dB"
                    for k in ("psnr", "lpips", "ids")
                    if k in values and np.isfinite(values[k])
                )
            )
        images.append(row)
        captions.append(caption)
    return contact_sheet(images, labels, cell_size=cell_size, captions=captions)


def evaluate_models(
    weights: list[str | os.PathLike],
    hq_source: str | os.PathLike,
    work_dir: str | os.PathLike,
    seed: int,
    metrics: list[str],
    options: MetricOptions | None = None,
    labels: list[str] | None = None,
    baselines: tuple[str, ...] = ("input", "bicubic", "classical", "gt"),
    preset: str = "paper",
    sr: int | None = None,
    size: int | None = None,
    limit: int | None = None,
    split: str | None = None,
    val_fraction: float = 0.02,
    batch_size: int = 4,
    grid_rows: int = 6,
    progress: bool = True,
    keep_detail: bool = True,
) -> tuple[list[EvaluationResult], Path, np.ndarray]:
    """Degrade HQ faces (seeded), restore with each model, run the baselines, evaluate all; returns
    (results in table order, the test-set folder, the comparison grid image)."""
    from poseface.data.testset import make_test_set

    options = options or MetricOptions()
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise ParameterError("baselines", None, f"unknown {', '.join(unknown)}; choose from {','.join(BASELINES)}")
    if labels and len(labels) != len(weights):
        raise PoseFaceError(
            f"--labels: {len(labels)} label(s) for {len(weights)} --weights file(s); give one label per weights file"
        )
    methods = [Method(label, None) for label in baselines if label != "gt"]
    for index, path in enumerate(weights):
        path = weights_file(path)  # a zoo name becomes its local file (or a one-line "weights get" hint)
        if not path.is_file():
            raise PoseFaceError(f"{path}: no such weights file; pass a PoseFace .safetensors or a GPEN .pth")
        methods.append(Method(labels[index] if labels else path.stem, path))
    if "gt" in baselines:
        methods.append(Method("gt", None))
    if not methods:
        raise PoseFaceError("nothing to evaluate: give --weights FILE and/or --baselines input,bicubic,classical,gt")
    if len({m.label for m in methods}) != len(methods):
        raise PoseFaceError(f"duplicate method labels {[m.label for m in methods]}; give distinct --labels")
    if size is None and weights:
        from poseface.models import load_model

        size = int(load_model(weights[0]).config.size)  # evaluate at the (first) model's resolution

    work = Path(work_dir)
    settings = {
        "hq": str(hq_source),
        "seed": seed,
        "preset": preset,
        "sr": sr,
        "size": size,
        "limit": limit,
        "split": split,
        "val_fraction": val_fraction if split else None,
        "keep_detail": keep_detail,
        "methods": [{"label": m.label, "weights": str(m.weights) if m.weights else None} for m in methods],
    }
    _prepare_work_dir(work, settings)
    test_set = make_test_set(
        hq_source,
        work / "testset",
        seed,
        preset=preset,
        sr=sr,
        size=size,
        limit=limit,
        progress=progress,
        split=split,
        val_fraction=val_fraction,
    )

    if any(m.label == "bicubic" and m.weights is None for m in methods) and _lq_has_gt_size(test_set):
        # degraded inputs already have the ground-truth size: bicubic "up-sampling" would be the input again
        methods = [m for m in methods if not (m.label == "bicubic" and m.weights is None)]
    results: dict[str, EvaluationResult] = {}
    folders: dict[str, Path] = {}
    metric_set = build_metrics(metrics, options, has_gt=True)  # networks load once for all methods
    for method in methods:
        folder = _write_method_outputs(
            method, test_set, work / "restored" / method.label, batch_size, options.device, progress, keep_detail
        )
        folders[method.label] = folder
        results[method.label] = evaluate_folder(
            folder, test_set / "gt", metric_set, label=method.label, progress=progress
        )
    grid = comparison_grid(folders, test_set / "gt", results, rows=grid_rows)
    return list(results.values()), test_set, grid
