import json

import pytest
import torch

from poseface.cli import main
from poseface.errors import PoseFaceError
from poseface.models import ModelConfig, PoseFaceNet, load_model, save_model

CONFIG = ModelConfig(size=32, style_dim=32, narrow=1 / 32, channel_multiplier=1, face_template=((10, 12), (22, 12), (16, 17), (11, 23), (21, 23)))


def randomised_model():
    torch.manual_seed(0)
    model = PoseFaceNet(CONFIG)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def test_round_trip_gives_identical_outputs_and_config(tmp_path):
    model = randomised_model()
    path = save_model(model, tmp_path / "m.safetensors", provenance={"steps": 12})
    loaded = load_model(path)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert loaded.config == CONFIG
    assert loaded.provenance["steps"] == 12
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["format"] == "poseface" and sidecar["face_template"][0] == [10.0, 12.0]


def test_file_is_safetensors_not_pickle(tmp_path):
    path = save_model(randomised_model(), tmp_path / "m.safetensors")
    header_length = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8: 8 + header_length])
    assert "poseface" in header["__metadata__"]


def test_loading_does_not_need_the_sidecar(tmp_path):
    path = save_model(randomised_model(), tmp_path / "m.safetensors")
    path.with_suffix(".json").unlink()
    assert load_model(path).config == CONFIG


def test_bad_weights_files_are_one_line_errors(tmp_path):
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(PoseFaceError, match="foreign.safetensors: safetensors file without a PoseFace config"):
        load_model(foreign)
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage")
    with pytest.raises(PoseFaceError, match="corrupt.safetensors: not a readable safetensors file"):
        load_model(corrupt)
    with pytest.raises(PoseFaceError, match="unknown weights format"):
        (tmp_path / "m.onnx").write_bytes(b"x")
        load_model(tmp_path / "m.onnx")
    with pytest.raises(PoseFaceError, match="no such weights file"):
        load_model(tmp_path / "missing.safetensors")


def test_tampered_weights_are_detected(tmp_path):
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    path = save_model(randomised_model(), tmp_path / "m.safetensors")
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    state = load_file(str(path))
    state.pop("prior.input.input")
    save_file(state, str(path), metadata=metadata)
    with pytest.raises(PoseFaceError, match="do not match their own config"):
        load_model(path)


def test_info_command_prints_parts_and_gflops(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text("model:\n  size: 32\n  style_dim: 32\n  narrow: 0.03125\n  channel_multiplier: 1\n")
    assert main(["info", str(config)]) == 0
    out = capsys.readouterr().out
    for part in ("encoder", "MMRBs", "decoder", "mapping MLP", "synthesis", "global discriminator", "local discriminators", "GFLOPs"):
        assert part in out


def test_info_with_bad_config_is_one_line(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("model:\n  size: 32\n  styel_dim: 32\n")
    assert main(["info", str(config)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml model: unknown key(s) styel_dim" in err and "Traceback" not in err
    config.write_text("model:\n  size: 48\n")
    assert main(["info", str(config)]) == 2
    assert "power of two" in capsys.readouterr().err


def test_presets_build(capsys):
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    assert main(["info", str(repo / "configs" / "small-128.yaml")]) == 0
    assert "MMRBs 4" in capsys.readouterr().out
