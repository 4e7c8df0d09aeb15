"""tools/pack_gpu_data.py: the packed tar, landmarks and split are what poseface's data loader expects."""

from __future__ import annotations

import argparse
import importlib.util
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from poseface.data.curate import rank
from poseface.data.dataset import FaceDataset, in_validation_split
from poseface.imageio import write_image

REPO = Path(__file__).resolve().parents[2]


def load_tool():
    spec = importlib.util.spec_from_file_location("pack_gpu_data", REPO / "tools" / "pack_gpu_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def face_points(rng: np.random.Generator) -> list[list[float]]:
    """68 points shaped like a face in a 200 px crop: eyes at y 80, mouth at y 140 (plausible boxes)."""
    points = np.zeros((68, 2))
    points[:36] = rng.uniform(40, 160, (36, 2))
    points[36:42] = [70, 80] + rng.uniform(-8, 8, (6, 2))
    points[42:48] = [130, 80] + rng.uniform(-8, 8, (6, 2))
    points[48:68] = [100, 140] + rng.uniform(-15, 15, (20, 2))
    return points.round(3).tolist()


@pytest.fixture
def source(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    names = [f"faces/{i:03d}.jpg" for i in range(60)]
    tar_path = tmp_path / "faces.tar"
    with tarfile.open(tar_path, "w") as archive:
        for name in names:
            image_path = tmp_path / "image.png"
            write_image(image_path, rng.integers(0, 256, (200, 200, 3), dtype=np.uint8))
            archive.add(image_path, arcname=name)
    landmarks = {
        "format": "poseface-landmarks-68",
        "version": 1,
        "source": str(tar_path),
        "predictor": "test",
        "faces": {n: {"size": [200, 200], "method": "hog", "points": face_points(rng)} for n in names},
        "no_face": {},
        "unreadable": [],
    }
    (tmp_path / "landmarks.json").write_text(json.dumps(landmarks))
    train = [n for n in names if not in_validation_split(n, 0.1)]
    (tmp_path / "keep.json").write_text(json.dumps(rank(train, list(rng.random(len(train))), 0.5, 128).to_json()))
    (tmp_path / "dlib.dat").write_bytes(b"dlib")
    return {
        "tar": tar_path,
        "landmarks": tmp_path / "landmarks.json",
        "keep": tmp_path / "keep.json",
        "dlib": tmp_path / "dlib.dat",
    }


def arguments(source: dict[str, Path], out: Path, budget_mib: float = 10.0) -> argparse.Namespace:
    return argparse.Namespace(
        source=str(source["tar"]),
        keep=str(source["keep"]),
        landmarks=str(source["landmarks"]),
        out=str(out),
        size=128,
        quality=95,
        budget_mib=budget_mib,
        val_fraction=0.1,
        dlib_weights=str(source["dlib"]),
        limit=None,
    )


def test_packed_faces_load_with_the_same_split_and_boxes(source, tmp_path):
    manifest = load_tool().pack(arguments(source, tmp_path / "pack"))
    keep = json.loads(source["keep"].read_text())
    assert manifest["faces"]["train"] == len(keep["kept"])
    packed = FaceDataset(
        tmp_path / "pack" / "faces.tar",
        128,
        "paper",
        landmarks=tmp_path / "pack" / "landmarks.json",
        split="train",
        val_fraction=0.1,
        augment_flip=False,
    )
    original = FaceDataset(
        source["tar"],
        128,
        "paper",
        landmarks=source["landmarks"],
        split="train",
        val_fraction=0.1,
        augment_flip=False,
        keep_names=set(keep["kept"]),
    )
    assert packed.source.names == sorted(packed.source.names) and len(packed) == len(original)
    for index in range(len(packed)):
        a, b = packed[index], original[index]
        assert a["name"] == b["name"] and bool(a["has_boxes"])
        np.testing.assert_allclose(a["boxes"].numpy(), b["boxes"].numpy(), atol=0.01)
    val = FaceDataset(tmp_path / "pack" / "faces.tar", 128, "paper", split="val", val_fraction=0.1)
    assert len(val) == manifest["faces"]["val"] > 0
    with tarfile.open(tmp_path / "pack" / "faces.tar") as archive:
        member = archive.getmembers()[0]
        assert archive.extractfile(member).read(2) == b"\xff\xd8"  # JPEG


def test_the_budget_keeps_every_validation_face_and_the_sharpest_training_faces(source, tmp_path):
    full = load_tool().pack(arguments(source, tmp_path / "full"))
    small = load_tool().pack(arguments(source, tmp_path / "small", budget_mib=0.8 * full["total_mib"]))
    assert small["faces"]["val"] == full["faces"]["val"]
    assert 0 < small["faces"]["train"] < full["faces"]["train"]
    ranked = json.loads(source["keep"].read_text())["kept"]
    with tarfile.open(tmp_path / "small" / "faces.tar") as archive:
        packed = [m.name for m in archive.getmembers() if not in_validation_split(m.name, 0.1)]
    assert packed == ranked[: len(packed)]
