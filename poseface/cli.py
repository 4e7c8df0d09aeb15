"""The `poseface` command. Each area of the package registers its own sub-commands.

Exit codes, the same for every command: 0 = every input done; 1 = some input skipped or failed
(one line each; the rest was still done); 2 = a usage or configuration error, argparse's own
convention and every `PoseFaceError`, printed as one line (`poseface: error: ...`), never a
traceback. Set POSEFACE_DEBUG=1 to see the traceback anyway. 130 = interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from poseface.errors import PoseFaceError, for_cli

EXIT_DONE = 0
EXIT_SOME_SKIPPED = 1
EXIT_USAGE = 2

# Each module has `register(subparsers)`; a sub-command sets `func(args) -> int | None`.
COMMAND_MODULES = (
    "poseface.models.cli",  # info, convert-gpen, export
    "poseface.data.cli",  # degrade, landmarks, curate
    "poseface.faces.cli",  # restore
    "poseface.metrics.cli",  # evaluate, fid-stats, benchmark
    "poseface.train.cli",  # train
    "poseface.weights_cli",  # weights list, weights get
    "poseface.serve.cli",  # serve
)


def exit_code(skipped: int) -> int:
    """What a command returns after a run that skipped or failed `skipped` of its inputs."""
    return EXIT_SOME_SKIPPED if skipped else EXIT_DONE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="poseface", description="Blind face restoration for pose-varied faces.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:  # all of them exist: a missing one is a broken installation, and raises
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except PoseFaceError as exc:
        if os.environ.get("POSEFACE_DEBUG"):
            raise
        print(f"poseface: error: {for_cli(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("poseface: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
