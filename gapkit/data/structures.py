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


CifEngine = Literal["auto", "gemmi", "pymatgen"]


def structure_from_cif(cif: str, label: str = "<cif>", engine: CifEngine = "auto"):
    """Parse one CIF string into a Structure; CIFParseError names the row when it fails or is empty.

    ``engine="auto"`` reads ordered single-block P1 CIFs (every atom listed: Materials Project, OQMD and
    most ML datasets) with gemmi's C++ parser, about 15x faster than pymatgen's; everything else (symmetry
    to expand, partial occupancy, several blocks, anything gemmi rejects) goes to pymatgen's
    ``CifParser``. ``"pymatgen"`` always uses pymatgen.
    """
    if not isinstance(cif, str) or not cif.strip():
        raise CIFParseError(f"{label}: empty CIF text.")
    if engine not in ("auto", "gemmi", "pymatgen"):
        raise ValueError(f"engine must be 'auto', 'gemmi' or 'pymatgen', got {engine!r}.")
    structure = _structure_via_gemmi(cif) if engine != "pymatgen" else None
    if structure is None:
        if engine == "gemmi":
            raise CIFParseError(f"{label}: gemmi cannot read this CIF as one ordered crystal; use engine='auto'.")
        structure = _structure_via_pymatgen(cif, label)
    if len(structure) == 0:
        raise CIFParseError(f"{label}: the CIF has no atoms.")
    return structure


def _structure_via_pymatgen(cif: str, label: str):
    from pymatgen.core import Structure

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen warns about rounding on most MP CIFs
            return Structure.from_str(cif, fmt="cif")
    except Exception as exc:
        raise CIFParseError(f"{label}: pymatgen could not parse the CIF ({exc}).") from exc


def _is_p1(block) -> bool:
    """True when the CIF block lists its whole cell (symmetry x,y,z only, or no symmetry given at all)."""
    ops = [op for tag in ("_symmetry_equiv_pos_as_xyz", "_space_group_symop_operation_xyz")
           for op in block.find_values(tag)]
    if ops:
        return [op.strip("'\" ").replace(" ", "").lower() for op in ops] == ["x,y,z"]
    names = [block.find_value(tag) for tag in ("_symmetry_space_group_name_H-M", "_space_group_name_H-M_alt",
                                                "_symmetry_Int_Tables_number", "_space_group_IT_number")]
    return all(name is None or name.strip("'\" ").replace(" ", "") in ("P1", "1", "?", ".") for name in names)


def _structure_via_gemmi(cif: str):
    """The Structure of an ordered one-block CIF read by gemmi, or None where pymatgen should decide."""
    try:
        import gemmi
    except ImportError:
        return None
    from pymatgen.core import Lattice, Structure

    try:
        doc = gemmi.cif.read_string(cif)
        if len(doc) != 1 or not _is_p1(doc.sole_block()):
            return None
        small = gemmi.make_small_structure_from_block(doc.sole_block())
        sites = small.sites
    except Exception:  # gemmi's errors carry no type worth keeping: pymatgen gives the user-facing message
        return None
    if not sites or any(site.occ != 1.0 or site.element.atomic_number == 0 for site in sites):
        return None
    cell = small.cell
    lattice = Lattice.from_parameters(cell.a, cell.b, cell.c, cell.alpha, cell.beta, cell.gamma)
    frac = [[site.fract.x % 1.0, site.fract.y % 1.0, site.fract.z % 1.0] for site in sites]
    return Structure(lattice, [site.element.name for site in sites], frac)


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
                table[rid] = structure_from_cif(cif, label=f"{dataset}/{source} row id {rid}", engine="pymatgen")
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
