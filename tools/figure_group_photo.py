"""The README's group-photo figure: a composite old-style group photo restored with `--draw-boxes`.

    .venv/bin/python tools/figure_group_photo.py [--faces ../shared/data/utkface-faces.tar] [--out docs/images/group_photo_restored.png]

Builds 29 held-out UTKFace faces of 30-45 px into a sepia, JPEG-compressed group photo (as the 1927
Solvay photo of the paper's Figure 1), runs `poseface restore --draw-boxes` on it with the bundled
model, and writes: the input, the restored photo with numbered boxes and scores, and four faces
enlarged 3x (input above, restored below).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    from poseface.data.dataset import in_validation_split
    from poseface.data.sources import open_source
    from poseface.faces.composite import GroupPhotoConfig, group_photo
    from poseface.imageio import read_rgb, write_image

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=Path, default=REPO.parent / "shared/data/utkface-faces.tar")
    parser.add_argument("--out", type=Path, default=REPO / "docs/images/group_photo_restored.png")
    args = parser.parse_args()
    source = open_source(args.faces)
    held_out = [i for i, name in enumerate(source.names) if in_validation_split(name, 0.02)][:29]  # never trained on
    photo = group_photo([source.read(i) for i in held_out], GroupPhotoConfig(tone="sepia", jpeg_quality=40), seed=7)
    with tempfile.TemporaryDirectory() as work:
        source_path = Path(work) / "group.png"
        write_image(source_path, photo.image)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "poseface",
                "restore",
                str(source_path),
                "-o",
                str(Path(work) / "out"),
                "--draw-boxes",
            ],
            check=True,
        )
        restored = read_rgb(Path(work) / "out" / "group.png")
        boxed = read_rgb(Path(work) / "out" / "boxes" / "group.png")
    zooms = []
    for box in photo.boxes[:4]:
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        pad = (x1 - x0) // 4

        def cut(image: np.ndarray) -> np.ndarray:
            return cv2.resize(
                image[y0 - pad : y1 + pad, x0 - pad : x1 + pad], (150, 150), interpolation=cv2.INTER_NEAREST
            )

        zooms.append(np.concatenate([cut(photo.image), cut(restored)], axis=0))
    strip = np.concatenate(zooms, axis=1)
    width = boxed.shape[1]
    strip = np.pad(strip, ((0, 0), (0, max(0, width - strip.shape[1])), (0, 0)), constant_values=255)[:, :width]
    figure = np.concatenate([photo.image, boxed, strip], axis=0)
    write_image(args.out, figure)
    print(f"{args.out}: {figure.shape[1]}x{figure.shape[0]}")


if __name__ == "__main__":
    main()
