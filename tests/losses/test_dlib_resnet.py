"""The torch re-expression of dlib's face ResNet against dlib's own descriptors on the same 150 px chips."""

import numpy as np
import pytest
import torch
from skimage import data

from poseface.errors import PoseFaceError
from poseface.faces import dlib_models
from poseface.losses.dlib_resnet import INPUT_SIZE, chips_to_tensor, load_dlib_resnet, read_dlib_net

dlib = pytest.importorskip("dlib")
TOLERANCE = 1e-4


def face_chip(image: np.ndarray) -> np.ndarray:
    rects = dlib_models.hog_detector()(image, 1)
    rect = rects[0] if len(rects) else dlib.rectangle(0, 0, image.shape[1] - 1, image.shape[0] - 1)
    shape = dlib_models.shape_predictor(dlib_models.LANDMARKS_5)(np.ascontiguousarray(image), rect)
    return dlib.get_face_chip(np.ascontiguousarray(image), shape, INPUT_SIZE, 0.25)


def max_difference(chips: list[np.ndarray]) -> float:
    reference = np.array([dlib_models.face_recognizer().compute_face_descriptor(chip) for chip in chips])
    with torch.no_grad():
        ours = load_dlib_resnet()(chips_to_tensor(np.stack(chips))).double().numpy()
    return float(np.abs(ours - reference).max())


def test_astronaut_and_transforms_match_dlib():
    chip = face_chip(data.astronaut())
    rng = np.random.default_rng(0)
    noisy = np.clip(chip + rng.normal(0, 20, chip.shape), 0, 255).astype(np.uint8)
    chips = [chip, chip[:, ::-1].copy(), noisy, (chip * 0.6).astype(np.uint8), np.roll(chip, 7, axis=0)]
    assert max_difference(chips) < TOLERANCE


def test_utkface_faces_match_dlib(utkface_tar):
    from poseface.data.sources import open_source

    source = open_source(utkface_tar)
    chips = [face_chip(source.read(index)) for index in range(0, min(len(source), 24 * 37), 37)][:24]
    assert len(chips) >= 20
    assert max_difference(chips) < TOLERANCE


def test_layers_read_from_the_file():
    net = read_dlib_net(dlib_models.model_path(dlib_models.FACE_RECOGNITION))
    assert net.size == (150, 150)
    assert np.allclose(net.means, (122.782, 117.001, 104.298), atol=1e-4)
    assert sum(layer.kind == "con" for layer in net.layers) == 29
    assert net.layers[-1].kind == "fc" and net.layers[-1].ints == [128, 256, 1]  # fc without bias


def test_corrupt_or_missing_file_is_one_line(tmp_path):
    source = dlib_models.model_path(dlib_models.FACE_RECOGNITION).read_bytes()
    bad = tmp_path / "cut.dat"
    bad.write_bytes(source[:50_000])
    for path in (bad, tmp_path / "missing.dat"):
        with pytest.raises(PoseFaceError) as error:
            load_dlib_resnet(path)
        assert str(path) in str(error.value) and "\n" not in str(error.value)
