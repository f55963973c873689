"""CIF text -> pymatgen Structures, parsed once per row and cached on disk.

The cache is one pickle per (dataset, source file), keyed by that file's sha256, so a changed data
file can never serve stale structures. Writes are atomic (temporary file + rename): a killed run
leaves the previous cache intact.
"""

from __future__ import annotations

import logging
import pickle
import warnings
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from tqdm.auto import tqdm

from gapkit.data.registry import DataError, _file_entry, cache_dir
from gapkit.io import atomic_pickle

logger = logging.getLogger(__name__)

ErrorPolicy = Literal["warn", "raise"]
_CACHE_VERSION = 1


class CIFParseError(DataError, ValueError):
    """A CIF that pymatgen cannot turn into a structure with at least one atom."""


class UnparsableRowsWarning(UserWarning):
    """Rows dropped because their CIF could not be parsed."""


def structure_from_cif(cif: str, label: str = "<cif>"):
    """Parse one CIF string into a Structure; CIFParseError names the row when it fails or is empty."""
    from pymatgen.core import Structure

    if not isinstance(cif, str) or not cif.strip():
        raise CIFParseError(f"{label}: empty CIF text.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen warns about rounding on most MP CIFs
            structure = Structure.from_str(cif, fmt="cif")
    except Exception as exc:
        raise CIFParseError(f"{label}: pymatgen could not parse the CIF ({exc}).") from exc
    if len(structure) == 0:
        raise CIFParseError(f"{label}: the CIF has no atoms.")
    return structure


_memory: dict[tuple[str, str], dict[Any, Any]] = {}


def _cache_path(dataset: str, filename: str, sha256: str) -> Path:
    safe = filename.replace("/", "_")
    return cache_dir() / "parsed" / dataset / f"{safe}.{sha256[:16]}.v{_CACHE_VERSION}.pkl"


def _load_cache(dataset: str, filename: str) -> dict[Any, Any]:
    key = (dataset, filename)
    if key not in _memory:
        path = _cache_path(dataset, filename, _file_entry(dataset, filename)["sha256"])
        table: dict[Any, Any] = {}
        if path.is_file():
            try:
                with open(path, "rb") as fh:
                    table = pickle.load(fh)
            except Exception as exc:  # a corrupt cache is rebuilt, never trusted
                logger.warning("Ignoring unreadable structure cache %s (%s)", path, exc)
                table = {}
        _memory[key] = table
    return _memory[key]


def _save_cache(dataset: str, filename: str, table: dict[Any, Any]) -> None:
    atomic_pickle(table, _cache_path(dataset, filename, _file_entry(dataset, filename)["sha256"]))


def attach_structures(
    df: pd.DataFrame,
    dataset: str,
    *,
    errors: ErrorPolicy = "warn",
    progress: bool = True,
    source_col: str = "_source_file",
    id_col: str = "id",
    cif_col: str = "cif",
) -> pd.DataFrame:
    """Add a ``structure`` column parsed from ``cif_col``; unparsable rows are dropped with a warning or raised."""
    if errors not in ("warn", "raise"):
        raise ValueError(f"errors must be 'warn' or 'raise', got {errors!r}.")
    structures: list[Any] = [None] * len(df)
    failures: list[str] = []
    for source, group in df.groupby(source_col, sort=False):
        table = _load_cache(dataset, str(source))
        todo = [(pos, rid, cif) for pos, rid, cif in
                zip(group.index, group[id_col], group[cif_col]) if rid not in table]
        for pos, rid, cif in tqdm(todo, desc=f"parsing {dataset}/{source}", disable=not progress or not todo,
                                  leave=False):
            try:
                table[rid] = structure_from_cif(cif, label=f"{dataset}/{source} row id {rid}")
            except CIFParseError as exc:
                table[rid] = exc  # remembered so a bad row is not re-parsed either
        if todo:
            _save_cache(dataset, str(source), table)
        for pos, rid in zip(group.index, group[id_col]):
            value = table[rid]
            if isinstance(value, CIFParseError):
                if errors == "raise":
                    raise value
                failures.append(str(value))
            else:
                structures[df.index.get_loc(pos)] = value
    out = df.copy()
    out["structure"] = structures
    if failures:
        warnings.warn(
            f"Skipped {len(failures)} of {len(df)} rows of {dataset} with unparsable CIFs "
            f"(first: {failures[0]}). Pass errors='raise' to stop at the first one.",
            UnparsableRowsWarning,
            stacklevel=3,
        )
        out = out[out["structure"].notna()].reset_index(drop=True)
    return out
