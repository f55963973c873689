"""Length-grouped batches: every sample once per epoch, little padding, an order fixed by seed and epoch."""

from __future__ import annotations

import numpy as np
import pytest

from gapkit.train.length_batches import LengthGroupedBatches


def _lengths(n: int = 1000) -> np.ndarray:
    return np.random.default_rng(0).integers(5, 40, n)


def test_each_sample_once_per_epoch_in_batches_of_the_size():
    sampler = LengthGroupedBatches(_lengths(), batch_size=32, seed=1, pool_batches=4)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 32
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert sorted(len(b) for b in batches)[1:] == [32] * 31  # one short batch at most


def test_padding_is_far_below_random_batches():
    lengths = _lengths()
    padded = lambda batches: sum(len(b) * lengths[b].max() for b in batches) / lengths.sum()  # noqa: E731
    grouped = padded(list(LengthGroupedBatches(lengths, batch_size=32, pool_batches=8)))
    order = np.random.default_rng(0).permutation(1000)
    random = padded([order[i:i + 32] for i in range(0, 1000, 32)])
    assert grouped < 1.15 < 1.5 < random


def test_order_depends_on_seed_and_epoch_only():
    a, b = LengthGroupedBatches(_lengths(), 32, seed=3), LengthGroupedBatches(_lengths(), 32, seed=3)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    b.set_epoch(1)
    assert list(a) == list(b)  # a resumed run repeats its epoch's batches


def test_without_shuffle_batches_are_sorted_and_fixed():
    sampler = LengthGroupedBatches(_lengths(), 100, shuffle=False)
    flat = [i for b in sampler for i in b]
    assert list(_lengths()[flat]) == sorted(_lengths())
    sampler.set_epoch(5)
    assert [i for b in sampler for i in b] == flat


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="batch_size"):
        LengthGroupedBatches([3, 4], batch_size=0)
