"""The pictures in docs/data.md, rebuilt from the UTKFace tar:

    .venv/bin/python tools/figure_data.py [--tar ../shared/data/utkface-faces.tar]
        [--landmarks LANDMARKS.json] [--out docs/images]

--landmarks: a `poseface data landmarks` cache of the tar (without one, dlib finds the landmarks).

data_contact_sheet_utk.png  8 faces spread over the tar, clean | eq. 17 (paper preset, 512 px, seed 0)
data_kernels.png                examples of the three blur kernel families (41 x 41, brightness scaled)
data_boxes.png                  eye/mouth boxes from the 68-point landmarks, unflipped and flipped
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from poseface.data.degradation import degrade, describe, gaussian_kernel, motion_kernel, preset
from poseface.data.imageops import resize_to_square
from poseface.data.landmarks import LandmarkDetector, component_boxes, load_landmarks
from poseface.data.sources import open_source, output_stems
from poseface.data.testset import name_seed
from poseface.data.visualize import contact_sheet
from poseface.imageio import write_image

BOX_COLOURS = ((230, 60, 60), (60, 160, 230), (60, 200, 90))  # left eye, right eye, mouth


def spread_indices(count: int, total: int, offset: int = 1234) -> list[int]:
    return [(offset + i * total // count) % total for i in range(count)]


def utkface_contact_sheet(tar: Path, rows: int = 8, size: int = 512, seed: int = 0) -> np.ndarray:
    source = open_source(tar)
    stems = output_stems(source.names)
    cfg = preset("paper")
    images, captions = [], []
    for index in spread_indices(rows, len(source)):
        gt = resize_to_square(source.read(index), size)
        lq, params = degrade(gt, cfg, np.random.default_rng(name_seed(seed, stems[index])))
        images.append([gt, lq])
        captions.append([stems[index].split("_2017")[0] + " (age_gender_race)", describe(params)])
    return contact_sheet(
        images, ["clean (512 px)", f"degraded, eq. 17 paper preset, seed {seed}"], cell_size=240, captions=captions
    )


def kernel_gallery() -> np.ndarray:
    kernels = [
        ("iso s=2", gaussian_kernel(41, 2.0, 2.0, 0.0)),
        ("iso s=8", gaussian_kernel(41, 8.0, 8.0, 0.0)),
        ("aniso 6x1.5, 30 deg", gaussian_kernel(41, 6.0, 1.5, np.radians(30))),
        ("aniso 9x3, -60 deg", gaussian_kernel(41, 9.0, 3.0, np.radians(-60))),
        ("motion L=15, 0 deg", motion_kernel(41, 15.0, 0.0)),
        ("motion L=31, 45 deg", motion_kernel(41, 31.0, 45.0)),
        ("motion L=21, 100 deg", motion_kernel(41, 21.0, 100.0)),
    ]
    tiles = [[np.clip(k / k.max() * 255.0, 0, 255).astype(np.uint8) for _, k in kernels]]
    return contact_sheet(tiles, [label for label, _ in kernels], cell_size=164)


def _draw_boxes(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    canvas = image.copy()
    for box, colour in zip(boxes, BOX_COLOURS):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 2)
    return canvas


def boxes_figure(tar: Path, landmarks: Path | None, count: int = 4, size: int = 256) -> np.ndarray:
    source = open_source(tar)
    faces = load_landmarks(landmarks)["faces"] if landmarks and Path(landmarks).is_file() else {}
    detector = None
    chosen = spread_indices(count - 1, len(source), offset=777)
    fallback = [n for n, e in faces.items() if e["method"] == "full_crop"]
    if fallback:
        chosen.append(source.index_of(sorted(fallback)[0]))
    rows, captions = [], []
    for index in chosen:
        name = source.names[index]
        image = source.read(index)
        if name in faces:
            points, method = faces[name]["points"], faces[name]["method"]
        else:
            detector = detector or LandmarkDetector()
            points, method = detector.detect(image)
        gt = resize_to_square(image, size)
        plain = _draw_boxes(gt, component_boxes(points, image.shape[1::-1], size))
        flipped = _draw_boxes(
            np.ascontiguousarray(gt[:, ::-1]), component_boxes(points, image.shape[1::-1], size, hflip=True)
        )
        rows.append([plain, flipped])
        captions.append([f"method: {method}", "boxes follow the flip"])
    return contact_sheet(
        rows, ["left eye red, right eye blue, mouth green", "flipped"], cell_size=size, captions=captions
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tar", default=str(REPO.parent / "shared/data/utkface-faces.tar"))
    parser.add_argument("--landmarks", type=Path, default=None)
    parser.add_argument("--out", default=str(REPO / "docs/images"))
    args = parser.parse_args()
    out = Path(args.out)
    write_image(out / "data_contact_sheet_utk.png", utkface_contact_sheet(Path(args.tar)))
    write_image(out / "data_kernels.png", kernel_gallery())
    write_image(out / "data_boxes.png", boxes_figure(Path(args.tar), args.landmarks))
    for name in ("data_contact_sheet_utk.png", "data_kernels.png", "data_boxes.png"):
        print(f"{out / name}: {(out / name).stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
