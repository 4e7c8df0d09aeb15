"""Seconds per training iteration and peak memory, for the small preset and paper-512, on this CPU.

    python benchmarks/train_step.py [--rows configs/small-128.yaml:4,configs/paper-512.yaml:1] [--steps 3]
    python benchmarks/train_step.py --device cuda --amp bf16 --rows configs/paper-512.yaml:4,configs/small-128.yaml:32

GFLOP / iteration counts the multiply-adds (x2) of one step's forward and backward passes with
torch's FlopCounterMode (convolutions and matrix products): divided by a GPU's sustained rate it
gives the expected GPU time of a run (README, "Training paper-512").

Each row runs in its own process (so the peak RSS is its own) with random weights everywhere,
synthetic faces, and every loss term on (VGG19 and ArcFace with random weights, R1 every step
counted separately): the cost of a real step without needing the pretrained files. On CUDA each timed
step is synchronised and peak memory is the GPU's (benchmarks/common.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import peak_mb, pick_device, reset_peak, run_row, synchronize, timed_median, to_channels_last  # noqa: E402


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


def measure(
    config_path: str,
    batch: int,
    steps: int,
    threads: int,
    amp: str,
    device_name: str = "cpu",
    channels_last: bool = False,
    warmup: int = 1,
) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from poseface.config import load_config
    from poseface.losses.arcface import load_identity_encoder
    from poseface.losses.vgg import DEFAULT_LAYERS, load_vgg19_features
    from poseface.train.config import ExperimentConfig
    from poseface.train.distributed import Process
    from poseface.train.trainer import Trainer

    torch.set_num_threads(threads)
    device = pick_device(device_name)
    cfg = load_config(config_path, ExperimentConfig)
    losses = dataclasses.replace(cfg.losses, feature_matching=0.02, face_preserving=10.0)
    with tempfile.TemporaryDirectory() as out:
        train = dataclasses.replace(
            cfg.train,
            batch_size=batch,
            out_dir=out,
            amp=amp,
            device=device_name,
            adversarial_start=0,
            discriminator_start=None,
        )  # a full step: every term, both Ds
        cfg = dataclasses.replace(
            cfg, losses=losses, train=train, data=dataclasses.replace(cfg.data, num_workers=0, val_images=2)
        )
        networks = {
            "vgg": load_vgg19_features(DEFAULT_LAYERS, None, pretrained=False),
            "identity": load_identity_encoder(losses.arcface, None, pretrained=False),
        }
        data = SyntheticFaces(cfg.model.size)
        trainer = Trainer(cfg, Process(device=device), loss_networks=networks, dataset=data, val_dataset=data)
        items = [data[i] for i in range(batch)]
        batch_dict = {k: torch.stack([it[k] for it in items]).to(device) for k in ("lq", "gt", "boxes", "has_boxes")}
        if channels_last:
            for module in (trainer.model, trainer.d_global, trainer.d_locals, trainer.g_loss):
                to_channels_last(module)
            for key in ("lq", "gt"):
                batch_dict[key] = batch_dict[key].contiguous(memory_format=torch.channels_last)

        def step(number: int) -> None:
            trainer.step = number  # 1: not an R1 step; 0: an R1 step (every r1_every steps)
            trainer.train_step(batch_dict)

        reset_peak(device)
        seconds = timed_median(lambda: step(1), device, warmup, steps)
        r1_seconds = timed_median(lambda: step(0), device, 0, 1)
        with FlopCounterMode(display=False) as counter:  # forward + backward of every network, one non-R1 step
            step(1)
        synchronize(device)
    return {
        "seconds": seconds,
        "r1_seconds": r1_seconds,
        "gflop": counter.get_total_flops() / 1e9,
        "peak_mb": peak_mb(device),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", default="configs/small-128.yaml:4,configs/paper-512.yaml:1", help="comma-separated CONFIG:BATCH rows"
    )
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--amp", default="none", help="none | bf16 | fp16 autocast (train.amp)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument(
        "--channels-last", action="store_true", help="networks and batches in channels_last memory format"
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before the timed ones")
    parser.add_argument("--row", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.row:
        config, batch = args.row.rsplit(":", 1)
        print(
            json.dumps(
                measure(
                    config, int(batch), args.steps, args.threads, args.amp, args.device, args.channels_last, args.warmup
                )
            )
        )
        return
    layout = "channels_last" if args.channels_last else "contiguous (NCHW)"
    print(
        f"device {args.device}, {args.threads} threads, amp {args.amp}, {layout}, median of {args.steps} steps after "
        f"{args.warmup} warm-up(s); all loss terms on"
    )
    memory = "peak GPU MiB" if args.device.startswith("cuda") else "peak RSS MiB"
    print()
    print(f"| config | batch | s / iteration | s / iteration with R1 | GFLOP / iteration | GFLOP/s | {memory} |")
    print("|---|---|---|---|---|---|---|")
    shared = [
        "--steps",
        str(args.steps),
        "--threads",
        str(args.threads),
        "--amp",
        args.amp,
        "--device",
        args.device,
        "--warmup",
        str(args.warmup),
    ] + (["--channels-last"] if args.channels_last else [])
    for row in args.rows.split(","):
        r = run_row(__file__, [*shared, "--row", row], REPO)
        config, batch = row.rsplit(":", 1)
        if isinstance(r, str):
            print(f"| {config} | {batch} | failed: {r} |")
            continue
        print(
            f"| {config} | {batch} | {r['seconds']:.3f} | {r['r1_seconds']:.3f} | {r['gflop']:.0f} | {r['gflop'] / r['seconds']:.0f} "
            f"| {r['peak_mb']:.0f} |"
        )


if __name__ == "__main__":
    main()
