import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_two_cpu_processes_with_gloo_stay_in_sync(tmp_path):
    worker = Path(__file__).with_name("ddp_worker.py")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(worker),
        str(tmp_path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0]["world"] == ranks[1]["world"] == 2
    assert ranks[0]["sums"] == ranks[1]["sums"]  # identical weights after three steps
    for step in range(3):  # each rank saw its own half of the global batch
        assert not set(ranks[0]["batches"][step]) & set(ranks[1]["batches"][step])
