"""The Janus chapter's study: methods x embeddings nested CV, the paper's Table 4, a metal classifier, pictures.

Everything takes features from ``gapkit.featurize.janus`` and runs the models of
``gapkit.models.classical`` on one set of outer folds, so every cell of the methods x embeddings grid
can be compared fold by fold with ``gapkit.models.classical.paired_test``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from pymatgen.core import Composition, Structure

from gapkit.models.classical import METHOD_NAMES, CVConfig, NestedCVResult, nested_cv

logger = logging.getLogger(__name__)

TABLE4 = Path(__file__).resolve().parents[2] / "data" / "papers" / "atomdl_janus_table4_predictions.csv"


def run_grid(features: Mapping[str, np.ndarray], y: np.ndarray, methods: Sequence[str], config: CVConfig,
             progress: bool = True) -> dict[tuple[str, str], NestedCVResult]:
    """Nested CV of every (method, embedding) pair on the same outer folds: {(method, embedding): result}."""
    from tqdm.auto import tqdm

    pairs = [(m, e) for m in methods for e in features]
    out = {}
    for method, emb in tqdm(pairs, disable=not progress, desc="methods x embeddings"):
        out[(method, emb)] = nested_cv(features[emb], y, method, config)
    return out


def grid_table(results: Mapping[tuple[str, str], NestedCVResult]) -> pd.DataFrame:
    """Long table of the grid: method, embedding, mean and std of the per-fold MAE (eV), sorted by mean."""
    rows = [{"method": m, "embedding": e, "mae_mean": r.mae, "mae_std": r.mae_std} for (m, e), r in results.items()]
    return pd.DataFrame(rows).sort_values("mae_mean").reset_index(drop=True)


# Record keys: the paper's spelling (RF, KRR, SVR; Magpie, Atom2Vec, Atom_DL), which the reproduction page
# matches as ``cv_mae.<METHOD>.<Embedding>.mean``; other embeddings keep their registry names.
RECORD_METHODS = {"mean": "mean", "rf": "RF", "et": "ET", "gbr": "GBR", "svr": "SVR", "krr": "KRR"}
RECORD_EMBEDDINGS = {"magpie": "Magpie", "atom2vec": "Atom2Vec", "atom_dl": "Atom_DL"}


def cv_mae_record(results: Mapping[tuple[str, str], NestedCVResult]) -> dict[str, dict[str, dict[str, float]]]:
    """{METHOD: {Embedding: {'mean', 'std'}}} of the grid in the record's spelling, rounded, for ``record_results``."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for (m, e), r in results.items():
        out.setdefault(RECORD_METHODS.get(m, m), {})[RECORD_EMBEDDINGS.get(e, e)] = {
            "mean": round(r.mae, 4), "std": round(r.mae_std, 4)}
    return out


def best_result(results: Mapping[tuple[str, str], NestedCVResult],
                exclude: Iterable[str] = ("mean",)) -> tuple[str, str, NestedCVResult]:
    """(method, embedding, result) of the lowest mean CV MAE, skipping the methods in ``exclude``."""
    skip = set(exclude)
    (m, e), r = min(((k, v) for k, v in results.items() if k[0] not in skip), key=lambda kv: kv[1].mae)
    return m, e, r


def record_to_results(cv_mae: Mapping[str, Mapping[str, Mapping[str, float]]]) -> dict[tuple[str, str], dict]:
    """The recorded ``cv_mae[METHOD][Embedding] = {'mean', 'std'}`` as {(method, embedding): {...}} in gapkit names."""
    methods = {v: k for k, v in RECORD_METHODS.items()}
    embeddings = {v: k for k, v in RECORD_EMBEDDINGS.items()}
    return {(methods.get(m, m), embeddings.get(e, e)): dict(v) for m, per in cv_mae.items() for e, v in per.items()}


def _mean_std(value: NestedCVResult | Mapping[str, float]) -> tuple[float, float]:
    if isinstance(value, NestedCVResult):
        return value.mae, value.mae_std
    return float(value["mean"]), float(value["std"])


def plot_grid_bars(results: Mapping[tuple[str, str], NestedCVResult | Mapping[str, float]], ax: plt.Axes | None = None,
                   methods: Sequence[str] | None = None, embeddings: Sequence[str] | None = None) -> plt.Axes:
    """Grouped bars (one group per method, one bar per embedding) of the CV MAE with ±1 std error bars.

    ``results`` maps (method, embedding) to a ``NestedCVResult`` or to a recorded {'mean', 'std'}.
    """
    methods = list(methods or dict.fromkeys(m for m, _ in results))
    embeddings = list(embeddings or dict.fromkeys(e for _, e in results))
    ax = ax if ax is not None else plt.subplots(figsize=(10, 4))[1]
    width = 0.8 / len(embeddings)
    cmap = plt.get_cmap("tab20" if len(embeddings) > 10 else "tab10")
    for j, emb in enumerate(embeddings):
        pairs = [_mean_std(results[(m, emb)]) if (m, emb) in results else (np.nan, 0.0) for m in methods]
        means, stds = [p[0] for p in pairs], [p[1] for p in pairs]
        ax.bar(np.arange(len(methods)) + (j - (len(embeddings) - 1) / 2) * width, means, width, yerr=stds,
               label=emb, color=cmap(j), capsize=2, error_kw={"lw": 0.8})
    ax.set_xticks(np.arange(len(methods)), [METHOD_NAMES.get(m, m) for m in methods])
    ax.set_ylabel("CV MAE (eV)")
    ax.legend(ncol=min(len(embeddings), 5), fontsize=8, frameon=False)
    return ax


def paper_table4(path: Path | str = TABLE4) -> pd.DataFrame:
    """The Atom_DL paper's Table 4: 24 test monolayers, PBE+SOC gap and nine RF/KRR/SVR predictions (eV)."""
    return pd.read_csv(path)


def match_table4(table4: pd.DataFrame, janus: pd.DataFrame) -> pd.Series:
    """Row position in ``janus`` of each Table 4 row: same elements, the C2DB gap nearest the paper's DFT gap."""
    keys = [frozenset(Composition(f).elements) for f in janus["formula"]]
    gaps = janus["gap_ev"].to_numpy(float)
    pos = []
    for formula, gap in zip(table4["formula"], table4["dft_gap_ev"]):
        key = frozenset(Composition(formula).elements)
        cand = [i for i, k in enumerate(keys) if k == key]
        if not cand:
            raise KeyError(f"Table 4 formula {formula!r} is not among the Janus monolayers.")
        pos.append(min(cand, key=lambda i: abs(gaps[i] - gap)))
    return pd.Series(pos, index=table4.index, name="row")


def table4_comparison(table4: pd.DataFrame, janus: pd.DataFrame, ours: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Table 4 beside C2DB's gap and our held-out predictions (``ours``: {column: prediction per janus row})."""
    rows = match_table4(table4, janus)
    out = pd.DataFrame({"formula": table4["formula"],
                        "prototype": janus["prototype"].to_numpy()[rows],
                        "paper DFT": table4["dft_gap_ev"],
                        "C2DB PBE+SOC": janus["gap_ev"].to_numpy(float)[rows]})
    for col in ("rf_atomdl", "krr_atomdl", "svr_atomdl"):
        out[f"paper {col}"] = table4[col]
    for name, pred in ours.items():
        out[name] = np.asarray(pred, float)[rows]
    return out


def table4_mae(comparison: pd.DataFrame, truth: str = "paper DFT") -> pd.Series:
    """MAE (eV) of every prediction column of ``table4_comparison`` against ``truth``."""
    cols = [c for c in comparison.columns if c not in ("formula", "prototype", "paper DFT", "C2DB PBE+SOC")]
    return comparison[cols].sub(comparison[truth], axis=0).abs().mean().rename("MAE vs " + truth)


def metal_classifier_cv(X: np.ndarray, is_metal: np.ndarray, config: CVConfig, n_trees: int = 100) -> dict[str, float]:
    """Repeated stratified K-fold of a random-forest metal/semiconductor classifier; accuracy, balanced accuracy, AUC."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    X, yb = np.asarray(X, float), np.asarray(is_metal, bool)
    acc, bal, auc = [], [], []
    for r in range(config.n_repeats):
        cv = StratifiedKFold(config.n_outer, shuffle=True, random_state=config.seed * 1000 + r)
        for train, test in cv.split(X, yb):
            clf = RandomForestClassifier(n_estimators=n_trees, random_state=config.seed * 1000 + r, n_jobs=1)
            clf.fit(X[train], yb[train])
            prob = clf.predict_proba(X[test])[:, 1]
            acc.append(accuracy_score(yb[test], prob > 0.5))
            bal.append(balanced_accuracy_score(yb[test], prob > 0.5))
            auc.append(roc_auc_score(yb[test], prob))
    majority = float(max(yb.mean(), 1 - yb.mean()))
    return {"accuracy": float(np.mean(acc)), "accuracy_std": float(np.std(acc, ddof=1)),
            "balanced_accuracy": float(np.mean(bal)), "roc_auc": float(np.mean(auc)),
            "roc_auc_std": float(np.std(auc, ddof=1)), "majority_accuracy": majority, "n": int(len(yb)),
            "n_metal": int(yb.sum())}


class ColumnPredictor:
    """A fixed model that predicts ``slope * X[:, column] + intercept`` (e.g. 'HSE gap = PBE gap')."""

    def __init__(self, column: int = 0, slope: float = 1.0, intercept: float = 0.0) -> None:
        self.column, self.slope, self.intercept = column, slope, intercept

    def get_params(self, deep: bool = True) -> dict[str, float]:
        """scikit-learn parameters (so ``clone`` works)."""
        return {"column": self.column, "slope": self.slope, "intercept": self.intercept}

    def set_params(self, **params: float) -> "ColumnPredictor":
        """Set scikit-learn parameters."""
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def fit(self, X: np.ndarray, y: np.ndarray) -> "ColumnPredictor":
        """Nothing to learn."""
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """slope * X[:, column] + intercept."""
        return self.slope * np.asarray(X, float)[:, self.column] + self.intercept


def hse_study(pbe: np.ndarray, hse: np.ndarray, composition: np.ndarray, method: str,
              config: CVConfig) -> dict[str, NestedCVResult]:
    """CV of ways to get the HSE06 gap: =PBE, linear in PBE, composition+structure, +PBE, and a PBE-to-HSE delta."""
    from sklearn.linear_model import LinearRegression

    from gapkit.models.classical import cv_estimator

    pbe, hse = np.asarray(pbe, float), np.asarray(hse, float)
    comp = np.asarray(composition, float)
    with_pbe = np.column_stack([pbe, comp])
    out = {
        "HSE = PBE": cv_estimator(pbe[:, None], hse, ColumnPredictor(), config, "HSE = PBE"),
        "linear in PBE": cv_estimator(pbe[:, None], hse, LinearRegression(), config, "linear in PBE"),
        "features, no PBE": nested_cv(comp, hse, method, config),
        "features + PBE": nested_cv(with_pbe, hse, method, config),
    }
    # Delta learning: learn HSE - PBE; the error of PBE + delta is the error of the delta.
    delta = nested_cv(with_pbe, hse - pbe, method, config)
    delta.oof = delta.oof + pbe[None, :]
    delta.y = hse
    out["PBE + learned delta"] = delta
    return out


def draw_janus(structure: Structure, axes: Sequence[plt.Axes], title: str = "") -> None:
    """Side and top views of a Janus cell repeated 3x3 in-plane (ASE's matplotlib renderer)."""
    from ase.visualize.plot import plot_atoms
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure) * (3, 3, 1)
    z = atoms.positions[:, 2]
    atoms.positions[:, 2] -= z.min() - 1.0
    atoms.cell[2, 2] = z.max() - z.min() + 2.0
    plot_atoms(atoms, axes[0], rotation="-90x", radii=0.5)
    plot_atoms(atoms, axes[1], rotation="0x", radii=0.5)
    for ax, view in zip(axes, ("side", "top")):
        ax.set_axis_off()
        ax.set_title(f"{title} ({view})" if title else view, fontsize=9)
