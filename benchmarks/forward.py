"""Forward latency, peak memory and arithmetic efficiency of the restorer, on the CPU or a GPU.

    python benchmarks/forward.py [--config configs/paper-512.yaml] [--threads 2] [--runs 5]
    python benchmarks/forward.py --device cuda --precisions fp32,fp16,bf16 --batches 1,8 [--channels-last]

Every row is measured in its own subprocess (so peak memory is that configuration's own), in one run
together with a plain large matmul in each precision, whose GFLOP/s are the yardstick: efficiency =
model GFLOP/s / matmul GFLOP/s of the same precision, measured side by side. fp16 / bf16 rows run the
fp32 model under autocast. On CUDA the timed region is synchronised (benchmarks/common.py), cuDNN's
autotuner is on and fp32 convolutions may use TF32 (torch's default); peak memory is the GPU's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import (
    AMP_DTYPES,
    autocast,
    peak_mb,
    pick_device,
    reset_peak,
    run_row,  # noqa: E402
    timed_median,
    to_channels_last,
)


def matmul_rate(precision: str, device_name: str, threads: int, n: int, runs: int = 5) -> float:
    import torch

    torch.set_num_threads(threads)
    device = pick_device(device_name)
    dtype = getattr(torch, AMP_DTYPES[precision] or "float32")
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    return 2 * n**3 / timed_median(lambda: a @ b, device, warmup=1, runs=runs) / 1e9


def measure_model(
    config_path: str,
    batch: int,
    precision: str,
    threads: int,
    runs: int,
    device_name: str,
    channels_last: bool,
    warmup: int,
) -> dict:
    import torch

    from poseface.models.cli import model_config_from_yaml
    from poseface.models.info import gflops
    from poseface.models.network import PoseFaceNet, inference_forward

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    device = pick_device(device_name)
    config = model_config_from_yaml(config_path)
    model = PoseFaceNet(config).eval().to(device)
    x = torch.rand(batch, 3, config.size, config.size, device=device) * 2 - 1
    if channels_last:
        model, x = to_channels_last(model), x.contiguous(memory_format=torch.channels_last)
    flops = gflops(model, x)
    reset_peak(device)
    with torch.inference_mode(), autocast(device, precision):
        forward = inference_forward(model)
        seconds = timed_median(lambda: forward(x), device, warmup, runs)  # warm-up: kernels picked and cached
    return {"seconds": seconds, "gflop": flops, "peak_mb": peak_mb(device)}


def print_table(args: argparse.Namespace, rates: dict[str, float], rows: list[tuple[int, str, dict | str]]) -> None:
    layout = "channels_last" if args.channels_last else "contiguous (NCHW)"
    print(
        f"config {args.config}, device {args.device}, {layout}, median of {args.runs} runs after {args.warmup} warm-up(s)"
    )
    print("matmul {0}^3: ".format(args.matmul_size) + ", ".join(f"{p} {r:.0f} GFLOP/s" for p, r in rates.items()))
    memory = "peak GPU MiB" if args.device.startswith("cuda") else "peak RSS MiB"
    print()
    print(
        f"| batch | precision | s / forward | s / face | GFLOP / forward | GFLOP/s | % of matmul rate | speed-up vs fp32 | {memory} |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    fp32_time: dict[int, float] = {}
    for batch, precision, r in rows:
        if isinstance(r, str):
            print(f"| {batch} | {precision} | failed: {r} |")
            continue
        rate = r["gflop"] / r["seconds"]
        if precision == "fp32":
            fp32_time[batch] = r["seconds"]
        speedup = f"{fp32_time[batch] / r['seconds']:.2f}x" if batch in fp32_time else "-"
        print(
            f"| {batch} | {precision} | {r['seconds']:.4f} | {r['seconds'] / batch:.4f} | {r['gflop']:.0f} | {rate:.0f} | "
            f"{100 * rate / rates[precision]:.0f}% | {speedup} | {r['peak_mb']:.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "paper-512.yaml"))
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1, help="untimed forwards before the timed ones")
    parser.add_argument("--batches", default="1,4")
    parser.add_argument("--precisions", default="fp32,bf16", help=f"comma-separated, of {', '.join(AMP_DTYPES)}")
    parser.add_argument("--channels-last", action="store_true", help="model and input in channels_last memory format")
    parser.add_argument("--matmul-size", type=int, default=4096, help="n of the n x n x n yardstick matmul")
    parser.add_argument("--row", help=argparse.SUPPRESS)  # internal: measure one row in this process
    args = parser.parse_args()
    precisions = args.precisions.split(",")
    unknown = [p for p in precisions if p not in AMP_DTYPES]
    if unknown:
        parser.error(f"--precisions: unknown {unknown[0]!r}; choose from {', '.join(AMP_DTYPES)}")
    if args.row:
        batch, precision = args.row.split(":")
        print(
            json.dumps(
                measure_model(
                    args.config,
                    int(batch),
                    precision,
                    args.threads,
                    args.runs,
                    args.device,
                    args.channels_last,
                    args.warmup,
                )
            )
        )
        return

    rates = {p: matmul_rate(p, args.device, args.threads, args.matmul_size) for p in precisions}
    shared = [
        "--config",
        args.config,
        "--device",
        args.device,
        "--threads",
        str(args.threads),
        "--runs",
        str(args.runs),
        "--warmup",
        str(args.warmup),
        "--precisions",
        args.precisions,
    ] + (["--channels-last"] if args.channels_last else [])
    rows = [
        (batch, precision, run_row(__file__, [*shared, "--row", f"{batch}:{precision}"], REPO))
        for batch in (int(b) for b in args.batches.split(","))
        for precision in precisions
    ]
    print_table(args, rates, rows)


if __name__ == "__main__":
    main()
