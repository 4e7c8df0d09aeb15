"""`poseface train CONFIG`: single process, or multi-process under torchrun."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from poseface.config import apply_overrides, load_config
from poseface.errors import ParameterError, PoseFaceError
from poseface.imageio import check_output_folder
from poseface.train.config import ExperimentConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train",
        help="train a restorer (paper section 4.2)",
        description="Train with a YAML config. Multi-GPU / multi-node: torchrun --nproc_per_node N -m poseface train CONFIG",
    )
    train.add_argument("config", help="YAML experiment config, e.g. configs/small-128.yaml")
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set train.batch_size=8 --set data.source=faces/ (repeatable)",
    )
    train.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in train.out_dir")
    train.add_argument("--out-dir", help="shortcut for --set train.out_dir=DIR")
    train.add_argument("--max-steps", type=int, help="stop after this many more steps (checkpoint written)")
    train.add_argument(
        "--max-minutes",
        type=float,
        help="stop at the first step boundary after this many minutes of training (checkpoint written)",
    )
    train.add_argument("--init-gpen", help="GPEN generator .pth: initialise encoder and prior from it")
    train.add_argument("--init-gpen-d", help="GPEN discriminator .pth: initialise the global discriminator from it")
    train.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    train.set_defaults(func=run_train)


def build_config(args: argparse.Namespace) -> ExperimentConfig:
    cfg = load_config(args.config, ExperimentConfig)
    overrides = list(args.overrides)
    if args.out_dir:
        overrides.append(f"train.out_dir={args.out_dir}")
    if args.init_gpen:
        overrides.append(f"train.init_gpen={args.init_gpen}")
    if args.init_gpen_d:
        overrides.append(f"train.init_gpen_d={args.init_gpen_d}")
    return apply_overrides(cfg, overrides) if overrides else cfg


def run_train(args: argparse.Namespace) -> int:
    from poseface.train.distributed import cleanup, setup
    from poseface.train.trainer import Trainer

    cfg = build_config(args)
    check_output_folder(cfg.train.out_dir, "--out-dir")  # before any data or model is loaded
    try:
        process = setup(cfg.train.device)
    except ParameterError as exc:  # the config key is the flag here
        raise PoseFaceError(exc.worded("--set train.device=")) from None
    logging.basicConfig(
        level=logging.INFO if process.is_main else logging.WARNING,
        format=f"%(asctime)s [rank {process.rank}] %(name)s: %(message)s",
    )
    try:
        trainer = Trainer(cfg, process, resume=args.resume)
        result = trainer.fit(max_steps=args.max_steps, progress=not args.no_progress, max_minutes=args.max_minutes)
        if process.is_main:
            out = Path(cfg.train.out_dir)
            summary = ", ".join(f"{k} {v:.3f}" for k, v in result.items())
            print(f"step {trainer.step}: {summary}; weights {out / 'model.safetensors'}, curves {out / 'curves.png'}")
    finally:
        cleanup()
    return 0
