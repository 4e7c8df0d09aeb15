import csv
import json

import cv2
import numpy as np
import pytest
import torch

from poseface.cli import main
from poseface.imageio import write_image
from poseface.metrics.benchmark import benchmark_model, count_gflops
from poseface.metrics.psnr_ssim import psnr


@pytest.fixture
def folders(tmp_path, astronaut):
    """gt/ and restored/ with 3 matching 128x128 faces, one extra restored file, one wrong-size file."""
    face = cv2.resize(astronaut[40:240, 120:320], (128, 128), interpolation=cv2.INTER_AREA)
    gt, restored = tmp_path / "gt", tmp_path / "restored"
    for index in range(3):
        image = np.ascontiguousarray(np.roll(face, 3 * index, axis=1))
        write_image(gt / f"face{index}.png", image)
        write_image(restored / f"face{index}.png", cv2.GaussianBlur(image, (0, 0), 0.8 + index))
    write_image(restored / "stray.png", face)
    write_image(gt / "big.png", astronaut[:160, :160])
    write_image(restored / "big.png", face)
    return restored, gt


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def evaluate_folders(capsys, restored, gt, report, *options):
    """`poseface evaluate --restored RESTORED --gt GT OPTIONS -o REPORT --quiet`: (exit code, stdout, stderr)."""
    return run(capsys, "evaluate", "--restored", str(restored), "--gt", str(gt), *options, "-o", str(report), "--quiet")


def test_folder_evaluation_writes_table_csv_and_json(folders, tmp_path, capsys):
    restored, gt = folders
    report = tmp_path / "out" / "report.md"
    code, out, err = evaluate_folders(capsys, restored, gt, report, "--metrics", "psnr,ssim,niqe")
    assert code == 1  # stray.png and big.png skipped, the three pairs evaluated
    text = report.read_text()
    assert "| Method | PSNR ↑ | SSIM ↑ | NIQE ↓ | Images |" in text and "| restored |" in text
    # one warning line per reason, naming the skipped files
    assert "stray.png" in err and "restored file without a ground truth" in err
    assert "big.png 128x128 vs 160x160" in err
    assert "Traceback" not in err
    rows = list(csv.DictReader(report.with_suffix(".csv").open()))
    assert [r["image"] for r in rows] == ["face0", "face1", "face2"]
    direct = psnr(cv2.imread(str(restored / "face1.png"))[..., ::-1], cv2.imread(str(gt / "face1.png"))[..., ::-1])
    assert float(rows[1]["psnr"]) == pytest.approx(direct)
    document = json.loads(report.with_suffix(".json").read_text())
    summary = document["results"][0]["summary"]
    assert summary["psnr"] == pytest.approx(np.mean([float(r["psnr"]) for r in rows]))
    assert set(document["results"][0]["skipped"]) == {
        "restored file without a ground truth of the same name",
        "size differs from its ground truth (resize restored images to the ground-truth size)",
    }


def test_without_ground_truth_only_niqe_runs(folders, tmp_path, capsys):
    restored, _ = folders
    report = tmp_path / "noref.md"
    code, _, err = run(capsys, "evaluate", "--restored", str(restored), "-o", str(report), "--quiet")
    assert code == 0
    header = report.read_text().splitlines()[2]
    assert header == "| Method | NIQE ↓ | Images |"
    # asking for a reference metric without ground truth: a warning, and NIQE still runs
    code, _, err = run(
        capsys,
        "evaluate",
        "--restored",
        str(restored),
        "--metrics",
        "psnr,niqe",
        "-o",
        str(report),
        "--quiet",
        "--overwrite",
    )
    assert code == 0 and "psnr not computed: needs ground truth" in err


def test_missing_weights_offline_skip_only_that_metric(folders, tmp_path, capsys, offline_cache):
    restored, gt = folders
    report = tmp_path / "r.md"
    code, _, err = evaluate_folders(capsys, restored, gt, report, "--metrics", "psnr,lpips,fid", "--no-download")
    assert code == 1  # stray.png and big.png skipped; a metric without weights is no skipped input
    assert "lpips not computed" in err and "alexnet-owt-7be5be79.pth" in err
    assert "fid not computed" in err and "pt_inception-2015-12-05-6726825d.pth" in err
    assert "PSNR ↑" in report.read_text() and "LPIPS" not in report.read_text().splitlines()[2]


def test_identity_and_landmark_columns(folders, tmp_path, capsys):
    restored, gt = folders
    report = tmp_path / "face.md"
    assert evaluate_folders(capsys, restored, gt, report, "--metrics", "ids,lmd")[0] == 1  # 2 skipped
    rows = list(csv.DictReader(report.with_suffix(".csv").open()))
    assert {"ids", "ids_cos", "lmd", "lmd_norm"} <= set(rows[0])
    ids = [float(r["ids"]) for r in rows]
    assert all(v > 0 for v in ids) and ids[2] > ids[0]  # more blur, further from the ground truth


@pytest.mark.parametrize("case", ["names", "empty", "missing", "unknown-metric", "no-mode"])
def test_bad_input_is_one_line_error(case, tmp_path, capsys, folders):
    restored, gt = folders
    other = tmp_path / "other"
    write_image(other / "nothing-matches.png", np.zeros((32, 32, 3), np.uint8))
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = {
        "names": ["--restored", str(other), "--gt", str(gt)],
        "empty": ["--restored", str(empty), "--gt", str(gt)],
        "missing": ["--restored", str(tmp_path / "nope"), "--gt", str(gt)],
        "unknown-metric": ["--restored", str(restored), "--gt", str(gt), "--metrics", "psnr,ifqa"],
        "no-mode": [],
    }[case]
    code, out, err = run(capsys, "evaluate", *argv, "-o", str(tmp_path / "r.md"), "--quiet")
    expected = {
        "names": "none of its 1 file names matches",
        "empty": "no images",
        "missing": "no such folder",
        "unknown-metric": "unknown metric(s) ifqa",
        "no-mode": "give --restored DIR",
    }[case]
    assert code == 2
    assert err.startswith("poseface: error: ") and expected in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "r.md").exists()


def test_benchmark_counts_parameters_and_flops():
    model = torch.nn.Conv2d(3, 3, kernel_size=1)
    result = benchmark_model(model, size=8, warmup=1, runs=3, label="conv")
    assert result.parameters == {"total": 12}
    assert result.gflops == pytest.approx(2 * 3 * 3 * 8 * 8 / 1e9)  # 2 FLOPs per multiply-add
    assert len(result.seconds) == 3 and result.median_seconds_per_face > 0
    assert "| conv | 0.00 |" in result.markdown()
    assert count_gflops(model, torch.zeros(2, 3, 8, 8)) == pytest.approx(2 * result.gflops)


@pytest.fixture
def tiny_weights(tmp_path):
    from poseface.models import ModelConfig, PoseFaceNet, save_model

    torch.manual_seed(0)
    config = ModelConfig(
        size=32,
        style_dim=32,
        narrow=1 / 32,
        channel_multiplier=1,
        face_template=((10, 12), (22, 12), (16, 17), (11, 23), (21, 23)),
    )
    return save_model(PoseFaceNet(config), tmp_path / "tiny.safetensors")


def test_benchmark_command(tiny_weights, tmp_path, capsys):
    code, out, err = run(
        capsys,
        "benchmark",
        "--weights",
        str(tiny_weights),
        "--warmup",
        "0",
        "--runs",
        "2",
        "-o",
        str(tmp_path / "bench.md"),
    )
    assert code == 0, err
    assert "| tiny |" in out and "s / face" in out and "MMRBs" in out
    assert (tmp_path / "bench.md").read_text().startswith("# Benchmark")
    (tmp_path / "bench.md").write_text("my notes")
    code, _, err = run(
        capsys, "benchmark", "--weights", str(tmp_path / "missing.pth"), "-o", str(tmp_path / "bench.md")
    )
    assert (
        code == 2 and "bench.md: already exists and was kept; pass --overwrite" in err
    )  # checked before the model loads
    assert (tmp_path / "bench.md").read_text() == "my notes"


@pytest.mark.parametrize("sr", [None, 2])
def test_model_mode_compares_models_and_baselines(sr, tiny_weights, tmp_path, capsys, astronaut):
    hq = tmp_path / "hq"
    for index in range(3):
        write_image(
            hq / f"p{index}.png",
            cv2.resize(astronaut[40 + 10 * index : 240, 120:320], (64, 64), interpolation=cv2.INTER_AREA),
        )
    report = tmp_path / "cmp" / "table.md"
    argv = [
        "evaluate",
        "--weights",
        str(tiny_weights),
        "--labels",
        "tiny-random",
        "--hq",
        str(hq),
        "--degrade-seed",
        "3",
        "--metrics",
        "psnr,ssim",
        "-o",
        str(report),
        "--quiet",
        "--grid-rows",
        "2",
    ] + (["--sr", str(sr)] if sr else [])
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    lines = report.read_text().splitlines()
    # bicubic up-sampling is a separate row only when the inputs are smaller than the ground truth
    methods = (
        ["input", "bicubic", "classical", "tiny-random", "gt"] if sr else ["input", "classical", "tiny-random", "gt"]
    )
    assert [line.split("|")[1].strip() for line in lines[4 : 4 + len(methods)]] == methods
    assert "| gt | inf | 1.0000 | 3 |" in report.read_text()  # the reference row is never marked best
    grid = cv2.imread(str(tmp_path / "cmp" / "table_grid.png"))
    assert grid is not None and grid.shape[1] > grid.shape[0]  # 5-6 columns, 2 rows
    restored = sorted((tmp_path / "cmp" / "table_files" / "restored" / "tiny-random").glob("*.png"))
    assert len(restored) == 3 and cv2.imread(str(restored[0])).shape == (32, 32, 3)  # evaluated at the model size
    # the same seed makes the same test set: a second run reproduces the table exactly
    first = report.read_text()
    code, _, err = run(capsys, *argv)
    assert code == 2 and "table.md: already exists and was kept; pass --overwrite or choose another -o" in err  # kept
    assert run(capsys, *argv, "--overwrite")[0] == 0
    assert report.read_text() == first


def test_model_mode_refuses_a_foreign_work_dir(tmp_path, capsys, astronaut):
    hq = tmp_path / "hq"
    write_image(hq / "a.png", astronaut[:64, :64])
    work = tmp_path / "mine"
    write_image(work / "precious.png", astronaut[:8, :8])
    code, _, err = run(
        capsys,
        "evaluate",
        "--hq",
        str(hq),
        "--degrade-seed",
        "1",
        "--work-dir",
        str(work),
        "--metrics",
        "psnr",
        "-o",
        str(tmp_path / "r.md"),
        "--quiet",
    )
    assert code == 2 and "not made by `poseface evaluate`" in err
    assert (work / "precious.png").is_file()


def test_bad_arcface_file_keeps_dlib_ids_and_lmd(folders, tmp_path, capsys):
    restored, gt = folders
    report = tmp_path / "arc.md"
    code, _, err = evaluate_folders(
        capsys, restored, gt, report, "--metrics", "ids,lmd", "--arcface-weights", str(tmp_path / "missing_arcface.pth")
    )
    assert code == 1  # stray.png and big.png skipped
    assert "ids_arcface not computed" in err and "missing_arcface.pth" in err
    assert "| IDS ↓ | IDS cos ↓ | LMD px ↓" in report.read_text()


def test_fid_stats_command_offline_is_one_line(folders, tmp_path, capsys, offline_cache):
    _, gt = folders
    code, _, err = run(capsys, "fid-stats", str(gt), "-o", str(tmp_path / "s.npz"), "--no-download")
    assert code == 2 and "pt_inception-2015-12-05-6726825d.pth" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s.npz").exists()
    (tmp_path / "s.npz").write_bytes(b"my statistics")
    code, _, err = run(capsys, "fid-stats", str(gt), "-o", str(tmp_path / "s.npz"), "--no-download")
    assert (
        code == 2
        and err
        == f"poseface: error: {tmp_path / 's.npz'}: already exists and was kept; pass --overwrite or choose another -o\n"
    )
    assert (tmp_path / "s.npz").read_bytes() == b"my statistics"


def test_folder_statistics_with_a_stand_in_network(folders):
    from poseface.metrics.fid import folder_statistics

    _, gt = folders  # 3 faces of 128 px and one of 160 px: mixed sizes
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten())
    mu, sigma, count = folder_statistics(gt, net, batch_size=2, progress=False)
    assert count == 4 and mu.shape == (8,) and sigma.shape == (8, 8)


def test_model_mode_on_utkface(utkface_tar, tmp_path, capsys):
    report = tmp_path / "utk.md"
    code, out, err = run(
        capsys,
        "evaluate",
        "--hq",
        str(utkface_tar),
        "--degrade-seed",
        "0",
        "--limit",
        "3",
        "--sr",
        "4",
        "--metrics",
        "psnr,ssim,niqe",
        "-o",
        str(report),
        "--quiet",
    )
    assert code == 0, err
    rows = {line.split("|")[1].strip(): line for line in report.read_text().splitlines() if line.startswith("| ")}
    assert {"input", "bicubic", "gt"} <= set(rows)
    psnr_of = {label: float(rows[label].split("|")[2].strip(" *")) for label in ("input", "bicubic")}
    assert psnr_of["bicubic"] > psnr_of["input"]  # bicubic beats nearest-neighbour enlargement


def test_evaluate_exit_code_is_0_when_every_pair_is_evaluated_and_1_when_one_is_skipped(folders, tmp_path, capsys):
    restored, gt = folders
    argv = ["evaluate", "--restored", str(restored), "--gt", str(gt), "--metrics", "psnr", "--quiet"]
    assert run(capsys, *argv, "-o", str(tmp_path / "some.md"))[0] == 1
    (restored / "stray.png").unlink()
    (restored / "big.png").unlink()
    (gt / "big.png").unlink()
    assert run(capsys, *argv, "-o", str(tmp_path / "all.md"))[0] == 0


def test_evaluate_keeps_existing_reports_and_checks_the_output_before_any_metric(
    folders, tmp_path, capsys, monkeypatch
):
    from poseface.metrics import cli as metrics_cli

    restored, gt = folders
    argv = ["evaluate", "--restored", str(restored), "--gt", str(gt), "--metrics", "psnr", "--quiet"]
    (tmp_path / "r.csv").write_text("someone's table")
    code, _, err = run(capsys, *argv, "-o", str(tmp_path / "r.md"))
    assert (
        code == 2
        and err
        == f"poseface: error: {tmp_path / 'r.csv'}: already exists and was kept; pass --overwrite or choose another -o\n"
    )
    assert (tmp_path / "r.csv").read_text() == "someone's table" and not (tmp_path / "r.md").exists()
    monkeypatch.setattr(
        metrics_cli, "build_metrics", lambda *a, **k: pytest.fail("metrics loaded before the output was checked")
    )
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    code, _, err = run(capsys, *argv, "-o", str(a_file / "r.md"))
    assert code == 2 and err.startswith(
        f"poseface: error: {a_file / 'r.md'}: cannot be created, {a_file} is a file; choose another -o"
    )
    assert err.count("\n") == 1


def test_the_classical_baseline_denoises_at_the_measured_noise_level_and_sharpens():
    from poseface.metrics.evaluate import classical_restoration

    rng = np.random.default_rng(0)
    clean = np.full((96, 96, 3), 90, np.uint8)
    clean[:, 48:] = 170  # one vertical edge
    noisy = np.clip(clean + rng.normal(0, 12, clean.shape), 0, 255).astype(np.uint8)
    out = classical_restoration(noisy).astype(np.float32)
    assert out[:, 8:40].std() < 0.4 * noisy[:, 8:40].astype(np.float32).std()  # flat areas lose most of the noise
    profile = out[:, 40:56, 0].mean(axis=0)
    assert profile.min() < 85 and profile.max() > 175  # the unsharp mask overshoots on both sides of the edge
    assert (
        np.abs(classical_restoration(clean)[:, 8:40].astype(int) - 90).max() <= 1
    )  # a clean flat area stays (NL-means works in Lab: +-1)


def test_restored_folder_of_poseface_restore_leaves_out_its_side_folders(folders, tmp_path, capsys):
    restored, gt = folders
    for side in ("faces", "compare", "boxes"):  # what restore --save-faces / --compare / --draw-boxes write
        write_image(restored / side / "face0.png", np.zeros((128, 256, 3), np.uint8))
    write_image(restored / "more" / "face0.png", np.zeros((8, 8, 3), np.uint8))  # any other sub-folder still counts
    report = tmp_path / "side.md"
    code, _, err = evaluate_folders(capsys, restored, gt, report, "--metrics", "psnr")
    assert code == 1
    # stray.png and more/face0.png have no ground truth; the three side-folder files are not even considered
    assert "skipped 2 file(s), restored file without a ground truth of the same name" in err
