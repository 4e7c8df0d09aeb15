"""The `poseface` command. Each area of the package registers its own sub-commands.

Errors a user can cause are printed as one line (`poseface: error: ...`) with exit code 2, never a
traceback. Set POSEFACE_DEBUG=1 to see the traceback anyway.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from poseface.errors import PoseFaceError

# Each module has `register(subparsers)`; a sub-command sets `func(args) -> int | None`.
COMMAND_MODULES = (
    "poseface.models.cli",  # info, convert-gpen, benchmark
    "poseface.data.cli",  # degrade, landmarks
    "poseface.faces.cli",  # restore
    "poseface.metrics.cli",  # evaluate
    "poseface.train.cli",  # train
    "poseface.weights_cli",  # weights list, weights get
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="poseface", description="Blind face restoration for pose-varied faces.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # that area has no commands yet
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except PoseFaceError as exc:
        if os.environ.get("POSEFACE_DEBUG"):
            raise
        print(f"poseface: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("poseface: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
