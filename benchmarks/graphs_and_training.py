"""Benchmark (not a test): crystal-graph building, training throughput and CIF -> gap prediction time.

    GAPKIT_DATA_DIR=../shared/data .venv/bin/python benchmarks/graphs_and_training.py [--device auto]

Prints our figures beside the reference numbers of the original codes measured on the same data and
machine kind (../shared/BENCHMARKS.md), as ratios (> 1 means gapkit is faster).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
import warnings

import lightning as L
import numpy as np
import torch

REFERENCE = {"graph_ms": 36.3, "train_graphs_per_s": 357.0, "predict_ms": 44.6, "crabnet_formulas_per_s": 351.0}


class EpochTimer(L.Callback):
    """Wall time of every training epoch."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._t = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.times.append(time.perf_counter() - self._t)


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far (GB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def bench_graphs(structures) -> float:
    """Mean ms per structure to build crystal graphs without the cache (8 Å, 12 neighbours)."""
    from gapkit.featurize.graphs import build_graph

    times = []
    for s in structures:
        t = time.perf_counter()
        build_graph(s)
        times.append((time.perf_counter() - t) * 1e3)
    print(f"graph building, {len(times)} MP cells: mean {np.mean(times):.2f} ms, median {np.median(times):.2f} ms,"
          f" p90 {np.percentile(times, 90):.2f} ms  ->  {1e3 / np.mean(times):.0f} structures/s;"
          f" reference {REFERENCE['graph_ms']} ms (ratio {REFERENCE['graph_ms'] / np.mean(times):.1f}x)")
    return float(np.mean(times))


def bench_training(est_cls, df, n_epochs: int, device: str, label: str, unit: str, ref: float,
                   fused: bool = False, **kw) -> float:
    """Items/s of training epochs after the first (graphs/encodings cached; fused kernels compiled)."""
    from gapkit.models.cgcnn import use_fused_edges
    from gapkit.train.tasks import BandGapTask
    from gapkit.train.trainer import TrainConfig, fit

    est = est_cls(device=device, **kw)
    ds = est.dataset(df, df["gap_ev"].to_numpy(dtype=np.float32))
    model = use_fused_edges(est.build_model(), fused)
    task = BandGapTask(model, float(df["gap_ev"].mean()), float(df["gap_ev"].std()))
    timer = EpochTimer()
    with tempfile.TemporaryDirectory() as run_dir:
        cfg = TrainConfig(max_epochs=n_epochs, run_dir=run_dir, device=device, patience=None, progress=False,
                          extra_callbacks=[timer])
        fit(task, ds.loader(est.params["batch_size"], shuffle=True), None, cfg, resume=False)
    per_s = len(df) / statistics.median(timer.times[1:] or timer.times)
    print(f"training {label}, {len(df)} items, batch {est.params['batch_size']}: {per_s:.0f} {unit}/s "
          f"(epochs {', '.join(f'{t:.1f}' for t in timer.times)} s); reference {ref:.0f} {unit}/s "
          f"(ratio {per_s / ref:.1f}x); peak RSS {peak_rss_gb():.2f} GB")
    return per_s


def bench_predict(est_cls, structures, device: str, **kw) -> float:
    """ms per structure from CIF text to a predicted gap (parse + graph + network), graph cache off."""
    from gapkit.data import structure_from_cif
    from gapkit.train.tasks import BandGapTask

    cifs = [s.to(fmt="cif") for s in structures]
    est = est_cls(device=device, graph_cache=False, **kw)
    est.task_ = BandGapTask(est.build_model()).eval()
    t = time.perf_counter()
    parsed = [structure_from_cif(c) for c in cifs]
    est.predict(parsed)
    ms = (time.perf_counter() - t) * 1e3 / len(cifs)
    print(f"prediction CIF -> gap ({est_cls.__name__}), {len(cifs)} structures: {ms:.2f} ms/structure; "
          f"reference {REFERENCE['predict_ms']} ms (ratio {REFERENCE['predict_ms'] / ms:.1f}x)")
    return ms


def main() -> None:
    """Run every benchmark and print the comparison."""
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n-graphs", type=int, default=300)
    parser.add_argument("--n-train", type=int, default=1800)
    parser.add_argument("--n-formulas", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--fused", choices=["off", "on", "both"], default="both",
                        help="CGCNN/CGCrabNet training with the layer-by-layer edge messages, the fused kernels, or both")
    parser.add_argument("--only", choices=["graphs", "cgcnn", "cgcrabnet", "crabnet", "predict"], nargs="*")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run the training variants this many times, interleaved, and print each one's median "
                             "and range (this machine's speed drifts between minutes)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    run = set(args.only or ["graphs", "cgcnn", "cgcrabnet", "crabnet", "predict"])

    import gapkit.data as data
    from gapkit.estimators import CGCNN, CGCrabNet, CrabNet
    from gapkit.runtime import describe_device

    print("device:", describe_device(args.device), "| torch threads:", torch.get_num_threads())
    cells = data.load_mp_structures(nonzero=True, n=args.n_graphs, seed=0, progress=False)
    if "graphs" in run:
        bench_graphs(cells["structure"])
    cgcnn_size = dict(node_dim=64, n_conv=3, hidden_dim=128, batch_size=256)
    if run & {"cgcnn", "cgcrabnet"}:
        train = data.load_mp_structures(nonzero=True, n=args.n_train, seed=0, progress=False)
    variants = {"off": [False], "on": [True], "both": [False, True]}[args.fused]
    trainings = [("cgcnn", CGCNN, "CGCNN (64 features, 3 conv; {})", cgcnn_size),
                 ("cgcrabnet", CGCrabNet, "CGCrabNet (d_m 512, nodes 16; {})", dict(batch_size=256))]
    speeds: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for fused in variants:
            for name, est_cls, label, params in trainings:
                if name in run:
                    label = label.format("fused edge kernels" if fused else "layer by layer")
                    speeds.setdefault(label, []).append(bench_training(
                        est_cls, train, args.epochs, args.device, label, "graphs", REFERENCE["train_graphs_per_s"],
                        fused=fused, **params))
    if args.repeats > 1:
        for label, values in speeds.items():
            print(f"{label}: median {statistics.median(values):.0f} graphs/s over {len(values)} interleaved runs "
                  f"(range {min(values):.0f}-{max(values):.0f}); reference {REFERENCE['train_graphs_per_s']:.0f}")
    if "crabnet" in run:
        oqmd = data.load_oqmd_bandgap(split="train", nonzero=True).head(args.n_formulas)
        bench_training(CrabNet, oqmd, args.epochs, args.device, "CrabNet (d_m 512, 3 layers, 4 heads)",
                       "formulas", REFERENCE["crabnet_formulas_per_s"], batch_size=1024)
    if "predict" in run:
        bench_predict(CGCNN, cells["structure"], args.device, **cgcnn_size)
        bench_predict(CGCrabNet, cells["structure"], args.device)


if __name__ == "__main__":
    main()
