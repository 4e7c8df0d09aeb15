"""Small data the data tests build themselves: a face crop (scikit-image's astronaut), a flat grey
image, a broken file and a non-image, as a folder and as a tar. UTKFace tests skip without the tar."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

from poseface.imageio import write_image

REPO = Path(__file__).resolve().parents[2]


def utkface_path() -> Path:
    return Path(os.environ.get("POSEFACE_UTKFACE", REPO.parent / "shared/data/utkface-faces.tar"))


@pytest.fixture
def utkface_tar() -> Path:
    path = utkface_path()
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture(scope="session")
def face_crop() -> np.ndarray:
    """A 200x200 RGB crop around the astronaut's face (dlib's HOG finds it)."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[40:240, 120:320])


@pytest.fixture(scope="session")
def textured_image() -> np.ndarray:
    """256x256 RGB with detail at every frequency (the astronaut, resized)."""
    import cv2
    from skimage import data

    return cv2.resize(data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)


@pytest.fixture
def image_folder(tmp_path: Path, face_crop: np.ndarray) -> Path:
    """face.png, face_flipped.jpg, sub/grey.png, broken.jpg (not an image), notes.txt (ignored)."""
    folder = tmp_path / "hq"
    write_image(folder / "face.png", face_crop)
    write_image(folder / "face_flipped.jpg", face_crop[:, ::-1], quality=95)
    write_image(folder / "sub" / "grey.png", np.full((160, 120, 3), 128, dtype=np.uint8))
    (folder / "broken.jpg").write_bytes(b"this is not a jpeg")
    (folder / "notes.txt").write_text("not an image")
    return folder


def make_tar(folder: Path, tar_path: Path, prefix: str = "faces/") -> Path:
    with tarfile.open(tar_path, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.add(path, arcname=prefix + path.relative_to(folder).as_posix())
    return tar_path


@pytest.fixture
def image_tar(tmp_path: Path, image_folder: Path) -> Path:
    return make_tar(image_folder, tmp_path / "hq.tar")
