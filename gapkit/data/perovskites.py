"""Cubic (Pm-3m) ABX3 perovskite cells for the 175 CGCrabNet targets, with CHGNet-relaxed lattice constants.

The targets come without coordinates (``load_perovskites_175``: MP id, formula, gap, atomic numbers and
the 12-nearest-neighbour topology of the 5-atom cell). Each is rebuilt as the ideal cubic perovskite:

    A at (0, 0, 0), B at (½, ½, ½), X at (½, ½, 0), (½, 0, ½), (0, ½, ½)

* which cation is A comes from the data's topology: A's 12 nearest neighbours are all X (cuboctahedron),
  B's list also holds A sites (formula order does not tell: pymatgen writes MgSnO3 and HfMgO3 alike);
* a first lattice constant from Shannon radii: the B-X bond spans half the cell edge, a = 2(r_B + r_X),
  and the A-X contact half the face diagonal, a = √2(r_A + r_X); the cell takes the larger, because the
  shorter bond cannot be compressed below contact (the Goldschmidt picture behind t);
* then a one-dimensional CHGNet minimisation over ``a`` (cubic symmetry fixes every coordinate, so the
  energy depends on ``a`` alone: a bounded scalar search is a full relaxation).

The relaxed constants are committed in ``data/perovskites/lattice_constants.csv`` so that CI never relaxes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from gapkit.featurize.perovskite_factors import mean_shannon_radius

logger = logging.getLogger(__name__)

LATTICE_CSV = Path(__file__).resolve().parents[2] / "data" / "perovskites" / "lattice_constants.csv"
HALOGENS = ("F", "Cl", "Br", "I")
FRACTIONAL = ((0.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, 0.5, 0.0), (0.5, 0.0, 0.5), (0.0, 0.5, 0.5))
# bounds of the CHGNet search relative to the radius estimate: the estimates are within ~10 % of MP's cells
SEARCH_BOUNDS = (0.85, 1.20)


class PerovskiteSiteError(ValueError):
    """A target's topology does not single out one A-site cation (not an ABX3 Pm-3m cell)."""


def site_roles(atomic_numbers: Iterable[int], neighbor_index: np.ndarray) -> tuple[str, str, str]:
    """(A, B, X) element symbols of a 5-atom ABX3 cell from its 12-nearest-neighbour lists."""
    from pymatgen.core import Element

    z = [int(v) for v in atomic_numbers]
    nbr = np.asarray(neighbor_index)
    counts = pd.Series(z).value_counts()
    x_z = [k for k, n in counts.items() if n == 3]
    if len(z) != 5 or len(x_z) != 1:
        raise PerovskiteSiteError(f"expected 5 sites with one element three times (ABX3), got Z={z}.")
    x_sites = {i for i, v in enumerate(z) if v == x_z[0]}
    cations = [i for i in range(5) if i not in x_sites]
    a_sites = [i for i in cations if set(nbr[i].tolist()) <= x_sites]  # A: 12 X neighbours, nothing else
    if len(a_sites) != 1:
        raise PerovskiteSiteError(f"cannot tell A from B in Z={z}: {len(a_sites)} cations see only anions.")
    b_site = next(i for i in cations if i != a_sites[0])
    return Element.from_Z(z[a_sites[0]]).symbol, Element.from_Z(z[b_site]).symbol, Element.from_Z(x_z[0]).symbol


def estimate_lattice_constant(a: str, b: str, x: str) -> float:
    """Radius estimate (Å): max(2(r_B + r_X), √2(r_A + r_X)), mean Shannon cation radii, X's anion radius."""
    r_a, r_b, r_x = mean_shannon_radius(a), mean_shannon_radius(b), mean_shannon_radius(x, anion=True)
    return max(2.0 * (r_b + r_x), math.sqrt(2.0) * (r_a + r_x))


def build_perovskite(a: str, b: str, x: str, lattice_a: float):
    """The Pm-3m ABX3 cell: A corner, B body centre, X face centres, cubic edge ``lattice_a`` Å."""
    from pymatgen.core import Lattice, Structure

    return Structure(Lattice.cubic(lattice_a), [a, b, x, x, x], [list(f) for f in FRACTIONAL])


EnergyFn = Callable[[list], np.ndarray]


def chgnet_energy_fn(batch_size: int = 16) -> EnergyFn:
    """Energies per atom (eV) of a list of pymatgen Structures from the CHGNet universal potential (offline)."""
    from chgnet.model import CHGNet

    model = CHGNet.load(verbose=False)

    def energies(structures: list) -> np.ndarray:
        preds = model.predict_structure(structures, task="e", batch_size=batch_size)
        return np.array([float(p["e"]) for p in (preds if isinstance(preds, list) else [preds])])

    return energies


def relax_lattice_constant(a: str, b: str, x: str, a0: float, energy_fn: EnergyFn,
                           bounds: tuple[float, float] = SEARCH_BOUNDS, n_coarse: int = 8,
                           n_fine: int = 7, final_width: float = 0.015, max_rounds: int = 4) -> tuple[float, float]:
    """(a, energy per atom) at the CHGNet minimum over the cubic edge: a coarse scan, then shrinking parabolas.

    Cubic symmetry leaves E(a) one-dimensional, so batched scans replace the ~20 sequential calls of a
    scalar minimiser: ``n_coarse`` points over ``bounds`` × a0, then parabola fits to ``n_fine`` points in a
    window that starts one coarse step wide on each side, recentres on the vertex and halves until it is
    within ±``final_width`` (relative); near a smooth minimum the vertex is then exact to ~1e-3 Å.
    """
    coarse = np.linspace(bounds[0] * a0, bounds[1] * a0, n_coarse)
    e = energy_fn([build_perovskite(a, b, x, v) for v in coarse])
    centre, half = float(coarse[int(np.argmin(e))]), float(coarse[1] - coarse[0])
    for _ in range(max_rounds):
        fine = np.linspace(centre - half, centre + half, n_fine)
        ef = energy_fn([build_perovskite(a, b, x, v) for v in fine])
        c2, c1, _ = np.polyfit(fine, ef, 2)
        vertex = -c1 / (2 * c2) if c2 > 0 else np.nan
        inside = np.isfinite(vertex) and fine[0] <= vertex <= fine[-1]
        # a vertex outside the window (or a concave fit) is no minimum: move to the lowest point sampled
        centre = float(vertex) if inside else float(fine[int(np.argmin(ef))])
        if inside and half <= final_width * centre:
            break
        half /= 2
    if centre <= coarse[0] * 1.001 or centre >= coarse[-1] * 0.999:
        logger.warning("%s%s%s3: CHGNet minimum at the search bound (a = %.3f Å)", a, b, x, centre)
    return centre, float(energy_fn([build_perovskite(a, b, x, centre)])[0])


def mp_lattice_constant(structure) -> float:
    """Pseudo-cubic edge (Å) of an MP cell: (volume per formula unit)^(1/3)."""
    n_fu = structure.composition.get_reduced_composition_and_factor()[1]
    return float((structure.volume / n_fu) ** (1.0 / 3.0))


def site_table(targets: pd.DataFrame) -> pd.DataFrame:
    """mp_id, formula, gap_ev, A, B, X and the radius estimate of every target."""
    roles = [site_roles(z, nb) for z, nb in zip(targets["atomic_numbers"], targets["neighbor_index"])]
    out = targets[["mp_id", "formula", "gap_ev"]].copy()
    out[["A", "B", "X"]] = pd.DataFrame(roles, index=out.index)
    out["a_estimate"] = [estimate_lattice_constant(*r) for r in roles]
    return out


def relax_all(table: pd.DataFrame, energy_fn: EnergyFn | None = None,
              progress: bool = True) -> pd.DataFrame:
    """``table`` (from ``site_table``) with ``a_chgnet`` and ``energy_per_atom_ev`` from CHGNet."""
    from tqdm.auto import tqdm

    energy_fn = energy_fn or chgnet_energy_fn()
    rows = [relax_lattice_constant(r.A, r.B, r.X, r.a_estimate, energy_fn)
            for r in tqdm(list(table.itertuples()), desc="CHGNet a", disable=not progress)]
    out = table.copy()
    out["a_chgnet"] = [r[0] for r in rows]
    out["energy_per_atom_ev"] = [r[1] for r in rows]
    return out


def add_mp_lattice(table: pd.DataFrame, mp: pd.DataFrame) -> pd.DataFrame:
    """Add ``a_mp`` (NaN where ``mp`` has no such id): from ``structure``, else from ``volume_a3`` and ``nsites``.

    ``load_mp_structures(nonzero=False, structures=False)`` is enough: its volume and site count give the
    edge of a 5-atom-per-formula-unit cell without parsing a single CIF.
    """
    out = table.copy()
    if "structure" in mp.columns:
        by_id = dict(zip(mp["mp_id"], mp["structure"]))
        out["a_mp"] = [mp_lattice_constant(by_id[m]) if m in by_id else np.nan for m in out["mp_id"]]
    else:
        per_fu = dict(zip(mp["mp_id"], mp["volume_a3"] / (mp["nsites"] / 5.0)))
        out["a_mp"] = [per_fu[m] ** (1.0 / 3.0) if m in per_fu else np.nan for m in out["mp_id"]]
    return out


def load_lattice_constants(path: Path | str = LATTICE_CSV) -> pd.DataFrame:
    """The committed table of lattice constants (estimate, CHGNet, MP) of the 175 targets."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No lattice-constant table at {path}: run `python -m gapkit.data.perovskites` "
                                "(CHGNet relaxation, a few minutes) to write it.")
    return pd.read_csv(path)


def load_perovskite_structures(path: Path | str = LATTICE_CSV, column: str = "a_chgnet") -> pd.DataFrame:
    """The 175 targets with A, B, X, lattice constants and a built ``structure`` (edge from ``column``)."""
    from gapkit.data.datasets import load_perovskites_175

    targets = load_perovskites_175()[["mp_id", "formula", "gap_ev"]]
    table = load_lattice_constants(path).drop(columns=["formula", "gap_ev"], errors="ignore")
    df = targets.merge(table, on="mp_id", how="left", validate="one_to_one")
    if df[column].isna().any():
        raise ValueError(f"{int(df[column].isna().sum())} targets lack {column} in {path}: rebuild the table.")
    df["structure"] = [build_perovskite(r.A, r.B, r.X, getattr(r, column)) for r in df.itertuples()]
    return df


def coordination_numbers(structure, tol: float = 0.05) -> list[int]:
    """Neighbours of each site in its first shell of unlike-species neighbours (within 1+tol of the nearest)."""
    counts = []
    cutoff = structure.lattice.abc[0] * 1.01
    for i, site in enumerate(structure):
        nbrs = [n for n in structure.get_neighbors(site, cutoff) if n.specie != site.specie]
        d_min = min(n.nn_distance for n in nbrs)
        counts.append(sum(n.nn_distance <= d_min * (1 + tol) for n in nbrs))
    return counts


def space_group_number(structure, symprec: float = 0.01) -> int:
    """International space-group number (221 for the ideal Pm-3m perovskite)."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    return int(SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number())


def write_lattice_constants(path: Path | str = LATTICE_CSV, progress: bool = True) -> pd.DataFrame:
    """Relax every target with CHGNet and write the table (estimate, CHGNet, MP where present)."""
    from gapkit.data.datasets import load_mp_structures, load_perovskites_175

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = relax_all(site_table(load_perovskites_175()), progress=progress)
    table.round(5).to_csv(path, index=False)  # saved first: the relaxation is the costly part
    table = add_mp_lattice(table, load_mp_structures(nonzero=False, structures=False))
    table.round(5).to_csv(path, index=False)
    return table


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    print(write_lattice_constants().describe())  # noqa: T201 - a script's summary
