"""Shared fixtures: the real shared data when present, isolated caches always."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_configure(config) -> None:
    """Point the registry at the shared datasets beside the checkout unless the caller chose a folder."""
    if not os.environ.get("GAPKIT_DATA_DIR") and SHARED.is_dir():
        os.environ["GAPKIT_DATA_DIR"] = str(SHARED)


def _shared_data_dir() -> Path | None:
    env = os.environ.get("GAPKIT_DATA_DIR")
    if env and Path(env).is_dir():
        return Path(env)
    return SHARED if SHARED.is_dir() else None


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real datasets; tests that need them are skipped where they are absent."""
    path = _shared_data_dir()
    if path is None:
        pytest.skip("shared datasets not available (set GAPKIT_DATA_DIR)")
    return path


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """A private cache dir so download/parse tests never touch the user's cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("GAPKIT_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Test models are tiny: one thread is faster than two and immune to a busy CPU."""
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
