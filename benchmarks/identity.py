"""IDS per face: dlib's own descriptor (one chip at a time) against the PyTorch re-expression (batched).

    python benchmarks/identity.py [--faces ../shared/data/utkface-faces.tar] [--count 64] [--threads 1] [--device cpu]

Both run on the same 150 px chips (dlib.get_face_chip of 5-point landmarks), so the table also gives
the parity of the two: the max absolute difference of their 128-D descriptors. Chip cutting (HOG +
landmarks) is the same for both paths and is timed separately.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def load_faces(path: Path, count: int) -> list[np.ndarray]:
    from skimage import data

    if path.is_file():
        from poseface.data.sources import open_source

        source = open_source(path)
        step = max(1, len(source) // count)
        return [source.read(index) for index in range(0, step * count, step)][:count]
    print(f"{path}: not found; using skimage's astronaut and its mirror image")
    astronaut = data.astronaut()
    return [astronaut if i % 2 == 0 else np.ascontiguousarray(astronaut[:, ::-1]) for i in range(count)]


def chips_of(faces: list[np.ndarray]) -> np.ndarray:
    import dlib

    from poseface.faces import dlib_models

    chips = []
    for face in faces:
        rects = dlib_models.hog_detector()(face, 1)
        rect = rects[0] if len(rects) else dlib.rectangle(0, 0, face.shape[1] - 1, face.shape[0] - 1)
        shape = dlib_models.shape_predictor(dlib_models.LANDMARKS_5)(np.ascontiguousarray(face), rect)
        chips.append(np.asarray(dlib.get_face_chip(np.ascontiguousarray(face), shape, 150, 0.25)))
    return np.stack(chips)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=REPO.parent / "shared" / "data" / "utkface-faces.tar")
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import torch

    from poseface.faces import dlib_models
    from poseface.metrics.identity import BatchedIdentityDistance

    torch.set_num_threads(args.threads)
    faces = load_faces(args.faces, args.count)
    start = time.perf_counter()
    chips = chips_of(faces)
    cut = (time.perf_counter() - start) / len(chips)

    recognizer = dlib_models.face_recognizer()
    recognizer.compute_face_descriptor(chips[0])  # warm-up
    start = time.perf_counter()
    reference = np.array([recognizer.compute_face_descriptor(chip) for chip in chips])
    dlib_time = (time.perf_counter() - start) / len(chips)

    batched = BatchedIdentityDistance(args.device, args.batch_size)
    batched.descriptors(chips[:2])  # warm-up
    start = time.perf_counter()
    ours = batched.descriptors(chips)
    torch_time = (time.perf_counter() - start) / len(chips)

    print(f"{len(chips)} faces from {args.faces if args.faces.is_file() else 'astronaut'}, {args.threads} thread(s)\n")
    print("| path | ms / face |")
    print("|---|---|")
    print(f"| chip cutting (HOG + 5 landmarks + get_face_chip; both paths) | {1000 * cut:.1f} |")
    print(f"| dlib compute_face_descriptor, one chip at a time | {1000 * dlib_time:.1f} |")
    print(f"| PyTorch dlib ResNet, batches of {args.batch_size} on {args.device} | {1000 * torch_time:.1f} |")
    print(f"\nmax |torch - dlib| over {len(chips)} descriptors: {np.abs(ours - reference).max():.2e}")


if __name__ == "__main__":
    main()
