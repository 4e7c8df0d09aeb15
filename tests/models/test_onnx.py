"""ONNX export (`poseface export --onnx`) and the ONNX Runtime backend of `poseface restore`.

The modulation tests need only torch; the export and backend tests skip without onnx, onnxscript
and onnxruntime (`pip install 'poseface[onnx]'`; `make test` installs them).
"""

import importlib.util
import json
import sys

import numpy as np
import pytest
import torch

from poseface import models
from poseface.cli import main
from poseface.errors import PoseFaceError
from poseface.models.network import inference_forward
from poseface.models.stylegan2 import ModulatedConv2d

HAVE_ONNX = all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxscript", "onnxruntime"))
needs_onnx = pytest.mark.skipif(
    not HAVE_ONNX, reason="needs onnx, onnxscript and onnxruntime (pip install 'poseface[onnx]')"
)


def conv_variants() -> list[ModulatedConv2d]:
    torch.manual_seed(0)
    convs = [
        ModulatedConv2d(6, 5, 3, 16),
        ModulatedConv2d(6, 5, 3, 16, upsample=True),
        ModulatedConv2d(6, 3, 1, 16, demodulate=False),
    ]
    for conv in convs:
        with torch.no_grad():
            conv.modulation.bias.uniform_(0.5, 1.5)
    return convs


@pytest.mark.parametrize("index", range(3))
def test_activation_modulation_equals_weight_modulation(index):
    conv = conv_variants()[index]
    x, w, bias = torch.randn(3, 6, 8, 8), torch.randn(3, 16), torch.randn(conv.out_channels)
    with torch.no_grad():
        reference = conv(x, w, gain=2**0.5, bias=bias, modulate="weights")
        batched = conv(x, w, gain=2**0.5, bias=bias, modulate="activations")
    assert reference.shape == batched.shape
    assert (batched - reference).abs().max() < 1e-4


@pytest.mark.parametrize("grad", [True, False])
def test_modulate_is_chosen_by_the_argument_not_by_autograd(monkeypatch, grad):
    conv = conv_variants()[0]
    calls = []
    original = ModulatedConv2d._conv
    monkeypatch.setattr(
        ModulatedConv2d, "_conv", lambda self, x, weight: calls.append(x.shape[0]) or original(self, x, weight)
    )
    x, w = torch.randn(3, 6, 8, 8), torch.randn(3, 16)
    with torch.set_grad_enabled(grad):
        conv(x, w, modulate="activations")
        assert calls == [3]  # one convolution for the batch
        calls.clear()
        conv(x, w, modulate="weights")
        assert calls == [1, 1, 1]  # one convolution per sample
    with pytest.raises(ValueError, match="modulate='bogus'"):
        conv(x, w, modulate="bogus")


def test_bundled_model_batched_modulation_matches_the_reference_path():
    model = models.load_model(models.bundled_weights())
    x = torch.rand(3, 3, 128, 128, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        reference = model(x, modulate="weights")
        batched = model(x, modulate="activations")
        default_without_grad = model(x)
    default_with_grad = model(x).detach()
    assert torch.equal(default_without_grad, batched)  # the default path does not depend on autograd
    assert torch.equal(default_with_grad, batched)
    assert (batched - reference).abs().max() < 1e-4
    with torch.no_grad():
        assert torch.equal(inference_forward(model)(x), reference)  # restore and validation: the reference path
    stand_in = torch.nn.Identity()
    assert inference_forward(stand_in) is stand_in  # other modules are called as they are


# ---- export ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundled_onnx(tmp_path_factory):
    """The bundled model exported by the command line, once for this module."""
    if not HAVE_ONNX:
        pytest.skip("needs onnx, onnxscript and onnxruntime")
    path = tmp_path_factory.mktemp("onnx") / "bundled.onnx"
    assert main(["export", "--onnx", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def bundled_model():
    return models.load_model(models.bundled_weights())


@needs_onnx
@pytest.mark.slow
def test_export_matches_pytorch_at_batch_1_and_3_on_random_and_real_faces(bundled_onnx, bundled_model):
    import onnxruntime

    from poseface.models.onnx_export import astronaut_faces, to_model_input

    session = onnxruntime.InferenceSession(str(bundled_onnx), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["faces"]  # one input: no noise to feed
    assert isinstance(session.get_inputs()[0].shape[0], str)  # a symbolic, dynamic batch axis
    real = to_model_input(astronaut_faces(128, np.asarray(bundled_model.config.template())))
    noise = torch.rand(3, 3, 128, 128, generator=torch.Generator().manual_seed(1)) * 2 - 1
    for x in (noise[:1], noise, real[:1], real):
        with torch.no_grad():
            expected = bundled_model(x).numpy()
        out = session.run(None, {"faces": x.numpy()})[0]
        assert out.shape == expected.shape
        assert np.abs(out - expected).max() < 1e-3
    assert np.abs(expected).max() > 0.5  # a real output, not zeros matching zeros


@needs_onnx
@pytest.mark.slow
def test_export_stores_config_template_and_opset_in_metadata_props(bundled_onnx, bundled_model, capsys):
    import onnx

    props = {p.key: p.value for p in onnx.load(str(bundled_onnx), load_external_data=False).metadata_props}
    document = json.loads(props["poseface"])
    assert document["format"] == "poseface" and document["config"]["size"] == 128
    assert np.allclose(document["face_template"], bundled_model.config.template())
    assert json.loads(props["poseface_onnx"])["opset"] == 18
    assert main(["export", "--onnx", str(bundled_onnx)]) == 2  # never replaced without --overwrite
    assert "already exists" in capsys.readouterr().err


@needs_onnx
@pytest.mark.slow
def test_restorer_runs_the_onnx_export_like_the_torch_model(bundled_onnx, bundled_model):
    from poseface.faces import Restorer
    from poseface.models.onnx_export import astronaut_faces

    onnx_restorer = Restorer(weights=bundled_onnx, device="cpu", batch_size=2)
    torch_restorer = Restorer(model=bundled_model, device="cpu", batch_size=2)
    assert onnx_restorer.size == 128 and np.allclose(onnx_restorer.template, torch_restorer.template)
    faces = astronaut_faces(128, torch_restorer.template)  # 3 faces in batches of 2: sizes 2 and 1
    restored, from_torch = onnx_restorer.restore_faces(faces), torch_restorer.restore_faces(faces)
    assert np.abs(restored.astype(int) - from_torch.astype(int)).max() <= 1
    assert np.abs(restored.astype(int) - faces.astype(int)).mean() > 1  # the network did something
    with pytest.raises(PoseFaceError, match="runs only in fp32"):
        Restorer(weights=bundled_onnx, device="cpu", precision="bf16")


@needs_onnx
@pytest.mark.slow
def test_export_that_fails_its_check_writes_nothing(tmp_path, monkeypatch):
    from poseface.models import onnx_export
    from poseface.models.config import ModelConfig

    model = models.PoseFaceNet(ModelConfig(size=16, style_dim=16, n_mlp=1, narrow=1 / 32)).eval()
    monkeypatch.setattr(onnx_export, "max_differences", lambda model, run, inputs: {"random, batch 3": 0.5})
    path = tmp_path / "bad.onnx"
    with pytest.raises(PoseFaceError, match="differs from PyTorch by 5.00e-01 on random, batch 3"):
        onnx_export.export_onnx(model, path)
    assert list(tmp_path.iterdir()) == []


def test_export_command_errors_are_one_line(tmp_path, capsys, monkeypatch):
    assert main(["export", "--onnx", str(tmp_path / "model.safetensors")]) == 2
    assert "must end in .onnx" in capsys.readouterr().err
    assert main(["export", "--onnx", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "m.safetensors")]) == 2
    assert "without -o or --half" in capsys.readouterr().err
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)  # none of onnx, onnxscript, onnxruntime
    assert main(["export", "--onnx", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert (
        "needs onnx, onnxscript, onnxruntime; pip install onnx onnxscript onnxruntime" in err and err.count("\n") == 1
    )
    assert not (tmp_path / "m.onnx").exists()


# ---- the backend's errors ------------------------------------------------------------------------


def test_missing_onnxruntime_says_how_to_install_it(tmp_path, monkeypatch):
    from poseface.faces.restorer import load_restoration_model

    path = tmp_path / "model.onnx"
    path.write_bytes(b"\0")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(
        PoseFaceError, match=r"model.onnx: running an ONNX model needs onnxruntime; pip install onnxruntime"
    ):
        load_restoration_model(path, "cpu")


def test_providers_follow_the_device_request(tmp_path):
    from poseface.models.onnx_backend import CPU, CUDA, providers_for

    assert providers_for("cpu", [CUDA, CPU], tmp_path) == [CPU]
    assert providers_for("auto", [CUDA, CPU], tmp_path) == [CUDA, CPU]
    assert providers_for("auto", [CPU], tmp_path) == [CPU]
    assert providers_for("cuda:1", [CUDA, CPU], tmp_path) == [CUDA, CPU]
    with pytest.raises(PoseFaceError, match="no CUDA provider; pip install onnxruntime-gpu"):
        providers_for("cuda", [CPU], tmp_path)
    with pytest.raises(PoseFaceError, match="runs on cpu or cuda"):
        providers_for("mps", [CPU], tmp_path)


@needs_onnx
def test_an_onnx_file_without_poseface_metadata_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from poseface.models.onnx_backend import load_onnx_model

    shape = ["n", 3, 128, 128]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["faces"], ["restored"])],
        "identity",
        [helper.make_tensor_value_info("faces", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("restored", TensorProto.FLOAT, shape)],
    )
    path = tmp_path / "identity.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    with pytest.raises(PoseFaceError, match="identity.onnx: an ONNX model without PoseFace metadata"):
        load_onnx_model(path, "cpu")


@needs_onnx
@pytest.mark.slow
def test_corrupt_onnx_files_are_one_line_errors(tmp_path, bundled_onnx, capsys):
    from PIL import Image

    garbage, truncated = tmp_path / "garbage.onnx", tmp_path / "truncated.onnx"
    garbage.write_bytes(b"this is not a protobuf" * 100)
    data = bundled_onnx.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    photo = tmp_path / "face.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(photo)
    for path in (garbage, truncated):
        assert (
            main(["restore", str(photo), "-o", str(tmp_path / "out"), "--weights", str(path), "--device", "cpu"]) == 2
        )
        err = capsys.readouterr().err
        assert err.startswith(f"poseface: error: {path}: not a readable ONNX model") and err.count("\n") == 1
        assert "re-export it with `poseface export --onnx`" in err


def test_load_model_points_onnx_files_to_restore(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\0")
    with pytest.raises(PoseFaceError, match="model.onnx: an ONNX export runs only in `poseface restore --weights`"):
        models.load_model(path)
