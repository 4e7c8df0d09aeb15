import json

import numpy as np
import pytest
from PIL import Image

from poseface.data.degradation import apply_degradation
from poseface.data.testset import make_test_set
from poseface.errors import PoseFaceError
from poseface.imageio import read_rgb

from .conftest import make_tar


def files_of(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_rebuilds_the_test_set_bit_for_bit(image_folder, tmp_path):
    a = make_test_set(image_folder, tmp_path / "a", seed=5, size=64, progress=False)
    b = make_test_set(image_folder, tmp_path / "b", seed=5, size=64, progress=False)
    files = files_of(a)
    assert set(files) == {
        "params.json",
        "contact_sheet.png",
        "lq/face.png",
        "lq/face_flipped.png",
        "lq/sub__grey.png",
        "gt/face.png",
        "gt/face_flipped.png",
        "gt/sub__grey.png",
    }
    assert files == files_of(b)
    c = make_test_set(image_folder, tmp_path / "c", seed=6, size=64, progress=False)
    assert files_of(c)["lq/face.png"] != files["lq/face.png"]


def test_params_json_records_everything_and_rebuilds_each_lq_image(image_folder, tmp_path):
    out = make_test_set(image_folder, tmp_path / "set", seed=1, preset="severe", size=64, progress=False)
    document = json.loads((out / "params.json").read_text())
    assert document["complete"] and document["settings"]["seed"] == 1 and document["settings"]["preset"] == "severe"
    assert document["settings"]["degradation"]["jpeg_range"] == [5, 20]
    assert sorted(document["skipped"]) == ["broken.jpg", "notes.txt"]
    assert set(document["images"]) == {"face", "face_flipped", "sub__grey"}
    for stem, entry in document["images"].items():
        gt = read_rgb(out / "gt" / f"{stem}.png")
        assert gt.shape == (64, 64, 3) and 5 <= entry["params"]["jpeg_quality"] <= 20
        assert np.array_equal(apply_degradation(gt, entry["params"]), read_rgb(out / "lq" / f"{stem}.png"))
    sheet = read_rgb(out / "contact_sheet.png")
    assert sheet.shape[1] > 2 * 256 and sheet.shape[0] > 3 * 256


def test_tar_and_extracted_folder_give_the_same_test_set(image_folder, tmp_path):
    tar = make_tar(image_folder, tmp_path / "hq.tar", prefix="celeba/")
    from_folder = files_of(make_test_set(image_folder, tmp_path / "f", seed=2, size=48, limit=3, progress=False))
    from_tar = files_of(make_test_set(tar, tmp_path / "t", seed=2, size=48, limit=3, progress=False))
    assert {k: v for k, v in from_folder.items() if k != "params.json"} == {
        k: v for k, v in from_tar.items() if k != "params.json"
    }


def test_sr_writes_bicubic_x4_inputs_without_upsampling_back(image_folder, tmp_path):
    out = make_test_set(image_folder, tmp_path / "sr", seed=0, sr=4, size=128, progress=False)
    gt, lq = read_rgb(out / "gt" / "face.png"), read_rgb(out / "lq" / "face.png")
    assert gt.shape == (128, 128, 3) and lq.shape == (32, 32, 3)
    assert np.array_equal(lq, np.asarray(Image.fromarray(gt).resize((32, 32), Image.Resampling.BICUBIC)))
    entry = json.loads((out / "params.json").read_text())["images"]["face"]
    assert entry["params"]["sr_scale"] == 4 and entry["params"]["lq_size"] == [32, 32]


def test_output_folder_safety(image_folder, tmp_path):
    out = tmp_path / "set"
    make_test_set(image_folder, out, seed=1, size=32, progress=False)
    make_test_set(image_folder, out, seed=1, size=32, progress=False)  # same settings: allowed, same files
    with pytest.raises(PoseFaceError, match="other settings"):
        make_test_set(image_folder, out, seed=2, size=32, progress=False)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(PoseFaceError, match="not empty and was not made by"):
        make_test_set(image_folder, mine, seed=1, progress=False)
    assert (mine / "holiday.jpg").read_bytes() == b"precious" and sorted(p.name for p in mine.iterdir()) == [
        "holiday.jpg"
    ]


def test_bad_inputs_are_one_line_errors(tmp_path, image_folder):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "x.png").write_bytes(b"garbage")
    with pytest.raises(PoseFaceError, match="none of the 1 images could be read"):
        make_test_set(junk, tmp_path / "out", seed=0, progress=False)
    with pytest.raises(
        PoseFaceError, match="^sr=1: "
    ):  # the library names its parameter; `poseface degrade` shows --sr 1
        make_test_set(image_folder, tmp_path / "out2", seed=0, sr=1, progress=False)


@pytest.mark.utkface
def test_utkface_test_set(utkface_tar, tmp_path):
    out = make_test_set(utkface_tar, tmp_path / "utk", seed=0, limit=3, progress=False)
    document = json.loads((out / "params.json").read_text())
    assert len(document["images"]) == 3 and not document["skipped"]
    stem = next(iter(document["images"]))
    assert document["images"][stem]["source_name"] == f"utkface/{stem}.jpg"
    assert read_rgb(out / "lq" / f"{stem}.png").shape == (200, 200, 3)


def test_split_keeps_only_the_faces_training_holds_out(tmp_path, face_crop):
    from poseface.data.dataset import in_validation_split
    from poseface.imageio import write_image

    folder = tmp_path / "faces"
    names = [f"face{i:02d}.png" for i in range(12)]
    for name in names:
        write_image(folder / name, face_crop[:64, :64])
    val = {n[:-4] for n in names if in_validation_split(n, 0.3)}
    assert 0 < len(val) < len(names)
    sets = {
        split: make_test_set(folder, tmp_path / split, seed=0, size=32, progress=False, split=split, val_fraction=0.3)
        for split in ("val", "train")
    }
    stems = {split: {p.stem for p in (out / "gt").iterdir()} for split, out in sets.items()}
    assert stems["val"] == val and stems["train"] == {n[:-4] for n in names} - val
    assert json.loads((sets["val"] / "params.json").read_text())["settings"]["split"] == "val"
    with pytest.raises(PoseFaceError, match="no image in the 'val' split with val_fraction 1e-09"):
        make_test_set(folder, tmp_path / "none", seed=0, progress=False, split="val", val_fraction=1e-9)
