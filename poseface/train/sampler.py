"""Which samples make up each training step, as a pure function of (seed, step).

Epoch e visits a permutation of the data set drawn from a generator seeded with (seed, e); step s
reads batch s mod (batches per epoch) of epoch s div (batches per epoch). A resumed run therefore
sees exactly the batches an uninterrupted run would have seen. With several processes, each global
batch is split between the ranks.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Dataset


class StepBatches:
    """Batch sampler yielding lists of (epoch, index) pairs from `start_step` on, forever."""

    def __init__(
        self, dataset_length: int, batch_size: int, seed: int, start_step: int = 0, rank: int = 0, world_size: int = 1
    ):
        global_batch = batch_size * world_size
        if dataset_length < global_batch:
            raise ValueError(f"the data set has {dataset_length} images, fewer than one global batch ({global_batch})")
        self.length = dataset_length
        self.batch_size = batch_size
        self.seed = seed
        self.start_step = start_step
        self.rank = rank
        self.world_size = world_size
        self.batches_per_epoch = dataset_length // global_batch
        self._permutation_epoch = -1
        self._permutation: list[int] = []

    def permutation(self, epoch: int) -> list[int]:
        if epoch != self._permutation_epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._permutation = torch.randperm(self.length, generator=generator).tolist()
            self._permutation_epoch = epoch
        return self._permutation

    def batch(self, step: int) -> list[tuple[int, int]]:
        epoch, position = divmod(step, self.batches_per_epoch)
        global_batch = self.batch_size * self.world_size
        start = position * global_batch + self.rank * self.batch_size
        indices = self.permutation(epoch)[start : start + self.batch_size]
        return [(epoch, index) for index in indices]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        step = self.start_step
        while True:
            yield self.batch(step)
            step += 1


class EpochIndexed(Dataset):
    """Lets a data set that draws its degradations from (seed, epoch, index) take (epoch, index)
    keys, so data-loader workers never depend on a `set_epoch` call reaching their copy."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        epoch, index = key
        self.dataset.set_epoch(epoch)
        return self.dataset[index]
