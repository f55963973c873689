"""Seeding and device selection shared by every trainer and notebook."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import random
import sys

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so that a CPU run repeats exactly."""
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def resolve_device(device: str = "auto"):
    """Return a torch.device: 'auto' picks CUDA when available, else CPU; 'cuda' without a GPU is an error."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was requested but no CUDA GPU is visible; use device='auto' or 'cpu'.")
    return dev


def describe_device(device: str = "auto") -> str:
    """Return a human-readable device name, e.g. 'cpu (2 threads)' or 'cuda:0 (NVIDIA H100)'."""
    import torch

    dev = resolve_device(device)
    if dev.type == "cuda":
        return f"{dev} ({torch.cuda.get_device_name(dev)})"
    return f"cpu ({torch.get_num_threads()} threads)"


_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3  # glibc mallopt parameters


def keep_large_allocations(size_bytes: int = 1 << 30) -> bool:
    """Let glibc keep up to ``size_bytes`` of freed memory for reuse instead of handing it back (True when set).

    By default glibc serves every block over 32 MB with a fresh ``mmap`` and returns freed memory at the top
    of the heap to the system, so a CPU training step that makes the same large tensors each batch (a CGCNN
    batch has ~100k edges, ~50 MB per [edges x 128] tensor) page-faults them in again every time: 20-30 % of
    the step. Kept, the blocks are reused; the process's memory does not shrink back between batches. A
    no-op (False) on systems without glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    # blocks up to size_bytes come from the heap; the heap grows in steps of a quarter of that and is only
    # trimmed above 2 GB of free top (mallopt takes a C int)
    settings = {_M_MMAP_THRESHOLD: min(int(size_bytes), 2**31 - 1), _M_TOP_PAD: int(size_bytes) // 4,
                _M_TRIM_THRESHOLD: 2**31 - 1}
    try:
        libc = _libc()
        return all(libc.mallopt(param, value) for param, value in settings.items())
    except (OSError, AttributeError):  # musl, or no mallopt
        return False


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library, looked up once per process (every CPU training sets its allocator)."""
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
