"""Run by test_distributed.py under torchrun: a few tiny training steps, then each rank writes a
checksum of its weights."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from poseface.train.distributed import cleanup, setup  # noqa: E402
from poseface.train.trainer import Trainer  # noqa: E402
from tests.train.conftest import TinyFaces, tiny_config  # noqa: E402

out = Path(sys.argv[1])
process = setup("cpu")
torch.manual_seed(100 + process.rank)  # different init per rank: the broadcast must fix it
cfg = tiny_config(out / "run", checkpoint_every=1000)
trainer = Trainer(cfg, process, dataset=TinyFaces(), val_dataset=TinyFaces(4, seed=1))
batches = []
for step, batch in zip(range(3), trainer.loader()):
    batches.append(sorted(batch["name"]))
    trainer.train_step(batch)
    trainer.step += 1
sums = {
    name: float(sum(p.double().sum() for p in module.parameters()))
    for name, module in (("g", trainer.model), ("d", trainer.d_global), ("local", trainer.d_locals))
}
(out / f"rank{process.rank}.json").write_text(
    json.dumps({"sums": sums, "batches": batches, "world": process.world_size})
)
cleanup()
