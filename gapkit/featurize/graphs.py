"""Crystal graphs (CGCNN, Xie & Grossman 2018): atoms are nodes, the 12 nearest periodic neighbours are edges.

A graph stores only what the structure fixes — atomic numbers, directed edges and their lengths — so the
same cached graph serves every node featurisation (CGCNN ``atom_init``, one-hot, learned embeddings) and
every distance expansion, which the models apply on the fly.

Neighbours come from pymatgen's compiled ``Structure.get_neighbor_list`` (one call per structure, no
per-site Python loop); the 12 nearest per atom are then picked with one vectorised lexsort.

Disorder policy: a site with partial or mixed occupancy has no single atom to put on a node, so by
default ``build_graph`` raises :class:`DisorderedStructureError`. Pass ``disorder="majority"`` (here, to
the estimators, to their ``predict`` or as ``gapkit predict --disorder majority``) to replace each
disordered site by its majority species (a documented approximation, logged as a warning), or order the
structure yourself first (e.g. pymatgen's ``OrderDisorderedStructureTransformation``).

Graph cache: built graphs are kept on disk, by default under ``gapkit.data.cache_dir() / "graphs"``
(``$GAPKIT_CACHE_DIR/graphs`` when that variable is set), about 20 kB per structure. The first use of
that default location is announced once per process with a :class:`GraphCacheNotice` warning;
``cache=GraphCache(path)`` (estimators: ``graph_cache=path``) moves it and ``cache=False``
(``graph_cache=False``) switches it off.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from gapkit.io import atomic_pickle

logger = logging.getLogger(__name__)

DEFAULT_CUTOFF = 8.0  # Angstrom, as in CGCNN
DEFAULT_MAX_NEIGHBORS = 12
_GRAPH_VERSION = 1  # bump when the graph format or the neighbour rule changes: old cache entries are ignored

DisorderPolicy = Literal["raise", "majority"]


class GraphError(ValueError):
    """A structure that cannot be turned into a crystal graph."""


class EmptyStructureError(GraphError):
    """The structure has no atoms."""


class IsolatedAtomError(GraphError):
    """An atom has no neighbour within the cutoff radius."""


class DisorderedStructureError(GraphError):
    """The structure has a site with partial or mixed occupancy."""


class GraphCacheNotice(UserWarning):
    """Where crystal graphs are being cached on disk (shown once per process)."""


@dataclass(frozen=True)
class CrystalGraph:
    """One crystal graph: node atomic numbers and directed edges neighbour (src) -> centre (dst)."""

    atomic_numbers: np.ndarray  # int64 [n_atoms]
    edge_src: np.ndarray  # int64 [n_edges], the neighbour j sending the message
    edge_dst: np.ndarray  # int64 [n_edges], the centre atom i receiving it
    distances: np.ndarray  # float32 [n_edges], Angstrom

    @property
    def n_atoms(self) -> int:
        """Number of nodes (atoms in the cell)."""
        return int(self.atomic_numbers.shape[0])

    @property
    def n_edges(self) -> int:
        """Number of directed edges."""
        return int(self.edge_src.shape[0])


def _ordered(structure, disorder: DisorderPolicy):
    if structure.is_ordered:
        return structure
    if disorder == "raise":
        bad = next(i for i, site in enumerate(structure) if not site.is_ordered)
        raise DisorderedStructureError(
            f"Site {bad} ({structure[bad].species}) has partial or mixed occupancy, so it is not one atom. "
            "Order the structure first (e.g. pymatgen OrderDisorderedStructureTransformation) or put the "
            "majority species on each disordered site: disorder='majority' (estimators: "
            "CGCNN(disorder='majority') or predict(..., disorder='majority'); CLI: gapkit predict --disorder majority)."
        )
    if disorder != "majority":
        raise ValueError(f"disorder must be 'raise' or 'majority', got {disorder!r}.")
    from pymatgen.core import Structure

    logger.warning("Disordered structure %s: using the majority species on each site.", structure.formula)
    species = [max(site.species.items(), key=lambda kv: kv[1])[0] for site in structure]
    return Structure(structure.lattice, species, structure.frac_coords)


def build_graph(structure, cutoff: float = DEFAULT_CUTOFF, max_neighbors: int = DEFAULT_MAX_NEIGHBORS,
                disorder: DisorderPolicy = "raise") -> CrystalGraph:
    """Build the crystal graph of one pymatgen Structure (12 nearest neighbours within ``cutoff`` Å)."""
    if structure is None or len(structure) == 0:
        raise EmptyStructureError("The structure has no atoms: a crystal graph needs at least one site.")
    structure = _ordered(structure, disorder)
    numbers = np.fromiter((sp.Z for sp in structure.species), dtype=np.int64, count=len(structure))
    try:
        return graph_from_arrays(structure.lattice.matrix, structure.cart_coords, numbers, cutoff,
                                 max_neighbors, pbc=structure.pbc)
    except IsolatedAtomError as exc:
        raise IsolatedAtomError(f"{structure.composition.reduced_formula}: {exc}") from None


def graph_from_arrays(lattice: np.ndarray, cart_coords: np.ndarray, atomic_numbers: np.ndarray,
                      cutoff: float = DEFAULT_CUTOFF, max_neighbors: int = DEFAULT_MAX_NEIGHBORS,
                      pbc: Sequence[bool] = (True, True, True)) -> CrystalGraph:
    """Crystal graph from a 3x3 lattice (rows), Cartesian coordinates [n, 3] (Å) and atomic numbers [n]."""
    from pymatgen.optimization.neighbors import find_points_in_spheres

    n = len(atomic_numbers)
    if n == 0:
        raise EmptyStructureError("The structure has no atoms: a crystal graph needs at least one site.")
    if cutoff <= 0 or max_neighbors < 1:
        raise ValueError(f"cutoff must be > 0 and max_neighbors >= 1, got {cutoff}, {max_neighbors}.")
    coords = np.ascontiguousarray(cart_coords, dtype=float)
    # pymatgen's compiled cell-list search, called directly: Structure.get_neighbor_list adds Python-level
    # per-edge work around the same call
    centre, neighbour, _images, dist = find_points_in_spheres(
        coords, coords, r=float(cutoff), pbc=np.ascontiguousarray(pbc, dtype=np.int64),
        lattice=np.ascontiguousarray(lattice, dtype=float), tol=1e-8)
    not_self = ~((centre == neighbour) & (dist <= 1e-8))
    centre, neighbour, dist = centre[not_self], neighbour[not_self], dist[not_self]
    counts = np.bincount(centre, minlength=n)
    if (counts == 0).any():
        from pymatgen.core.periodic_table import Element

        lonely = int(np.flatnonzero(counts == 0)[0])
        raise IsolatedAtomError(
            f"Atom {lonely} ({Element.from_Z(int(atomic_numbers[lonely])).symbol}) has no neighbour within "
            f"{cutoff} Å; build the graph with a larger cutoff (e.g. cutoff={2 * cutoff:g})."
        )
    # Sort edges by (centre, distance rounded to 1e-8 Å, neighbour) and keep the first max_neighbors of each
    # centre; one int64 key sorts faster than a three-key lexsort and gives the same order.
    rounded = np.rint(dist * 1e8).astype(np.int64)
    if n < 2**14 and cutoff < 10.0:
        order = np.argsort((centre.astype(np.int64) << 44) | (rounded << 14) | neighbour.astype(np.int64))
    else:
        order = np.lexsort((neighbour, rounded, centre))
    centre, neighbour, dist = centre[order], neighbour[order], dist[order]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(len(centre)) - np.repeat(starts, counts)
    keep = rank < max_neighbors
    return CrystalGraph(
        atomic_numbers=np.asarray(atomic_numbers, dtype=np.int64),
        edge_src=neighbour[keep].astype(np.int64),
        edge_dst=centre[keep].astype(np.int64),
        distances=dist[keep].astype(np.float32),
    )


def structure_key(structure, cutoff: float = DEFAULT_CUTOFF, max_neighbors: int = DEFAULT_MAX_NEIGHBORS) -> str:
    """Hash of (lattice, fractional coordinates, species, cutoff, max_neighbors): the graph cache key."""
    h = hashlib.sha1()
    h.update(np.ascontiguousarray(structure.lattice.matrix, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(structure.frac_coords, dtype=np.float64).tobytes())
    # species_string covers disordered sites too, so "majority" graphs never collide with others
    h.update("|".join(site.species_string for site in structure).encode())
    h.update(f"{cutoff:.6f}/{max_neighbors}/v{_GRAPH_VERSION}".encode())
    return h.hexdigest()


def default_cache_dir() -> Path:
    """``gapkit.data.cache_dir() / "graphs"``: where built graphs are kept between runs."""
    from gapkit.data import cache_dir

    return Path(cache_dir()) / "graphs"


class GraphCache:
    """On-disk graph store, one small pickle per structure key, written atomically."""

    def __init__(self, directory: Path | str | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.pkl"  # two-level fan-out keeps folders small

    def get(self, key: str) -> CrystalGraph | None:
        """Return the cached graph for ``key``, or None (also for an unreadable entry)."""
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            with open(path, "rb") as fh:
                return pickle.load(fh)
        except Exception as exc:  # a corrupt entry is rebuilt, never trusted
            logger.warning("Ignoring unreadable graph cache entry %s (%s)", path, exc)
            return None

    def put(self, key: str, graph: CrystalGraph) -> None:
        """Store ``graph`` under ``key`` (temporary file + rename, so a killed run leaves no half file)."""
        atomic_pickle(graph, self._path(key))


def build_graphs(structures: Iterable, cutoff: float = DEFAULT_CUTOFF,
                 max_neighbors: int = DEFAULT_MAX_NEIGHBORS, cache: GraphCache | bool | None = True,
                 disorder: DisorderPolicy = "raise", progress: bool = True) -> list[CrystalGraph]:
    """Graphs of many structures, read from the disk cache when built before (``cache=False`` skips it)."""
    return _build_all(structures, cutoff, max_neighbors, cache, disorder, progress, stop_on_error=True)


def build_graphs_or_errors(structures: Iterable, cutoff: float = DEFAULT_CUTOFF,
                           max_neighbors: int = DEFAULT_MAX_NEIGHBORS, cache: GraphCache | bool | None = True,
                           disorder: DisorderPolicy = "raise",
                           progress: bool = True) -> list[CrystalGraph | GraphError]:
    """Like ``build_graphs``, but a structure that cannot become a graph leaves its GraphError in its slot."""
    return _build_all(structures, cutoff, max_neighbors, cache, disorder, progress, stop_on_error=False)


_announced: set[Path] = set()


def _announce(store: GraphCache) -> None:
    # a default cache grows silently otherwise (~85 MB per 4,500 structures): say where, once per process
    if store.directory not in _announced:
        _announced.add(store.directory)
        warnings.warn(f"Caching crystal graphs in {store.directory} (about 20 kB per structure). Move it with "
                      "graph_cache=PATH (or $GAPKIT_CACHE_DIR), switch it off with graph_cache=False.",
                      GraphCacheNotice, stacklevel=4)


def _build_all(structures: Iterable, cutoff: float, max_neighbors: int, cache: GraphCache | bool | None,
               disorder: DisorderPolicy, progress: bool, stop_on_error: bool) -> list:
    if cache is True:
        store: GraphCache | None = GraphCache()
        _announce(store)
    else:
        store = cache or None
    structures = list(structures)
    graphs: list = []
    built = 0
    for i, s in enumerate(tqdm(structures, desc="crystal graphs", disable=not progress, leave=False)):
        try:
            if s is None or len(s) == 0:
                raise EmptyStructureError("The structure has no atoms: a crystal graph needs at least one site.")
            # a graph cached under disorder="majority" must not answer a call that asked to refuse disorder
            look_up = store is not None and (disorder != "raise" or s.is_ordered)
            key = structure_key(s, cutoff, max_neighbors) if store is not None else ""
            graph = store.get(key) if look_up else None
            if graph is None:
                graph = build_graph(s, cutoff, max_neighbors, disorder)
                built += 1
                if store is not None:
                    store.put(key, graph)
        except GraphError as exc:
            error = type(exc)(f"Structure {i}: {exc}")
            if stop_on_error:
                raise error from exc
            graph = error
        graphs.append(graph)
    logger.info("crystal graphs: %d built, %d from cache", built, len(graphs) - built)
    return graphs


def collate_graphs(graphs: Sequence[CrystalGraph]) -> dict[str, torch.Tensor]:
    """Batch graphs into one disconnected graph: concatenated nodes, offset edges, atoms per crystal."""
    if len(graphs) == 0:
        raise ValueError("collate_graphs needs at least one graph.")
    n_atoms = np.fromiter((g.n_atoms for g in graphs), dtype=np.int64, count=len(graphs))
    offsets = np.concatenate(([0], np.cumsum(n_atoms)[:-1]))
    n_edges = np.fromiter((g.n_edges for g in graphs), dtype=np.int64, count=len(graphs))
    edge_offset = np.repeat(offsets, n_edges)
    return {
        "atomic_numbers": torch.from_numpy(np.concatenate([g.atomic_numbers for g in graphs])),
        "edge_src": torch.from_numpy(np.concatenate([g.edge_src for g in graphs]) + edge_offset),
        "edge_dst": torch.from_numpy(np.concatenate([g.edge_dst for g in graphs]) + edge_offset),
        "distances": torch.from_numpy(np.concatenate([g.distances for g in graphs])),
        "n_atoms": torch.from_numpy(n_atoms),
    }


def crystal_index(n_atoms: torch.Tensor) -> torch.Tensor:
    """Crystal id of every node of a batch ([0,0,0,1,1,...]) from the atoms-per-crystal vector."""
    return torch.repeat_interleave(torch.arange(n_atoms.shape[0], device=n_atoms.device), n_atoms)
