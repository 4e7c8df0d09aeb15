"""PyTorch against ONNX Runtime on this CPU, side by side, for a PoseFace model and its ONNX export.

    python benchmarks/onnx_vs_torch.py [--weights W] [--threads 2] [--runs 5] [--batches 1,4]

Exports the model (default: the bundled one) with `poseface.models.onnx_export.export_onnx` into a
temporary folder, prints the export check (max |onnxruntime - torch| on random and astronaut faces
at batch 1 and 3), then times one forward per backend in turn (interleaved, so both see the same
machine load) after a warm-up, with the same number of threads, and prints the medians as a table.
PyTorch runs as the restorer runs it (fp32, inference mode, `models.network.inference_forward`: the
per-sample "weights" path) and with the batched `modulate="activations"` path that is exported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def timed(run, x) -> float:
    start = time.perf_counter()
    run(x)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help="a PoseFace weights file (default: the bundled model)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batches", default="1,4")
    args = parser.parse_args()

    import torch

    from poseface import models
    from poseface.models.network import inference_forward
    from poseface.models.onnx_backend import load_onnx_model
    from poseface.models.onnx_export import OPSET, export_onnx

    torch.set_num_threads(args.threads)
    weights = Path(args.weights) if args.weights else models.bundled_weights()
    model = models.load_model(weights)
    size = model.config.size
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        start = time.perf_counter()
        differences = export_onnx(model, path)
        export_seconds = time.perf_counter() - start
        onnx_model = load_onnx_model(path, device="cpu", threads=args.threads)
        print(
            f"{weights.name}: {size} px, exported to ONNX opset {OPSET} in {export_seconds:.1f} s "
            f"(with its check), {path.stat().st_size / 2**20:.1f} MB; torch {torch.__version__}, {args.threads} threads, "
            f"median of {args.runs} runs after one warm-up, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n"
        )
        print("| inputs | max abs difference onnxruntime - torch |\n|---|---|")
        for name, difference in differences.items():
            print(f"| {name} | {difference:.2e} |")

        backends = {
            "PyTorch (as restore runs it)": inference_forward(model),
            'PyTorch modulate="activations"': lambda x: model(x, modulate="activations"),
            "onnxruntime CPU": lambda x: onnx_model.run_numpy(x.numpy()),
        }
        print("\n| batch | backend | s / forward | ms / face | vs PyTorch |\n|---|---|---|---|---|")
        for batch in (int(b) for b in args.batches.split(",")):
            x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
            times: dict[str, list[float]] = {name: [] for name in backends}
            with torch.inference_mode():
                for name, run in backends.items():
                    run(x)  # warm-up: kernel selection, caches
                for _ in range(args.runs):  # interleaved: every backend sees the same machine load
                    for name, run in backends.items():
                        times[name].append(timed(run, x))
            base = statistics.median(times["PyTorch (restorer default)"])
            for name, values in times.items():
                seconds = statistics.median(values)
                print(f"| {batch} | {name} | {seconds:.3f} | {1000 * seconds / batch:.0f} | {base / seconds:.2f}x |")


if __name__ == "__main__":
    main()
