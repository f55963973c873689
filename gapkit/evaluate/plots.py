"""Figures of the models chapter: parity plots with a linear fit, training curves, an architecture sketch."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from gapkit.evaluate.metrics import linear_fit, regression_metrics


def parity_plot(y_true, y_pred, ax: plt.Axes | None = None, title: str = "",
                quantity: str = "band gap (eV)", unit: str = "eV") -> plt.Axes:
    """Predicted vs DFT values, the y = x line and the least-squares fit line, MAE in the legend."""
    ax = ax or plt.subplots(figsize=(4, 4))[1]
    y, p = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    fit, m = linear_fit(y, p), regression_metrics(y, p)
    lo, hi = float(min(y.min(), p.min(), 0.0)), float(max(y.max(), p.max())) * 1.05
    ax.scatter(y, p, s=6, alpha=0.4, color="tab:blue", edgecolors="none")
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--", label="y = x")
    xs = np.array([lo, hi])
    ax.plot(xs, fit["slope"] * xs + fit["intercept"], color="tab:red", lw=1.5,
            label=f"fit: {fit['slope']:.2f}x + {fit['intercept']:.2f} (r = {fit['r']:.2f})")
    ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel=f"DFT {quantity}", ylabel=f"predicted {quantity}",
           title=f"{title} (MAE {m['mae']:.3f} {unit})" if title else f"MAE {m['mae']:.3f} {unit}")
    ax.set_aspect("equal")
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    return ax


def training_curves(log: pd.DataFrame, ax: plt.Axes | None = None, title: str = "",
                    metric: str = "loss") -> plt.Axes:
    """Train and validation ``metric`` (``loss`` = Laplace NLL, or ``mae`` in eV) per epoch of a training log."""
    ax = ax or plt.subplots(figsize=(5, 3.5))[1]
    for stage, color in (("train", "tab:blue"), ("val", "tab:orange")):
        col = f"{stage}_{metric}"
        if col in log.columns:
            ax.plot(log["epoch"] + 1, log[col], color=color, label=stage)
    unit = " (eV)" if metric == "mae" else " (Laplace NLL, standardised gap)"
    ax.set(xlabel="epoch", ylabel=f"{metric}{unit}", title=title)
    ax.legend(frameon=False)
    return ax


def _box(ax: plt.Axes, x: float, y: float, text: str, color: str, w: float = 0.2, h: float = 0.075) -> None:
    ax.add_patch(plt.Rectangle((x - w / 2, y - h / 2), w, h, facecolor=color, edgecolor="black", lw=0.8))
    ax.text(x, y, text, ha="center", va="center", fontsize=7.5)


def _arrow(ax: plt.Axes, x0: float, y0: float, x1: float, y1: float) -> None:
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=dict(arrowstyle="->", lw=0.8))


def architecture_diagram(ax: plt.Axes | None = None) -> plt.Axes:
    """Block diagram of CGCrabNet: the CrabNet (composition) and CGCNN (structure) branches and their fusion."""
    ax = ax or plt.subplots(figsize=(8, 5))[1]
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.axis("off")
    left = ["formula → Z (x1), fractions (x2)", "element embedding (mat2vec)\n→ Linear to d_m",
            "+ fractional encoding\n(sin/cos of x2)", "N = 3 attention layers\nn = 4 heads, padding masked",
            "residual FFN → p, u, l\nz1 = mean(p·σ(l)), S = mean(u)"]
    right = ["structure → crystal graph\n(12 nearest neighbours, 8 Å)", "node one-hot / atom_init\n→ embedding (16)",
             "T = 3 gated convolutions\nσ(z W_f)·softplus(z W_s)", "mean pooling, softplus", "FC layers → z2 (and S2)"]
    ys = np.linspace(0.9, 0.34, 5)
    for col, items, color, title in ((0.25, left, "#cfe3f7", "CrabNet (composition)"),
                                     (0.75, right, "#f7e0c8", "CGCNN (structure)")):
        ax.text(col, 0.985, title, ha="center", va="center", fontsize=9, weight="bold")
        for i, (y, text) in enumerate(zip(ys, items)):
            _box(ax, col, y, text, color, w=0.4)
            if i:
                _arrow(ax, col, ys[i - 1] - 0.04, col, y + 0.04)
    _box(ax, 0.5, 0.15, "CGCrabNet: z = w1·z1 + w2·z2, w1 + w2 = 1 (7:3 or learned)\n"
         "loss L = 2·exp(−S)·|ẑ − z| + S", "#d9f2d0", w=0.62, h=0.1)
    _arrow(ax, 0.25, ys[-1] - 0.04, 0.42, 0.2)
    _arrow(ax, 0.75, ys[-1] - 0.04, 0.58, 0.2)
    return ax


def comparison_bars(table: pd.DataFrame, ax: plt.Axes | None = None, columns=("train", "val", "test")) -> plt.Axes:
    """Grouped bars of MAE (eV) per model and split from a table indexed by model name."""
    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    table[list(columns)].plot.bar(ax=ax, rot=20)
    ax.set(ylabel="MAE (eV)", xlabel="")
    ax.legend(frameon=False)
    return ax
