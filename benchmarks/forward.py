"""Forward latency, peak memory and arithmetic efficiency of the restorer on this CPU.

    python benchmarks/forward.py [--config configs/paper-512.yaml] [--threads 2] [--runs 5]

Every row is measured in its own subprocess (so peak RSS is that configuration's own), in one run
together with a plain large matmul in fp32 and bf16, whose GFLOP/s are the yardstick: efficiency =
model GFLOP/s / matmul GFLOP/s of the same precision, measured side by side.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def matmul_rate(dtype_name: str, threads: int, n: int = 4096, runs: int = 5) -> float:
    import torch

    torch.set_num_threads(threads)
    dtype = getattr(torch, dtype_name)
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    a @ b
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def measure_model(config_path: str, batch: int, precision: str, threads: int, runs: int) -> dict:
    import torch

    from poseface.models.cli import model_config_from_yaml
    from poseface.models.info import gflops
    from poseface.models.restorer import PoseFaceNet

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = model_config_from_yaml(config_path)
    model = PoseFaceNet(config).eval()
    x = torch.rand(batch, 3, config.size, config.size) * 2 - 1
    flops = gflops(model, x)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    times = []
    with torch.inference_mode(), autocast:
        model(x)  # warm-up: oneDNN picks and caches its kernels
        for _ in range(runs):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": statistics.median(times), "gflop": flops, "peak_rss_mb": peak / 1024, "rss_before_mb": rss_before / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "paper-512.yaml"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batches", default="1,4")
    parser.add_argument("--row", help=argparse.SUPPRESS)  # internal: measure one row in this process
    args = parser.parse_args()
    if args.row:
        batch, precision = args.row.split(":")
        print(json.dumps(measure_model(args.config, int(batch), precision, args.threads, args.runs)))
        return

    rates = {"fp32": matmul_rate("float32", args.threads), "bf16": matmul_rate("bfloat16", args.threads)}
    rows = []
    for batch in [int(b) for b in args.batches.split(",")]:
        for precision in ("fp32", "bf16"):
            out = subprocess.run([sys.executable, __file__, "--config", args.config, "--threads", str(args.threads),
                                  "--runs", str(args.runs), "--row", f"{batch}:{precision}"],
                                 capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append((batch, precision, result))
    print(f"config {args.config}, {args.threads} threads, median of {args.runs} runs after one warm-up")
    print(f"matmul 4096^3: fp32 {rates['fp32']:.0f} GFLOP/s, bf16 {rates['bf16']:.0f} GFLOP/s")
    print("| batch | precision | s / forward | s / face | GFLOP / forward | GFLOP/s | % of matmul rate | speed-up vs fp32 | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    fp32_time = {}
    for batch, precision, r in rows:
        rate = r["gflop"] / r["seconds"]
        if precision == "fp32":
            fp32_time[batch] = r["seconds"]
        speedup = fp32_time[batch] / r["seconds"]
        print(f"| {batch} | {precision} | {r['seconds']:.2f} | {r['seconds'] / batch:.2f} | {r['gflop']:.0f} | {rate:.0f} | "
              f"{100 * rate / rates[precision]:.0f}% | {speedup:.2f}x | {r['peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
