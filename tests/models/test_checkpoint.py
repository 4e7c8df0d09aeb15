import json

import pytest
import torch

from poseface.cli import main
from poseface.errors import PoseFaceError
from poseface.models import ModelConfig, PoseFaceNet, load_model, save_model

CONFIG = ModelConfig(
    size=32,
    style_dim=32,
    narrow=1 / 32,
    channel_multiplier=1,
    face_template=((10, 12), (22, 12), (16, 17), (11, 23), (21, 23)),
)


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
    header = json.loads(path.read_bytes()[8 : 8 + header_length])
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
        (tmp_path / "m.h5").write_bytes(b"x")
        load_model(tmp_path / "m.h5")  # (.onnx has its own line: tests/models/test_onnx.py)
    with pytest.raises(PoseFaceError, match="no such weights file"):
        load_model(tmp_path / "missing.safetensors")


def test_tampered_weights_are_detected(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    path = save_model(randomised_model(), tmp_path / "m.safetensors")
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    metadata.pop("poseface_sha256")  # as in files written before content digests: the structure is still checked
    state = load_file(str(path))
    state.pop("prior.input.input")
    save_file(state, str(path), metadata=metadata)
    with pytest.raises(PoseFaceError, match="do not match their own config"):
        load_model(path)


def test_weights_holding_nan_are_refused_with_the_tensor_name(tmp_path):
    from poseface.train.checkpoint import load_module

    model = randomised_model()
    with torch.no_grad():
        model.prior.input.input[0, 0, 0, 0] = float("nan")
    path = save_model(model, tmp_path / "nan.safetensors")
    with pytest.raises(PoseFaceError, match="tensor prior.input.input holds NaN or inf"):
        load_model(path)
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "generator.safetensors"))
    with pytest.raises(PoseFaceError, match="generator.safetensors: tensor prior.input.input holds NaN"):
        load_module(PoseFaceNet(CONFIG), tmp_path / "generator.safetensors")


def test_info_command_prints_parts_and_gflops(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text("model:\n  size: 32\n  style_dim: 32\n  narrow: 0.03125\n  channel_multiplier: 1\n")
    assert main(["info", str(config)]) == 0
    out = capsys.readouterr().out
    for part in (
        "encoder",
        "MMRBs",
        "decoder",
        "mapping MLP",
        "synthesis",
        "global discriminator",
        "local discriminators",
        "GFLOPs",
    ):
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


def test_half_precision_export_round_trip_and_checksum(tmp_path, capsys):
    from poseface.weights import sha256_of

    torch.manual_seed(0)
    model = PoseFaceNet(ModelConfig(size=16, style_dim=32, n_mlp=2, narrow=1 / 32, channel_multiplier=1)).eval()
    for p in model.parameters():  # move off the zero/one initialisations so the fp16 rounding is visible
        p.data.add_(0.01 * torch.randn_like(p))
    run = tmp_path / "run"
    save_model(model, run / "model.safetensors", {"step": 7})
    assert main(["export", str(run), "-o", str(tmp_path / "small.safetensors"), "--half"]) == 0
    out = capsys.readouterr().out
    half = tmp_path / "small.safetensors"
    assert f"sha256 {sha256_of(half)}" in out
    assert half.stat().st_size < 0.6 * (run / "model.safetensors").stat().st_size
    loaded = load_model(half)
    assert loaded.provenance["step"] == 7 and loaded.provenance["dtype"] == "float16"
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert b.dtype == torch.float32
        torch.testing.assert_close(b, a.half().float(), rtol=0, atol=0, msg=name)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert (model(x) - loaded(x)).abs().max() < 2e-2
    assert main(["export", str(run), "-o", str(half), "--half"]) == 2  # never overwrites without --overwrite
    assert f"{half}: already exists and was kept; pass --overwrite or choose another -o" in capsys.readouterr().err
    half.with_suffix(".json").write_text("someone else's notes")
    half.unlink()
    assert main(["export", str(run), "-o", str(half)]) == 2  # nor the .json beside it
    assert f"{half.with_suffix('.json')}: already exists and was kept" in capsys.readouterr().err
    for flag in ("--overwrite", "--force"):  # --force: the old name
        assert main(["export", str(run), "-o", str(half), flag]) == 0
        assert load_model(half).provenance["dtype"] == "float32"


def test_export_refuses_an_unwritable_output_before_reading_the_source(tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert main(["export", str(tmp_path / "missing.safetensors"), "-o", str(a_file / "m.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"poseface: error: {a_file / 'm.safetensors'}: cannot be created, {a_file} is a file; choose another -o"
    )
    assert err.count("\n") == 1


def test_bundled_weights_are_verified(tmp_path):
    from poseface.models import bundled_weights
    from poseface.weights import sha256_of

    model = PoseFaceNet(ModelConfig(size=16, style_dim=32, n_mlp=2, narrow=1 / 32, channel_multiplier=1))
    path = save_model(model, tmp_path / "bundled.safetensors")
    digest = sha256_of(path)
    assert bundled_weights(path, digest) == path
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(PoseFaceError, match="checksum mismatch .* the bundled model is damaged or was replaced"):
        bundled_weights(path, digest)
    with pytest.raises(PoseFaceError, match="bundled model is missing from this installation"):
        bundled_weights(tmp_path / "absent.safetensors", digest)


def test_shipped_bundled_model_matches_its_released_checksum_and_template():
    from poseface.models import BUNDLED_SHA256, BUNDLED_WEIGHTS, bundled_weights

    if not BUNDLED_WEIGHTS.is_file():
        pytest.skip("no bundled model in this checkout")
    assert len(BUNDLED_SHA256) == 64, "a shipped model needs its sha256 in poseface.models.BUNDLED_SHA256"
    model = load_model(bundled_weights())
    template = model.config.template()
    assert (
        model.config.size == 128 and abs((template[1][0] - template[0][0]) - 49.6) < 0.5
    )  # UTKFace crops' eye distance


def flipped(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


def test_a_flipped_or_lost_byte_anywhere_is_one_line_naming_the_file(tmp_path):
    """Flips in the JSON header (config, provenance, tensor table) and in the tensor bytes, and truncation."""
    path = save_model(randomised_model(), tmp_path / "m.safetensors", provenance={"note": "steps 12"})
    path.with_suffix(".json").unlink()
    good = path.read_bytes()
    header_end = 8 + int.from_bytes(good[:8], "little")
    text = good[:header_end].decode()
    places = {
        "provenance text": text.index("steps 12") + 6,  # today's checks would load this file silently
        "config value": text.index("lr_mlp") + 10,
        "header length": 0,
        "tensor table": text.index("data_offsets") + 17,
        "tensor bytes": header_end + (len(good) - header_end) // 2,
        "last byte": len(good) - 1,
    }
    damaged = tmp_path / "damaged.safetensors"
    for what, index in places.items():
        damaged.write_bytes(flipped(good, index))
        with pytest.raises(PoseFaceError) as info:
            load_model(damaged)
        message = str(info.value)
        assert message.startswith(str(damaged)) and "\n" not in message, what
    for length in (len(good) - 1, header_end, header_end // 2, 4):
        damaged.write_bytes(good[:length])
        with pytest.raises(PoseFaceError, match="not a readable safetensors file") as info:
            load_model(damaged)
        assert str(info.value).startswith(str(damaged))
    damaged.write_bytes(flipped(good, places["provenance text"]))
    with pytest.raises(PoseFaceError, match="do not match the sha256 recorded inside the file"):
        load_model(damaged)
    assert load_model(path).provenance["note"] == "steps 12"  # the untouched file still loads
