"""The oracle: any ASE calculator (CHGNet by default) behind a counter of its calls.

Functions here are module-level and take a picklable calculator *factory*, so they run unchanged
in threads, local processes or a Dask/Ray executor. Each worker thread builds its calculator once.
A calculator that raises or returns a non-finite energy marks that structure failed; nothing else
is lost.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from gapkit.search.population import too_close
from gapkit.search.potential import single_thread

log = logging.getLogger(__name__)

CalculatorFactory = Callable[[], Calculator]
_LOCAL = threading.local()


def chgnet_calculator() -> Calculator:
    """CHGNet universal potential on CPU (weights ship inside the wheel; no download)."""
    from chgnet.model.dynamics import CHGNetCalculator

    return CHGNetCalculator(use_device="cpu", on_isolated_atoms="ignore")


def emt_calculator() -> Calculator:
    """ASE's EMT: a cheap oracle for tests (Al, Cu, Ag, Au, Ni, Pd, Pt, H, C, N, O)."""
    from ase.calculators.emt import EMT

    return EMT()


def _calculator(factory: CalculatorFactory) -> Calculator:
    """This thread's calculator for ``factory`` (built on first use)."""
    cache = getattr(_LOCAL, "calcs", None)
    if cache is None:
        cache = _LOCAL.calcs = {}
    key = repr(factory)
    if key not in cache:
        cache[key] = factory()
    return cache[key]


@dataclass
class LabelledFrame:
    """One step of an oracle relaxation with what the oracle computed there (no extra call)."""

    atoms: Atoms
    energy_ev: float
    forces: np.ndarray | None
    stress: np.ndarray | None


@dataclass
class OracleResult:
    """One oracle job: final atoms, total energy (eV) or None if failed, and the calls it cost."""

    atoms: Atoms
    energy_ev: float | None
    n_single_points: int = 0
    n_relax_steps: int = 0
    error: str = ""
    tag: dict = field(default_factory=dict)
    forces: np.ndarray | None = None  # eV/Å from the same call, when the calculator gives them
    stress: np.ndarray | None = None  # 3x3 eV/Å^3 (ASE sign) from the same call, likewise
    frames: list["LabelledFrame"] = field(default_factory=list)  # kept steps of a relaxation (see relax)
    relaxed: bool = False  # the atoms are a minimum: an oracle relaxation converged to fmax (not cut at its cap)

    @property
    def failed(self) -> bool:
        """True when the oracle raised or returned a non-finite energy."""
        return self.energy_ev is None

    @property
    def n_calls(self) -> int:
        """Oracle evaluations spent (single points plus relaxation steps)."""
        return self.n_single_points + self.n_relax_steps

    @property
    def energy_per_atom(self) -> float:
        """Energy per atom (eV/atom); +inf for failed jobs so they never rank first."""
        return float("inf") if self.energy_ev is None else self.energy_ev / len(self.atoms)


def single_point(atoms: Atoms, factory: CalculatorFactory, tag: dict | None = None) -> OracleResult:
    """Oracle energy of ``atoms`` as given (one call)."""
    # torch-based oracles (CHGNet) on few-atom cells: one thread is ~10-100x faster than a contended
    # thread pool on a busy 2-core machine (measured 0.04 s vs 3.7 s per Si2 call)
    with single_thread():
        return _single_point(atoms, factory, tag)


def _single_point(atoms: Atoms, factory: CalculatorFactory, tag: dict | None) -> OracleResult:
    """Body of :func:`single_point`."""
    atoms = atoms.copy()
    try:
        atoms.calc = _calculator(factory)
        energy = float(atoms.get_potential_energy())
        forces, stress = _free_gradients(atoms)
        atoms.calc = None
    except Exception as err:  # any calculator failure is a failed structure, not a failed run
        log.warning("oracle single point failed: %s", err)
        atoms.calc = None
        return OracleResult(atoms, None, 1, 0, f"{type(err).__name__}: {err}", tag or {})
    if not np.isfinite(energy):
        return OracleResult(atoms, None, 1, 0, "non-finite energy", tag or {})
    return OracleResult(atoms, energy, 1, 0, "", tag or {}, forces, stress)


def _free_gradients(atoms: Atoms) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Forces and stress the calculator computed with the energy (same call), each None when absent."""
    out = []
    for getter, shape in ((lambda: atoms.get_forces(), (len(atoms), 3)),
                          (lambda: atoms.get_stress(voigt=False), (3, 3))):
        try:
            value = np.array(getter(), dtype=float)
        except Exception:  # an energy-only oracle (e.g. some DFT set-ups) is fine: train on energies
            value = None
        out.append(value if value is not None and value.shape == shape and np.all(np.isfinite(value)) else None)
    return out[0], out[1]


# A relaxation that ends with two atoms closer than this x the sum of their covalent radii has failed.
COLLAPSE_FACTOR = 0.5


def relax(atoms: Atoms, factory: CalculatorFactory, fmax: float = 0.05, steps: int = 100,
          relax_cell: bool = True, tag: dict | None = None, keep_every: int = 0,
          start: OracleResult | None = None) -> OracleResult:
    """Relax positions (and cell) with the oracle by BFGS; every force evaluation is one relax step.

    ``start``, the oracle's single point of exactly ``atoms`` (with its forces, and stress when the cell
    relaxes), serves as the first evaluation instead of a new call; otherwise it is ignored.

    ``keep_every`` > 0 keeps every that-many-th step and the last one as :class:`LabelledFrame` s
    (energy, forces and stress the oracle already computed there): training data at no extra call.
    A relaxation that ends with atoms collapsed together (``COLLAPSE_FACTOR``) is marked failed.

    BFGS rather than FIRE: for cells of a few atoms it needs about half the force calls, and force
    calls are the cost being counted.

    UnitCellFilter rather than FrechetCellFilter: the latter's matrix exponentials (scipy) cost more
    than a CHGNet call for these few-atom cells, and both reach the same minimum.
    """
    with single_thread():
        return _relax(atoms, factory, fmax, steps, relax_cell, tag, keep_every, start)


def _prime(calc: Calculator, atoms: Atoms, start: OracleResult | None, relax_cell: bool) -> bool:
    """Load ``start``'s energy, forces and stress into ``calc``'s cache for ``atoms``; False if it cannot serve."""
    if start is None or start.failed or start.forces is None or (relax_cell and start.stress is None):
        return False
    same = (np.array_equal(start.atoms.numbers, atoms.numbers)
            and np.array_equal(start.atoms.positions, atoms.positions)
            and np.array_equal(start.atoms.cell.array, atoms.cell.array))
    if not same:
        return False
    calc.reset()
    calc.atoms = atoms.copy()  # ASE serves cached results while the atoms match this copy
    calc.results = {"energy": start.energy_ev, "free_energy": start.energy_ev, "forces": start.forces.copy()}
    if start.stress is not None:
        from ase.stress import full_3x3_to_voigt_6_stress
        calc.results["stress"] = full_3x3_to_voigt_6_stress(start.stress)
    return True


def _cached_frame(atoms: Atoms) -> LabelledFrame | None:
    """The oracle's cached results for ``atoms`` as a frame (None if the cache is for other positions)."""
    calc = atoms.calc
    if calc is None or calc.check_state(atoms) or "energy" not in calc.results:
        return None
    forces, stress = calc.results.get("forces"), calc.results.get("stress")
    if stress is not None and np.shape(stress) == (6,):
        from ase.stress import voigt_6_to_full_3x3_stress
        stress = voigt_6_to_full_3x3_stress(stress)
    frame = atoms.copy()
    frame.calc = None
    return LabelledFrame(frame, float(calc.results["energy"]), _finite(forces, (len(atoms), 3)),
                         _finite(stress, (3, 3)))


def _finite(value, shape: tuple[int, ...]) -> np.ndarray | None:
    """``value`` as a float array if it has ``shape`` and is finite everywhere, else None."""
    if value is None or np.shape(value) != shape or not np.all(np.isfinite(value)):
        return None
    return np.array(value, dtype=float)


def _relax(atoms: Atoms, factory: CalculatorFactory, fmax: float, steps: int, relax_cell: bool,
           tag: dict | None, keep_every: int = 0, start: OracleResult | None = None) -> OracleResult:
    """Body of :func:`relax`."""
    from ase.filters import UnitCellFilter
    from ase.optimize import BFGS

    atoms = atoms.copy()
    n_eval, primed = 0, False
    try:
        atoms.calc = _calculator(factory)
        primed = _prime(atoms.calc, atoms, start, relax_cell)
        target = UnitCellFilter(atoms) if relax_cell else atoms
        opt = BFGS(target, logfile=None, maxstep=0.2)
        seen: list[LabelledFrame | None] = []
        if keep_every > 0:  # observers run after each step's forces, so the cache matches the positions
            opt.attach(lambda: seen.append(_cached_frame(atoms)))
        converged = bool(opt.run(fmax=fmax, steps=steps))
        n_eval = opt.nsteps + (0 if primed else 1)  # the first evaluation is the start's when primed
        energy = float(atoms.get_potential_energy())
        kept = [f for k, f in enumerate(seen) if f is not None and (k % keep_every == 0 or k == len(seen) - 1)] \
            if keep_every > 0 else []
    except Exception as err:
        log.warning("oracle relaxation failed: %s", err)
        atoms.calc = None
        return OracleResult(atoms, None, 0, max(n_eval, 0 if primed else 1), f"{type(err).__name__}: {err}",
                            tag or {})
    atoms.calc = None
    if not np.isfinite(energy) or not np.all(np.isfinite(atoms.positions)):
        return OracleResult(atoms, None, 0, n_eval, "non-finite energy", tag or {})
    if too_close(atoms, COLLAPSE_FACTOR):
        # Why: an approximate oracle (a universal potential) can reward atoms that run into each other, and a
        # search then "finds" that hole below every real crystal (seen: CaTiO3 with two atoms 0.32 Å apart,
        # 0.2 eV/atom under the perovskite). Failed, with its calls counted and none of its frames kept.
        return OracleResult(atoms, None, 0, n_eval, "atoms collapsed together during the relaxation", tag or {})
    return OracleResult(atoms, energy, 0, n_eval, "", tag or {}, frames=kept, relaxed=converged)


@dataclass
class OracleCounter:
    """Running totals of oracle calls (single points and relaxation steps kept apart)."""

    single_points: int = 0
    relax_steps: int = 0
    failed: int = 0

    def add(self, result: OracleResult) -> None:
        """Count one finished oracle job."""
        self.single_points += result.n_single_points
        self.relax_steps += result.n_relax_steps
        self.failed += int(result.failed)

    @property
    def total(self) -> int:
        """All oracle evaluations so far."""
        return self.single_points + self.relax_steps
