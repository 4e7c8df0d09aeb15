"""`make demo`: restore a bundled example photo and show the result.

The example is `skimage.data.astronaut()` (a public-domain photo shipped with scikit-image),
degraded with a fixed seed (the `mild` preset of eq. 17: blur, down-sampling, noise, JPEG). It is
written to `demo/` as the degraded photo, the restored photo and a side-by-side comparison, and the
metrics against the clean photo are printed.

Without a bundled model (this installation has none yet) the demo still runs the whole photo
pipeline (detection, alignment, batched network call, feathered paste-back) with an identity
network, as an end-to-end check, and says so.
"""

from __future__ import annotations

import argparse
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


def degraded_astronaut(seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict]:
    from skimage import data

    from poseface.data.degradation import degrade, preset

    clean = data.astronaut()
    lq, params = degrade(clean, preset("mild"), np.random.default_rng(seed))
    return clean, lq, params


def run(out_dir: Path, weights: str | None, seed: int) -> int:
    from poseface.data.degradation import describe
    from poseface.data.visualize import contact_sheet
    from poseface.faces import Restorer
    from poseface.imageio import write_image
    from poseface.metrics.niqe import niqe
    from poseface.metrics.psnr_ssim import psnr, ssim
    from poseface.models import BUNDLED_WEIGHTS

    clean, lq, params = degraded_astronaut(seed)
    print(f"example: skimage.data.astronaut() 512x512, degraded with seed {seed}: {describe(params)}")
    if weights or BUNDLED_WEIGHTS.is_file():
        restorer = Restorer(weights=weights, device="auto")
        label = f"PoseFace ({Path(weights).name if weights else 'bundled model'})"
    else:
        print("no bundled model in this installation yet: running the photo pipeline with an identity network "
              "(end-to-end check of detection, alignment, batching and paste-back)")
        restorer = Restorer(model=IdentityNet(), device="cpu")
        label = "pipeline check (identity network)"
    start = time.perf_counter()
    result = restorer.restore_image(lq)
    seconds = time.perf_counter() - start
    restored = result.image
    if len(result.faces) == 0:
        raise PoseFaceError("demo: no face found in the degraded example; the detector models may be missing (pip install face_recognition_models)")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_image(out_dir / "astronaut_degraded.png", lq)
    write_image(out_dir / "astronaut_restored.png", restored)
    sheet = contact_sheet([[lq, restored, clean]], ["degraded", label, "clean"], cell_size=512)
    write_image(out_dir / "astronaut_compare.png", sheet)
    print(f"{len(result.faces)} face(s) restored in {seconds:.2f} s")
    print("| image | PSNR | SSIM | NIQE |")
    print("|---|---|---|---|")
    for name, image in (("degraded", lq), ("restored", restored), ("clean", clean)):
        print(f"| {name} | {psnr(image, clean):.2f} | {ssim(image, clean):.4f} | {niqe(image):.3f} |")
    print(f"wrote {out_dir / 'astronaut_degraded.png'}, {out_dir / 'astronaut_restored.png'}, {out_dir / 'astronaut_compare.png'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m poseface.demo", description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out-dir", default="demo")
    parser.add_argument("--weights", help="restore with these weights instead of the bundled model")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        return run(Path(args.out_dir), args.weights, args.seed)
    except PoseFaceError as exc:
        print(f"poseface demo: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
