"""One device choice (poseface/devices.py) for restore, serve, evaluate and training; one-line errors."""

import pytest
import torch

from poseface.cli import main
from poseface.devices import resolve_device
from poseface.errors import ParameterError, for_cli
from poseface.train.distributed import setup


@pytest.fixture
def no_accelerator(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_auto_is_cuda_then_mps_then_cpu(no_accelerator, monkeypatch):
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")  # training too (it had no mps)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("auto", local_rank=1) == torch.device("cuda", 1)  # one GPU per torchrun process


def test_cuda_n_is_accepted_and_checked(two_gpus):
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("cuda:1", local_rank=0) == torch.device("cuda", 1)  # an explicit index wins
    with pytest.raises(
        ParameterError,
        match=r"^device=cuda:2: this machine has 2 CUDA device\(s\), cuda:0 to cuda:1; use device=cuda:0 or auto$",
    ):
        resolve_device("cuda:2")


def test_the_library_names_the_parameter_and_the_cli_the_flag(no_accelerator):
    with pytest.raises(ParameterError) as caught:
        resolve_device("cuda")
    assert str(caught.value) == "device=cuda: no CUDA device is available here; use device=cpu or auto"
    assert for_cli(caught.value) == "--device cuda: no CUDA device is available here; use --device cpu or auto"
    with pytest.raises(ParameterError, match="^device=mps: Apple MPS is not available here"):
        resolve_device("mps")
    with pytest.raises(ParameterError, match="^device=tpu: unknown device; use auto"):
        resolve_device("tpu")


def test_training_uses_the_same_choice(no_accelerator):
    assert setup("auto").device == torch.device("cpu")
    with pytest.raises(ParameterError, match="^device=cuda: no CUDA device"):
        setup("cuda")


def test_restore_accepts_cuda_n_and_says_it_is_missing_in_one_line(no_accelerator, tmp_path, capsys):
    code = main(["restore", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--device", "cuda:1"])
    err = capsys.readouterr().err
    assert (
        code == 2
        and err == "poseface: error: --device cuda:1: no CUDA device is available here; use --device cpu or auto\n"
    )
