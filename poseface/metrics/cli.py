"""Sub-commands `evaluate`, `fid-stats` and `benchmark`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from poseface.cli import exit_code
from poseface.data.cli import add_split_arguments
from poseface.devices import DEVICE_HELP, resolve_device
from poseface.errors import PoseFaceError
from poseface.imageio import check_output_file, check_output_folder, refuse_existing
from poseface.metrics.suite import ALL_METRICS, MetricOptions, build_metrics, parse_metric_names


def _warn(message: str) -> None:
    print(f"poseface: warning: {message}", file=sys.stderr)


def register(subparsers: argparse._SubParsersAction) -> None:
    sub = subparsers.add_parser(
        "evaluate",
        help="measure restored faces (PSNR, SSIM, LPIPS, FID, NIQE, IDS, LMD) into a Markdown/CSV/JSON report",
        description="Folder mode: --restored DIR [--gt DIR] pairs files by name. Model mode: --weights W --hq DIR "
        "--degrade-seed N degrades HQ faces reproducibly, restores them and compares models and baselines.",
    )
    sub.add_argument("--restored", help="folder of restored faces (folder mode)")
    sub.add_argument("--gt", help="folder of ground-truth faces with the same file names; without it only NIQE runs")
    sub.add_argument(
        "--weights",
        action="append",
        default=[],
        help="model to evaluate (repeatable): PoseFace .safetensors, GPEN .pth or a zoo name (`poseface weights list`)",
    )
    sub.add_argument("--labels", help="comma-separated row labels for the --weights files (default: file names)")
    sub.add_argument("--hq", help="HQ faces to degrade (folder or .tar) for model mode")
    sub.add_argument("--degrade-seed", type=int, help="seed of the reproducible degradation (model mode)")
    sub.add_argument("--preset", default="paper", help="degradation preset for model mode (default paper)")
    sub.add_argument(
        "--sr",
        type=int,
        default=None,
        metavar="K",
        help="model mode: bicubic xK down-sampling instead (paper Table 2: 4)",
    )
    sub.add_argument(
        "--size",
        type=int,
        default=None,
        help="model mode: evaluation size (default: the first model's size, else the HQ size)",
    )
    sub.add_argument("--limit", type=int, default=None, help="model mode: only the first N HQ faces")
    add_split_arguments(sub)
    sub.add_argument(
        "--baselines",
        default="input,bicubic,classical,gt",
        help="model mode rows without a model: input,bicubic,classical (non-local means + unsharp mask),gt (default all; '' for none)",
    )
    sub.add_argument(
        "--work-dir",
        help="model mode: folder for the test set and restored faces (default: REPORT_files beside the report)",
    )
    sub.add_argument("--grid-rows", type=int, default=6, help="faces in the comparison grid PNG (default 6)")
    sub.add_argument("--batch-size", type=int, default=4, help="model mode: faces per forward pass (default 4)")
    sub.add_argument(
        "--keep-detail",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="model mode: restore as `poseface restore --aligned` does, never blurrier than the input (default); "
        "--no-keep-detail measures the raw network output",
    )
    sub.add_argument(
        "--metrics", help=f"comma-separated subset of {','.join(ALL_METRICS)} (default: all with --gt, niqe without)"
    )
    sub.add_argument("--fid-stats", help="reference FID statistics .npz (mu, sigma); default: the ground-truth folder")
    sub.add_argument("--fid-weights", help="local pt_inception-2015-12-05-6726825d.pth")
    sub.add_argument("--lpips-net", choices=("alex", "vgg"), default="alex", help="LPIPS backbone (default alex)")
    sub.add_argument("--lpips-weights", help="local torchvision alexnet-owt-7be5be79.pth / vgg16-397923af.pth")
    sub.add_argument(
        "--arcface-weights", help="ArcFace weights for an extra IDS column (model_ir_se50.pth or arcface_resnet18.pth)"
    )
    sub.add_argument("--arcface-kind", choices=("ir_se50", "resnet18"), default="ir_se50")
    sub.add_argument("--crop-border", type=int, default=0, help="PSNR/SSIM: pixels cropped from each edge (default 0)")
    sub.add_argument("--y-channel", action="store_true", help="PSNR/SSIM on the Y channel instead of RGB")
    sub.add_argument(
        "--niqe-on", choices=("y", "gray"), default="y", help="NIQE on the Y channel (default, as BasicSR) or grey"
    )
    sub.add_argument(
        "--no-download", action="store_true", help="never download weights; metrics without local weights are skipped"
    )
    sub.add_argument("--device", default="cpu", help=f"{DEVICE_HELP} (default cpu)")
    sub.add_argument("--title", default="Evaluation", help="title of the Markdown report")
    sub.add_argument(
        "-o", "--output", required=True, help="report.md to write (report.csv and report.json are written beside it)"
    )
    sub.add_argument("--overwrite", action="store_true", help="replace existing report files (default: refuse)")
    sub.add_argument("--quiet", action="store_true", help="no progress bars")
    sub.set_defaults(func=run_evaluate)

    stats = subparsers.add_parser(
        "fid-stats", help="compute FID reference statistics (mu, sigma) of a folder of images"
    )
    stats.add_argument("folder", help="folder of images (e.g. the FFHQ or ground-truth faces)")
    stats.add_argument("-o", "--output", required=True, help=".npz to write (keys mu, sigma)")
    stats.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT (default: refuse)")
    stats.add_argument("--fid-weights", help="local pt_inception-2015-12-05-6726825d.pth")
    stats.add_argument("--batch-size", type=int, default=16)
    stats.add_argument("--no-download", action="store_true")
    stats.add_argument("--device", default="cpu", help=f"{DEVICE_HELP} (default cpu)")
    stats.set_defaults(func=run_fid_stats)

    bench = subparsers.add_parser(
        "benchmark", help="parameters, GFLOPs and seconds per face of a model (paper Table 6)"
    )
    bench.add_argument("--weights", required=True, help="PoseFace .safetensors or GPEN .pth")
    bench.add_argument("--device", default="cpu", help=f"{DEVICE_HELP} (default cpu)")
    bench.add_argument("--batch", type=int, default=1, help="faces per forward (default 1)")
    bench.add_argument("--warmup", type=int, default=2, help="untimed forward passes first (default 2)")
    bench.add_argument("--runs", type=int, default=5, help="timed forward passes; the median is reported (default 5)")
    bench.add_argument("-o", "--output", help="also write the table to this .md file")
    bench.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT (default: refuse)")
    bench.set_defaults(func=run_benchmark)


def _options(args: argparse.Namespace) -> MetricOptions:
    return MetricOptions(
        crop_border=args.crop_border,
        y_channel=args.y_channel,
        niqe_convert_to=args.niqe_on,
        lpips_net=args.lpips_net,
        lpips_weights=args.lpips_weights,
        fid_weights=args.fid_weights,
        fid_stats=args.fid_stats,
        arcface_weights=args.arcface_weights,
        arcface_kind=args.arcface_kind,
        download=not args.no_download,
        device=str(resolve_device(args.device)),
    )


def _report_unavailable(unavailable: dict[str, str]) -> None:
    for name, reason in unavailable.items():
        _warn(f"{name} not computed: {reason}")


def _skipped_count(skipped: dict[str, list[str]]) -> int:
    return sum(len(names) for names in skipped.values())


def _check_report_outputs(output: Path, overwrite: bool, *others: Path) -> None:
    """Before any metric or model is loaded: the report files can be written and do not exist (unless --overwrite)."""
    from poseface.metrics.report import report_paths

    paths = report_paths(output)
    check_output_file(paths["markdown"], overwrite)
    refuse_existing([paths["csv"], paths["json"], *others], overwrite)


def run_evaluate(args: argparse.Namespace) -> int:
    """Exit code: 0 every file evaluated, 1 some skipped (unpaired, unreadable, other size), 2 a usage error."""
    from poseface.metrics.folders import skipped_lines
    from poseface.metrics.report import markdown_table, write_reports

    options = _options(args)
    output = Path(args.output)
    if args.weights or args.hq:
        if args.restored:
            raise PoseFaceError(
                "--restored: give either --restored DIR (folder mode) or --weights/--hq (model mode), not both"
            )
        return _run_model_mode(args, options, output)
    if not args.restored:
        raise PoseFaceError("evaluate: give --restored DIR [--gt DIR], or --hq DIR --degrade-seed N [--weights W]")
    from poseface.metrics.folders import evaluate_pairs, pair_folders

    _check_report_outputs(output, args.overwrite)
    has_gt = args.gt is not None
    names = parse_metric_names(args.metrics, has_gt)
    pairing = pair_folders(args.restored, args.gt)  # bad folders fail before any model is loaded
    metric_set = build_metrics(names, options, has_gt)
    _report_unavailable(metric_set.unavailable)
    if not metric_set.metrics:
        raise PoseFaceError(
            f"{args.output}: no metric can run ({'; '.join(f'{k}: {v}' for k, v in metric_set.unavailable.items())})"
        )
    result = evaluate_pairs(
        pairing, metric_set, Path(args.restored).resolve().name, progress=not args.quiet, has_gt=has_gt
    )
    for line in skipped_lines(result.skipped):
        _warn(line)
    paths = write_reports(
        [result], output, args.title, extra={"restored": str(args.restored), "gt": args.gt}, replace=args.overwrite
    )
    print(markdown_table([result]))
    print(f"wrote {paths['markdown']}, {paths['csv'].name}, {paths['json'].name}")
    return exit_code(_skipped_count(result.skipped))


def _run_model_mode(args: argparse.Namespace, options: MetricOptions, output: Path) -> int:
    from poseface.imageio import write_image
    from poseface.metrics.evaluate import evaluate_models
    from poseface.metrics.folders import skipped_lines
    from poseface.metrics.report import markdown_table, write_reports

    if not args.hq or args.degrade_seed is None:
        raise PoseFaceError(
            "--hq DIR and --degrade-seed N are both needed to evaluate models on a reproducible degraded set"
        )
    names = parse_metric_names(args.metrics, True)
    baselines = tuple(b.strip() for b in args.baselines.split(",") if b.strip())
    labels = [s.strip() for s in args.labels.split(",")] if args.labels else None
    work = Path(args.work_dir) if args.work_dir else output.with_name(output.stem + "_files")
    grid_path = output.with_name(output.stem + "_grid.png")
    _check_report_outputs(output, args.overwrite, grid_path)
    check_output_folder(work, "--work-dir")
    results, test_set, grid = evaluate_models(
        args.weights,
        args.hq,
        work,
        args.degrade_seed,
        names,
        options,
        labels=labels,
        baselines=baselines,
        preset=args.preset,
        sr=args.sr,
        size=args.size,
        limit=args.limit,
        split=args.split,
        val_fraction=args.val_fraction,
        batch_size=args.batch_size,
        grid_rows=args.grid_rows,
        progress=not args.quiet,
        keep_detail=args.keep_detail,
    )
    _report_unavailable(results[0].unavailable)
    for result in results:
        for line in skipped_lines(result.skipped):
            _warn(f"{result.label}: {line}")
    write_image(grid_path, grid, replace=args.overwrite)
    degradation = f"bicubic x{args.sr} down-sampling" if args.sr else f"degradation preset '{args.preset}'"
    notes = [
        f"test set: {len(results[0].rows)} faces from {args.hq}, {degradation}, seed {args.degrade_seed} ({test_set})",
        f"comparison grid: {grid_path.name}",
    ]
    paths = write_reports(
        results, output, args.title, notes=notes, extra={"test_set": str(test_set)}, replace=args.overwrite
    )
    print(markdown_table(results))
    print(f"wrote {paths['markdown']}, {paths['csv'].name}, {paths['json'].name}, {grid_path.name}")
    return exit_code(sum(_skipped_count(result.skipped) for result in results))


def run_fid_stats(args: argparse.Namespace) -> int:
    from poseface.metrics.fid import build_inception, folder_statistics, save_statistics

    check_output_file(args.output, args.overwrite)
    model = build_inception(args.fid_weights, download=not args.no_download, device=str(resolve_device(args.device)))
    mu, sigma, count = folder_statistics(args.folder, model, batch_size=args.batch_size)
    path = save_statistics(args.output, mu, sigma, replace=args.overwrite, count=count)
    print(f"wrote {path} ({count} images)")
    return 0


def run_benchmark(args: argparse.Namespace) -> int:
    from poseface.metrics.benchmark import benchmark_model
    from poseface.models import load_model

    if args.runs < 1 or args.warmup < 0 or args.batch < 1:
        raise PoseFaceError("--runs must be >= 1, --warmup >= 0 and --batch >= 1")
    if args.output:
        check_output_file(args.output, args.overwrite)
    device = str(resolve_device(args.device))
    model = load_model(args.weights, device=device)
    result = benchmark_model(
        model, int(model.config.size), device, args.batch, args.warmup, args.runs, label=Path(args.weights).stem
    )
    table = result.markdown()
    print(table, end="")
    if args.output:
        from poseface.imageio import atomic_write

        atomic_write(args.output, lambda tmp: Path(tmp).write_text(f"# Benchmark\n\n{table}"), args.overwrite)
    return 0
