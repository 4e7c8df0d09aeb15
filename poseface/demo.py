"""`make demo`: restore a bundled example photo with the bundled model and show the result.

The example is `skimage.data.astronaut()` (a public-domain photo shipped with scikit-image),
degraded with a fixed seed by the paper's eq. 17 (blur, down-sampling, noise, JPEG; `--preset`,
`--seed`). It is written to `demo/` as the degraded photo, the restored photo and a side-by-side
comparison (whole photo and the face enlarged), and PSNR/SSIM/NIQE against the clean photo are
printed for the whole photo and for the face region.

The bundled model is a small CPU-trained demonstration model (128 px, UTKFace), not the paper's
512 px model: pass `--weights` (ours or GPEN's `GPEN-BFR-512.pth`) for another model, or
`--pipeline-check` to run the photo pipeline with an identity network instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from poseface.errors import PoseFaceError


class IdentityNet(nn.Module):
    """Output = input: checks the pipeline without a trained network."""

    def __init__(self, size: int = 128):
        super().__init__()
        from poseface.models.config import ModelConfig

        self.config = ModelConfig(size=size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


DEFAULT_PRESET = "paper"
DEFAULT_SEED = 1  # paper preset: anisotropic blur, x2.8 down-sampling, noise 21, JPEG 24; dlib still finds the face
# Eq. 17's sizes (blur sigma, motion length) are given for a 512 px face crop and scale with the image.
# The astronaut's face is small in its photo: eye distance 44 px, where the bundled model's 128 px crops
# have 50 px, i.e. the face of a 113 px crop. Degrading the photo as if it were 512 * 512 / 113 px wide
# gives its face the degradation strength the model was trained with.
PHOTO_REFERENCE_SIZE = 2300


def degraded_astronaut(
    seed: int = DEFAULT_SEED, preset_name: str = DEFAULT_PRESET
) -> tuple[np.ndarray, np.ndarray, dict]:
    from poseface.data.degradation import degrade, preset
    from poseface.errors import import_optional

    clean = import_optional("skimage.data", "demo", "the demo photo (skimage.data.astronaut)").astronaut()
    config = dataclasses.replace(preset(preset_name), reference_size=PHOTO_REFERENCE_SIZE)
    lq, params = degrade(clean, config, np.random.default_rng(seed))
    return clean, lq, params


def face_region(
    box: tuple[float, float, float, float], height: int, width: int, margin: float = 0.25
) -> tuple[slice, slice]:
    """The detection box grown by `margin` on each side, clipped to the image."""
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) * margin, (y2 - y1) * margin
    top, bottom = max(0, int(y1 - dy)), min(height, int(round(y2 + dy)))
    left, right = max(0, int(x1 - dx)), min(width, int(round(x2 + dx)))
    return slice(top, bottom), slice(left, right)


def metrics_table(images: dict[str, np.ndarray], clean: np.ndarray, region: tuple[slice, slice]) -> list[str]:
    from poseface.metrics.niqe import niqe
    from poseface.metrics.psnr_ssim import psnr, ssim

    lines = [
        "| image | PSNR photo | SSIM photo | NIQE photo | PSNR face | SSIM face | NIQE face |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, image in images.items():
        face, clean_face = image[region], clean[region]
        lines.append(
            f"| {name} | {psnr(image, clean):.2f} | {ssim(image, clean):.4f} | {niqe(image):.3f} | "
            f"{psnr(face, clean_face):.2f} | {ssim(face, clean_face):.4f} | {niqe(face):.3f} |"
        )
    return lines


def run(out_dir: Path, weights: str | None, seed: int, preset_name: str, pipeline_check: bool) -> int:
    from poseface.data.degradation import describe
    from poseface.data.visualize import contact_sheet
    from poseface.faces import Restorer
    from poseface.imageio import write_image

    clean, lq, params = degraded_astronaut(seed, preset_name)
    print(
        f"example: skimage.data.astronaut() 512x512, degraded ({preset_name} preset, seed {seed}): {describe(params)}"
    )
    if pipeline_check:
        print("pipeline check: identity network (end-to-end check of detection, alignment, batching and paste-back)")
        restorer = Restorer(model=IdentityNet(), device="cpu")
        label = "pipeline check (identity network)"
    else:
        restorer = Restorer(weights=weights, device="auto")
        label = f"PoseFace ({Path(weights).name if weights else 'bundled small model'})"
    start = time.perf_counter()
    result = restorer.restore_image(lq)
    seconds = time.perf_counter() - start
    restored = result.image
    if len(result.faces) == 0:
        raise PoseFaceError("demo: no face found in the degraded example; try another --seed or --preset mild")
    region = face_region(result.faces[0].box, *clean.shape[:2])
    out_dir.mkdir(parents=True, exist_ok=True)
    write_image(out_dir / "astronaut_degraded.png", lq)
    write_image(out_dir / "astronaut_restored.png", restored)
    sheet = contact_sheet(
        [[lq, restored, clean], [lq[region], restored[region], clean[region]]],
        [f"degraded ({preset_name}, seed {seed})", label, "clean"],
        cell_size=512,
    )
    write_image(out_dir / "astronaut_compare.png", sheet)
    print(
        f"{len(result.faces)} face(s) restored in {seconds:.2f} s "
        f"({', '.join(f'{k} {v:.2f} s' for k, v in result.timings.items())})"
    )
    for line in metrics_table({"degraded": lq, "restored": restored, "clean": clean}, clean, region):
        print(line)
    print(
        f"wrote {out_dir / 'astronaut_degraded.png'}, {out_dir / 'astronaut_restored.png'}, {out_dir / 'astronaut_compare.png'}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m poseface.demo", description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out-dir", default="demo")
    parser.add_argument("--weights", help="restore with these weights instead of the bundled model")
    parser.add_argument(
        "--preset", default=DEFAULT_PRESET, help=f"degradation preset: paper, mild, severe (default {DEFAULT_PRESET})"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"degradation seed (default {DEFAULT_SEED})")
    parser.add_argument(
        "--pipeline-check", action="store_true", help="identity network instead of a model (checks the photo pipeline)"
    )
    args = parser.parse_args(argv)
    try:
        return run(Path(args.out_dir), args.weights, args.seed, args.preset, args.pipeline_check)
    except PoseFaceError as exc:
        print(f"poseface demo: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
