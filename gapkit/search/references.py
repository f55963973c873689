"""Reference crystals: the known ground states a search is scored against (the paper's Si, TiO2 and CaTiO3
prototypes, or any structure a user gives as a CIF file, a pymatgen Structure or ASE Atoms), relaxed by the oracle,
and their conventional lattice constants."""

from __future__ import annotations

from pathlib import Path

from ase import Atoms
from ase.build import bulk
from ase.spacegroup import crystal
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from gapkit.search.oracle import CalculatorFactory, OracleResult, relax
from gapkit.search.population import same_structure


def reference_candidates(formula: str) -> dict[str, Atoms]:
    """Experimental ground-state prototypes of the paper's systems: diamond Si, rutile/anatase TiO2, cubic CaTiO3."""
    if formula == "Si":
        return {"diamond": bulk("Si", "diamond", 5.43)}
    if formula == "TiO2":
        return {"rutile": crystal(["Ti", "O"], [(0, 0, 0), (0.3048, 0.3048, 0)], spacegroup=136,
                                  cellpar=[4.594, 4.594, 2.959, 90, 90, 90]),
                "anatase": crystal(["Ti", "O"], [(0, 0, 0), (0, 0, 0.2081)], spacegroup=141,
                                   cellpar=[3.785, 3.785, 9.514, 90, 90, 90])}
    if formula == "CaTiO3":
        return {"cubic perovskite": crystal(["Ca", "Ti", "O"], [(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0)],
                                            spacegroup=221, cellpar=[3.897] * 3 + [90] * 3)}
    raise ValueError(f"No reference structure for {formula!r}; known: Si, TiO2, CaTiO3. For another compound pass "
                     "its structure (a CIF file, a pymatgen Structure or ASE Atoms) as candidates.")


def load_structure(source: str | Path | Atoms | object) -> Atoms:
    """ASE Atoms from a structure file ASE reads (CIF, POSCAR, ...), a pymatgen Structure, or Atoms (copied)."""
    if isinstance(source, Atoms):
        return source.copy()
    if isinstance(source, (str, Path)):
        from ase.io import read

        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"No structure file {path}; give a CIF (or any file ASE reads).")
        return read(path)
    if hasattr(source, "lattice") and hasattr(source, "sites"):  # a pymatgen Structure
        return AseAtomsAdaptor.get_atoms(source)
    raise TypeError(f"Cannot read a structure from {type(source).__name__}; give a file path, a pymatgen "
                    "Structure or ASE Atoms.")


def reference_structure(formula: str, oracle: CalculatorFactory, steps: int = 200,
                        candidates: dict[str, object] | None = None) -> tuple[str, OracleResult]:
    """The oracle-relaxed reference (not counted in budgets): the lowest of the relaxed ``candidates``
    (``{name: file path, pymatgen Structure or Atoms}``; default the paper's prototypes of ``formula``)."""
    structures = ({name: load_structure(s) for name, s in candidates.items()} if candidates
                  else reference_candidates(formula))
    relaxed = {name: relax(atoms, oracle, fmax=0.01, steps=steps) for name, atoms in structures.items()}
    name = min(relaxed, key=lambda k: relaxed[k].energy_per_atom)
    if relaxed[name].failed:
        raise RuntimeError(f"The oracle failed on every reference candidate of {formula}: {relaxed[name].error}")
    return name, relaxed[name]


def conventional_atoms(atoms: Atoms, symprec: float = 0.05) -> Atoms:
    """The conventional standard cell (e.g. the 8-atom cubic cell of diamond Si)."""
    conv = SpacegroupAnalyzer(AseAtomsAdaptor.get_structure(atoms), symprec=symprec
                              ).get_conventional_standard_structure()
    return AseAtomsAdaptor.get_atoms(conv)


def conventional_lattice(atoms: Atoms, symprec: float = 0.05) -> tuple[float, float, float]:
    """Lattice constants a, b, c (Å) of the conventional standard cell."""
    return tuple(float(x) for x in conventional_atoms(atoms, symprec).cell.cellpar()[:3])


def reference_lattice_a(atoms: Atoms, reference: Atoms) -> float:
    """Conventional-cell a (Å) of ``atoms`` when it is the ``reference`` crystal, else NaN."""
    return conventional_lattice(atoms)[0] if same_structure(atoms, reference) else float("nan")
