"""Curated training targets: rank HQ faces by sharpness at the model size and keep the best.

UTKFace (and any web-scraped face set) holds many blurry, up-scaled faces; a restorer trained to
reproduce them learns blur. The measure is the *normalised Laplacian energy* of the grey face at the
model size, on the central square (the face, not the background):

    sharpness = var(laplacian(g)) / (var(g) + 1)      g in [0, 255]

Dividing by the face's own contrast keeps dark, low-contrast but sharp faces (old photos, dark skin)
from being ranked as blurry. An image up-scaled from a smaller original has almost no energy near
the Nyquist frequency, so its Laplacian variance is small for its contrast.

`poseface curate DATA -o keep.json --keep-fraction 0.5` writes the ranking; training reads it with
`data.keep_list: keep.json`. The validation split is left out of the ranking (it is never filtered),
so curated and uncurated runs are measured on the same faces.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from poseface.data.imageops import resize_to_square
from poseface.errors import PoseFaceError

CENTRE_FRACTION = 0.7  # the central 70% of an aligned crop holds eyes, nose and mouth


def sharpness(image: np.ndarray, size: int) -> float:
    """Normalised Laplacian energy of the centre of `image` resized to the model size (see module doc)."""
    face = resize_to_square(image, size)
    grey = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY).astype(np.float64)
    margin = int(round(size * (1.0 - CENTRE_FRACTION) / 2))
    centre = grey[margin : size - margin, margin : size - margin]
    laplacian = cv2.Laplacian(centre, cv2.CV_64F, ksize=1)
    return float(laplacian.var() / (centre.var() + 1.0))


@dataclass
class Ranking:
    """Names sorted from sharpest to blurriest with their scores, and how many are kept."""

    names: list[str]
    scores: list[float]
    keep: int
    size: int
    measure: str = "var(laplacian) / (var + 1) of the grey centre at the model size"
    skipped: list[str] = field(default_factory=list)  # unreadable images, left out of the ranking

    @property
    def kept(self) -> list[str]:
        return self.names[: self.keep]

    @property
    def dropped(self) -> list[str]:
        return self.names[self.keep :]

    def to_json(self) -> dict:
        return {
            "measure": self.measure,
            "size": self.size,
            "keep": self.keep,
            "kept": self.kept,
            "ranking": [[n, round(s, 5)] for n, s in zip(self.names, self.scores)],
        }


def rank(names: list[str], scores: list[float], keep_fraction: float, size: int) -> Ranking:
    if not 0.0 < keep_fraction <= 1.0:
        raise PoseFaceError(f"keep fraction {keep_fraction}: must be in (0, 1]")
    order = sorted(range(len(names)), key=lambda i: (-scores[i], names[i]))
    keep = max(1, int(round(keep_fraction * len(names))))
    return Ranking([names[i] for i in order], [scores[i] for i in order], keep, size)


def load_keep_list(path: str | os.PathLike) -> set[str]:
    """The kept names of a `poseface curate` file; one-line error if it is not one."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
        kept = document["kept"]
    except FileNotFoundError:
        raise PoseFaceError(
            f"{path}: no such keep list; write one with `poseface curate DATA -o {path.name}`"
        ) from None
    except (OSError, ValueError, KeyError, TypeError):
        raise PoseFaceError(
            f'{path}: not a keep list from `poseface curate` (no "kept" names); write it again'
        ) from None
    if not isinstance(kept, list) or not kept:
        raise PoseFaceError(f"{path}: the keep list is empty; run `poseface curate` with a larger --keep-fraction")
    return set(map(str, kept))


def curate_source(
    data: str | os.PathLike, size: int, keep_fraction: float, val_fraction: float = 0.02, progress: bool = True
) -> Ranking:
    """Score every training-split face of `data` (the validation split is left out) and rank them."""
    from tqdm import tqdm

    from poseface.data.dataset import in_validation_split
    from poseface.data.sources import open_source

    source = open_source(data)
    names, scores = [], []
    indices = [i for i, n in enumerate(source.names) if not in_validation_split(n, val_fraction)]
    for index in tqdm(indices, desc="curate", unit="img", disable=not progress, mininterval=1.0):
        image = source.read_or_skip(index)
        if image is not None:
            names.append(source.names[index])
            scores.append(sharpness(image, size))
    if not names:
        raise PoseFaceError(f"{source.root}: no readable training image to rank")
    ranking = rank(names, scores, keep_fraction, size)
    ranking.skipped = list(source.skipped)
    return ranking


def kept_dropped_sheet(data: str | os.PathLike, ranking: Ranking, per_row: int = 8) -> np.ndarray:
    """Contact sheet, one row each: the sharpest, the last kept, the first dropped, the blurriest; captions = scores."""
    from poseface.data.sources import open_source
    from poseface.data.visualize import contact_sheet

    source = open_source(data)
    n, keep = len(ranking.names), ranking.keep
    rows = [
        ("sharpest", range(0, per_row)),
        ("last kept", range(keep - per_row, keep)),
        ("first dropped", range(keep, min(n, keep + per_row))),
        ("blurriest", range(n - per_row, n)),
    ]
    images, captions = [], []
    for label, positions in rows:
        positions = [p for p in positions if 0 <= p < n]
        if not positions:
            continue
        images.append([resize_to_square(source.read(source.index_of(ranking.names[p])), 128) for p in positions])
        verdict = "kept" if positions[0] < keep else "dropped"
        captions.append(
            [
                f"{verdict} {ranking.scores[p]:.3f}" if i else f"{label} {ranking.scores[p]:.3f}"
                for i, p in enumerate(positions)
            ]
        )
    width = max(len(row) for row in images)
    images = [row + [np.full((96, 96, 3), 255, np.uint8)] * (width - len(row)) for row in images]
    captions = [row + [""] * (width - len(row)) for row in captions]
    return contact_sheet(images, [f"#{i + 1}" for i in range(width)], cell_size=128, captions=captions)
