"""One registry over every element embedding of the book: ``get_embedding(name)`` -> table by element.

Sources
-------
* ``atomic`` (one-hot), ``magpie``, ``mat2vec``, ``megnet16``, ``oliynyk``, ``skipatom``: the tables
  shipped with the ``elementembeddings`` package (no download; its first import takes ~10 s).
* ``atom2vec``: Atom2Vec 20-d vectors from the shared data (``gapkit.data.load_atom2vec``).
* ``crabnet_mat2vec``, ``crabnet_onehot``, ``jarvis``, ``cgcnn``, ``elemnet``, ``matscholar``: the
  element tables CrabNet ships (``gapkit.data.load_element_properties``); the CrabNet copies of
  mat2vec / one-hot are kept because the CrabNet chapter reproduces CrabNet with exactly its tables.
* ``atom_dl``: the 16-d Atom_DL vectors trained by gapkit and committed in ``data/atom_dl/``.

Every table is a float64 ``DataFrame`` indexed by element symbol (rows that are not elements, such as
megnet16's ``Null``, are dropped). ``embedding_matrix`` turns a table into an array indexed by atomic
number, the index convention of ``gapkit.featurize.composition``.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from pymatgen.core import Element

logger = logging.getLogger(__name__)

ATOM_DL_VECTORS = Path(__file__).resolve().parents[2] / "data" / "atom_dl" / "vectors.csv"
MAX_Z = 103

_ELEMENTEMBEDDINGS = ("atomic", "magpie", "mat2vec", "megnet16", "oliynyk", "skipatom")
_CRABNET = {"crabnet_mat2vec": "mat2vec", "crabnet_onehot": "onehot", "crabnet_magpie": "magpie", "jarvis": "jarvis",
            "cgcnn": "cgcnn", "elemnet": "elemnet", "matscholar": "matscholar"}


def _from_elementembeddings(name: str) -> pd.DataFrame:
    from elementembeddings.core import Embedding  # slow import: only when asked for

    return Embedding.load_data(name).as_dataframe()


def _from_crabnet(name: str) -> pd.DataFrame:
    from gapkit.data import load_element_properties

    return load_element_properties(_CRABNET[name])


def _atom2vec(_: str) -> pd.DataFrame:
    from gapkit.data import load_atom2vec

    return load_atom2vec()


def _atom_dl(_: str) -> pd.DataFrame:
    return load_atom_dl_vectors(ATOM_DL_VECTORS)


def load_atom_dl_vectors(path: Path | str = ATOM_DL_VECTORS) -> pd.DataFrame:
    """Read Atom_DL vectors written by ``save_vectors`` (a CSV with an 'element' column)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"No Atom_DL vectors at {path}. Train Atom_DL (see book/embeddings.ipynb) and save its "
            "vectors with gapkit.models.atom_dl.element_vectors(...).to_csv(path)."
        )
    return pd.read_csv(path, index_col="element")


_REGISTRY: dict[str, Callable[[str], pd.DataFrame]] = {
    **{name: _from_elementembeddings for name in _ELEMENTEMBEDDINGS},
    "atom2vec": _atom2vec,
    **{name: _from_crabnet for name in _CRABNET},
    "atom_dl": _atom_dl,
}


def atom_dl_provenance() -> dict:
    """The run summary (config, device, wall time, final losses) of the committed Atom_DL vectors."""
    import json

    path = ATOM_DL_VECTORS.parent / "run_summary.json"
    if not path.is_file():
        raise FileNotFoundError(f"No Atom_DL run summary at {path}.")
    return json.loads(path.read_text())


def atom_dl_training_log() -> pd.DataFrame:
    """Per-epoch training log of the committed Atom_DL vectors' run."""
    return pd.read_csv(ATOM_DL_VECTORS.parent / "training_log.csv")


def list_embeddings() -> list[str]:
    """Names accepted by ``get_embedding``, in registry order."""
    return list(_REGISTRY)


@lru_cache(maxsize=None)
def _cached(name: str) -> pd.DataFrame:
    table = _REGISTRY[name](name)
    valid = [s for s in table.index if isinstance(s, str) and Element.is_valid_symbol(s)]
    dropped = len(table) - len(valid)
    if dropped:
        logger.debug("embedding %s: dropped %d rows that are not elements", name, dropped)
    table = table.loc[valid].astype(np.float64)
    table.index = pd.Index(valid, name="element")
    table.columns = [str(c) for c in table.columns]
    return table


def get_embedding(name: str) -> pd.DataFrame:
    """Return the element embedding ``name`` as a float DataFrame indexed by element symbol (a copy)."""
    if name not in _REGISTRY:
        raise KeyError(f"Unknown embedding {name!r}. Known embeddings: {', '.join(list_embeddings())}.")
    return _cached(name).copy()


def embedding_matrix(name: str, max_z: int = MAX_Z) -> np.ndarray:
    """Return float32[max_z + 1, d]: row Z = element Z's vector; row 0 (padding) and missing elements are 0.

    Missing elements (e.g. a table that stops at U) and NaN entries become zero vectors, so a model
    indexing the matrix with ``gapkit.featurize.composition`` Z arrays never fails; check coverage
    with ``coverage(name, elements)`` before trusting a model on rare elements.
    """
    return table_to_matrix(get_embedding(name), max_z)


def table_to_matrix(table: pd.DataFrame, max_z: int = MAX_Z) -> np.ndarray:
    """Any element table (index = symbols) -> float32[max_z + 1, d] by Z, zeros for padding/missing/NaN."""
    matrix = np.zeros((max_z + 1, table.shape[1]), dtype=np.float32)
    for symbol, row in zip(table.index, table.to_numpy()):
        z = Element(symbol).Z
        if z <= max_z:
            matrix[z] = np.nan_to_num(row, nan=0.0)
    return matrix


def coverage(name: str, elements: list[str]) -> float:
    """Fraction of ``elements`` that the embedding ``name`` has a vector for."""
    index = set(get_embedding(name).index)
    return float(np.mean([e in index for e in elements])) if elements else 1.0
