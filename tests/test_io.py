"""Atomic pickling: the target is whole or untouched, never half written."""

from __future__ import annotations

import pickle

import pytest

from gapkit.io import atomic_pickle


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("cannot pickle")


def test_atomic_pickle_roundtrip_and_failure_leaves_old_file(tmp_path):
    path = tmp_path / "sub" / "obj.pkl"
    atomic_pickle({"a": 1}, path)
    assert pickle.loads(path.read_bytes()) == {"a": 1}
    with pytest.raises(RuntimeError):
        atomic_pickle(Unpicklable(), path)
    assert pickle.loads(path.read_bytes()) == {"a": 1}
    assert [p.name for p in path.parent.iterdir()] == ["obj.pkl"]
