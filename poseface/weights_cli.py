"""`poseface weights list` and `poseface weights get NAME`: the model zoo (poseface/zoo.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from poseface import zoo
from poseface.errors import PoseFaceError
from poseface.weights import fetch, integrity_note, verify_local

WEIGHTS_DIR_HELP = (
    "folder for downloaded weights (default: $POSEFACE_HOME, else $TORCH_HOME/poseface, else ~/.cache/torch/poseface)"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "weights",
        help="the model zoo: list known weights, download one",
        description="Every pretrained file PoseFace knows, and a checked, resumable download.",
    )
    actions = parser.add_subparsers(dest="weights_command", metavar="ACTION")
    listing = actions.add_parser(
        "list", help="table of known models: purpose, source, size, licence, sha256, local copy"
    )
    listing.add_argument("--weights-dir", help=WEIGHTS_DIR_HELP)
    listing.set_defaults(func=run_list)
    get = actions.add_parser("get", help="download NAME once into the weights folder (resumable, checksummed)")
    get.add_argument("name", help="a name from `poseface weights list`")
    get.add_argument("--weights-dir", help=WEIGHTS_DIR_HELP)
    get.add_argument("--no-progress", action="store_true", help="no progress bar")
    get.set_defaults(func=run_get)
    parser.set_defaults(func=lambda args: parser.print_help() or 1)


def weights_dir(args: argparse.Namespace) -> Path | None:
    return Path(args.weights_dir).expanduser() if args.weights_dir else None


def format_table(table: list[list[str]]) -> str:
    """Plain columns, two spaces apart (the last column unpadded)."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths)) + "  " + row[-1] for row in table)


def run_list(args: argparse.Namespace) -> int:
    print(format_table(zoo.rows(weights_dir(args))))
    return 0


def run_get(args: argparse.Namespace) -> int:
    item = zoo.entry(args.name)
    dest = item.local_path(weights_dir(args))
    if dest.is_file():
        print(integrity_note(dest, item.spec, verify_local(dest, item.spec)) + "; already here")
        return 0
    if item.packaged:
        raise PoseFaceError(f"{dest}: {item.name} ships with poseface but is missing; reinstall poseface")
    if not item.spec.url:
        raise PoseFaceError(zoo.missing_message(item, dest))
    digest = fetch(item.spec, dest, progress=not args.no_progress)
    print(integrity_note(dest, item.spec, digest, first_download=not item.spec.sha256))
    return 0
