import numpy as np
import pytest
from skimage import data


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return data.astronaut()  # 512x512 RGB uint8, one face of about 90 px


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    """An empty weights cache, so nothing pretrained is found (and nothing is downloaded)."""
    monkeypatch.setenv("POSEFACE_HOME", str(tmp_path / "weights-cache"))
    return tmp_path / "weights-cache"
