"""What an element embedding knows: cosine clustering, PCA, and a downstream regression, quantified.

Following the Atom_DL paper (Sun & Yuan 2023) on its 34 main-group elements, but with numbers in
place of eyeballing:

* ``cosine_linkage`` / ``plot_dendrogram``: average-linkage hierarchical clustering on the cosine
  distance ``1 - u.v / (|u||v|)`` (the paper does not name its linkage; average is the usual choice
  for cosine);
* ``pca_scores``: PCA to 4 components of the column-standardised vectors (standardising puts
  tables with physical units, like Magpie, on the same footing as learned ones);
* ``pc1_valence_spearman``: |Spearman rho| between PC1 and the number of valence electrons (the sign
  of a principal axis is arbitrary, so its absolute value is reported);
* ``cluster_purity``: cut the dendrogram into as many clusters as there are periodic-table groups
  and count the elements that share their cluster's majority group (1 = clusters are groups);
* ``downstream_mae``: one random forest on fraction-weighted-mean / min / max pooled element vectors.
"""

from __future__ import annotations

import logging
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from pymatgen.core import Element
from scipy.cluster.hierarchy import dendrogram, fcluster, linkage
from scipy.stats import spearmanr
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

logger = logging.getLogger(__name__)

# The 34 main-group elements of the paper's Fig. 4, and the clusters its text reports.
MAIN_GROUP_34 = ["H", "Li", "Na", "K", "Rb", "Cs", "Be", "Mg", "Ca", "Sr", "Ba", "B", "Al", "Ga", "In", "Tl",
                 "C", "Si", "Ge", "Sn", "Pb", "N", "P", "As", "Sb", "Bi", "O", "S", "Se", "Te",
                 "F", "Cl", "Br", "I"]
PAPER_CLUSTERS = {
    **{e: "alkali + alkaline earth" for e in ["Li", "Na", "K", "Rb", "Cs", "Be", "Mg", "Ca", "Sr", "Ba"]},
    **{e: "group-III metals" for e in ["Al", "Ga", "In", "Tl"]},
    **{e: "non-metals (not O)" for e in ["H", "C", "N", "P", "S", "Se", "F", "Cl", "Br", "I"]},
    **{e: "B, Ge, As, Sb + Sn, Pb, Bi" for e in ["B", "Ge", "As", "Sb", "Sn", "Pb", "Bi"]},
}  # O, Si and Te are not placed in a cluster by the paper's text


def periodic_group(symbol: str) -> int:
    """IUPAC group (1-18) of an element from pymatgen."""
    return Element(symbol).group


def valence_electrons(symbol: str) -> int:
    """Outer-shell electrons of a main-group element: the group for s-block, group - 10 for p-block."""
    group = periodic_group(symbol)
    if 3 <= group <= 12:
        raise ValueError(f"{symbol} is not a main-group element; its valence-electron count is ambiguous here.")
    return group if group <= 2 else group - 10


def _vectors(table: pd.DataFrame, elements: Sequence[str]) -> tuple[list[str], np.ndarray]:
    present = [e for e in elements if e in table.index]
    values = table.loc[present].to_numpy(dtype=float)
    keep = np.isfinite(values).all(axis=1) & (np.abs(values).sum(axis=1) > 0)
    return [e for e, k in zip(present, keep) if k], values[keep]


def cosine_linkage(table: pd.DataFrame, elements: Sequence[str] = MAIN_GROUP_34) -> tuple[list[str], np.ndarray]:
    """Average-linkage clustering on cosine distance; returns (elements used, scipy linkage matrix)."""
    used, x = _vectors(table, elements)
    if len(used) < 3:
        raise ValueError(f"Need at least 3 of the elements in the table to cluster, found {used}.")
    return used, linkage(x, method="average", metric="cosine")


def cluster_labels(table: pd.DataFrame, n_clusters: int, elements: Sequence[str] = MAIN_GROUP_34) -> pd.Series:
    """Flat cluster id per element from cutting the cosine dendrogram into n_clusters."""
    used, z = cosine_linkage(table, elements)
    return pd.Series(fcluster(z, t=n_clusters, criterion="maxclust"), index=pd.Index(used, name="element"))


def purity(clusters: Sequence[int], truth: Sequence) -> float:
    """Fraction of items whose cluster's most common true label is their own label."""
    df = pd.DataFrame({"cluster": list(clusters), "truth": list(truth)})
    return float(df.groupby("cluster")["truth"].agg(lambda s: s.value_counts().iloc[0]).sum() / len(df))


def cluster_purity(table: pd.DataFrame, elements: Sequence[str] = MAIN_GROUP_34) -> tuple[float, float]:
    """(purity, adjusted Rand index) of the cosine clusters against periodic-table groups."""
    groups = {e: periodic_group(e) for e in elements}
    clusters = cluster_labels(table, len(set(groups.values())), elements)
    truth = [groups[e] for e in clusters.index]
    return purity(clusters.to_numpy(), truth), float(adjusted_rand_score(truth, clusters.to_numpy()))


def _pca(table: pd.DataFrame, elements: Sequence[str], n_components: int) -> tuple[PCA, pd.DataFrame]:
    used, x = _vectors(table, elements)
    sd = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    pca = PCA(n_components=n_components, svd_solver="full")
    scores = pca.fit_transform(x)
    return pca, pd.DataFrame(scores, index=pd.Index(used, name="element"),
                             columns=[f"PC{i + 1}" for i in range(n_components)])


def pca_scores(table: pd.DataFrame, elements: Sequence[str] = MAIN_GROUP_34, n_components: int = 4) -> pd.DataFrame:
    """PCA scores (PC1..PCn) of the column-standardised vectors of ``elements``."""
    return _pca(table, elements, n_components)[1]


def pc1_valence_spearman(table: pd.DataFrame, elements: Sequence[str] = MAIN_GROUP_34) -> float:
    """|Spearman rho| between PC1 and the valence-electron count; NaN when PC1 is not unique.

    A one-hot table explains the same variance along every component, so its "PC1" is whichever
    direction the linear-algebra library returns first: no number, rather than an arbitrary one.
    """
    pca, scores = _pca(table, elements, 4)
    top, second = pca.explained_variance_[:2]
    if top - second <= 1e-6 * top:
        return float("nan")
    rho = spearmanr(scores["PC1"], [valence_electrons(e) for e in scores.index]).statistic
    return float(abs(rho))


def embedding_summary(tables: dict[str, pd.DataFrame], elements: Sequence[str] = MAIN_GROUP_34) -> pd.DataFrame:
    """One row per embedding: dimension, elements covered, |rho|(PC1, valence), cluster purity, ARI."""
    rows = []
    for name, table in tables.items():
        used, _ = _vectors(table, elements)
        pur, ari = cluster_purity(table, elements)
        rows.append({"embedding": name, "dim": table.shape[1], "n_elements": len(used),
                     "spearman_pc1_valence": pc1_valence_spearman(table, elements),
                     "cluster_purity": pur, "adjusted_rand": ari})
    return pd.DataFrame(rows).set_index("embedding")


# --------------------------------------------------------------------------- downstream regression
def pooled_features(formulas: Iterable[str], matrix: np.ndarray, max_elements: int = 7) -> np.ndarray:
    """[n, 3d] features: fraction-weighted mean, min and max of the element vectors of each formula."""
    from gapkit.featurize.composition import encode_formulas

    z, frac = encode_formulas(formulas, max_elements=max_elements, progress=False)
    vectors = matrix[z]  # [n, k, d]; padding rows are zero
    real = (z > 0)[..., None]
    mean = (vectors * frac[..., None]).sum(axis=1)
    vmin = np.where(real, vectors, np.inf).min(axis=1)
    vmax = np.where(real, vectors, -np.inf).max(axis=1)
    return np.concatenate([mean, vmin, vmax], axis=1).astype(np.float32)


def downstream_mae(df: pd.DataFrame, tables: dict[str, pd.DataFrame], seeds: Sequence[int] = (0, 1, 2),
                   n_estimators: int = 100, test_fraction: float = 0.2, target: str = "gap_ev") -> pd.DataFrame:
    """Random-forest test MAE per embedding over formula-grouped splits; columns mae_mean, mae_std, per seed."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.metrics import mean_absolute_error

    from gapkit.data.splits import train_val_test_split
    from gapkit.featurize.embeddings import table_to_matrix

    splits = {s: train_val_test_split(df, (1 - test_fraction, 0.0, test_fraction), seed=s) for s in seeds}
    rows = []
    for name, table in tables.items():
        matrix = table_to_matrix(table)
        maes = []
        for seed, (train, _, test) in splits.items():
            # max_features="sqrt" keeps 13 embeddings x seeds within the quick profile's minutes
            model = RandomForestRegressor(n_estimators=n_estimators, max_features="sqrt", random_state=seed, n_jobs=1)
            model.fit(pooled_features(train["formula"], matrix), train[target])
            maes.append(mean_absolute_error(test[target], model.predict(pooled_features(test["formula"], matrix))))
        rows.append({"embedding": name, "mae_mean": float(np.mean(maes)), "mae_std": float(np.std(maes, ddof=1))
                     if len(maes) > 1 else 0.0, **{f"mae_seed{s}": m for s, m in zip(seeds, maes)}})
    return pd.DataFrame(rows).set_index("embedding")


# --------------------------------------------------------------------------- figures
def plot_dendrogram(table: pd.DataFrame, elements: Sequence[str] = MAIN_GROUP_34,
                    groups: dict[str, str] | None = None, ax=None, title: str = ""):
    """Cosine dendrogram with leaf labels coloured by ``groups`` (default: the paper's clusters)."""
    import matplotlib.pyplot as plt

    groups = PAPER_CLUSTERS if groups is None else groups
    used, z = cosine_linkage(table, elements)
    ax = ax or plt.subplots(figsize=(10, 4))[1]
    dendrogram(z, labels=used, ax=ax, color_threshold=0, above_threshold_color="0.4", leaf_font_size=9)
    palette = dict(zip(sorted(set(groups.values())), plt.get_cmap("tab10").colors))
    for label in ax.get_xticklabels():
        label.set_color(palette.get(groups.get(label.get_text()), "black"))
    handles = [plt.Line2D([], [], marker="s", ls="", color=c, label=g) for g, c in palette.items()]
    handles.append(plt.Line2D([], [], marker="s", ls="", color="black", label="not placed by the paper"))
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), title="paper's clusters",
              title_fontsize=8)
    ax.set_ylabel("cosine distance (average linkage)")
    ax.set_xlabel("element")
    ax.set_title(title)
    return ax


def plot_pretraining_curves(log: pd.DataFrame, axes=None, title: str = ""):
    """Atom_DL curves per epoch: both losses (train and val) and masked-element / pair accuracy."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    epoch = log["epoch"] + 1
    for key, style in (("loss_lm", "-"), ("loss_label", "--")):
        for stage, colour in (("train", "C0"), ("val", "C1")):
            axes[0].plot(epoch, log[f"{stage}_{key}"], style, color=colour, marker="o", label=f"{stage} {key}")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("cross-entropy (nats)")
    axes[0].legend(fontsize=8)
    for key, style in (("mlm_acc", "-"), ("pair_acc", "--")):
        for stage, colour in (("train", "C0"), ("val", "C1")):
            axes[1].plot(epoch, log[f"{stage}_{key}"], style, color=colour, marker="o", label=f"{stage} {key}")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("accuracy (fraction)")
    axes[1].set_ylim(0, 1)
    axes[1].legend(fontsize=8)
    if title:
        axes[0].set_title(title)
    return axes


def plot_pca_pairs(scores: pd.DataFrame, pairs: Sequence[tuple[str, str]] = (("PC1", "PC2"), ("PC3", "PC4")),
                   colour_by: dict[str, int] | None = None, axes=None):
    """Scatter plots of PCA scores with element labels, coloured by valence electrons by default."""
    import matplotlib.pyplot as plt

    colour_by = colour_by or {e: valence_electrons(e) for e in scores.index}
    if axes is None:
        _, axes = plt.subplots(1, len(pairs), figsize=(6 * len(pairs), 5))
    for ax, (a, b) in zip(np.atleast_1d(axes), pairs):
        sc = ax.scatter(scores[a], scores[b], c=[colour_by[e] for e in scores.index], cmap="viridis", s=40)
        for e, (x, y) in scores[[a, b]].iterrows():
            ax.annotate(e, (x, y), fontsize=8, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(f"{a} score (standardised units)")
        ax.set_ylabel(f"{b} score (standardised units)")
    plt.colorbar(sc, ax=axes, label="valence electrons")
    return axes
