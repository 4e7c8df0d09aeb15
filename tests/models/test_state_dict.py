import pytest
import torch
from torch import nn

from poseface.errors import PoseFaceError
from poseface.models.state_dict import GPEN_WRAPPER_KEYS, load_exact, read_state_dict


def test_reads_a_wrapped_state_dict_and_strips_the_module_prefix(tmp_path):
    weight = torch.ones(2, 3)
    path = tmp_path / "wrapped.pth"
    torch.save({"params_ema": {"module.layer.weight": weight}, "iteration": 7}, path)
    state = read_state_dict(path, "test weights")
    assert list(state) == ["layer.weight"] and torch.equal(state["layer.weight"], weight)
    torch.save({"g_ema": {"conv.weight": weight}}, path)
    assert list(read_state_dict(path, "a GPEN checkpoint", unwrap=GPEN_WRAPPER_KEYS)) == ["conv.weight"]
    with pytest.raises(PoseFaceError, match="wrapped.pth: not a state dict of tensors; expected test weights"):
        read_state_dict(path, "test weights", unwrap=())  # g_ema is not one of the default containers


def test_missing_and_unreadable_files_are_one_line_errors_naming_them(tmp_path):
    with pytest.raises(PoseFaceError, match="missing.pth: no such file"):
        read_state_dict(tmp_path / "missing.pth", "test weights")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(PoseFaceError, match="junk.pth: cannot read as a PyTorch checkpoint") as info:
        read_state_dict(junk, "test weights")
    assert "\n" not in str(info.value)


def test_load_exact_names_missing_unexpected_and_reshaped_keys():
    module = nn.Linear(3, 2)
    state = {"weight": torch.zeros(2, 4), "extra": torch.zeros(1)}
    with pytest.raises(PoseFaceError) as info:
        load_exact(module, state, "model.pth", "Linear", fix="use the right file")
    message = str(info.value)
    assert message.startswith(
        "model.pth: does not fit the Linear layout: 1 missing (e.g. bias), 1 unexpected (e.g. extra)"
    )
    assert "1 with other shapes (e.g. weight: (2, 4), needs (2, 3))" in message and message.endswith(
        "; use the right file"
    )
    load_exact(module, {"weight": torch.ones(2, 3, dtype=torch.float16), "bias": torch.ones(2)}, "model.pth", "Linear")
    assert module.weight.dtype == torch.float32 and bool((module.weight == 1).all())
