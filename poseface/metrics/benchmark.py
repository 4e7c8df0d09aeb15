"""Speed and size of a restoration model, like the paper's Table 6: parameters, GFLOPs, seconds per face.

Time is the median wall-clock of `runs` forward passes of one (batch, 3, S, S) input after `warmup`
passes, under torch.inference_mode, with CUDA synchronised around each pass when on a GPU.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from poseface.models.network import inference_forward


@dataclass
class BenchmarkResult:
    label: str
    device: str
    size: int
    batch: int
    parameters: dict[str, int]  # part -> count; "total" always present
    gflops: float  # per forward of `batch` faces (2 FLOPs per multiply-add)
    seconds: list[float] = field(default_factory=list)  # each timed forward

    @property
    def median_seconds_per_face(self) -> float:
        return statistics.median(self.seconds) / self.batch

    def markdown(self) -> str:
        lines = [
            "| Method | Params (M) | GFLOPs / face | s / face (median) | device | size |",
            "|---|---|---|---|---|---|",
            f"| {self.label} | {self.parameters['total'] / 1e6:.2f} | {self.gflops / self.batch:.1f} | "
            f"{self.median_seconds_per_face:.4f} | {self.device} | {self.size} |",
        ]
        parts = [f"{name}: {count / 1e6:.2f} M" for name, count in self.parameters.items() if name != "total"]
        if parts:
            lines += ["", "Parameters per part: " + "; ".join(parts) + "."]
        lines += [
            "",
            f"{len(self.seconds)} timed runs of batch {self.batch} after warm-up: "
            f"min {min(self.seconds):.4f} s, median {statistics.median(self.seconds):.4f} s, max {max(self.seconds):.4f} s.",
        ]
        return "\n".join(lines) + "\n"


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Per-part counts from poseface.models.info when the model is ours, plus the total."""
    counts: dict[str, int] = {}
    try:
        from poseface.models.info import count_parameters

        counts = {k: int(v) for k, v in count_parameters(model).items() if k != "restorer total"}
    except Exception:  # another nn.Module (tests, foreign models): total only
        counts = {}
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts


def count_gflops(model: nn.Module, inputs: torch.Tensor) -> float:
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(inputs)
    return counter.get_total_flops() / 1e9


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def benchmark_model(
    model: nn.Module,
    size: int,
    device: str | torch.device = "cpu",
    batch: int = 1,
    warmup: int = 2,
    runs: int = 5,
    label: str = "model",
) -> BenchmarkResult:
    device = torch.device(device)
    model = model.to(device).eval()
    inputs = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    result = BenchmarkResult(label, str(device), size, batch, parameter_counts(model), count_gflops(model, inputs))
    forward = inference_forward(model)
    with torch.inference_mode():
        for _ in range(warmup):
            forward(inputs)
        for _ in range(runs):
            _synchronise(device)
            start = time.perf_counter()
            forward(inputs)
            _synchronise(device)
            result.seconds.append(time.perf_counter() - start)
    return result
