"""Where `poseface restore` spends its time: detection, alignment, network, paste-back.

    .venv/bin/python benchmarks/restore_photo.py [--weights FILE] [--config configs/small-128.yaml]
                                                 [--device cpu] [--precision fp32] [--batch-size 4]

Photos: the astronaut (skimage.data.astronaut, 512 px, one face) and two group photos made from it
(4 faces at 1024 px; 6 faces at 2400 px, which is detected on a 1280-px copy). Without --weights
the network is the real PoseFace architecture of --config with random weights (same cost as a
trained model of that config). Each photo is restored once to warm up; each stage's time is the
best of --repeats runs (other jobs may share the cores).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from poseface.faces.restorer import Restorer  # noqa: E402

STAGES = ("detection", "alignment", "network", "paste")


def group_photo(face_photo: np.ndarray, columns: int, rows: int, tile: int) -> np.ndarray:
    """A grid of the astronaut's head (alternately mirrored and slightly rescaled) on a grey wall."""
    head = face_photo[20:260, 120:330]  # the head with some margin
    canvas = np.full((rows * tile, columns * tile, 3), 118, np.uint8)
    for index in range(rows * columns):
        r, c = divmod(index, columns)
        scale = tile / 260 * (0.85 if index % 3 == 1 else 1.0)
        piece = cv2.resize(head[:, ::-1] if index % 2 else head, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        y, x = r * tile + (tile - piece.shape[0]) // 2, c * tile + (tile - piece.shape[1]) // 2
        canvas[y : y + piece.shape[0], x : x + piece.shape[1]] = piece
    return canvas


def stand_in_model(config_path: str) -> torch.nn.Module:
    from poseface.models import PoseFaceNet
    from poseface.models.cli import model_config_from_yaml

    torch.manual_seed(0)
    return PoseFaceNet(model_config_from_yaml(config_path)).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", help="a PoseFace .safetensors or GPEN .pth (default: random-weight stand-in)")
    parser.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "configs/small-128.yaml"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    if args.weights:
        restorer = Restorer(args.weights, device=args.device, precision=args.precision, batch_size=args.batch_size)
        what = args.weights
    else:
        restorer = Restorer(
            model=stand_in_model(args.config), device=args.device, precision=args.precision, batch_size=args.batch_size
        )
        what = f"stand-in: {Path(args.config).name} architecture, random weights"
    parameters = sum(p.numel() for p in restorer.model.parameters()) / 1e6
    print(
        f"model: {what}; {restorer.size} px, {parameters:.1f} M parameters; device {restorer.device}, {args.precision}, "
        f"batch {args.batch_size}, torch threads {torch.get_num_threads()}"
    )

    astronaut = data.astronaut()
    photos = {
        "astronaut 512x512": astronaut,
        "group 1024x1024": group_photo(astronaut, 2, 2, 512),
        "group 2400x1600": group_photo(astronaut, 3, 2, 800),
    }
    header = (
        f"{'photo':<18} {'faces':>5} " + " ".join(f"{s + ' s':>11}" for s in STAGES) + f" {'total s':>8} {'network':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, photo in photos.items():
        restorer.restore_image(photo)  # warm-up (dlib model loading, first-call allocations)
        totals = dict.fromkeys(STAGES, float("inf"))
        for _ in range(args.repeats):  # best of the repeats for each stage: other jobs share the cores
            result = restorer.restore_image(photo)
            for stage in STAGES:
                totals[stage] = min(totals[stage], result.timings[stage])
        total = sum(totals.values())
        print(
            f"{name:<18} {len(result.faces):>5} "
            + " ".join(f"{totals[s]:>11.3f}" for s in STAGES)
            + f" {total:>8.3f} {100 * totals['network'] / total:>7.0f}%"
        )


if __name__ == "__main__":
    main()
