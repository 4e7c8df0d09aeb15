"""A full disk or a read-only output folder while checkpointing, and damaged checkpoint files on --resume:
one line naming the file and the fix, never a checkpoint that --resume would pick half-written."""

import errno
import os
import shutil

import pytest
import torch

from poseface.errors import PoseFaceError
from poseface.train import checkpoint as ckpt
from poseface.train.trainer import Trainer


def fail_on_second_write(monkeypatch, code: int) -> None:
    """The checkpoint's first file is written, the second fails: a save that stops halfway."""
    write = ckpt._write_bytes
    calls = []

    def failing(path, data):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(code, os.strerror(code))
        write(path, data)

    monkeypatch.setattr(ckpt, "_write_bytes", failing)


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


@pytest.mark.parametrize("code, fix", [(errno.ENOSPC, "free space"), (errno.EROFS, "make {out} writable")])
def test_a_failed_checkpoint_write_is_one_line_and_resume_continues_from_the_last_complete_one(
    code, fix, make_trainer, tmp_path, monkeypatch
):
    straight = make_trainer(out_dir=tmp_path / "a", checkpoint_every=2)
    straight.fit(max_steps=4, progress=False)
    out = tmp_path / "b"
    run = make_trainer(out_dir=out, checkpoint_every=2)
    run.fit(max_steps=2, progress=False)
    fail_on_second_write(monkeypatch, code)
    with pytest.raises(PoseFaceError) as failure:
        run.fit(max_steps=2, progress=False)
    root = out / "checkpoints"
    assert str(failure.value) == (
        f"{root / 'step-00000004'}: could not be written ({os.strerror(code)}); {fix.format(out=out)} "
        f"and resume with --resume: the last complete checkpoint is {root / 'step-00000002'}"
    )
    assert sorted(os.listdir(root)) == ["latest", "step-00000002"]  # the half-written folder is gone
    monkeypatch.undo()
    resumed = make_trainer(out_dir=out, resume=True, checkpoint_every=2)
    assert resumed.step == 2
    resumed.fit(max_steps=2, progress=False)
    assert_same_weights(straight.model, resumed.model)


def test_a_failed_first_checkpoint_says_there_is_none_to_resume_from(make_trainer, tmp_path, monkeypatch):
    fail_on_second_write(monkeypatch, errno.ENOSPC)
    with pytest.raises(
        PoseFaceError, match=r"the last complete checkpoint is none yet \(start again without --resume\)$"
    ):
        make_trainer(checkpoint_every=1).fit(max_steps=1, progress=False)


def test_a_read_only_output_folder_while_logging_is_one_line(make_trainer, tmp_path, monkeypatch):
    out = tmp_path / "run"
    log = out / "train_log.csv"

    def read_only(self, name, row):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(out / name))

    monkeypatch.setattr(Trainer, "_log_csv", read_only)
    with pytest.raises(PoseFaceError) as failure:
        make_trainer(out_dir=out, checkpoint_every=1).fit(max_steps=1, progress=False)
    assert str(failure.value) == (
        f"{log}: could not be written (Read-only file system); make {out} writable and resume with --resume: "
        "the last complete checkpoint is none yet (start again without --resume)"
    )


def test_other_os_errors_are_not_reported_as_output_errors(make_trainer, tmp_path, monkeypatch):
    def unreadable_data(self, name, row):
        raise OSError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path / "data" / "face.png"))

    monkeypatch.setattr(Trainer, "_log_csv", unreadable_data)
    with pytest.raises(PermissionError):
        make_trainer(checkpoint_every=1).fit(max_steps=1, progress=False)


@pytest.mark.parametrize(
    "name, reason",
    [
        ("generator.safetensors", "not a readable safetensors file"),
        ("d_locals.safetensors", "not a readable safetensors file"),
        ("state.pt", "unreadable training state"),
    ],
)
def test_a_truncated_checkpoint_file_on_resume_is_one_line_naming_it_and_the_earlier_checkpoint(
    name, reason, make_trainer, tmp_path
):
    out = tmp_path / "run"
    make_trainer(out_dir=out, checkpoint_every=2).fit(max_steps=4, progress=False)
    root = out / "checkpoints"
    damaged = root / "step-00000004" / name
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    with pytest.raises(PoseFaceError) as failure:
        make_trainer(out_dir=out, resume=True, checkpoint_every=2)
    message = str(failure.value)
    assert message.startswith(f"{damaged}: {reason} (") and "\n" not in message
    assert message.endswith(
        f"the checkpoint is damaged: delete {root / 'step-00000004'} (--resume then continues from {root / 'step-00000002'})"
    )
    shutil.rmtree(root / "step-00000004")  # what the message asks
    assert make_trainer(out_dir=out, resume=True, checkpoint_every=2).step == 2


def test_a_damaged_only_checkpoint_says_to_start_again(make_trainer, tmp_path):
    out = tmp_path / "run"
    make_trainer(out_dir=out, checkpoint_every=2).fit(max_steps=2, progress=False)
    damaged = out / "checkpoints" / "step-00000002" / "generator.safetensors"
    damaged.write_bytes(b"\x00" * 8)
    with pytest.raises(PoseFaceError, match=r"no earlier checkpoint: start again without --resume\)$"):
        make_trainer(out_dir=out, resume=True, checkpoint_every=2)
