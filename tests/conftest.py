import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POSEFACE_SHARED", REPO.parent / "shared"))
GPEN_PARITY = SHARED / "gpen_parity" / "size64"
UTKFACE_TAR = Path(os.environ.get("POSEFACE_UTKFACE", SHARED / "data" / "utkface-faces.tar"))

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def gpen_parity_dir() -> Path:
    if not (GPEN_PARITY / "io.pth").is_file():
        pytest.skip(f"GPEN parity vectors not found at {GPEN_PARITY}")
    return GPEN_PARITY


@pytest.fixture
def utkface_tar() -> Path:
    if not UTKFACE_TAR.is_file():
        pytest.skip(f"UTKFace tar not found at {UTKFACE_TAR}")
    return UTKFACE_TAR
