"""Seconds per training iteration and peak memory, for the small preset and paper-512, on this CPU.

    python benchmarks/train_step.py [--rows configs/small-128.yaml:4,configs/paper-512.yaml:1] [--steps 3]

GFLOP / iteration counts the multiply-adds (x2) of one step's forward and backward passes with
torch's FlopCounterMode (convolutions and matrix products): divided by a GPU's sustained rate it
gives the expected GPU time of a run (README, "Training paper-512").

Each row runs in its own process (so the peak RSS is its own) with random weights everywhere,
synthetic faces, and every loss term on (VGG19 and ArcFace with random weights, R1 every step
counted separately): the cost of a real step without needing the pretrained files.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


class SyntheticFaces:
    def __init__(self, size: int, n: int = 16):
        import torch

        self.size, self.n, self.torch = size, n, torch

    def set_epoch(self, epoch: int) -> None:
        pass

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        torch = self.torch
        g = torch.Generator().manual_seed(index)
        s = self.size
        gt = torch.rand(3, s, s, generator=g) * 2 - 1
        box = lambda x, y, w: [x * s, y * s, (x + w) * s, (y + w) * s]  # noqa: E731
        boxes = torch.tensor([box(0.3, 0.4, 0.15), box(0.55, 0.4, 0.15), box(0.38, 0.65, 0.24)])
        return {"lq": gt * 0.5, "gt": gt, "boxes": boxes, "has_boxes": torch.tensor(True), "name": str(index)}


def measure(config_path: str, batch: int, steps: int, threads: int, amp: str) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from poseface.config import load_config
    from poseface.losses.arcface import load_identity_encoder
    from poseface.losses.vgg import DEFAULT_LAYERS, load_vgg19_features
    from poseface.train.config import ExperimentConfig
    from poseface.train.trainer import Trainer

    torch.set_num_threads(threads)
    cfg = load_config(config_path, ExperimentConfig)
    losses = dataclasses.replace(cfg.losses, feature_matching=0.02, face_preserving=10.0)
    with tempfile.TemporaryDirectory() as out:
        train = dataclasses.replace(cfg.train, batch_size=batch, out_dir=out, amp=amp, device="cpu")
        cfg = dataclasses.replace(cfg, losses=losses, train=train, data=dataclasses.replace(cfg.data, num_workers=0, val_images=2))
        networks = {"vgg": load_vgg19_features(DEFAULT_LAYERS, None, pretrained=False),
                    "identity": load_identity_encoder(losses.arcface, None, pretrained=False)}
        data = SyntheticFaces(cfg.model.size)
        trainer = Trainer(cfg, loss_networks=networks, dataset=data, val_dataset=data)
        items = [data[i] for i in range(batch)]
        batch_dict = {k: torch.stack([it[k] for it in items]) for k in ("lq", "gt", "boxes", "has_boxes")}
        trainer.step = 1  # not an R1 step
        trainer.train_step(batch_dict)  # warm-up
        times = []
        for _ in range(steps):
            trainer.step = 1
            start = time.perf_counter()
            trainer.train_step(batch_dict)
            times.append(time.perf_counter() - start)
        trainer.step = 0  # an R1 step (every r1_every steps)
        start = time.perf_counter()
        trainer.train_step(batch_dict)
        r1_seconds = time.perf_counter() - start
        trainer.step = 1
        with FlopCounterMode(display=False) as counter:  # forward + backward of every network, one non-R1 step
            trainer.train_step(batch_dict)
    return {"seconds": statistics.median(times), "r1_seconds": r1_seconds, "gflop": counter.get_total_flops() / 1e9,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="configs/small-128.yaml:4,configs/paper-512.yaml:1",
                        help="comma-separated CONFIG:BATCH rows")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--amp", default="none")
    parser.add_argument("--row", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.row:
        config, batch = args.row.rsplit(":", 1)
        print(json.dumps(measure(config, int(batch), args.steps, args.threads, args.amp)))
        return
    print(f"{args.threads} threads, amp {args.amp}, median of {args.steps} steps after one warm-up; all loss terms on")
    print("| config | batch | s / iteration | s / iteration with R1 | GFLOP / iteration | GFLOP/s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for row in args.rows.split(","):
        out = subprocess.run([sys.executable, __file__, "--row", row, "--steps", str(args.steps), "--threads", str(args.threads),
                              "--amp", args.amp], capture_output=True, text=True, cwd=REPO)
        if out.returncode != 0:
            print(f"| {row} | failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode} |")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        config, batch = row.rsplit(":", 1)
        print(f"| {config} | {batch} | {r['seconds']:.2f} | {r['r1_seconds']:.2f} | {r['gflop']:.0f} | {r['gflop'] / r['seconds']:.0f} "
              f"| {r['peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
