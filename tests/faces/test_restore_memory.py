"""`poseface restore` with an --upscale output too large for memory: that file is skipped with one line."""

import pytest

from poseface.cli import main
from poseface.faces import restorer as restorer_module
from poseface.faces import run as run_module
from poseface.imageio import read_image_full

from .test_restore_cli import identity_weights, photos  # noqa: F401  (fixtures)


def fail_for_the_astronaut(monkeypatch, where: str) -> None:
    """MemoryError for the 512 px astronaut (1024 px upscaled) only, while pasting or while writing it."""
    if where == "paste":  # the upscaled photo with its faces pasted in
        paste = restorer_module.Restorer._paste

        def failing_paste(self, prepared):
            if prepared.color.shape[:2] == (512, 512):
                raise MemoryError
            return paste(self, prepared)

        monkeypatch.setattr(restorer_module.Restorer, "_paste", failing_paste)
    else:  # encoding the file
        write = run_module.write_image_full

        def failing_write(path, image, **kwargs):
            if image.shape[:2] == (1024, 1024):
                raise MemoryError
            return write(path, image, **kwargs)

        monkeypatch.setattr(run_module, "write_image_full", failing_write)


@pytest.mark.parametrize("where", ["paste", "write"])
def test_not_enough_memory_for_an_upscaled_output_skips_that_file_only(
    where,
    photos,  # noqa: F811 (a fixture imported above)
    tmp_path,
    identity_weights,  # noqa: F811
    capsys,
    monkeypatch,
):
    fail_for_the_astronaut(monkeypatch, where)
    out = tmp_path / "out"
    inputs = [str(photos / "astronaut.png"), str(photos / "wall.jpg")]  # 512 x 512 and 120 x 80
    code = main(["restore", *inputs, "-o", str(out), "--weights", identity_weights, "--upscale", "2"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert [line for line in err.splitlines() if "astronaut" in line] == [
        f"poseface: skipped {photos / 'astronaut.png'}: not enough memory for the 1024x1024 output; lower --upscale"
    ]
    assert not (out / "astronaut.png").exists() and read_image_full(out / "wall.jpg").shape == (160, 240, 3)
