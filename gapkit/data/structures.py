"""CIF text -> pymatgen Structures, parsed once per row and cached on disk.

The cache is one SQLite table per (dataset, source file), named by that file's sha256 so a changed data
file can never serve stale structures, with one pickled structure (or parse error) per row id: a subset
reads only its own rows. Each batch of new rows is written in one transaction, so a killed run leaves the
cache as it was before that batch.
"""

from __future__ import annotations

import logging
import pickle
import sqlite3
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from tqdm.auto import tqdm

from gapkit.data.registry import DataError, _file_entry, cache_dir

logger = logging.getLogger(__name__)

ErrorPolicy = Literal["warn", "raise"]
_CACHE_VERSION = 2


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


_memory: dict[tuple[str, str], dict[Any, Any]] = {}  # rows read or parsed in this process


def _cache_path(dataset: str, filename: str, sha256: str) -> Path:
    safe = filename.replace("/", "_")
    return cache_dir() / "parsed" / dataset / f"{safe}.{sha256[:16]}.v{_CACHE_VERSION}.sqlite"


def _connect(dataset: str, filename: str) -> sqlite3.Connection | None:
    """The file's row cache (created if missing), or None when it cannot be opened (then nothing is cached)."""
    path = _cache_path(dataset, filename, _file_entry(dataset, filename)["sha256"])
    for attempt in range(2):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=60)
            db.execute("CREATE TABLE IF NOT EXISTS rows (id TEXT PRIMARY KEY, value BLOB NOT NULL)")
            return db
        except sqlite3.DatabaseError as exc:  # a corrupt cache is rebuilt, never trusted
            logger.warning("Rebuilding the unreadable structure cache %s (%s)", path, exc)
            if attempt == 0:
                path.unlink(missing_ok=True)
        except (sqlite3.Error, OSError) as exc:  # unwritable: work without a cache
            logger.warning("Not using the structure cache %s (%s)", path, exc)
            return None
    return None


def _load_cache(db: sqlite3.Connection | None, table: dict[Any, Any], missing: list[Any]) -> None:
    """Read the rows ``missing`` from ``table`` (id -> structure, or the CIFParseError of a bad row) out of ``db``."""
    if db is None:
        return
    by_key = {str(rid): rid for rid in missing}
    keys = list(by_key)
    try:
        for i in range(0, len(keys), 900):  # SQLite caps the parameters of one statement
            chunk = keys[i:i + 900]
            rows = db.execute(f"SELECT id, value FROM rows WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            for key, blob in rows:
                table[by_key[key]] = pickle.loads(blob)
    except (sqlite3.Error, pickle.UnpicklingError, EOFError) as exc:
        logger.warning("Ignoring an unreadable structure cache (%s)", exc)


def _save_cache(db: sqlite3.Connection | None, new: dict[Any, Any]) -> None:
    """Add the rows ``new`` (id -> structure or CIFParseError) to ``db`` in one transaction."""
    if db is None:
        return
    try:
        with db:
            db.executemany("INSERT OR REPLACE INTO rows VALUES (?, ?)",
                           [(str(rid), pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
                            for rid, value in new.items()])
    except sqlite3.Error as exc:
        logger.warning("Could not write the structure cache (%s)", exc)


def _parsed_rows(dataset: str, source: str, ids: list[Any], cifs: list[str], progress: bool) -> dict[Any, Any]:
    """Each id's structure (or CIFParseError): from this process's memory, then the disk cache (one connection,
    opened only when memory lacks a row), then parsed and added to both."""
    table = _memory.setdefault((dataset, source), {})
    missing = [rid for rid in dict.fromkeys(ids) if rid not in table]
    if not missing:
        return table
    db = _connect(dataset, source)
    try:
        _load_cache(db, table, missing)
        todo = [(rid, cif) for rid, cif in zip(ids, cifs) if rid not in table]
        new: dict[Any, Any] = {}
        for rid, cif in tqdm(todo, desc=f"parsing {dataset}/{source}", disable=not progress or not todo,
                             leave=False):
            try:
                new[rid] = structure_from_cif(cif, label=f"{dataset}/{source} row id {rid}", engine="pymatgen")
            except CIFParseError as exc:
                new[rid] = exc  # remembered so a bad row is not re-parsed either
        if new:
            table.update(new)
            _save_cache(db, new)
    finally:
        if db is not None:
            db.close()
    return table


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
        table = _parsed_rows(dataset, str(source), list(group[id_col]), list(group[cif_col]), progress)
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
