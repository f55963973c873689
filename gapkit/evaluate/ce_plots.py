"""Figures of the center-environment transfer chapter: coordination shells, parity, t–μ map, learning curve."""

from __future__ import annotations

import numpy as np
import pandas as pd

ROLE_COLORS = {"A": "tab:blue", "B": "tab:green", "X": "tab:red"}


def shell_positions(prototype, role: str, cutoff: float = 4.2) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """Cartesian position of the first site of ``role`` and its neighbours within ``cutoff`` Å (role, xyz)."""
    roles = np.array(prototype.roles)
    i = int(np.flatnonzero(roles == role)[0])
    s = prototype.structure
    center = s[i].coords
    return center, [(prototype.roles[n.index], n.coords) for n in s.get_neighbors(s[i], cutoff)]


def coordination_panel(ax, prototype, role: str, config=None, title: str | None = None) -> None:
    """3-D view of one site (the center), its anion shell (bonds drawn) and its cation shell."""
    from gapkit.featurize.ce import CEConfig, role_shells

    config = config or CEConfig()
    anion, cation = role_shells(prototype, config)[role]
    cut = max(cation.mean_distance * 1.12, anion.mean_distance * 1.3)
    center, neighbours = shell_positions(prototype, role, cutoff=cut)
    d_x = min(np.linalg.norm(xyz - center) for r, xyz in neighbours if r == "X")
    ax.scatter(*center, s=420, color=ROLE_COLORS[role], edgecolor="k", depthshade=False, zorder=5)
    for r, xyz in neighbours:
        d = np.linalg.norm(xyz - center)
        if r == "X" and d <= d_x * config.anion_shell_tolerance:
            ax.plot(*np.stack([center, xyz]).T, color="0.4", lw=1)
            ax.scatter(*xyz, s=120, color=ROLE_COLORS["X"], edgecolor="k", depthshade=False)
        elif r != "X":
            ax.scatter(*xyz, s=160, color=ROLE_COLORS[r], alpha=0.45, edgecolor="k", depthshade=False)
    ax.set_title(title or f"{prototype.name} {role}: {anion.size:.0f} O, "
                 f"{cation.counts.get('A', 0):.0f} A + {cation.counts.get('B', 0):.0f} B", fontsize=9)
    ax.set_axis_off()


def coordination_figure(prototypes, config=None):
    """2 x 2 panels: the A and B sites of each prototype with their two shells."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig = plt.figure(figsize=(8.5, 7.5))
    for row, proto in enumerate(prototypes):
        for col, role in enumerate(("A", "B")):
            ax = fig.add_subplot(len(prototypes), 2, 2 * row + col + 1, projection="3d")
            coordination_panel(ax, proto, role, config)
    handles = [Line2D([], [], marker="o", ls="", color=c, markeredgecolor="k", label=f"{r} site" if r != "X" else "O")
               for r, c in ROLE_COLORS.items()]
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def parity(ax, y_true, y_pred, label: str = "", lims: tuple[float, float] | None = None) -> None:
    """Predicted vs DFT formation energy with the diagonal."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    ax.scatter(y_true, y_pred, s=6, alpha=0.5, label=label or None)
    lo, hi = lims or (min(y_true.min(), y_pred.min()), max(y_true.max(), y_pred.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel("DFT formation energy (eV/atom)")
    ax.set_ylabel("predicted (eV/atom)")


def tmu_map(ax, t, mu, energy, window=((0.7, 1.1), (0.45, 0.7)), vmin: float = -4.0, vmax: float = 0.0):
    """Candidates in the (t, μ) plane coloured by predicted formation energy, with the screening window."""
    from matplotlib.patches import Rectangle

    sc = ax.scatter(t, mu, c=energy, s=5, cmap="viridis_r", vmin=vmin, vmax=vmax)
    (t0, t1), (m0, m1) = window
    ax.add_patch(Rectangle((t0, m0), t1 - t0, m1 - m0, fill=False, ec="r", lw=1.5))
    ax.set_xlabel("tolerance factor t")
    ax.set_ylabel("octahedral factor μ")
    return sc


def learning_curve_plot(ax, curve: pd.DataFrame, paper: dict[str, float] | None = None) -> None:
    """Test MAE against the number of perovskite training examples, one line per model."""
    for model, part in curve.groupby("model", sort=False):
        ax.plot(part["n_train"], part["mae"], marker="o", label=model)
    for name, value in (paper or {}).items():
        ax.axhline(value, ls=":", color="0.5")
        ax.text(ax.get_xlim()[1] if ax.get_xlim()[1] > 1 else curve["n_train"].max(), value, f" {name}",
                va="bottom", ha="right", fontsize=8, color="0.3")
    ax.set_xlabel("perovskite training examples")
    ax.set_ylabel("test MAE (eV/atom)")
    ax.legend(fontsize=8)
