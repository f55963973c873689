"""Runtime helpers: seeding, device choice and the CPU allocator setting used by training."""

import sys

import pytest
import torch

from gapkit.runtime import describe_device, keep_large_allocations, resolve_device, seed_everything


def test_seed_everything_repeats_torch_draws():
    seed_everything(3)
    a = torch.rand(4)
    seed_everything(3)
    assert torch.equal(a, torch.rand(4))


def test_cuda_without_a_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu" and describe_device("cpu").startswith("cpu (")


PAGE_FAULTS = """
import resource, sys, torch
from gapkit.runtime import keep_large_allocations
if sys.argv[1] == "keep":
    assert keep_large_allocations() is True
block = 64 * 2**20 // 4  # a 64 MB tensor: above glibc's default 32 MB mmap limit
for _ in range(10):  # the heap grows to hold it
    torch.empty(block).fill_(1.0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):  # freed and made again, as in a training step
    torch.empty(block).fill_(1.0)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // 5)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_large_blocks_are_reused_without_page_faults():
    import subprocess

    def faults(mode: str) -> int:  # in a fresh process, as a training run starts
        run = subprocess.run([sys.executable, "-c", PAGE_FAULTS, mode], capture_output=True, text=True, check=True)
        return int(run.stdout.split()[-1])

    pages = 64 * 2**20 // 4096
    assert faults("default") > pages // 2  # glibc maps and unmaps the block each time
    assert faults("keep") < pages // 10
