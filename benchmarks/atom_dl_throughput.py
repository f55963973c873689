"""Atom_DL pretraining throughput (samples/s, forward + backward + AdamW step), CPU and CUDA when present.

Run: ``GAPKIT_DATA_DIR=... python benchmarks/atom_dl_throughput.py [--samples 4096] [--layers 8]``.
Uses real OQMD formula pairs; prints the median of a few timed passes after a warm-up, for the trainer's
length-grouped batches and, side by side, for random batches padded to their longest pair (the ratio is the
gain of batching by length). Not a test.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from gapkit.data import load_oqmd_bandgap
from gapkit.models.atom_dl import AtomDL, collate
from gapkit.runtime import describe_device, seed_everything
from gapkit.train.atom_dl_task import AtomDLConfig, atom_dl_losses, make_loaders


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def throughput(loader, device: torch.device, n_layers: int, repeats: int, amp: bool) -> list[float]:
    """Samples per second of full training passes over ``loader`` (data loading included)."""
    seed_everything(0)
    model = AtomDL(n_layers=n_layers).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rates = []
    for rep in range(repeats + 1):  # the first pass warms up allocators/kernels and is not counted
        if device.type == "cuda":
            torch.cuda.synchronize()
        start, n = time.perf_counter(), 0
        for batch in loader:
            batch = _to(batch, device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = atom_dl_losses(model, batch)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            n += len(batch["pair_label"])
        if device.type == "cuda":
            torch.cuda.synchronize()
        if rep:
            rates.append(n / (time.perf_counter() - start))
    return rates


def main() -> None:
    """Print the median training throughput per device."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, torch.get_num_threads()],
                        help="CPU thread counts to time (a d=16 model is often fastest on one thread)")
    args = parser.parse_args()
    formulas = load_oqmd_bandgap()["formula"]
    config = AtomDLConfig(n_samples=args.samples, batch_size=args.batch_size, val_fraction=0.01)
    grouped, _, _ = make_loaders(formulas, config, progress=False)
    padded = torch.utils.data.DataLoader(grouped.dataset, batch_size=args.batch_size, shuffle=True,
                                         collate_fn=collate, generator=torch.Generator().manual_seed(0))
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"Atom_DL d=16, {args.layers} layers, 8 heads, batch {args.batch_size}, {len(grouped.dataset)} samples")
    for device in devices:
        for threads in sorted(set(args.threads)) if device.type == "cpu" else [torch.get_num_threads()]:
            torch.set_num_threads(threads)
            medians = {}
            for name, loader in (("length-grouped", grouped), ("random, padded", padded)):
                rates = throughput(loader, device, args.layers, args.repeats, amp=device.type == "cuda")
                medians[name] = statistics.median(rates)
                print(f"{describe_device(str(device))}, {name} batches: median "
                      f"{medians[name]:,.0f} samples/s (runs: {', '.join(f'{r:,.0f}' for r in rates)})")
            print(f"  length-grouped / random: {medians['length-grouped'] / medians['random, padded']:.2f}x")


if __name__ == "__main__":
    main()
