"""What forward.py and train_step.py share: the device, its clock, its peak memory and row subprocesses.

On CUDA every timed region starts and ends with `torch.cuda.synchronize()` (kernels run asynchronously,
so a plain wall clock would time the launches), and peak memory is the caching allocator's
`max_memory_allocated`; on the CPU peak memory is the process's maximum RSS.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

AMP_DTYPES = {"fp32": None, "fp16": "float16", "bf16": "bfloat16"}


def pick_device(name: str):
    """torch.device for `name` (cpu | cuda | cuda:N); one-line error if CUDA was asked for and is absent."""
    import torch

    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit(f"--device {name}: CUDA is not available on this machine; use --device cpu")
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick its fastest kernels once
    return device


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_median(function: Callable[[], object], device, warmup: int, runs: int) -> float:
    """Median seconds of `runs` calls of `function` after `warmup` untimed ones, synchronised on CUDA."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(runs):
        synchronize(device)
        start = time.perf_counter()
        function()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def reset_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_mb(device) -> float:
    """Peak memory so far in MiB: CUDA's allocated peak on a GPU, the process's max RSS on the CPU."""
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def autocast(device, precision: str):
    """Autocast context for fp16 / bf16 on `device` (fp32: disabled)."""
    import torch

    if precision not in AMP_DTYPES:
        raise SystemExit(f"precision {precision!r}: choose from {', '.join(AMP_DTYPES)}")
    dtype = AMP_DTYPES[precision]
    return torch.autocast(device.type, dtype=getattr(torch, dtype or "bfloat16"), enabled=dtype is not None)


def to_channels_last(module):
    """`module` with its 4-D parameters and buffers in channels_last, in place (Module.to(memory_format=...)
    refuses the prior's 5-D modulated-conv weights); returns `module`."""
    import torch

    for tensor in [*module.parameters(), *module.buffers()]:
        if tensor.dim() == 4:
            tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
    return module


def run_row(script: str, arguments: list[str], cwd: Path) -> dict | str:
    """Run `script --row ...` in its own process; its last stdout line as JSON, or the error's last line."""
    out = subprocess.run([sys.executable, script, *arguments], capture_output=True, text=True, cwd=cwd)
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines()
        return lines[-1] if lines else f"exit code {out.returncode}"
    return json.loads(out.stdout.strip().splitlines()[-1])
