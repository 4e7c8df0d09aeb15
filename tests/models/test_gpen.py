import warnings

import pytest
import torch

from poseface.cli import main
from poseface.errors import PoseFaceError
from poseface.models import convert_gpen, load_model
from poseface.models.gpen import load_gpen_generator


def test_generator_and_discriminator_reproduce_gpen_outputs(gpen_parity_dir):
    io = torch.load(gpen_parity_dir / "io.pth", weights_only=True)
    model, discriminator = convert_gpen(gpen_parity_dir / "generator.pth", gpen_parity_dir / "discriminator.pth")
    c = model.config
    assert (c.size, c.style_dim, c.n_mlp, c.channel_multiplier, c.narrow) == (64, 128, 8, 1.0, 0.125)
    with torch.no_grad():
        assert (model(io["input"]) - io["generator_output"]).abs().max() < 1e-4
        assert (discriminator(io["input"]) - io["discriminator_output"]).abs().max() < 1e-4


def test_every_gpen_key_is_used(gpen_parity_dir):
    _, unused = load_gpen_generator(gpen_parity_dir / "generator.pth")
    assert unused == []


def test_mmrb_and_decoder_paths_are_live_after_conversion(gpen_parity_dir):
    io = torch.load(gpen_parity_dir / "io.pth", weights_only=True)
    model = convert_gpen(gpen_parity_dir / "generator.pth")
    with torch.no_grad():
        torch.nn.init.normal_(model.encoder.mmrbs["16"].fuse.weight, std=0.1)
        assert (model(io["input"]) - io["generator_output"]).abs().max() > 1e-3


def test_extra_keys_are_reported(gpen_parity_dir, tmp_path):
    state = torch.load(gpen_parity_dir / "generator.pth", weights_only=True)
    state["something.else"] = torch.zeros(3)
    path = tmp_path / "g.pth"
    torch.save(state, path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        convert_gpen(path)
    assert any("something.else" in str(w.message) for w in caught)


def test_training_checkpoint_wrapper_is_unwrapped(gpen_parity_dir, tmp_path):
    state = torch.load(gpen_parity_dir / "generator.pth", weights_only=True)
    path = tmp_path / "ckpt.pth"
    torch.save({"g_ema": state, "g": state}, path)
    assert load_model(path).config.size == 64


def test_not_a_gpen_file_is_a_one_line_error(gpen_parity_dir, tmp_path):
    with pytest.raises(PoseFaceError, match="expected a GPEN generator checkpoint") as info:
        convert_gpen(gpen_parity_dir / "discriminator.pth")
    assert "\n" not in str(info.value) and "discriminator.pth" in str(info.value)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(PoseFaceError, match="junk.pth: cannot read as a PyTorch checkpoint"):
        convert_gpen(junk)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes((gpen_parity_dir / "generator.pth").read_bytes()[:5000])
    with pytest.raises(PoseFaceError, match="truncated.pth"):
        convert_gpen(truncated)


def test_shape_mismatch_names_the_key(gpen_parity_dir, tmp_path):
    state = torch.load(gpen_parity_dir / "generator.pth", weights_only=True)
    state["generator.convs.3.conv.weight"] = torch.zeros(1, 64, 100, 3, 3)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(PoseFaceError, match="generator.convs.3.conv.weight"):
        convert_gpen(path)


def test_cli_convert_writes_our_format_and_keeps_outputs(gpen_parity_dir, tmp_path, capsys):
    out = tmp_path / "gpen64.safetensors"
    args = [
        "convert-gpen",
        str(gpen_parity_dir / "generator.pth"),
        "-d",
        str(gpen_parity_dir / "discriminator.pth"),
        "-o",
        str(out),
    ]
    assert main(args) == 0
    assert out.is_file() and out.with_suffix(".json").is_file() and (tmp_path / "gpen64-D.safetensors").is_file()
    io = torch.load(gpen_parity_dir / "io.pth", weights_only=True)
    with torch.no_grad():
        assert (load_model(out)(io["input"]) - io["generator_output"]).abs().max() < 1e-4
    assert main(args) == 2  # refuses to overwrite
    err = capsys.readouterr().err
    assert "already exists" in err and "Traceback" not in err


def test_discriminator_config_fields_returns_a_new_config(gpen_parity_dir):
    from poseface.models.gpen import discriminator_config_fields, load_gpen_discriminator

    model = convert_gpen(gpen_parity_dir / "generator.pth")
    discriminator, _ = load_gpen_discriminator(gpen_parity_dir / "discriminator.pth")
    before = model.config.discriminator_narrow
    config = discriminator_config_fields(discriminator, model.config)
    assert config is not model.config and model.config.discriminator_narrow == before
    assert config.discriminator_channels()[config.size] == discriminator.convs[0][0].weight.shape[0]
