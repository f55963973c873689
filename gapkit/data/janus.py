"""Janus MXY monolayers: site assignment, prototype structures, CHGNet relaxation, the committed geometries.

C2DB gives each of its 216 Janus monolayers a formula, a prototype and a unit-cell area, but no atomic
positions. A monolayer is rebuilt from its prototype (both are P3m1, space group 156, three atoms):

* ``ABC-156-ac`` (2H-like, trigonal prismatic): M at (1/3, 2/3); X and Y both at (2/3, 1/3), above
  and below M;
* ``ABC-156-abc`` (1T-like, octahedral): M at (0, 0); X at (1/3, 2/3) above, Y at (2/3, 1/3) below.

The hexagonal lattice constant follows from the area (a = sqrt(2 A / sqrt 3)); the layer heights come
from covalent radii (``covalent_heights``) or from a CHGNet relaxation (``relax_janus``), which
``scripts/relax_janus.py`` ran once for all 216 (heights at C2DB's a) and committed to ``data/janus/relaxed_geometries.csv``.

Site rule: M is the element of the lowest periodic-table group (Ti, Nb, Mo, ... or As, Sb, Bi under
halogens and chalcogens: AsBrTe is As between Br and Te, as Bi in BiTeI); of the two outer elements
X is the lighter (lower Z), Y the heavier.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition, Element, Lattice, Structure

logger = logging.getLogger(__name__)

GEOMETRIES = Path(__file__).resolve().parents[2] / "data" / "janus" / "relaxed_geometries.csv"
PROTOTYPES = {"ABC-156-ac": "2H", "ABC-156-abc": "1T"}
VACUUM_A = 20.0  # c of the cell: ample vacuum between periodic images of the layer
MIN_HEIGHT_A = 0.8

# Fractional in-plane positions (M, X, Y) of the two prototypes.
_INPLANE = {"2H": ((1 / 3, 2 / 3), (2 / 3, 1 / 3), (2 / 3, 1 / 3)),
            "1T": ((0.0, 0.0), (1 / 3, 2 / 3), (2 / 3, 1 / 3))}


class JanusFormulaError(ValueError):
    """A formula that is not a three-element MXY Janus formula."""


def janus_sites(formula: str) -> tuple[str, str, str]:
    """(M, X, Y) of a Janus MXY formula: M of the lowest group, X the lighter outer element."""
    elements = list(Composition(formula).element_composition.keys())
    if len(elements) != 3 or any(Composition(formula)[e] != 1 for e in elements):
        raise JanusFormulaError(f"{formula!r} is not an MXY formula with one atom of each of three elements.")
    by_group = sorted(elements, key=lambda e: (e.group, e.Z))
    if by_group[0].group == by_group[1].group:
        raise JanusFormulaError(f"{formula!r}: two elements share the lowest group; the middle atom is ambiguous.")
    m = by_group[0]
    x, y = sorted(by_group[1:], key=lambda e: e.Z)
    return m.symbol, x.symbol, y.symbol


def prototype(crystal_type: str) -> str:
    """'2H' or '1T' for a C2DB crystal type ('ABC-156-ac' or 'ABC-156-abc')."""
    if crystal_type not in PROTOTYPES:
        raise KeyError(f"Unknown Janus crystal type {crystal_type!r}; expected one of {', '.join(PROTOTYPES)}.")
    return PROTOTYPES[crystal_type]


def lattice_constant(area_a2: float) -> float:
    """Hexagonal lattice constant (Å) of a cell of in-plane area ``area_a2`` (Å²)."""
    if not area_a2 > 0:
        raise ValueError(f"The unit-cell area must be positive, got {area_a2}.")
    return float(np.sqrt(2.0 * area_a2 / np.sqrt(3.0)))


def covalent_heights(m: str, x: str, y: str, a: float) -> tuple[float, float]:
    """Heights (Å) of X above and Y below M that make M-X and M-Y the sums of covalent radii."""
    from pymatgen.analysis.molecule_structure_comparator import CovalentRadius

    inplane = a / np.sqrt(3.0)  # in both prototypes X and Y sit a/sqrt(3) from M's axis
    heights = []
    for outer in (x, y):
        bond = CovalentRadius.radius[m] + CovalentRadius.radius[outer]
        heights.append(float(np.sqrt(max(bond**2 - inplane**2, MIN_HEIGHT_A**2))))
    return heights[0], heights[1]


def build_janus(formula: str, crystal_type: str, area_a2: float, heights: tuple[float, float] | None = None,
                a: float | None = None) -> Structure:
    """A three-atom P3m1 Janus cell (M, X above, Y below) from its prototype, area and layer heights (Å)."""
    m, x, y = janus_sites(formula)
    a = lattice_constant(area_a2) if a is None else float(a)
    h_x, h_y = heights if heights is not None else covalent_heights(m, x, y, a)
    lattice = Lattice.hexagonal(a, VACUUM_A)
    z_m = 0.5
    (pm, px, py) = _INPLANE[prototype(crystal_type)]
    coords = [[*pm, z_m], [*px, z_m + h_x / VACUUM_A], [*py, z_m - h_y / VACUUM_A]]
    return Structure(lattice, [m, x, y], coords)


def layer_heights(structure: Structure) -> tuple[float, float]:
    """(h_X, h_Y): heights (Å) of the X site above and the Y site below M in a built Janus cell."""
    z = structure.cart_coords[:, 2]
    return float(z[1] - z[0]), float(z[0] - z[2])


def chgnet_model():
    """The CHGNet universal potential shipped with the chgnet package (loaded once per call)."""
    from chgnet.model import CHGNet

    return CHGNet.load(verbose=False)


def relax_janus(structure: Structure, model=None, relax_cell: bool = False, fmax: float = 0.02,
                steps: int = 300) -> tuple[Structure, float, int]:
    """Relax a Janus cell with CHGNet keeping P3m1 (heights; in-plane a too if ``relax_cell``).

    Returns (relaxed structure, energy per atom in eV, optimizer steps). The out-of-plane cell vector
    stays fixed: the vacuum carries no stress.
    """
    from ase.constraints import FixSymmetry
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE
    from chgnet.model.dynamics import CHGNetCalculator
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = CHGNetCalculator(model if model is not None else chgnet_model(), use_device="cpu")
    atoms.set_constraint(FixSymmetry(atoms))
    target = FrechetCellFilter(atoms, mask=[True, True, False, False, False, True]) if relax_cell else atoms
    opt = FIRE(target, logfile=None)
    opt.run(fmax=fmax, steps=steps)
    relaxed = AseAtomsAdaptor.get_structure(atoms)
    return relaxed, float(atoms.get_potential_energy() / len(atoms)), int(opt.get_number_of_steps())


def relax_all(table: pd.DataFrame, model=None, progress: bool = True, free_cell: bool = False,
              relax: Callable[..., tuple[Structure, float, int]] = relax_janus) -> pd.DataFrame:
    """Relax the heights of every row of a C2DB Janus table at C2DB's a (and, if ``free_cell``, with a free too)."""
    from tqdm.auto import tqdm

    model = model if model is not None else chgnet_model()
    rows = []
    for _, r in tqdm(table.iterrows(), total=len(table), disable=not progress, desc="CHGNet relax"):
        area = float(r["Area of unit-cell"])
        start = build_janus(r["formula"], r["Crystal type"], area)
        t0 = time.perf_counter()
        fixed, e_fixed, n_fixed = relax(start, model, relax_cell=False)
        m, x, y = janus_sites(r["formula"])
        h0 = layer_heights(start)
        row = {"uid": r["Unique identifier"], "formula": r["formula"], "crystal_type": r["Crystal type"],
               "M": m, "X": x, "Y": y, "a_c2db_A": round(lattice_constant(area), 4),
               "h_x_covalent_A": round(h0[0], 4), "h_y_covalent_A": round(h0[1], 4),
               "h_x_A": round(layer_heights(fixed)[0], 4), "h_y_A": round(layer_heights(fixed)[1], 4),
               "energy_ev_per_atom": round(e_fixed, 5), "steps": n_fixed}
        if free_cell:  # CHGNet's own a, to compare with C2DB's PBE a (twice the cost)
            free, e_free, n_free = relax(start, model, relax_cell=True)
            row |= {"a_chgnet_A": round(float(free.lattice.a), 4), "h_x_free_A": round(layer_heights(free)[0], 4),
                    "h_y_free_A": round(layer_heights(free)[1], 4), "energy_free_ev_per_atom": round(e_free, 5),
                    "steps_free": n_free}
        rows.append(row | {"seconds": round(time.perf_counter() - t0, 2)})
    return pd.DataFrame(rows)


def load_geometries(path: Path | str = GEOMETRIES) -> pd.DataFrame:
    """The committed CHGNet geometries of the 216 Janus monolayers (one row per C2DB uid)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No Janus geometries at {path}: run `python scripts/relax_janus.py` to make them.")
    return pd.read_csv(path)


def janus_table(nonzero: bool = False, geometries: pd.DataFrame | None = None) -> pd.DataFrame:
    """C2DB Janus rows joined with their sites and geometries (covalent and CHGNet heights), with structures."""
    from gapkit.data import load_c2db_janus

    df = load_c2db_janus()
    if nonzero:
        df = df[df["gap_ev"] > 0]
    geo = load_geometries() if geometries is None else geometries
    df = df.merge(geo.drop(columns=["formula", "crystal_type"]), left_on="Unique identifier", right_on="uid",
                  how="left", validate="one_to_one")
    if df["h_x_A"].isna().any():
        missing = df.loc[df["h_x_A"].isna(), "formula"].tolist()
        raise KeyError(f"No committed geometry for {missing[:5]}...; rerun scripts/relax_janus.py.")
    df["prototype"] = df["Crystal type"].map(PROTOTYPES)
    df["area_a2"] = df["Area of unit-cell"].astype(float)
    df["structure"] = [build_janus(f, t, a, (hx, hy)) for f, t, a, hx, hy in
                       zip(df["formula"], df["Crystal type"], df["area_a2"], df["h_x_A"], df["h_y_A"])]
    return df.reset_index(drop=True)
