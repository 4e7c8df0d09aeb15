"""`poseface serve`: the local web page (see poseface/serve/app.py)."""

from __future__ import annotations

import argparse
import sys

from poseface.devices import DEVICE_HELP
from poseface.errors import PoseFaceError
from poseface.imageio import DEFAULT_MAX_PIXELS, check_max_pixels
from poseface.serve.app import DEFAULT_MAX_UPLOAD_MB, RestoreService, ServeLimits, exposure_warning, start_server


def register(subparsers: argparse._SubParsersAction) -> None:
    sub = subparsers.add_parser(
        "serve",
        help="a local web page: drop a photo, choose model, fidelity and upscale, see input | output",
        description="Start a web page that restores one dropped photo at a time. The models are loaded once, at start.",
    )
    sub.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    sub.add_argument("--port", type=int, default=7860, help="port (default 7860; 0 = any free port)")
    sub.add_argument(
        "--weights",
        action="append",
        default=[],
        metavar="W",
        help="also offer this model: a PoseFace .safetensors, a GPEN .pth or a zoo name (repeatable; the bundled model is always offered)",
    )
    sub.add_argument("--device", default="auto", help=DEVICE_HELP)
    sub.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help=f"refuse photos, and outputs times upscale, larger than this (default {DEFAULT_MAX_PIXELS})",
    )
    sub.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULT_MAX_UPLOAD_MB,
        help=f"refuse uploads larger than this many MiB (default {DEFAULT_MAX_UPLOAD_MB})",
    )
    sub.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    if args.max_upload_mb <= 0:
        raise PoseFaceError(
            f"--max-upload-mb {args.max_upload_mb:g}: must be more than 0 (MiB); the default is {DEFAULT_MAX_UPLOAD_MB}"
        )
    limits = ServeLimits(max_pixels=check_max_pixels(args.max_pixels), max_upload_bytes=int(args.max_upload_mb * 2**20))
    warning = exposure_warning(args.host)
    if warning:
        print(warning, file=sys.stderr)
    service = RestoreService.load(args.weights, device=args.device, limits=limits)
    server = start_server(service, args.host, args.port)
    print(f"poseface serve: {server.url} (models: {', '.join(service.models)}; Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("poseface serve: stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0
