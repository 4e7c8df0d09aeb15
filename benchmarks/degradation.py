"""Time the eq. 17 degradation and a whole FaceDataset item at 128 and 512 px.

    .venv/bin/python benchmarks/degradation.py [--source ../shared/data/utkface-faces.tar] [--repeats 200]

Prints a table: ms per pair (best of 5 rounds) for `degrade` alone (paper preset, and per kernel type), and for a full
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


def time_ms(make_function, repeats: int, rounds: int = 5) -> float:
    """Best of `rounds` means over repeats / rounds calls (robust to other jobs on the machine).

    `make_function()` gives a fresh callable per round, so each round does the same work (same draws).
    """
    make_function()()  # warm-up
    per_round = max(1, repeats // rounds)
    best = float("inf")
    for _ in range(rounds):
        function = make_function()
        start = time.perf_counter()
        for _ in range(per_round):
            function()
        best = min(best, (time.perf_counter() - start) / per_round)
    return best * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=str(Path(__file__).resolve().parents[2] / "shared/data/utkface-faces.tar"))
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument(
        "--cv-threads", type=int, default=1, help="cv2.setNumThreads (data-loader workers usually use 1)"
    )
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

            def make(image=image, variant=variant):
                rng = np.random.default_rng(0)
                return lambda: degrade(image, variant, rng)

            row.append(time_ms(make, args.repeats if size == 128 else max(10, args.repeats // 4)))
        print(f"| degrade, {label:23} | {row[0]:11.2f} | {row[1]:11.2f} |")

    if Path(args.source).exists():
        from poseface.data.dataset import FaceDataset

        row = []
        for size in (128, 512):
            dataset = FaceDataset(args.source, size, DegradationConfig(), seed=0)
            repeats = args.repeats if size == 128 else max(10, args.repeats // 4)

            def make(dataset=dataset):
                counter = iter(range(10**9))
                return lambda: dataset[next(counter) * 97 % len(dataset)]

            row.append(time_ms(make, repeats))
        print(f"| {'FaceDataset item (UTKFace tar)':32} | {row[0]:11.2f} | {row[1]:11.2f} |")
    else:
        print(f"(no {args.source}: FaceDataset row skipped)")


if __name__ == "__main__":
    main()
