"""Shared fixtures: the real shared data when present, isolated caches always."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


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
