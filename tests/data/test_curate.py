"""Curated targets: the sharpness measure ranks blur and up-scaling below detail, the keep list trains."""

import json

import cv2
import numpy as np
import pytest

from poseface.cli import main
from poseface.data.curate import load_keep_list, rank, sharpness
from poseface.data.dataset import FaceDataset, degradation_mixture
from poseface.data.degradation import preset
from poseface.errors import PoseFaceError


def test_sharpness_is_the_normalised_laplacian_energy_of_the_centre(face_crop):
    face = cv2.resize(face_crop, (64, 64), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY).astype(np.float64)[10:54, 10:54]  # central 70%
    direct = cv2.Laplacian(grey, cv2.CV_64F, ksize=1).var() / (grey.var() + 1.0)
    assert sharpness(face_crop, 64) == pytest.approx(direct)


def test_blurred_and_upscaled_faces_rank_below_the_original(face_crop):
    blurred = cv2.GaussianBlur(face_crop, (0, 0), 2.0)
    upscaled = cv2.resize(
        cv2.resize(face_crop, (50, 50), interpolation=cv2.INTER_AREA), (200, 200), interpolation=cv2.INTER_CUBIC
    )
    darker = (face_crop * 0.4).astype(np.uint8)  # low contrast but as sharp: stays near the original
    scores = {
        name: sharpness(image, 128)
        for name, image in {"original": face_crop, "blurred": blurred, "upscaled": upscaled, "darker": darker}.items()
    }
    ranking = rank(list(scores), list(scores.values()), 0.5, 128)
    assert set(ranking.kept) == {"original", "darker"} and set(ranking.dropped) == {"blurred", "upscaled"}
    assert scores["darker"] > 0.7 * scores["original"]


def test_rank_refuses_a_bad_fraction():
    with pytest.raises(PoseFaceError, match="keep fraction"):
        rank(["a"], [1.0], 0.0, 64)


def test_curate_command_writes_ranking_sheet_and_the_dataset_keeps_only_those(image_folder, tmp_path, capsys):
    out = tmp_path / "keep.json"
    assert (
        main(
            [
                "curate",
                str(image_folder),
                "-o",
                str(out),
                "--size",
                "64",
                "--keep-fraction",
                "0.5",
                "--val-fraction",
                "0",
            ]
        )
        == 1
    )  # broken.jpg, notes.txt
    document = json.loads(out.read_text())
    assert (tmp_path / "keep.png").is_file() and "kept" in capsys.readouterr().out
    scores = [score for _, score in document["ranking"]]
    assert scores == sorted(scores, reverse=True) and len(document["kept"]) == document["keep"] == 2  # 3 readable -> 2
    kept = load_keep_list(out)
    dataset = FaceDataset(image_folder, 64, "paper", split="train", val_fraction=0.0, keep_names=kept)
    assert {dataset.source.names[i] for i in dataset.indices} == kept
    before = out.read_text()
    assert main(["curate", str(image_folder), "-o", str(out)]) == 2
    assert f"{out}: already exists and was kept; pass --overwrite or choose another -o" in capsys.readouterr().err
    assert out.read_text() == before
    (image_folder / "broken.jpg").unlink()
    (image_folder / "notes.txt").unlink()
    assert (
        main(["curate", str(image_folder), "-o", str(out), "--size", "64", "--val-fraction", "0", "--overwrite"]) == 0
    )  # all read


def test_keep_list_errors_are_one_line(tmp_path):
    with pytest.raises(PoseFaceError, match="no such keep list"):
        load_keep_list(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(PoseFaceError, match="not a keep list"):
        load_keep_list(tmp_path / "bad.json")


def test_degradation_mixture_draws_each_preset_at_its_share(image_folder):
    dataset = FaceDataset(image_folder, 32, "paper", seed=0, degradation_mix={"mild": 0.3, "near_clean": 0.2})
    index = dataset.source.index_of("face.png")
    drawn = []
    for epoch in range(300):
        dataset.set_epoch(epoch)
        drawn.append(dataset.item_with_params(index)[1]["preset"])
    shares = {name: drawn.count(name) / len(drawn) for name in ("main", "mild", "near_clean")}
    assert shares == pytest.approx({"main": 0.5, "mild": 0.3, "near_clean": 0.2}, abs=0.08)
    plain = FaceDataset(image_folder, 32, "paper", seed=0)
    assert "preset" not in plain.item_with_params(index)[1]  # no mixture: the random stream is unchanged


def test_near_clean_items_stay_close_to_the_clean_face(image_folder):
    dataset = FaceDataset(image_folder, 64, "paper", seed=0, degradation_mix={"near_clean": 1.0}, augment_flip=False)
    item = dataset[dataset.source.index_of("face.png")]
    mse = float(((item["lq"] - item["gt"]) ** 2).mean()) * 127.5**2
    assert 10 * np.log10(255**2 / mse) > 28.0


def test_degradation_mixture_refuses_shares_above_one():
    with pytest.raises(PoseFaceError, match="add up to at most 1"):
        degradation_mixture(preset("paper"), {"mild": 0.7, "near_clean": 0.5})
