"""`poseface restore` (a thin wrapper over `Restorer` and `restore_files`) and `poseface fit-detail`."""

from __future__ import annotations

import argparse
from pathlib import Path

from poseface.cli import exit_code
from poseface.devices import DEVICE_HELP
from poseface.errors import PoseFaceError
from poseface.faces.detect import DETECTORS, DetectorOptions
from poseface.faces.restorer import PRECISIONS, Restorer
from poseface.faces.run import EXTENSIONS, RunOptions, restore_files
from poseface.imageio import DEFAULT_MAX_PIXELS, check_max_pixels, check_output_folder


def register(subparsers: argparse._SubParsersAction) -> None:
    sub = subparsers.add_parser(
        "restore",
        help="restore the faces in photos (detect, align, restore in batches, paste back)",
        description="Restore every face of each photo and write the whole photo. Bad files are skipped with one line each.",
    )
    sub.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image or video (.mp4 .mov .mkv .avi .webm) files, folders or glob patterns",
    )
    sub.add_argument("-o", "--output", required=True, help="output folder (must not be an input folder)")
    sub.add_argument(
        "--overwrite",
        action="store_true",
        help="replace files already in the output folder (default: keep them and skip that input)",
    )
    sub.add_argument(
        "--weights",
        help="PoseFace .safetensors, GPEN .pth, a zoo name from `poseface weights list` or a `poseface export --onnx` file "
        "(default: the bundled model)",
    )
    sub.add_argument("--device", default="auto", help=DEVICE_HELP)
    sub.add_argument("--precision", default="fp32", choices=PRECISIONS, help="network precision (fp16: CUDA only)")
    sub.add_argument("--batch-size", type=int, default=4, help="faces per network call (default 4)")
    sub.add_argument(
        "--upscale", type=float, default=1.0, help="output scale; the background is Lanczos up-scaled (default 1)"
    )
    sub.add_argument(
        "--fidelity",
        type=float,
        default=1.0,
        help="0 = input face, 1 = fully restored (default 1). CodeFormer's -w runs the other way "
        "(w 1 keeps the input): CodeFormer -w W is about --fidelity 1-W here",
    )
    sub.add_argument(
        "--aligned", action="store_true", help="inputs are aligned face crops: no detection, no paste-back"
    )
    sub.add_argument("--only-center-face", action="store_true", help="restore only the face nearest the image centre")
    sub.add_argument(
        "--detector",
        default="auto",
        choices=DETECTORS,
        help="hog, cnn (MMOD), or auto: HOG, then MMOD if HOG finds nothing",
    )
    sub.add_argument(
        "--min-score",
        type=float,
        default=DetectorOptions.min_score,
        help="drop detections whose HOG score is below this (MMOD keeps its own 0 unless this is higher; default "
        f"{DetectorOptions.min_score:g})",
    )
    sub.add_argument(
        "--min-face-size",
        type=int,
        default=DetectorOptions.min_face_size,
        help="smallest face looked for, in pixels: sets how far the photo is up-sampled for detection (default "
        f"{DetectorOptions.min_face_size})",
    )
    sub.add_argument(
        "--detect-size",
        type=int,
        default=DetectorOptions.max_side,
        help="longest side of the largest (up-sampled) detection copy; bounds detection time and memory (0 = no bound; default "
        f"{DetectorOptions.max_side})",
    )
    sub.add_argument("--quiet", action="store_true", help="no progress bar (the summary is still printed)")
    sub.add_argument(
        "--draw-boxes",
        action="store_true",
        help="also write the output with numbered face boxes and detection scores to OUT/boxes/",
    )
    sub.add_argument(
        "--antialias",
        action="store_true",
        help="blur restored faces that are shrunk into the output (no jaggies in fine hair; slightly softer)",
    )
    sub.add_argument(
        "--save-faces", action="store_true", help="also write aligned crops and their restorations to OUT/faces/"
    )
    sub.add_argument("--compare", action="store_true", help="also write input | output side by side to OUT/compare/")
    sub.add_argument("--ext", default="auto", choices=EXTENSIONS, help="output format (auto = the input's)")
    sub.add_argument("--suffix", default="", help="added to output file names, e.g. _restored")
    sub.add_argument(
        "-r", "--recursive", action="store_true", help="also restore images in sub-folders of input folders"
    )
    sub.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help=f"skip images, and outputs times --upscale, larger than this (decompression-bomb limit, default {DEFAULT_MAX_PIXELS})",
    )
    sub.set_defaults(func=run_restore)
    register_fit_detail(subparsers)


FIT_MIX = {"mild": 0.25, "near_clean": 0.1}  # the rest eq. 17: the bundled model's training mixture


def register_fit_detail(subparsers: argparse._SubParsersAction) -> None:
    from poseface.models.cli import add_overwrite_argument

    sub = subparsers.add_parser(
        "fit-detail",
        help="fit a model's never-worse rule (input vs restored detail) on degraded training faces",
        description="Degrade training faces (eq. 17 65%%, mild 25%%, near clean 10%%), restore them, and fit per-band "
        "weights that blend the input's and the restored face's detail (poseface/faces/detail.py). Writes a copy of "
        "the weights that carries the rule; `restore` and `evaluate` then use it.",
    )
    sub.add_argument("weights", help="PoseFace .safetensors weights (or `bundled`)")
    sub.add_argument("--hq", required=True, help="folder or .tar of clean faces (its training split is used)")
    sub.add_argument("-o", "--output", required=True, help="output .safetensors (a .json config is written beside it)")
    sub.add_argument("--count", type=int, default=600, help="training faces to fit on (default 600)")
    sub.add_argument("--keep-list", help="keep.json of `poseface curate`: fit on the kept faces only")
    sub.add_argument("--val-fraction", type=float, default=0.02, help="the run's data.val_fraction (default 0.02)")
    sub.add_argument("--seed", type=int, default=0, help="which faces and degradations (default 0)")
    sub.add_argument("--half", action="store_true", help="store the weights as float16, like `export --half`")
    add_overwrite_argument(sub)
    sub.set_defaults(func=run_fit_detail)


def run_fit_detail(args: argparse.Namespace) -> int:
    """Exit code 0, or 2 (PoseFaceError) for a usage error."""
    from poseface.faces.fit_detail import fit_and_measure
    from poseface.models.cli import check_weights_output

    if args.count < 8:
        raise PoseFaceError(f"--count {args.count}: fit on at least 8 faces (600 is the default)")
    output = Path(args.output)
    check_weights_output(output, args.overwrite)
    table = fit_and_measure(
        args.weights,
        args.hq,
        output,
        count=args.count,
        keep_list=args.keep_list,
        val_fraction=args.val_fraction,
        seed=args.seed,
        mix=FIT_MIX,
        half=args.half,
    )
    print(table)
    print(f"wrote {output} and {output.with_suffix('.json')}")
    return 0


def run_restore(args: argparse.Namespace) -> int:
    """Exit code: 0 every input restored, 1 some input skipped or a face left as it was, 2 (PoseFaceError) a usage error."""
    check_max_pixels(args.max_pixels)
    check_output_folder(args.output)  # before the model is loaded
    detector = DetectorOptions(
        method=args.detector, min_score=args.min_score, min_face_size=args.min_face_size, max_side=args.detect_size
    )
    restorer = Restorer(
        args.weights,
        device=args.device,
        precision=args.precision,
        batch_size=args.batch_size,
        upscale=args.upscale,
        fidelity=args.fidelity,
        detector=detector,
        only_center_face=args.only_center_face,
        aligned=args.aligned,
        antialias=args.antialias,
    )
    options = RunOptions(
        output=Path(args.output),
        ext=args.ext,
        suffix=args.suffix,
        save_faces=args.save_faces,
        compare=args.compare,
        draw_boxes=args.draw_boxes,
        progress=not args.quiet,
        recursive=args.recursive,
        max_pixels=args.max_pixels,
        overwrite=args.overwrite,
    )
    summary = restore_files(restorer, args.inputs, options)
    for line in summary.lines(options.output):
        print(line)
    return exit_code(len(summary.skipped) + summary.non_finite_faces)
