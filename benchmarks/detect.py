"""Face detection on composite photos: recall, false positives and seconds per photo per detector.

    .venv/bin/python benchmarks/detect.py [--faces ../shared/data/utkface-faces.tar] [--threads 2] [--quick]

The test set (poseface.faces.composite.detection_benchmark) is built from 216 UTKFace faces: 6 group
photos of 29 faces 30-45 px wide (colour, grey, sepia; clean and JPEG'd), 2 photos of 15 tiny faces
(16-24 px), 3 small images (~250 px) of 4 faces, 3 textures without a face, plus skimage's astronaut as it
is, rotated by +-30 deg and mirrored (one face each; HOG on up-sampled copies takes her suit, the flag
and a glove for faces). A detection matches a
true face at IoU >= 0.3; every other detection is a false positive. "FP %" is false positives per
true face. The last rows time the chosen policy against the bundled model's network on the first
group photo (the issue's target: detection no slower than the network for the same photo).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ASTRONAUT_BOX = (179, 83, 266, 170)
Boxes = list[tuple[float, float, float, float]]


def dlib_hog(upsample: int) -> Callable[[np.ndarray], Boxes]:
    from poseface.faces import dlib_models

    def run(image: np.ndarray) -> Boxes:
        rects, _, _ = dlib_models.hog_detector().run(image, upsample, 0.0)
        return [(r.left(), r.top(), r.right(), r.bottom()) for r in rects]

    return run


def dlib_mmod(upsample: int) -> Callable[[np.ndarray], Boxes]:
    from poseface.faces import dlib_models

    def run(image: np.ndarray) -> Boxes:
        return [
            (d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom())
            for d in dlib_models.cnn_detector()(image, upsample)
        ]

    return run


def haar(profile: bool, scale: float = 2.0) -> Callable[[np.ndarray], Boxes]:
    """OpenCV's cascades on a copy up-sampled `scale` times (their window is 24 px; faces of 16 px need 2x)."""
    frontal = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    side = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_profileface.xml")

    def run(image: np.ndarray) -> Boxes:
        from poseface.faces.detect import Detection, merge_detections

        grey = cv2.resize(
            cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC
        )
        found = [(x, y, x + w, y + h) for x, y, w, h in frontal.detectMultiScale(grey, 1.1, 5)]
        if profile:
            width = grey.shape[1]
            found += [(x, y, x + w, y + h) for x, y, w, h in side.detectMultiScale(grey, 1.1, 5)]
            found += [
                (width - x - w, y, width - x, y + h)
                for x, y, w, h in side.detectMultiScale(np.ascontiguousarray(grey[:, ::-1]), 1.1, 5)
            ]
        merged = merge_detections([Detection(tuple(v / scale for v in box), 1.0, "haar") for box in found], [])
        return [d.box for d in merged]

    return run


def poseface_policy(**options) -> Callable[[np.ndarray], Boxes]:
    from poseface.faces.detect import DetectorOptions, detect_faces

    chosen = DetectorOptions(**options)
    return lambda image: [face.box for face in detect_faces(image, chosen)]


def build_photos(path: Path) -> list:
    from skimage import data

    from poseface.data.sources import open_source
    from poseface.faces.composite import BenchmarkPhoto, detection_benchmark

    source = open_source(path)
    order = np.random.default_rng(5).choice(len(source), 216, replace=False)
    photos = detection_benchmark([source.read(int(i)) for i in order])
    astronaut = data.astronaut()
    photos.append(BenchmarkPhoto("astronaut", "portrait", astronaut, [ASTRONAUT_BOX]))
    corners = np.array(
        [
            [ASTRONAUT_BOX[0], ASTRONAUT_BOX[1]],
            [ASTRONAUT_BOX[2], ASTRONAUT_BOX[1]],
            [ASTRONAUT_BOX[0], ASTRONAUT_BOX[3]],
            [ASTRONAUT_BOX[2], ASTRONAUT_BOX[3]],
        ],
        np.float64,
    )
    for angle, mirror in ((30, False), (-30, False), (20, True)):
        image = np.ascontiguousarray(astronaut[:, ::-1]) if mirror else astronaut
        points = corners * [-1, 1] + [512, 0] if mirror else corners
        rotation = cv2.getRotationMatrix2D((256, 256), angle, 1.0)
        turned = cv2.warpAffine(image, rotation, (512, 512), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        moved = points @ rotation[:, :2].T + rotation[:, 2]
        box = (*moved.min(axis=0), *moved.max(axis=0))  # the rotated box's bounds (IoU with a face's box ~0.5)
        photos.append(
            BenchmarkPhoto(f"astronaut {angle:+d} deg" + (" mirrored" if mirror else ""), "portrait", turned, [box])
        )
    return photos


def score(photos: list, detector: Callable[[np.ndarray], Boxes]) -> dict[str, float]:
    from poseface.faces.composite import score_detections

    found: dict[str, list[int]] = {}
    false_positives = true_faces = 0
    seconds = []
    for photo in photos:
        start = time.perf_counter()
        boxes = detector(photo.image)
        if photo.kind == "group":
            seconds.append(time.perf_counter() - start)
        matched, wrong = score_detections(photo.boxes, boxes)
        counts = found.setdefault(photo.kind, [0, 0])
        counts[0] += matched
        counts[1] += len(photo.boxes)
        false_positives += wrong
        true_faces += len(photo.boxes)
    row = {kind: matched / total for kind, (matched, total) in found.items() if total}
    row.update(fp=false_positives, fp_rate=false_positives / true_faces, seconds=float(np.mean(seconds)))
    return row


def network_seconds(photo) -> tuple[float, float, int]:
    """(detection, network) seconds of the bundled model's restore on `photo`, best of 2, and faces found."""
    from poseface.faces.restorer import Restorer

    restorer = Restorer(None, device="cpu")
    best = None
    for _ in range(2):
        result = restorer.restore_image(photo.image)
        timing = (result.timings["detection"], result.timings["network"], len(result.faces))
        best = timing if best is None or timing[1] < best[1] else best
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=Path, default=REPO.parent / "shared/data/utkface-faces.tar")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="only the chosen policy and its variants (no MMOD rows)")
    args = parser.parse_args()
    if not args.faces.is_file():
        print(
            f"poseface: error: {args.faces}: the UTKFace tar is needed to build the composite photos; pass --faces PATH"
        )
        sys.exit(2)
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    photos = build_photos(args.faces)
    rows: list[tuple[str, Callable]] = (
        []
        if args.quick
        else [
            ("dlib HOG, up 0 (dlib's default)", dlib_hog(0)),
            ("dlib HOG, up 1", dlib_hog(1)),
            ("dlib HOG, up 2", dlib_hog(2)),
            ("dlib MMOD CNN, up 0", dlib_mmod(0)),
            ("dlib MMOD CNN, up 1", dlib_mmod(1)),
            ("OpenCV Haar frontal (2x copy)", haar(False)),
            ("OpenCV Haar frontal + profile (2x copy)", haar(True)),
        ]
    )
    rows += [
        ("PoseFace, min_score -0.5", poseface_policy(min_score=-0.5)),
        ("PoseFace, min_score -0.7", poseface_policy(min_score=-0.7)),
        ("**PoseFace default** (min_score -0.8, min_face_size 16)", poseface_policy()),
        ("PoseFace, min_score -1.0", poseface_policy(min_score=-1.0)),
        ("PoseFace, no MMOD confirmation of weak boxes", poseface_policy(verify_below=0.0)),
        ("PoseFace, min_face_size 24 (3.3x copy)", poseface_policy(min_face_size=24)),
    ]
    faces = {
        kind: sum(len(p.boxes) for p in photos if p.kind == kind) for kind in ("group", "tiny", "small", "portrait")
    }
    print(
        f"{len(photos)} photos: {faces['group']} faces in 6 group photos, {faces['tiny']} tiny, {faces['small']} in small images, "
        f"the astronaut (as it is, rotated +-30 deg, mirrored and rotated 20 deg), {sum(p.kind == 'none' for p in photos)} "
        f"without a face; {args.threads} threads\n"
    )
    print(
        "| detector | recall, group (30-45 px) | recall, tiny (16-24 px) | recall, small images | astronaut (4 views) | "
        "false positives (% of faces) | s / group photo |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, detector in rows:
        r = score(photos, detector)
        print(
            f"| {name} | {r['group']:.1%} | {r['tiny']:.1%} | {r['small']:.1%} | {r['portrait']:.0%} "
            f"| {r['fp']} ({r['fp_rate']:.1%}) | {r['seconds']:.2f} |",
            flush=True,
        )
    detection, network, found = network_seconds(photos[0])
    print(
        f"\n{photos[0].name} ({photos[0].image.shape[1]}x{photos[0].image.shape[0]}) through `poseface restore` with the bundled "
        f"model: detection + landmarks {detection:.2f} s, network {network:.2f} s, {found} of {len(photos[0].boxes)} faces"
    )


if __name__ == "__main__":
    main()
