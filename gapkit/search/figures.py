"""Figures of the structure-search chapter: the active-learning loop, parity, structures, the training study
and success rates against oracle calls."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from ase import Atoms
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from gapkit.search.tables import METHODS, success_table

# (label, x, y) of the loop's boxes in axes coordinates
_BOXES = {
    "init": ("PyXtal random symmetric\nstructures, 7 crystal systems", 0.16, 0.86),
    "ga": ("GA per crystal system\ncut-and-splice + mutation,\nchildren relaxed on the potential", 0.16, 0.50),
    "oracle": ("oracle (CHGNet / DFT)\nsingle points on the\nlowest unseen structures", 0.50, 0.50),
    "filter": ("drop duplicates and\nstructures already known\n(|ΔE| < min_loss × n)", 0.84, 0.50),
    "train": ("refit potential\n(symmetry functions →\nper-element network)", 0.62, 0.86),
    "final": ("converged: GA on potential alone,\noracle relaxes and ranks\nthe recommended structures", 0.16, 0.12),
}
_ARROWS = [("init", "ga", ""), ("ga", "oracle", "recommend"), ("oracle", "filter", "label"),
           ("filter", "train", "grow set"), ("train", "ga", "new fitness"), ("ga", "final", "")]


def plot_loop(ax: plt.Axes | None = None) -> plt.Axes:
    """The active-learning loop as boxes and arrows."""
    ax = ax or plt.subplots(figsize=(9, 4.5))[1]
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    for key, (text, x, y) in _BOXES.items():
        color = "#fde2c8" if key == "oracle" else "#d8e8f8" if key != "final" else "#dff2df"
        ax.add_patch(FancyBboxPatch((x - 0.125, y - 0.085), 0.25, 0.17, boxstyle="round,pad=0.01",
                                    fc=color, ec="0.3"))
        ax.text(x, y, text, ha="center", va="center", fontsize=7.5)
    for a, b, label in _ARROWS:
        (xa, ya), (xb, yb) = _BOXES[a][1:], _BOXES[b][1:]
        # start/end at the box edges along the line between the centres
        d = np.array([xb - xa, yb - ya])
        scale = min(0.135 / abs(d[0]) if d[0] else np.inf, 0.095 / abs(d[1]) if d[1] else np.inf)
        start, end = np.array([xa, ya]) + scale * d, np.array([xb, yb]) - scale * d
        ax.add_patch(FancyArrowPatch(tuple(start), tuple(end), arrowstyle="-|>", mutation_scale=12,
                                     color="0.2"))
        if label:
            mid = (start + end) / 2
            ax.text(mid[0], mid[1] + 0.03, label, ha="center", fontsize=7, style="italic")
    return ax


def plot_parity(predicted: np.ndarray, oracle: np.ndarray, label: str, ax: plt.Axes) -> plt.Axes:
    """Potential vs oracle energies (eV/atom) with the identity line and the RMSE in the legend."""
    predicted, oracle = np.asarray(predicted, float), np.asarray(oracle, float)
    rmse = float(np.sqrt(np.mean((predicted - oracle) ** 2)))
    ax.scatter(oracle, predicted, s=14, alpha=0.7, label=f"{label} (RMSE {rmse:.3f} eV/atom)")
    lo, hi = min(oracle.min(), predicted.min()), max(oracle.max(), predicted.max())
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel("oracle energy (eV/atom)")
    ax.set_ylabel("potential energy (eV/atom)")
    return ax


def plot_structures(structures: dict[str, Atoms], repeat: tuple[int, int, int] = (2, 2, 2)) -> plt.Figure:
    """Side-by-side pictures (ASE's matplotlib plotting) of a few structures, each repeated."""
    from ase.visualize.plot import plot_atoms

    fig, axes = plt.subplots(1, len(structures), figsize=(3.2 * len(structures), 3.2))
    for ax, (title, atoms) in zip(np.atleast_1d(axes), structures.items()):
        plot_atoms(atoms.repeat(repeat), ax, rotation="10x,20y,0z", radii=0.5)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def plot_training_study(curves: dict[str, list[float]], grid, baseline: float) -> plt.Figure:
    """Left: validation RMSE per epoch for each activation (the paper's Fig. 6). Then one panel per batch
    size: held-out RMSE against learning rate for each optimizer (its Fig. 7); dashed: the training mean."""
    batches = sorted(grid["batch size"].unique(), key=lambda b: (b == "full", int(b) if b.isdigit() else 0))
    fig, axes = plt.subplots(1, 1 + len(batches), figsize=(4.2 * (1 + len(batches)), 3.8))
    for name, curve in curves.items():
        axes[0].plot(np.arange(1, len(curve) + 1), curve, label=name)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("validation RMSE (eV/atom)")
    axes[0].legend(title="activation", fontsize=8)
    colors = dict(zip(sorted(grid["optimizer"].unique()), plt.cm.tab10.colors))
    for ax, batch in zip(axes[1:], batches):
        for opt, rows in grid[grid["batch size"] == batch].groupby("optimizer"):
            rows = rows.sort_values("lr")
            ax.plot(rows["lr"], rows["test RMSE (eV/atom)"], marker="o", color=colors[opt], lw=1, label=opt)
        ax.axhline(baseline, color="k", ls="--", lw=1, label="training mean")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_title(f"batch size {batch}", fontsize=10)
        ax.set_ylabel("held-out RMSE (eV/atom)")
        ax.sharey(axes[1])
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def plot_success_curves(systems: dict[str, pd.DataFrame],
                        long_baselines: dict[str, pd.DataFrame] | None = None,
                        ga_variants: dict[str, dict[str, pd.DataFrame]] | None = None) -> plt.Figure:
    """One panel per system: fraction of seeds that found the ground state against oracle calls, for each
    method of a recorded run (columns named as in ``compare.METHODS``); dashed: the baselines given a
    longer budget (random search, ase-ga: whichever the longer run holds); in the GA's colour, dashed then
    dash-dotted and dotted: other runs of the GA (``{label: {system: calls}}``, e.g. more final rounds)."""
    long_baselines, ga_variants = long_baselines or {}, ga_variants or {}
    fig, axes = plt.subplots(1, len(systems), figsize=(4.2 * len(systems), 3.4), squeeze=False)
    colors = dict(zip(METHODS.values(), plt.cm.tab10.colors))
    for ax, (name, calls) in zip(axes[0], systems.items()):
        fine = np.arange(1, int(calls["budget"].max()) + 1)
        for key, label in METHODS.items():
            if key in calls:
                ax.step(fine, success_table(calls[[key]], fine)[label], where="post", label=label,
                        color=colors[label])
        if name in long_baselines:
            longer = long_baselines[name]
            fine = np.arange(1, int(longer["budget"].max()) + 1)
            for key, label in METHODS.items():
                if key in longer and key != "ga_potential":
                    ax.step(fine, success_table(longer[[key]], fine)[label], where="post", ls="--",
                            color=colors[label], label=f"{label}, {fine[-1]} calls")
        for style, (variant, runs) in zip(("--", "-.", ":"), ga_variants.items()):
            if name in runs:
                fine = np.arange(1, int(runs[name]["budget"].max()) + 1)
                ax.step(fine, success_table(runs[name][["ga_potential"]], fine)["GA + potential"], where="post",
                        ls=style, color=colors["GA + potential"], label=f"GA + potential, {variant}")
        ax.axhline(0.5, color="0.6", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_title(f"{name} ({len(calls)} seeds)")
        ax.set_xlabel("oracle calls")
        ax.set_ylabel("success rate")
        ax.set_ylim(-0.03, 1.03)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_success_bands(runs: dict[str, dict[str, pd.Series]], level: float = 0.9) -> plt.Figure:
    """One panel per system (``{system: {method label: per-seed calls, inf = not found}}``): the fraction of seeds
    that had found the reference by each number of oracle calls, with its Wilson interval (``level``) shaded."""
    from gapkit.search.statistics import wilson_interval

    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.4), squeeze=False)
    colors = plt.cm.tab10.colors
    for ax, (system, methods) in zip(axes[0], runs.items()):
        top = max(float(np.nanmax(np.where(np.isfinite(c), c, 0))) for c in methods.values())
        budgets = np.unique(np.geomspace(1, max(top, 10) * 1.5, 200).astype(int))
        for color, (label, calls) in zip(colors, methods.items()):
            calls = np.asarray(calls, dtype=float)
            hits = (calls[None, :] <= budgets[:, None]).sum(axis=1)
            bands = np.array([wilson_interval(int(h), len(calls), level) for h in hits])
            ax.step(budgets, hits / len(calls), where="post", color=color, label=f"{label} ({len(calls)} seeds)")
            ax.fill_between(budgets, bands[:, 0], bands[:, 1], step="post", color=color, alpha=0.15, lw=0)
        ax.axhline(0.5, color="0.6", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_title(system)
        ax.set_xlabel("oracle calls")
        ax.set_ylabel("seeds that found it")
        ax.set_ylim(-0.03, 1.03)
    axes[0][0].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig
