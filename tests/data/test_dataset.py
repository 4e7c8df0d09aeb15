import dataclasses
import logging

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from poseface.data.dataset import FaceDataset, in_validation_split, worker_init
from poseface.data.degradation import DegradationConfig, preset
from poseface.data.landmarks import component_boxes, compute_landmarks, load_landmarks
from poseface.errors import PoseFaceError


@pytest.fixture
def landmarks_json(image_folder, tmp_path):
    out = tmp_path / "landmarks.json"
    compute_landmarks(image_folder, out, full_crop_fallback=False, progress=False)
    return out


def test_items_have_the_documented_shapes_and_ranges(image_folder, landmarks_json):
    dataset = FaceDataset(image_folder, 64, preset("paper"), landmarks=landmarks_json, seed=1)
    assert len(dataset) == 5
    item = dataset[dataset.source.index_of("face.png")]
    assert item["lq"].shape == (3, 64, 64) and item["gt"].shape == (3, 64, 64)
    assert item["lq"].dtype == torch.float32 and item["lq"].min() >= -1 and item["lq"].max() <= 1
    assert item["gt"].min() >= -1 and item["gt"].max() <= 1 and item["gt"].max() > 0.5
    assert item["boxes"].shape == (3, 4) and item["boxes"].dtype == torch.float32
    assert item["has_boxes"].dtype == torch.bool and bool(item["has_boxes"])
    assert item["name"] == "face.png"
    grey = dataset[dataset.source.index_of("sub/grey.png")]  # no face found: still trains, no boxes
    assert not bool(grey["has_boxes"]) and torch.count_nonzero(grey["boxes"]) == 0
    assert grey["gt"].shape == (3, 64, 64)  # 160 x 120 was centre-cropped and resized


def test_items_are_reproducible_from_seed_epoch_and_index(image_folder):
    a = FaceDataset(image_folder, 64, preset("paper"), seed=7)
    b = FaceDataset(image_folder, 64, preset("paper"), seed=7)
    index = a.source.index_of("face.png")
    assert torch.equal(a[index]["lq"], b[index]["lq"])
    first = a[index]["lq"]
    a.set_epoch(1)
    assert not torch.equal(a[index]["lq"], first)
    b.set_epoch(1)
    assert torch.equal(a[index]["lq"], b[index]["lq"])
    by_name = FaceDataset(image_folder, 64, "paper", seed=7)  # a preset name works too
    assert torch.equal(by_name[index]["lq"], first)
    c = FaceDataset(image_folder, 64, preset("paper"), seed=8)
    assert not torch.equal(c[index]["lq"], first)


def test_data_loader_workers_give_the_same_items_as_the_main_process(image_tar):
    dataset = FaceDataset(image_tar, 32, preset("paper"), seed=3)
    dataset.set_epoch(2)
    readable = [1, 2, 4]  # broken.jpg and notes.txt are replaced by the next image anyway
    expected = torch.stack([dataset[i]["lq"] for i in readable])
    loader = DataLoader(
        torch.utils.data.Subset(dataset, readable),
        batch_size=3,
        num_workers=2,
        multiprocessing_context="spawn",
        worker_init_fn=worker_init,
    )  # as the trainer: fork after OpenCV/tqdm threads can deadlock
    batch = next(iter(loader))
    assert torch.equal(batch["lq"], expected)
    assert batch["boxes"].shape == (3, 3, 4) and batch["has_boxes"].shape == (3,)


def test_flip_mirrors_the_image_and_the_boxes(image_folder, landmarks_json):
    always = dataclasses.replace(preset("paper"), hflip_prob=1.0)
    flipped = FaceDataset(image_folder, 64, always, landmarks=landmarks_json, seed=0)
    plain = FaceDataset(image_folder, 64, always, landmarks=landmarks_json, seed=0, augment_flip=False)
    index = plain.source.index_of("face.png")
    item, params = flipped.item_with_params(index)
    reference, reference_params = plain.item_with_params(index)
    assert params["hflip"] and not reference_params["hflip"]
    assert torch.equal(item["gt"], torch.flip(reference["gt"], dims=[2]))
    entry = load_landmarks(landmarks_json)["faces"]["face.png"]
    np.testing.assert_allclose(item["boxes"].numpy(), component_boxes(entry["points"], entry["size"], 64, hflip=True))
    assert item["boxes"][0, 0] < item["boxes"][1, 0]


def test_missing_landmarks_are_counted_and_logged(image_folder, landmarks_json, caplog):
    with caplog.at_level(logging.WARNING, logger="poseface.data"):
        dataset = FaceDataset(image_folder, 64, preset("paper"), landmarks=landmarks_json)
    # grey.png (no face), broken.jpg and notes.txt (unreadable) have no landmarks
    assert dataset.missing_landmarks == 3
    assert any("3 of 5 faces" in r.getMessage() for r in caplog.records)


def test_landmark_methods_filter_the_cache(image_folder, tmp_path):
    out = tmp_path / "with_fallback.json"
    compute_landmarks(image_folder, out, progress=False)  # grey.png gets a "full_crop" fit
    every = FaceDataset(image_folder, 32, preset("paper"), landmarks=out)
    strict = FaceDataset(
        image_folder, 32, preset("paper"), landmarks=out, landmark_methods=("hog", "hog_upsampled", "hog_padded")
    )
    grey = every.source.index_of("sub/grey.png")
    assert bool(every[grey]["has_boxes"]) and not bool(strict[grey]["has_boxes"])
    assert strict.missing_landmarks == every.missing_landmarks + 1


def test_landmarks_of_a_differently_sized_image_are_not_used(image_folder, landmarks_json, caplog):
    import cv2

    from poseface.imageio import read_rgb, write_image

    face = read_rgb(image_folder / "face.png")
    write_image(image_folder / "face.png", cv2.resize(face, (100, 100)))  # the folder changed after the landmark pass
    dataset = FaceDataset(image_folder, 32, preset("paper"), landmarks=landmarks_json)
    with caplog.at_level(logging.WARNING, logger="poseface.data"):
        item = dataset[dataset.source.index_of("face.png")]
    assert not bool(item["has_boxes"])
    assert any("200x200" in r.getMessage() and "100x100" in r.getMessage() for r in caplog.records)


def test_unreadable_images_are_replaced_by_the_next_readable_one(image_folder, caplog):
    dataset = FaceDataset(image_folder, 32, preset("paper"))
    with caplog.at_level(logging.WARNING, logger="poseface.data"):
        item = dataset[dataset.source.index_of("broken.jpg")]
    assert item["name"] == "face.png"
    assert any("broken.jpg" in r.getMessage() for r in caplog.records)


def test_a_folder_without_any_readable_image_is_a_one_line_error(tmp_path):
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"nope")
    (folder / "b.txt").write_text("nope")
    dataset = FaceDataset(folder, 32, DegradationConfig())
    with pytest.raises(PoseFaceError, match="none of the 2 images could be read"):
        dataset[0]


def test_validation_split_is_deterministic_disjoint_and_about_the_asked_fraction(image_folder):
    names = [f"{i:05d}.png" for i in range(20000)]
    share = sum(in_validation_split(n, 0.02) for n in names) / len(names)
    assert share == pytest.approx(0.02, abs=0.004)
    assert [in_validation_split(n, 0.02) for n in names[:500]] == [in_validation_split(n, 0.02) for n in names[:500]]
    train = FaceDataset(image_folder, 32, DegradationConfig(), split="train", val_fraction=0.5)
    val = FaceDataset(image_folder, 32, DegradationConfig(), split="val", val_fraction=0.5)
    assert sorted(train.indices + val.indices) == list(range(5)) and not set(train.indices) & set(val.indices)
    with pytest.raises(PoseFaceError, match="split"):
        FaceDataset(image_folder, 32, DegradationConfig(), split="test")


@pytest.mark.utkface
def test_utkface_tar_with_the_landmark_cache_format(utkface_tar, tmp_path):
    out = tmp_path / "utk.json"
    compute_landmarks(utkface_tar, out, limit=3, progress=False)
    dataset = FaceDataset(utkface_tar, 128, preset("paper"), landmarks=out, seed=0)
    item = dataset[0]
    assert item["lq"].shape == (3, 128, 128) and bool(item["has_boxes"])
    assert item["name"].startswith("utkface/")
    assert dataset.missing_landmarks == len(dataset) - 3
