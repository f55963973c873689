"""Batches of similar length: padding to a batch's longest sequence then wastes little work.

Atom_DL's formula pairs are 12 tokens long on average, but a random batch of 256 pads to about 30, and the
attention costs the square of that. Grouping by length (as Hugging Face's ``group_by_length`` does) keeps the
batches random in content and order while each holds sequences of nearly one length.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch


class LengthGroupedBatches(torch.utils.data.Sampler[list[int]]):
    """Batch sampler: shuffle, sort each pool of ``pool_batches`` batches by length, cut, shuffle the batches.

    The order depends only on ``seed`` and the epoch (``set_epoch``, called by Lightning each epoch), so a run
    resumed from a checkpoint sees the same batches it would have seen. ``shuffle=False`` sorts the whole set
    once (validation: the same batches every epoch).
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int = 0, shuffle: bool = True,
                 pool_batches: int = 50) -> None:
        if batch_size < 1 or pool_batches < 1:
            raise ValueError(f"batch_size and pool_batches must be >= 1, got {batch_size}, {pool_batches}.")
        self.lengths = np.asarray(lengths)
        self.batch_size, self.seed, self.shuffle, self.pool_batches = batch_size, seed, shuffle, pool_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order ``__iter__`` yields."""
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            yield from (order[i:i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size))
            return
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.lengths))
        pool = self.batch_size * self.pool_batches
        batches = []
        for start in range(0, len(order), pool):
            chunk = order[start:start + pool]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [chunk[i:i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        for k in rng.permutation(len(batches)):
            yield batches[k].tolist()
