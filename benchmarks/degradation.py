"""Time the eq. 17 degradation and a whole FaceDataset item at 128 and 512 px.

    .venv/bin/python benchmarks/degradation.py [--source ../shared/data/utkface-faces.tar] [--repeats 200]

Prints a table: ms per pair for `degrade` alone (paper preset, and per kernel type), and for a full
data-set item (read from the tar, resize, flip, degrade, boxes, tensors). Single process, as in one
data-loader worker; OpenCV may use its own threads (set with --cv-threads).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from poseface.data.degradation import DegradationConfig, degrade, preset  # noqa: E402
from poseface.data.imageops import resize_to_square  # noqa: E402


def time_ms(function, repeats: int) -> float:
    function()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=str(Path(__file__).resolve().parents[2] / "shared/data/utkface-faces.tar"))
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--cv-threads", type=int, default=1, help="cv2.setNumThreads (data-loader workers usually use 1)")
    args = parser.parse_args()
    cv2.setNumThreads(args.cv_threads)

    from skimage import data

    face = data.astronaut()
    cfg = preset("paper")
    variants = {
        "paper preset": cfg,
        "iso Gaussian only": dataclasses.replace(cfg, kernel_probs=(1.0, 0.0, 0.0)),
        "aniso Gaussian only": dataclasses.replace(cfg, kernel_probs=(0.0, 1.0, 0.0)),
        "motion only": dataclasses.replace(cfg, kernel_probs=(0.0, 0.0, 1.0)),
    }
    print(f"cv2 threads: {cv2.getNumThreads()}, repeats: {args.repeats}")
    print(f"| {'what':32} | {'128 px (ms)':>11} | {'512 px (ms)':>11} |")
    print(f"|{'-' * 34}|{'-' * 13}|{'-' * 13}|")
    for label, variant in variants.items():
        row = []
        for size in (128, 512):
            image = resize_to_square(face, size)
            rng = np.random.default_rng(0)
            row.append(time_ms(lambda: degrade(image, variant, rng), args.repeats if size == 128 else max(10, args.repeats // 4)))
        print(f"| degrade, {label:23} | {row[0]:11.2f} | {row[1]:11.2f} |")

    if Path(args.source).exists():
        from poseface.data.dataset import FaceDataset

        row = []
        for size in (128, 512):
            dataset = FaceDataset(args.source, size, DegradationConfig(), seed=0)
            counter = iter(range(10**9))
            repeats = args.repeats if size == 128 else max(10, args.repeats // 4)
            row.append(time_ms(lambda: dataset[next(counter) * 97 % len(dataset)], repeats))
        print(f"| {'FaceDataset item (UTKFace tar)':32} | {row[0]:11.2f} | {row[1]:11.2f} |")
    else:
        print(f"(no {args.source}: FaceDataset row skipped)")


if __name__ == "__main__":
    main()
