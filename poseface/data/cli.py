"""`poseface degrade` (reproducible synthetic test sets) and `poseface landmarks` (68-point cache)."""

from __future__ import annotations

import argparse
import logging
import sys

from poseface.cli import exit_code
from poseface.imageio import check_output_file, check_output_folder


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """--split / --val-fraction: the held-out (or training) faces of `poseface train` (degrade, evaluate)."""
    parser.add_argument(
        "--split", choices=("val", "train"), help="only the held-out (or training) split of `poseface train`"
    )
    parser.add_argument(
        "--val-fraction", type=float, default=0.02, help="with --split: the run's data.val_fraction (default 0.02)"
    )


def register(subparsers) -> None:
    sub = subparsers.add_parser(
        "degrade",
        help="write a reproducible degraded test set (eq. 17) from HQ faces",
        description="Degrade every HQ face with the paper's eq. 17 (or bicubic down-sampling with --sr) and write "
        "OUT/lq, OUT/gt, OUT/params.json (every drawn parameter) and OUT/contact_sheet.png. The same seed and "
        "settings rebuild the same files bit for bit.",
    )
    sub.add_argument("hq", help="folder of HQ face images, or a .tar of them")
    sub.add_argument(
        "-o", "--out", required=True, help="output folder (new or empty, or a previous run with the same settings)"
    )
    sub.add_argument("--seed", type=int, required=True, help="random seed; the same seed gives the same images")
    sub.add_argument(
        "--preset", default="paper", help="degradation preset: paper, mild, severe, or a YAML file (default paper)"
    )
    sub.add_argument(
        "--sr",
        type=int,
        default=None,
        metavar="K",
        help="super-resolution inputs instead: bicubic xK down-sampling only (paper Table 2: 4)",
    )
    sub.add_argument(
        "--size", type=int, default=None, help="resize HQ faces to SIZE x SIZE first (default: keep each image's size)"
    )
    sub.add_argument("--limit", type=int, default=None, help="use only the first N images (sorted by name)")
    add_split_arguments(sub)
    sub.set_defaults(func=run_degrade)

    sub = subparsers.add_parser(
        "landmarks",
        help="detect 68-point landmarks once over a data set (for the eye/mouth discriminators)",
        description="Run dlib's HOG face detector and 68-point predictor over a folder or tar of faces and write a JSON "
        "cache. Resumable: names already in the output file are skipped.",
    )
    sub.add_argument("data", help="folder of face images, or a .tar of them")
    sub.add_argument("-o", "--out", required=True, help="landmarks JSON to write (e.g. landmarks.json)")
    sub.add_argument(
        "--no-resume", action="store_true", help="start again instead of continuing an existing output file"
    )
    sub.add_argument(
        "--no-full-crop", action="store_true", help="do not fall back to the whole image as the face rectangle"
    )
    sub.add_argument("--limit", type=int, default=None, help="process only the first N images (sorted by name)")
    sub.set_defaults(func=run_landmarks)

    sub = subparsers.add_parser(
        "curate",
        help="rank HQ training faces by sharpness and keep the best (data.keep_list)",
        description="Score every training-split face (normalised Laplacian energy at the model size; the validation "
        "split is left out) and write OUT (JSON: ranking and kept names) and OUT's .png contact sheet of kept and "
        "dropped faces. Train on the kept faces with --set data.keep_list=OUT.",
    )
    sub.add_argument("data", help="folder of HQ face images, or a .tar of them")
    sub.add_argument(
        "-o", "--out", required=True, help="keep list JSON to write (e.g. keep.json; refused if it exists)"
    )
    sub.add_argument("--size", type=int, default=128, help="the model size the faces are scored at (default 128)")
    sub.add_argument(
        "--keep-fraction", type=float, default=0.5, help="share of the training faces to keep (default 0.5)"
    )
    sub.add_argument("--val-fraction", type=float, default=0.02, help="the run's data.val_fraction (default 0.02)")
    sub.add_argument("--overwrite", action="store_true", help="replace an existing OUT and its .png (default: refuse)")
    sub.set_defaults(func=run_curate)


class _TqdmHandler(logging.Handler):
    """Log lines printed above the progress bar instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        tqdm.write(self.format(record), file=sys.stderr)


def _log_to_stderr() -> None:
    logger = logging.getLogger("poseface.data")
    if not any(isinstance(h, _TqdmHandler) for h in logger.handlers):
        handler = _TqdmHandler()
        handler.setFormatter(logging.Formatter("poseface: %(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def run_degrade(args: argparse.Namespace) -> int:
    from poseface.data.testset import make_test_set, skipped_images

    check_output_folder(args.out)
    _log_to_stderr()
    out = make_test_set(
        args.hq,
        args.out,
        seed=args.seed,
        preset=args.preset,
        sr=args.sr,
        size=args.size,
        limit=args.limit,
        split=args.split,
        val_fraction=args.val_fraction,
    )
    print(f"wrote {out}/lq, {out}/gt, {out}/params.json and {out}/contact_sheet.png")
    return exit_code(len(skipped_images(out)))


def run_landmarks(args: argparse.Namespace) -> int:
    from poseface.data.landmarks import compute_landmarks

    check_output_file(args.out)  # an existing file is resumed (or, with --no-resume, replaced)
    _log_to_stderr()
    counts = compute_landmarks(
        args.data, args.out, resume=not args.no_resume, limit=args.limit, full_crop_fallback=not args.no_full_crop
    )
    found = sum(counts[m] for m in ("hog", "hog_upsampled", "hog_padded", "full_crop"))
    print(
        f"{args.out}: {found} faces ({counts['hog']} hog, {counts['hog_upsampled']} hog_upsampled, {counts['hog_padded']} hog_padded, "
        f"{counts['full_crop']} full_crop), {counts['no_face']} without a face, {counts['unreadable']} unreadable, "
        f"{counts['already_done']} already done"
    )
    return exit_code(counts["unreadable"])


def run_curate(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from poseface.data.curate import curate_source, kept_dropped_sheet
    from poseface.imageio import atomic_write, refuse_existing, write_image

    out = Path(args.out)
    sheet_path = out.with_suffix(".png")
    check_output_file(out, args.overwrite)
    refuse_existing([sheet_path], args.overwrite)
    _log_to_stderr()
    ranking = curate_source(args.data, args.size, args.keep_fraction, args.val_fraction)
    atomic_write(out, lambda tmp: Path(tmp).write_text(json.dumps(ranking.to_json(), indent=0)), replace=args.overwrite)
    write_image(sheet_path, kept_dropped_sheet(args.data, ranking), replace=args.overwrite)
    print(
        f"{out}: kept {ranking.keep} of {len(ranking.names)} training faces (sharpness >= {ranking.scores[ranking.keep - 1]:.4f}); "
        f"contact sheet {sheet_path}"
    )
    return exit_code(len(ranking.skipped))
