"""Feature vectors of Janus MXY monolayers: the M, X, Y element vectors plus structure features.

As in the Atom_DL paper, a monolayer is the concatenation of its three atoms' embedding vectors
(M, then X the lighter outer element, then Y) and its structure features: the three atoms'
normalised positions and the unit-cell area. Positions are normalised as fractional in-plane
coordinates (which encode the 2H or 1T prototype) and heights of X and Y relative to M in Å
(the out-of-plane fractional coordinate would depend on the arbitrary vacuum).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from gapkit.featurize.embeddings import get_embedding

STRUCTURE_COLUMNS = ("x_M", "y_M", "x_X", "y_X", "x_Y", "y_Y", "h_X_A", "h_Y_A", "area_A2")


def structure_features(table: pd.DataFrame, heights: str = "chgnet") -> pd.DataFrame:
    """Nine structure features per row of ``gapkit.data.janus.janus_table``: in-plane positions, heights, area.

    ``heights="chgnet"`` uses the CHGNet-relaxed heights, ``"covalent"`` the covalent-radius ones.
    """
    from gapkit.data.janus import _INPLANE

    cols = {"chgnet": ("h_x_A", "h_y_A"), "covalent": ("h_x_covalent_A", "h_y_covalent_A")}
    if heights not in cols:
        raise KeyError(f"heights must be 'chgnet' or 'covalent', got {heights!r}.")
    inplane = np.array([np.ravel(_INPLANE[p]) for p in table["prototype"]])
    out = pd.DataFrame(inplane, columns=list(STRUCTURE_COLUMNS[:6]), index=table.index)
    out["h_X_A"] = table[cols[heights][0]].astype(float).to_numpy()
    out["h_Y_A"] = table[cols[heights][1]].astype(float).to_numpy()
    out["area_A2"] = table["area_a2"].astype(float).to_numpy()
    return out


def element_features(table: pd.DataFrame, embedding: str) -> pd.DataFrame:
    """The M, X and Y vectors of ``embedding`` side by side (columns 'M:0', ..., 'Y:d-1')."""
    emb = get_embedding(embedding)
    parts = []
    for site in ("M", "X", "Y"):
        missing = sorted(set(table[site]) - set(emb.index))
        if missing:
            raise KeyError(f"Embedding {embedding!r} has no vector for {missing}; choose another embedding.")
        block = emb.loc[table[site]].to_numpy()
        parts.append(pd.DataFrame(block, columns=[f"{site}:{c}" for c in emb.columns], index=table.index))
    out = pd.concat(parts, axis=1)
    if out.isna().any().any():
        # a few tables have gaps for some properties: fill with the table's column mean, never silently NaN
        fill = {f"{s}:{c}": emb[c].mean() for s in ("M", "X", "Y") for c in emb.columns}
        out = out.fillna(fill)
    return out


def janus_features(table: pd.DataFrame, embedding: str | None, heights: str = "chgnet",
                   structure: bool = True) -> pd.DataFrame:
    """Element vectors of ``embedding`` (None: none) plus, if ``structure``, the nine structure features."""
    parts = []
    if embedding is not None:
        parts.append(element_features(table, embedding))
    if structure:
        parts.append(structure_features(table, heights))
    if not parts:
        raise ValueError("Ask for an embedding, structure features, or both.")
    return pd.concat(parts, axis=1)


def feature_sets(table: pd.DataFrame, embeddings: Iterable[str], heights: str = "chgnet") -> dict[str, np.ndarray]:
    """{embedding: float matrix} for several embeddings (plus 'structure' alone when listed)."""
    return {name: janus_features(table, None if name == "structure" else name, heights).to_numpy(float)
            for name in embeddings}
