"""The pipeline figure of docs/faces.md (docs/images/faces_pipeline.png): detection and landmarks, the
aligned crop on the template, the paste mask, and where the mask lands in the photo.

    .venv/bin/python tools/figure_faces_pipeline.py PHOTO OUT.png [--size 512]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> None:
    import torch

    from poseface.faces.restorer import Restorer
    from poseface.faces.visualize import pipeline_figure
    from poseface.imageio import read_rgb, write_image
    from poseface.models.config import ModelConfig

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photo")
    parser.add_argument("output")
    parser.add_argument("--size", type=int, default=512, help="model face size (the FFHQ template is scaled to it)")
    args = parser.parse_args(argv)

    class Identity(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config = ModelConfig(size=args.size)

        def forward(self, x):
            return x

    image = read_rgb(args.photo)
    restorer = Restorer(model=Identity(), device="cpu")
    result = restorer.restore_image(image)
    if not result.faces:
        raise SystemExit(f"{args.photo}: no face found")
    write_image(args.output, pipeline_figure(image, result, restorer.template, restorer.mask))


if __name__ == "__main__":
    main()
