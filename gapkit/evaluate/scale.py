"""Tables of the data-scale models: the full-data comparison, the fusion's paired differences, the size curve."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import pandas as pd


def full_table(record: dict[str, Any]) -> pd.DataFrame:
    """One row per (dataset, model) of a models-full record: test MAE mean, std, per split, epochs."""
    rows = []
    for key, dataset in (("mp_mae", "MP structures, gap > 0"), ("oqmd_mae", "OQMD formulas, gap > 0")):
        for model, m in record["metrics"].get(key, {}).items():
            rows.append({"dataset": dataset, "model": model, "splits": len(m["per_split"]),
                         "test_mean": m["test_mean"], "test_std": m["test_std"],
                         "per_split": ", ".join(f"{x:.3f}" for x in m["per_split"]),
                         "epochs": ", ".join(str(e) for e in m["epochs"])})
    return pd.DataFrame(rows, columns=["dataset", "model", "splits", "test_mean", "test_std", "per_split", "epochs"])


def paired_table(record: dict[str, Any]) -> pd.DataFrame:
    """The fusion minus each parent, per split (negative: the fusion is better), and the verdict."""
    rows = [{"comparison": name, "per_split": ", ".join(f"{x:+.3f}" for x in d["per_split"]),
             "verdict": d["verdict"]} for name, d in record["metrics"].get("paired_difference", {}).items()]
    return pd.DataFrame(rows, columns=["comparison", "per_split", "verdict"])


def size_curve(points: list[tuple[str, int, dict[str, float]]]) -> pd.DataFrame:
    """Long table (profile, n_train, model, test_mae) from (profile, training-set size, {model: test MAE})."""
    rows = [{"profile": profile, "n_train": n, "model": model, "test_mae": mae}
            for profile, n, maes in points for model, mae in maes.items()]
    return pd.DataFrame(rows).sort_values(["model", "n_train"]).reset_index(drop=True)


def plot_size_curve(curve: pd.DataFrame, ax: plt.Axes | None = None, paper: float | None = None) -> plt.Axes:
    """Test MAE against training-set size (log x), one line per model; the paper's number as a line."""
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    for model, part in curve.groupby("model", sort=False):
        ax.plot(part["n_train"], part["test_mae"], marker="o", label=model)
    for n, profile in curve.drop_duplicates("n_train")[["n_train", "profile"]].itertuples(index=False):
        ax.annotate(profile, (n, ax.get_ylim()[1]), textcoords="offset points", xytext=(0, -12), ha="center",
                    fontsize=8, color="grey")
    if paper is not None:
        ax.axhline(paper, color="grey", ls="--", lw=1, label=f"CGCNN paper, 16k crystals ({paper} eV)")
    ax.set(xscale="log", xlabel="training crystals (MP, gap > 0)", ylabel="test MAE (eV)")
    ax.legend(frameon=False, fontsize=8)
    return ax
