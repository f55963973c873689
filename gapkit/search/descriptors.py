"""Atom-centred descriptors in torch: Behler–Parrinello symmetry functions (G1, G2 radial, G4 angular)
and Chebyshev descriptors.

Neighbour pairs (which atom sees which periodic image) come from pymatgen's cell-list search
(``find_points_in_spheres``, the engine behind ``Structure.get_neighbor_list``); the
distances themselves are recomputed in torch from positions and cell, so energies built on these
descriptors are differentiable and forces/stress follow from autograd. The feature layout copies
DScribe's ACSF exactly (per neighbour species: G1, G2...; then per unordered species pair: G4...),
so the two can be compared number by number in the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from ase import Atoms
from pymatgen.optimization.neighbors import find_points_in_spheres


@dataclass(frozen=True)
class SymmetryFunctionParams:
    """Cutoff radius (Å), G2 (eta, Rs) pairs and G4 (eta, zeta, lambda) triplets."""

    r_cut: float = 5.0
    g2: tuple[tuple[float, float], ...] = field(
        default=((0.05, 0.0), (0.2, 0.0), (0.5, 0.0), (1.0, 2.5), (1.0, 3.0), (1.0, 3.5)))
    g4: tuple[tuple[float, float, float], ...] = field(
        default=((0.005, 1.0, 1.0), (0.005, 1.0, -1.0), (0.005, 4.0, 1.0), (0.005, 4.0, -1.0)))

    def n_features(self, n_species: int) -> int:
        """Length of one atom's descriptor vector for ``n_species`` species."""
        return (1 + len(self.g2)) * n_species + len(self.g4) * n_species * (n_species + 1) // 2


@dataclass
class NeighbourGraph:
    """Integer topology of one structure: pairs (i, j, image shift) and triplets (pair ij, pair ik)."""

    numbers: np.ndarray          # (n_atoms,) atomic numbers
    pair_i: np.ndarray           # (n_pairs,) centre atom
    pair_j: np.ndarray           # (n_pairs,) neighbour atom
    shifts: np.ndarray           # (n_pairs, 3) integer cell shifts of the neighbour image
    trip_ij: np.ndarray          # (n_trip,) index into pairs: first neighbour
    trip_ik: np.ndarray          # (n_trip,) index into pairs: second neighbour


def build_neighbour_graph(atoms: Atoms, r_cut: float, skin: float = 0.0) -> NeighbourGraph:
    """Find neighbour pairs within ``r_cut + skin`` (periodic images included) and angular triplets."""
    pos = np.ascontiguousarray(atoms.positions, dtype=float)
    i, j, shifts, dist = find_points_in_spheres(
        pos, pos, float(r_cut + skin), np.array([1, 1, 1], dtype=np.int64),
        np.ascontiguousarray(atoms.cell.array, dtype=float), 1e-8)
    keep = dist > 1e-8  # drop each atom's zero-distance self entry
    i, j, shifts = i[keep], j[keep], shifts[keep]
    order = np.lexsort((j, i))  # deterministic order regardless of ASE internals
    i, j, shifts = i[order], j[order], shifts[order]
    trip_ij, trip_ik = [], []
    starts = np.searchsorted(i, np.arange(len(atoms) + 1))
    for centre in range(len(atoms)):
        lo, hi = starts[centre], starts[centre + 1]
        if hi - lo < 2:
            continue
        a, b = np.triu_indices(hi - lo, k=1)  # each unordered neighbour pair once, as in DScribe
        trip_ij.append(a + lo)
        trip_ik.append(b + lo)
    cat = (lambda xs: np.concatenate(xs) if xs else np.zeros(0, dtype=np.int64))
    return NeighbourGraph(np.asarray(atoms.numbers), i.astype(np.int64), j.astype(np.int64),
                          shifts.astype(np.float64), cat(trip_ij).astype(np.int64),
                          cat(trip_ik).astype(np.int64))


def _check_species(graph: NeighbourGraph, species: list[int]) -> None:
    """Raise a clear error when the structure holds an element the descriptors have no slot for."""
    unknown = set(graph.numbers.tolist()) - set(species)
    if unknown:
        raise ValueError(f"Atomic numbers {sorted(unknown)} are not among the potential's species "
                         f"{species}; train a potential that includes them.")


def cosine_cutoff(r: torch.Tensor, r_cut: float) -> torch.Tensor:
    """Behler's cosine cutoff 0.5 (cos(pi r / r_cut) + 1), zero beyond r_cut."""
    fc = 0.5 * (torch.cos(math.pi * r / r_cut) + 1.0)
    return torch.where(r < r_cut, fc, torch.zeros_like(r))


def symmetry_functions(positions: torch.Tensor, cell: torch.Tensor, graph: NeighbourGraph,
                       species: list[int], params: SymmetryFunctionParams) -> torch.Tensor:
    """Return the (n_atoms, n_features) descriptor matrix, differentiable in positions and cell."""
    n_atoms = positions.shape[0]
    n_sp = len(species)
    index_of = {z: k for k, z in enumerate(species)}
    _check_species(graph, species)
    sp = torch.as_tensor(np.array([index_of[z] for z in graph.numbers.tolist()], dtype=np.int64))
    dtype = positions.dtype
    out = positions.new_zeros((n_atoms, params.n_features(n_sp)))
    if len(graph.pair_i) == 0:
        return out
    pi = torch.as_tensor(graph.pair_i)
    pj = torch.as_tensor(graph.pair_j)
    shift = torch.as_tensor(graph.shifts, dtype=dtype)
    vec = positions[pj] + shift @ cell - positions[pi]          # (n_pairs, 3)
    r = torch.linalg.norm(vec, dim=1)
    fc = cosine_cutoff(r, params.r_cut)
    # Radial block: per neighbour species, [G1, G2_1..G2_m]
    n_rad = 1 + len(params.g2)
    radial = [fc]
    for eta, rs in params.g2:
        radial.append(torch.exp(-eta * (r - rs) ** 2) * fc)
    radial = torch.stack(radial, dim=1)                          # (n_pairs, n_rad)
    cols = sp[pj][:, None] * n_rad + torch.arange(n_rad)[None, :]
    rows = pi[:, None].expand_as(cols)
    out = out.index_put((rows.reshape(-1), cols.reshape(-1)), radial.reshape(-1), accumulate=True)
    if not params.g4 or len(graph.trip_ij) == 0:
        return out
    # Angular block: per unordered neighbour-species pair, G4_1..G4_m
    tij = torch.as_tensor(graph.trip_ij)
    tik = torch.as_tensor(graph.trip_ik)
    v_ij, v_ik = vec[tij], vec[tik]
    r_ij, r_ik = r[tij], r[tik]
    r_jk = torch.linalg.norm(v_ik - v_ij, dim=1)
    cos_t = (v_ij * v_ik).sum(dim=1) / (r_ij * r_ik)
    fc3 = fc[tij] * fc[tik] * cosine_cutoff(r_jk, params.r_cut)
    r2 = r_ij ** 2 + r_ik ** 2 + r_jk ** 2
    ang = []
    for eta, zeta, lam in params.g4:
        base = torch.clamp(0.5 * (1.0 + lam * cos_t), min=0.0)
        ang.append(2.0 * base ** zeta * torch.exp(-eta * r2) * fc3)
    ang = torch.stack(ang, dim=1)                                # (n_trip, n_g4)
    sj, sk = sp[pj[tij]], sp[pj[tik]]
    hi, lo = torch.maximum(sj, sk), torch.minimum(sj, sk)
    pair_slot = hi * (hi + 1) // 2 + lo
    n_g4 = len(params.g4)
    cols = n_sp * n_rad + pair_slot[:, None] * n_g4 + torch.arange(n_g4)[None, :]
    rows = pi[tij][:, None].expand_as(cols)
    return out.index_put((rows.reshape(-1), cols.reshape(-1)), ang.reshape(-1), accumulate=True)




@dataclass(frozen=True)
class ChebyshevParams:
    """Chebyshev descriptors (Artrith, Urban & Ceder, PRB 96, 014112, 2017), the paper's choice for CaTiO3.

    Radial: ``sum_j T_a(2 r_ij / r_cut - 1) fc(r_ij)`` for orders a = 0..radial_order; angular:
    ``sum_{j<k} T_a(cos theta_ijk) fc(r_ij) fc(r_ik)`` (cutoff ``angular_cut``) for a = 0..angular_order.
    With several species a second, species-weighted copy follows (weights w_j and w_j w_k, spread evenly
    over [-1, 1]), so the length does not grow with the number of species as symmetry functions' does.
    """

    r_cut: float = 5.0
    angular_cut: float = 5.0
    radial_order: int = 10
    angular_order: int = 4

    def __post_init__(self) -> None:
        if not 0 < self.angular_cut <= self.r_cut:
            raise ValueError(f"angular_cut must be in (0, r_cut={self.r_cut}], got {self.angular_cut}.")
        if self.radial_order < 0 or self.angular_order < 0:
            raise ValueError("Chebyshev orders must be >= 0.")

    def n_features(self, n_species: int) -> int:
        """Length of one atom's descriptor vector for ``n_species`` species."""
        per_block = (self.radial_order + 1) + (self.angular_order + 1)
        return per_block * (2 if n_species > 1 else 1)


def species_weights(n_species: int) -> np.ndarray:
    """Typed-descriptor weight of each species: evenly spaced in [-1, 1] (1.0 for a single species)."""
    return np.linspace(-1.0, 1.0, n_species) if n_species > 1 else np.ones(1)


def chebyshev(x: torch.Tensor, order: int) -> torch.Tensor:
    """[..., order + 1] Chebyshev polynomials T_0..T_order of x by the recurrence (differentiable)."""
    terms = [torch.ones_like(x), x]
    for _ in range(order - 1):
        terms.append(2.0 * x * terms[-1] - terms[-2])
    return torch.stack(terms[: order + 1], dim=-1)


def chebyshev_descriptors(positions: torch.Tensor, cell: torch.Tensor, graph: NeighbourGraph,
                          species: list[int], params: ChebyshevParams) -> torch.Tensor:
    """Return the (n_atoms, n_features) Chebyshev descriptor matrix, differentiable in positions and cell."""
    _check_species(graph, species)
    n_atoms, n_sp = positions.shape[0], len(species)
    out = positions.new_zeros((n_atoms, params.n_features(n_sp)))
    if len(graph.pair_i) == 0:
        return out
    weight_of = dict(zip(species, species_weights(n_sp).tolist()))
    w = torch.as_tensor([weight_of[z] for z in graph.numbers.tolist()], dtype=positions.dtype)
    pi, pj = torch.as_tensor(graph.pair_i), torch.as_tensor(graph.pair_j)
    vec = positions[pj] + torch.as_tensor(graph.shifts, dtype=positions.dtype) @ cell - positions[pi]
    r = torch.linalg.norm(vec, dim=1)
    fc = cosine_cutoff(r, params.r_cut)
    radial = chebyshev(2.0 * r / params.r_cut - 1.0, params.radial_order) * fc[:, None]
    blocks = [torch.zeros_like(out[:, : params.radial_order + 1]).index_add(0, pi, radial)]
    angular = None
    if len(graph.trip_ij):
        tij, tik = torch.as_tensor(graph.trip_ij), torch.as_tensor(graph.trip_ik)
        cos_t = (vec[tij] * vec[tik]).sum(1) / (r[tij] * r[tik])
        fa = cosine_cutoff(r, params.angular_cut)
        # rounding can push |cos| a hair past 1; T_a is defined on [-1, 1]
        angular = chebyshev(cos_t.clamp(-1.0, 1.0), params.angular_order) * (fa[tij] * fa[tik])[:, None]
        blocks.append(torch.zeros_like(out[:, : params.angular_order + 1]).index_add(0, pi[tij], angular))
    else:
        blocks.append(out.new_zeros((n_atoms, params.angular_order + 1)))
    if n_sp > 1:
        blocks.append(torch.zeros_like(blocks[0]).index_add(0, pi, radial * w[pj][:, None]))
        if angular is not None:
            typed = angular * (w[pj[tij]] * w[pj[tik]])[:, None]
            blocks.append(torch.zeros_like(blocks[1]).index_add(0, pi[tij], typed))
        else:
            blocks.append(torch.zeros_like(blocks[1]))
    return torch.cat(blocks, dim=1)


DescriptorParams = SymmetryFunctionParams | ChebyshevParams


def descriptor_matrix(positions: torch.Tensor, cell: torch.Tensor, graph: NeighbourGraph, species: list[int],
                      params: DescriptorParams) -> torch.Tensor:
    """Per-atom descriptors of the kind ``params`` names (symmetry functions or Chebyshev)."""
    if isinstance(params, ChebyshevParams):
        return chebyshev_descriptors(positions, cell, graph, species, params)
    return symmetry_functions(positions, cell, graph, species, params)


def atoms_descriptors(atoms: Atoms, species: list[int], params: DescriptorParams) -> np.ndarray:
    """Convenience: descriptors of an ASE ``Atoms`` as a float64 numpy array (no gradients)."""
    graph = build_neighbour_graph(atoms, params.r_cut)
    pos = torch.as_tensor(atoms.positions, dtype=torch.float64)
    cell = torch.as_tensor(np.asarray(atoms.cell), dtype=torch.float64)
    with torch.no_grad():
        return descriptor_matrix(pos, cell, graph, species, params).numpy()
