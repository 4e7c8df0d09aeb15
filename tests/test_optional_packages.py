"""Packages only some commands need live in extras; without them a command says which extra to install."""

import importlib
import logging

import pytest

from poseface.errors import PoseFaceError, import_optional


@pytest.fixture
def without(monkeypatch):
    """Make importing NAME (and its sub-modules) through importlib fail as if it were not installed."""
    real = importlib.import_module

    def hide(*names: str) -> None:
        def fake(name: str, *args):
            if name.split(".")[0] in names:
                raise ImportError(f"No module named {name!r}")
            return real(name, *args)

        monkeypatch.setattr(importlib, "import_module", fake)

    return hide


def test_a_missing_optional_package_names_the_extra(without):
    without("skimage")
    with pytest.raises(
        PoseFaceError,
        match=r"the demo photo \(skimage.data.astronaut\) needs skimage, which is not installed; "
        r"pip install 'poseface\[demo\]'",
    ):
        import_optional("skimage.data", "demo", "the demo photo (skimage.data.astronaut)")


def test_training_curves_are_skipped_with_one_warning_without_matplotlib(without, tmp_path, caplog):
    from poseface.train.runlog import TRAIN_LOG, VAL_LOG
    from poseface.train.visualize import plot_curves

    (tmp_path / TRAIN_LOG).write_text("step,l1\n1,0.5\n2,0.4\n")
    (tmp_path / VAL_LOG).write_text("step,psnr,ssim,psnr_input,ssim_input\n2,24.0,0.7,23.0,0.6\n")
    assert plot_curves(tmp_path) is not None  # with matplotlib: the figure
    without("matplotlib")
    with caplog.at_level(logging.WARNING, logger="poseface.train"):
        assert plot_curves(tmp_path) is None and plot_curves(tmp_path) is None
    assert caplog.text.count("pip install 'poseface[train]'") == 1  # said once, training goes on
