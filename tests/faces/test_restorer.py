from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import poseface
import poseface.imageio
from poseface.errors import PoseFaceError
from poseface.faces import restorer as restorer_module
from poseface.faces.align import invert_affine, warp_affine
from poseface.faces.paste import upscale_matrix
from poseface.faces.restorer import Restorer

from .conftest import ConstantModel, IdentityModel


def face_support(restorer: Restorer, face, height: int, width: int, scale: float = 1.0) -> np.ndarray:
    """Where the warped mask of `face` is non-zero in the (up-scaled) image, grown by 2 px."""
    matrix = upscale_matrix(face.matrix, scale)
    warped = warp_affine(restorer.mask[..., None], invert_affine(matrix), height, width)[..., 0]
    return cv2.dilate((np.abs(warped) > 1e-6).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0


def test_poseface_restorer_is_exported():
    assert poseface.Restorer is Restorer


def test_identity_model_gives_the_photo_back(astronaut):
    restorer = Restorer(model=IdentityModel(512), device="cpu")
    result = restorer.restore_image(astronaut)
    assert len(result.faces) == 1 and result.image.dtype == np.uint8 and result.image.shape == astronaut.shape
    difference = np.abs(result.image.astype(int) - astronaut).max(axis=2)
    inside = face_support(restorer, result.faces[0], 512, 512)
    assert difference[~inside].max() == 0  # outside the face: bit-exact
    # inside (feathered border included): 99.9 % within 1/255; the rest are eye highlights at 2/255
    assert (difference[inside] <= 1).mean() > 0.999 and difference.max() <= 2
    assert set(result.timings) == {"detection", "alignment", "network", "paste"}


def test_constant_face_changes_pixels_only_inside_the_face(astronaut):
    color = (250, 20, 200)
    restorer = Restorer(model=ConstantModel(color, size=128), device="cpu", keep_detail=False)  # the raw network output
    result = restorer.restore_image(astronaut)
    face = result.faces[0]
    assert (face.restored == color).all() and face.crop.shape == (128, 128, 3)
    changed = (result.image != astronaut).any(axis=2)
    inside = face_support(restorer, face, 512, 512)
    assert changed.any() and not (changed & ~inside).any()
    ys, xs = np.nonzero(inside)
    box_width = face.box[2] - face.box[0]  # 87 px
    assert 1.2 * box_width < xs.max() - xs.min() < 2.2 * box_width and ys.max() - ys.min() < 2.4 * box_width
    eyes = np.rint(face.points5[:2].mean(axis=0)).astype(int)
    assert np.abs(result.image[eyes[1], eyes[0]].astype(int) - color).max() <= 1


def test_fidelity_blends_restored_and_input_faces(astronaut):
    color = np.array([250, 20, 200])
    eyes = None
    values = {}
    for fidelity in (0.0, 0.5, 1.0):
        result = Restorer(
            model=ConstantModel(tuple(color), size=128), device="cpu", fidelity=fidelity, keep_detail=False
        ).restore_image(astronaut)
        eyes = np.rint(result.faces[0].points5[:2].mean(axis=0)).astype(int)
        values[fidelity] = result.image
    assert (
        np.abs(values[0.0].astype(int) - astronaut).max() <= 60
    )  # fidelity 0 = the input face (through a 128-px crop)
    middle = values[0.5][eyes[1], eyes[0]].astype(float)
    expected = (values[0.0][eyes[1], eyes[0]].astype(float) + color) / 2
    assert np.abs(middle - expected).max() <= 1.5
    with pytest.raises(PoseFaceError, match="fidelity"):
        Restorer(model=IdentityModel(128), device="cpu", fidelity=1.5)


def test_faces_of_several_images_share_network_batches(astronaut):
    model = IdentityModel(128)
    restorer = Restorer(model=model, device="cpu", batch_size=2)
    images = [astronaut, astronaut[:, ::-1].copy(), np.full((64, 64, 3), 9, np.uint8), astronaut]
    results = dict(restorer.restore_stream(enumerate(images)))
    assert [len(results[k].faces) for k in range(4)] == [1, 1, 0, 1]
    assert model.batch_sizes == [2, 1]  # first two faces together, then the last one
    alone = Restorer(model=IdentityModel(128), device="cpu", batch_size=1).restore_image(images[1])
    np.testing.assert_array_equal(alone.image, results[1].image)
    np.testing.assert_array_equal(results[2].image, images[2])  # no face: unchanged


def test_images_without_faces_are_not_held_back(astronaut):
    restorer = Restorer(model=IdentityModel(64), device="cpu", batch_size=2)
    read = []

    def images():
        for k in range(5):
            read.append(k)
            yield k, np.full((40, 40, 3), k, np.uint8)

    stream = restorer.restore_stream(images())
    assert next(stream)[0] == 0 and len(read) == 2  # yielded after 2 images, not after all 5


def test_restore_faces_batches_and_checks_its_input():
    model = IdentityModel(32)
    restorer = Restorer(model=model, device="cpu", batch_size=3)
    faces = np.random.default_rng(0).integers(0, 256, size=(7, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(restorer.restore_faces(faces), faces)
    assert model.batch_sizes == [3, 3, 1]
    with pytest.raises(PoseFaceError, match="expected"):
        restorer.restore_faces(faces[:, :16])


def test_grey_rgba_and_16_bit_images_keep_their_layout(astronaut):
    restorer = Restorer(model=IdentityModel(512), device="cpu")
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    out = restorer.restore_image(grey)
    assert out.image.shape == grey.shape and len(out.faces) == 1
    assert np.abs(out.image.astype(int) - grey).max() <= 2

    alpha = np.tile(np.arange(512, dtype=np.uint8)[None] // 2, (512, 1))
    rgba = np.dstack([astronaut, alpha])
    out = restorer.restore_image(rgba)
    assert out.image.shape == (512, 512, 4)
    np.testing.assert_array_equal(out.image[..., 3], alpha)

    deep = astronaut.astype(np.uint16) * 257 + np.random.default_rng(0).integers(0, 200, size=astronaut.shape).astype(
        np.uint16
    )
    out = restorer.restore_image(deep)
    assert out.image.dtype == np.uint16
    inside = face_support(restorer, out.faces[0], 512, 512)
    difference = np.abs(out.image.astype(np.int64) - deep).max(axis=2)
    assert difference[~inside].max() == 0  # the 16-bit background is untouched
    # the identity keeps the 16-bit detail in the face too: less than half the error of an 8-bit round trip
    eight_bit = np.rint(deep / 257.0) * 257
    quantisation = np.abs(eight_bit - deep).max(axis=2)
    assert difference[inside].mean() < 0.5 * quantisation[inside].mean()
    assert np.percentile(difference[inside], 99.9) <= 2 * 257


def test_upscale_lanczos_background_and_pasted_face(astronaut):
    restorer = Restorer(model=IdentityModel(512), device="cpu", upscale=2)
    result = restorer.restore_image(astronaut)
    assert result.image.shape == (1024, 1024, 3)
    lanczos = cv2.resize(astronaut, (1024, 1024), interpolation=cv2.INTER_LANCZOS4)
    inside = face_support(restorer, result.faces[0], 1024, 1024, scale=2.0)
    difference = np.abs(result.image.astype(int) - lanczos).max(axis=2)
    assert difference[~inside].max() == 0
    assert np.mean(difference[inside]) < 2.0  # bicubic vs Lanczos interpolation of the same face


def test_aligned_inputs_skip_detection_and_paste_back():
    restorer = Restorer(model=ConstantModel((10, 20, 30), size=64), device="cpu", aligned=True, upscale=2)
    result = restorer.restore_image(np.full((100, 100, 3), 200, np.uint8))
    assert result.image.shape == (200, 200, 3)
    assert len(result.faces) == 1 and result.faces[0].detector == "aligned"
    assert np.abs(result.image.astype(int) - (10, 20, 30)).max() <= 1


def test_only_center_face(astronaut):
    doubled = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)
    assert len(Restorer(model=IdentityModel(64), device="cpu").restore_image(doubled).faces) == 2
    result = Restorer(model=IdentityModel(64), device="cpu", only_center_face=True).restore_image(doubled)
    assert len(result.faces) == 1 and result.faces[0].box[0] > 512


def test_bf16_runs_on_cpu_and_fp16_is_refused(astronaut):
    class Conv(IdentityModel):
        def __init__(self):
            super().__init__(64)
            self.conv = torch.nn.Conv2d(3, 3, 1)
            torch.nn.init.eye_(self.conv.weight[:, :, 0, 0])
            torch.nn.init.zeros_(self.conv.bias)

        def forward(self, x):
            return self.conv(x)

    faces = np.random.default_rng(0).integers(0, 256, size=(2, 64, 64, 3), dtype=np.uint8)
    out = Restorer(model=Conv(), device="cpu", precision="bf16").restore_faces(faces)
    assert np.abs(out.astype(int) - faces).max() <= 2  # bf16 rounding of a 1x1 identity conv
    with pytest.raises(PoseFaceError, match="fp16.*CUDA"):
        Restorer(model=Conv(), device="cpu", precision="fp16")


def test_device_and_model_errors(monkeypatch):
    if not torch.cuda.is_available():
        with pytest.raises(PoseFaceError, match="no CUDA device"):
            Restorer(model=IdentityModel(64), device="cuda")
    assert Restorer(model=IdentityModel(64), device="auto").device.type in ("cpu", "cuda", "mps")
    with pytest.raises(PoseFaceError, match="no .config"):
        Restorer(model=torch.nn.Identity(), device="cpu")

    from poseface import models

    monkeypatch.setattr(models, "BUNDLED_WEIGHTS", Path("/nonexistent/poseface-small.safetensors"))
    with pytest.raises(
        PoseFaceError, match="the bundled model is missing from this installation; reinstall poseface or pass --weights"
    ):
        Restorer(device="cpu")
    with pytest.raises(PoseFaceError, match="no such weights file"):
        restorer_module.load_restoration_model("/nonexistent/model.pth", torch.device("cpu"))


@pytest.mark.parametrize("shape", [(1, 1, 3), (2, 3), (1, 300, 3), (7, 7, 4), (3, 3, 2)])
def test_tiny_images_pass_through_without_a_face(shape):
    image = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    result = Restorer(model=IdentityModel(64), device="cpu").restore_image(image)  # detector "auto" reaches MMOD
    assert result.faces == []
    np.testing.assert_array_equal(result.image, image)


class Stripes(IdentityModel):
    """restored = input + vertical stripes of period 2 crop pixels: detail finer than the output's pixels."""

    def forward(self, x):
        y = x.clone()
        y[..., 0::2] += 0.3
        y[..., 1::2] -= 0.3
        return y


def test_antialias_removes_aliasing_of_detail_finer_than_the_output(astronaut):
    changes = {}
    for antialias in (False, True):
        restorer = Restorer(model=Stripes(512), device="cpu", antialias=antialias)
        result = restorer.restore_image(astronaut)
        inside = face_support(restorer, result.faces[0], 512, 512)
        changes[antialias] = np.abs(result.image.astype(float) - astronaut)[inside].mean()
        assert (result.image != astronaut).any(axis=2)[~inside].sum() == 0
    # The stripes average out at the output's resolution; point sampling turns them into a
    # visible pattern (measured 15.8 grey levels on average), the prefilter does not (1.9).
    assert changes[False] > 10 and changes[True] < 3


class NaNModel(IdentityModel):
    """Gives NaN for every face: a broken checkpoint or an overflowing kernel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x, float("nan"))


def test_non_finite_network_output_leaves_the_face_as_it_was_in_fp32(astronaut, tmp_path, capsys):
    result = Restorer(model=NaNModel(128), device="cpu").restore_image(astronaut)
    face = result.faces[0]
    assert face.non_finite and np.array_equal(face.restored, face.crop)
    assert np.array_equal(result.image, astronaut)  # no black face: the photo's own pixels, untouched
    from poseface.faces.run import RunOptions, restore_files

    photo = tmp_path / "in" / "astronaut.png"
    poseface.imageio.write_image(photo, astronaut)
    summary = restore_files(
        Restorer(model=NaNModel(128), device="cpu"), [str(photo)], RunOptions(output=tmp_path / "out")
    )
    assert summary.non_finite_faces == 1 and summary.faces_restored == 0
    assert "astronaut.png: the network gave NaN/inf for face(s) 0" in capsys.readouterr().err


def test_aligned_inputs_smaller_than_the_minimum_are_refused():
    from poseface.faces.restorer import MIN_ALIGNED_SIZE

    restorer = Restorer(model=IdentityModel(64), device="cpu", aligned=True)
    with pytest.raises(PoseFaceError, match=r"aligned input of 40x15 pixels is smaller than the minimum of 16 px"):
        restorer.restore_image(np.zeros((MIN_ALIGNED_SIZE - 1, 40, 3), np.uint8))
    assert restorer.restore_image(np.zeros((MIN_ALIGNED_SIZE, MIN_ALIGNED_SIZE, 3), np.uint8)).image.shape == (
        16,
        16,
        3,
    )


def test_an_aligned_crop_cut_with_another_template_is_mapped_to_the_models_and_back(astronaut):
    """An FFHQ-template crop fed to a model with a tighter (UTKFace-like) template is re-aligned, not squashed."""
    from poseface.faces.align import align_face
    from poseface.faces.detect import detect_faces
    from poseface.models.config import ModelConfig

    points = detect_faces(astronaut)[0].points5
    ffhq = np.asarray(ModelConfig(size=256).template())
    ffhq_crop = np.clip(np.rint(align_face(astronaut, points, ffhq, 256).crop), 0, 255).astype(np.uint8)
    tight = ModelConfig(size=128, face_template=tuple(map(tuple, (ffhq / 2 - 64) * 1.4 + 64)))  # the face 1.4x larger
    model = IdentityModel(128)
    model.config = tight
    restorer = Restorer(model=model, device="cpu", aligned=True, keep_detail=False)
    result = restorer.restore_image(ffhq_crop)
    face = result.faces[0]
    assert face.alignment == "5-point" and face.detector != "aligned"
    seen = detect_faces(face.crop)[0].points5  # what the network saw has its eyes on the model's template
    assert np.abs(seen[:2] - np.asarray(tight.template())[:2]).max() < 3
    assert (
        result.image.shape == ffhq_crop.shape and np.abs(result.image.astype(int) - ffhq_crop).mean() < 2
    )  # identity model: back as it was
    # a crop already at the model's template is taken as it is
    own = np.clip(np.rint(align_face(astronaut, points, np.asarray(tight.template()) * 2, 256).crop), 0, 255).astype(
        np.uint8
    )
    assert restorer.restore_image(own).faces[0].alignment == "as given"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"upscale": 20}, "upscale=20: must be between 1 and 16 (the output size factor)"),
        ({"batch_size": 0}, "batch_size=0: must be at least 1"),
        (
            {"precision": "fp16"},
            "precision=fp16: half precision runs only on CUDA, not on cpu; use precision=bf16 (fast on recent CPUs) or fp32",
        ),
    ],
)
def test_the_library_names_its_parameters(kwargs, message):
    with pytest.raises(PoseFaceError) as caught:
        Restorer(model=IdentityModel(64), device="cpu", **kwargs)
    assert (
        str(caught.value) == message
    )  # `poseface restore` shows --upscale, --batch-size, --precision (test_restore_cli)


def test_aligned_crops_are_resized_to_the_model_as_in_training(monkeypatch):
    from poseface.data.imageops import resize_to_model

    monkeypatch.setattr(Restorer, "_off_template_face", lambda self, crop8: None)  # as given: no re-alignment
    crop = np.random.default_rng(1).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    result = Restorer(model=IdentityModel(64), device="cpu", aligned=True, keep_detail=False).restore_image(crop)
    expected = np.clip(np.rint(resize_to_model(crop.astype(np.float32), 64)), 0, 255).astype(np.uint8)
    assert np.array_equal(result.faces[0].crop, expected)  # bicubic up, as training enlarges
