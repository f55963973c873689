"""Success rate against oracle calls over several seeds: GA + learned potential vs random search vs ase-ga;
the lattice constant of a found reference crystal."""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms

from gapkit.search.active import Improvement, SearchConfig, SearchState
from gapkit.search.baselines import (ase_ga_search, calls_below, calls_to_energy, calls_to_success,
                                     conventional_lattice, first_match, random_search, success_rate)
from gapkit.search.oracle import CalculatorFactory, OracleResult, relax
from gapkit.search.population import same_structure
from gapkit.search.profiles import search_config
from gapkit.search.runner import SerialExecutor, run_search, state_file

log = logging.getLogger(__name__)

METHODS = {"ga_potential": "GA + potential", "random": "random search", "ase_ga": "ase-ga"}


BASELINES = {"random": random_search, "ase_ga": ase_ga_search}


def _reference_parts(reference: OracleResult | Atoms) -> tuple[Atoms, float | None]:
    """The reference's atoms and its oracle energy per atom (None for bare Atoms)."""
    if isinstance(reference, OracleResult):
        return reference.atoms, reference.energy_per_atom
    return reference, None


def baseline_calls(formula: str, n_atoms: int, reference: OracleResult | Atoms, oracle: CalculatorFactory,
                   budget: int, seed: int, relax_steps: int = 30,
                   methods: tuple[str, ...] = tuple(BASELINES)) -> dict[str, float]:
    """Oracle calls random search and/or ase-ga needed to match ``reference`` within ``budget`` (inf = not),
    and to go below it (see :func:`outcomes`)."""
    unknown = set(methods) - set(BASELINES)
    if unknown:
        raise ValueError(f"Unknown baseline(s) {sorted(unknown)}; choose from {sorted(BASELINES)}.")
    out: dict[str, float] = {}
    for m in methods:
        trace = BASELINES[m](formula, n_atoms, oracle, budget, seed=seed, relax_steps=relax_steps, progress=False)
        out.update(outcomes(m, trace.improvements, reference))
    return out


def outcomes(method: str, improvements: list[Improvement], reference: OracleResult | Atoms) -> dict[str, float]:
    """``{method: calls to match reference}``, plus, when the reference comes with its oracle energy (an
    OracleResult), ``{method_below: calls to a lower other crystal}`` (a seed can miss the reference because the
    oracle ranks something else lower) and ``{method_energy: calls to a cell as low as the reference}``
    (:func:`~gapkit.search.baselines.calls_to_energy`)."""
    atoms, energy_per_atom = _reference_parts(reference)
    out = {method: calls_to_success(improvements, atoms)}
    if energy_per_atom is not None:
        out[f"{method}_below"] = calls_below(improvements, atoms, energy_per_atom)
        out[f"{method}_energy"] = calls_to_energy(improvements, energy_per_atom)
    return out


def where_found(improvements: list[Improvement], reference: OracleResult | Atoms) -> dict[str, object]:
    """The part of the search whose oracle call first matched ``reference`` ("" if none did) and how far the
    best structure ended above the reference's energy, in meV/atom (NaN without the reference's energy)."""
    atoms, energy_per_atom = _reference_parts(reference)
    match = first_match(improvements, atoms)
    above = float("nan")
    if improvements and energy_per_atom is not None:
        above = round(1000 * (improvements[-1].energy_per_atom - energy_per_atom), 1)
    return {"phase": "" if match is None else match.phase, "best_meV_above_reference": above}


def relaxed_match(improvements: list[Improvement], reference: OracleResult | Atoms, oracle: CalculatorFactory,
                  steps: int = 100, fmax: float = 0.05) -> Improvement | None:
    """The first match of ``reference`` as a relaxed cell, with the calls until then (None if no match, or if its
    relaxation fails or leaves the reference): the match itself when a converged oracle relaxation made it
    (``Improvement.relaxed``); otherwise (a single point of a learning cycle or a screening, or a relaxation cut at
    its step cap: StructureMatcher ignores volume and small distortions, so such a cell can lie far above the
    minimum) the oracle relaxes it further and its calls are added, less the first, which that cell's energy
    already paid. States saved before the flag existed have it False: their converged matches are relaxed again
    at no extra call."""
    atoms = _reference_parts(reference)[0]
    match = first_match(improvements, atoms)
    if match is None or match.relaxed:
        return match
    relaxed = relax(match.atoms, oracle, fmax=fmax, steps=steps)
    if relaxed.failed or not same_structure(relaxed.atoms, atoms):
        return None
    return Improvement(match.calls + relaxed.n_calls - 1, relaxed.energy_per_atom, relaxed.atoms, "relaxed match",
                       relaxed=relaxed.relaxed)


def relaxed_outcomes(improvements: list[Improvement], reference: OracleResult | Atoms, oracle: CalculatorFactory,
                     steps: int = 100, fmax: float = 0.05,
                     relaxed: list[Improvement | None] | None = None) -> dict[str, float]:
    """The GA's calls until its match is a relaxed cell (``ga_potential_relaxed``, see :func:`relaxed_match`) and,
    when the reference has its energy, until it holds a cell as low as the reference (``ga_potential_energy``,
    counting the relaxed match too: a run stopped at a single-point match would have relaxed it). ``relaxed``: a
    one-slot list holding the relaxed match if it was computed already (by :class:`Settled`); filled when empty."""
    energy_per_atom = _reference_parts(reference)[1]
    relaxed = [] if relaxed is None else relaxed
    if not relaxed:
        relaxed.append(relaxed_match(improvements, reference, oracle, steps, fmax))
    match = relaxed[0]
    out = {"ga_potential_relaxed": float("inf") if match is None else float(match.calls)}
    if energy_per_atom is not None:
        out["ga_potential_energy"] = _calls_to_energy_or_relaxed(improvements, match, energy_per_atom)
    return out


def _calls_to_energy_or_relaxed(improvements: list[Improvement], match: Improvement | None,
                                energy_per_atom: float) -> float:
    """Calls until the trajectory, or the relaxed ``match``, holds a cell as low as ``energy_per_atom``."""
    return min(calls_to_energy(improvements, energy_per_atom),
               calls_to_energy([match] if match else [], energy_per_atom))


def search_outcomes(state: SearchState, reference: OracleResult | Atoms, oracle: CalculatorFactory,
                    config: SearchConfig, stopped_when_found: bool = False, relax_match: bool = True,
                    relaxed: list[Improvement | None] | None = None) -> dict[str, object]:
    """One GA search's row: :func:`outcomes`, :func:`where_found` and (``relax_match``) :func:`relaxed_outcomes`
    (``relaxed``: its one-slot list of the relaxed match, if computed already); a search stopped at its match has
    no lower-crystal outcome (it would only be looked for until then)."""
    row = outcomes("ga_potential", state.improvements, reference)
    if stopped_when_found:
        row.pop("ga_potential_below", None)
    if relax_match:
        row.update(relaxed_outcomes(state.improvements, reference, oracle, config.final_relax_steps, config.fmax,
                                    relaxed))
    return {**row, **{f"ga_potential_{k}": v for k, v in where_found(state.improvements, reference).items()}}


class Settled:
    """A ``run_search(stop_when=...)`` test, for one search, that it has every outcome of its row: it matched
    ``reference`` and, when the reference has its energy, holds a cell as low as it (with ``relax_match``, its
    relaxed match counted: relaxed once, at the first test after the match). A match whose relaxation still ends
    above the reference's energy does not stop the search. ``relaxed`` is the one-slot list that holds the relaxed
    match once computed, for :func:`relaxed_outcomes`."""

    def __init__(self, reference: OracleResult | Atoms, oracle: CalculatorFactory, config: SearchConfig,
                 relax_match: bool = True):
        self.reference, self.oracle, self.config, self.relax_match = reference, oracle, config, relax_match
        self.atoms, self.energy_per_atom = _reference_parts(reference)
        self.relaxed: list[Improvement | None] = []  # the first match never changes: relax it once

    def __call__(self, state: SearchState) -> bool:
        """Whether ``state`` has every outcome of its row."""
        if first_match(state.improvements, self.atoms) is None:
            return False
        if self.energy_per_atom is None or math.isfinite(calls_to_energy(state.improvements, self.energy_per_atom)):
            return True
        if not self.relax_match:
            return False
        if not self.relaxed:
            self.relaxed.append(relaxed_match(state.improvements, self.reference, self.oracle,
                                              self.config.final_relax_steps, self.config.fmax))
        return math.isfinite(_calls_to_energy_or_relaxed(state.improvements, self.relaxed[0], self.energy_per_atom))


def calls_to_ground_state(formula: str, n_atoms: int, reference: OracleResult | Atoms, oracle: CalculatorFactory,
                          profile: str = "quick", seeds: range | list[int] = range(3),
                          overrides: dict | None = None, baselines: tuple[str, ...] = tuple(BASELINES),
                          state_dir: Path | str | None = None, stop_when_found: bool = False,
                          relax_match: bool = True) -> pd.DataFrame:
    """Per seed: the GA's oracle budget, the calls each method needed to match ``reference``
    (the ``baselines`` get exactly the GA's budget; inf = not found) and where the GA found it (see
    :func:`where_found`). ``overrides`` replace fields of
    the profile's SearchConfig (e.g. ``{"final_rounds": 10}``). With ``state_dir`` every GA search keeps its
    state there (see ``runner.state_file``): a killed run picks up where it stopped, and the finished states
    stay for inspection; use one directory per oracle. ``stop_when_found`` stops each GA search once its outcomes are
    :class:`Settled` (same calls to them; the budget column is then the calls spent up to the stop, and the
    lower-crystal outcome is left out: it would only be looked for until then), for the GA alone.
    ``relax_match`` adds the calls until the GA's match is a relaxed cell and until it holds a cell as low as the
    reference (:func:`relaxed_outcomes`), the baselines' matches being relaxed cells already."""
    if stop_when_found and baselines:
        raise ValueError("stop_when_found cuts the GA's budget, which the baselines would inherit; run the GA alone.")

    rows = []
    for seed in seeds:
        config = dataclasses.replace(search_config(profile, formula, n_atoms, seed), **(overrides or {}))
        stop = Settled(reference, oracle, config, relax_match) if stop_when_found else None
        if state_dir is None:
            state = run_search(config, oracle, executor=SerialExecutor(), stop_when=stop)
        else:
            Path(state_dir).mkdir(parents=True, exist_ok=True)
            state = run_search(config, oracle, executor=SerialExecutor(), state_path=state_file(state_dir, config),
                               stop_when=stop)
        budget = state.counter.total
        rows.append({"seed": seed, "budget": budget,
                     **search_outcomes(state, reference, oracle, config, stop_when_found, relax_match,
                                       stop.relaxed if stop is not None else None),
                     **baseline_calls(formula, n_atoms, reference, oracle, budget, seed,
                                      config.final_relax_steps, baselines)})
        log.info("seed %d: %s", seed, rows[-1])
    return pd.DataFrame(rows)


def success_table(calls: pd.DataFrame | dict[str, list[float]], budgets: np.ndarray) -> pd.DataFrame:
    """Success rate of each method (columns of ``calls`` named as in METHODS) at each budget."""
    out = {"oracle calls": np.asarray(budgets)}
    for key, label in METHODS.items():
        if key in calls:
            out[label] = success_rate(list(calls[key]), budgets)
    return pd.DataFrame(out)


def seeds_side_by_side(runs: dict[str, pd.DataFrame], column: str = "ga_potential") -> pd.DataFrame:
    """Per seed (rows), ``column`` of each run (columns, by label): e.g. the calls several recorded runs of the
    GA needed, to compare them seed by seed (a seed that a run lacks is NaN)."""
    if not runs:
        raise ValueError("No runs to put side by side.")
    return pd.DataFrame({label: calls.set_index("seed")[column] for label, calls in runs.items()}).sort_index()


# the three calls columns of a GA row (calls_to_ground_state) under the names the chapter prints
OUTCOME_COLUMNS = {"ga_potential": "match", "ga_potential_relaxed": "relaxed", "ga_potential_energy": "energy"}


def variant_side_by_side(base: pd.DataFrame, variant: pd.DataFrame, names: tuple[str, str],
                         phase: bool = False) -> pd.DataFrame:
    """Two GA runs seed by seed (columns): each one's calls by :data:`OUTCOME_COLUMNS` (rows under its name), then
    the variant's calls spent, (``phase``) the part of the search whose call first matched, and how far above the
    reference (meV/atom) its best cell ended."""
    base_name, variant_name = names
    side = pd.concat({name: run.set_index("seed")[list(OUTCOME_COLUMNS)].rename(columns=OUTCOME_COLUMNS)
                      for name, run in ((base_name, base), (variant_name, variant))}, axis=1)
    detail = variant.set_index("seed")
    side[(variant_name, "calls spent")] = detail["budget"]
    if phase:
        side[(variant_name, "first match in")] = detail["ga_potential_phase"].fillna("").replace("", "-")
    side[(variant_name, "best (meV/atom above)")] = detail["ga_potential_best_meV_above_reference"]
    return side.T


def calls_to_half_success(calls: list[float]) -> float:
    """Oracle calls by which at least half of the seeds had found the ground state (inf = never)."""
    if not len(calls):
        raise ValueError("No seeds to summarise.")
    return float(_halves(np.asarray(calls, dtype=float)[None, :])[0])


def method_summary(calls: pd.DataFrame) -> pd.DataFrame:
    """Per method (columns named as in METHODS): seeds, seeds that found the ground state, median calls
    of those that did, and the calls to 50 % success; the issue's goal reads off the last column."""
    rows = []
    for key, label in METHODS.items():
        if key not in calls:
            continue
        found = calls[key].astype(float)
        hits = found[np.isfinite(found)]
        row = {"method": label, "seeds": len(found), "found": len(hits),
               "median calls when found": float(hits.median()) if len(hits) else float("nan"),
               "calls to 50 % success": calls_to_half_success(list(found))}
        if f"{key}_below" in calls:  # runs that also tracked lower crystals (see outcomes)
            row["found lower crystal"] = int(np.isfinite(calls[f"{key}_below"].astype(float)).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def _halves(samples: np.ndarray) -> np.ndarray:
    """Calls to 50 % success of each row of seed resamples (inf where a row never gets there)."""
    return np.sort(samples, axis=1)[:, (samples.shape[1] + 1) // 2 - 1]


def savings_interval(ga_calls: list[float], random_calls: list[float], random_budget: float, level: float = 0.9,
                     n_boot: int = 4000, seed: int = 0) -> tuple[float, float]:
    """A bootstrap interval (``level``, percentile) of random search's calls to 50 % success over the GA's: each
    method's seeds resampled with replacement, on their own (the methods' runs are independent). Where random
    search never reaches 50 % its budget stands in (the ratio is then a lower bound); where the GA never does,
    the ratio is 0."""
    rng = np.random.default_rng(seed)
    ga, rs = np.asarray(ga_calls, dtype=float), np.asarray(random_calls, dtype=float)
    ga_half = _halves(rng.choice(ga, size=(n_boot, len(ga))))
    rs_half = np.minimum(_halves(rng.choice(rs, size=(n_boot, len(rs)))), random_budget)
    tail = (1 - level) / 2
    return tuple(float(q) for q in np.quantile(rs_half / ga_half, [tail, 1 - tail]))


def oracle_savings(ga: pd.DataFrame, random: pd.DataFrame, min_found: float = 0.9,
                   min_ratio: float = 5.0, column: str = "ga_potential",
                   random_column: str = "random") -> dict[str, object]:
    """The target set for the method on one system, read off per-seed calls (inf = not found): the GA finds
    the ground state in at least ``min_found`` of the seeds and needs ``min_ratio``x fewer oracle calls than
    random search to reach 50 % success. ``random`` may come from longer runs than the GA's budget (see
    ``baseline_calls``); where random search never reaches 50 %, the ratio is only bounded from below by its
    budget. ``column`` and ``random_column``: the calls to count (e.g. "ga_potential_relaxed", see
    :func:`relaxed_outcomes`, or "ga_potential_energy" against "random_energy", see :func:`outcomes`)."""
    ga_calls, rs_calls = ga[column].astype(float), random[random_column].astype(float)
    ga_half, rs_half = calls_to_half_success(list(ga_calls)), calls_to_half_success(list(rs_calls))
    if math.isfinite(ga_half) and math.isfinite(rs_half):
        ratio, bound = rs_half / ga_half, "="
    elif math.isfinite(ga_half):  # random search never got there: its budget bounds the ratio
        ratio, bound = float(random["budget"].max()) / ga_half, ">"
    else:
        ratio, bound = float("nan"), ""
    found = float(np.isfinite(ga_calls).mean())
    low, high = savings_interval(list(ga_calls), list(rs_calls), float(random["budget"].max()))
    return {"GA found": f"{int(np.isfinite(ga_calls).sum())}/{len(ga_calls)}", "GA calls to 50 %": ga_half,
            "random found": f"{int(np.isfinite(rs_calls).sum())}/{len(rs_calls)}",
            "random budget": int(random["budget"].max()), "random calls to 50 %": rs_half,
            "ratio": ratio, "ratio is": bound, "ratio, 90 % bootstrap": f"{low:.1f}-{high:.1f}",
            "target met": bool(found >= min_found and ratio >= min_ratio)}  # NaN ratio: never met


# how a seed counts as having found the ground state: (GA column, random-search column) of calls_to_ground_state's rows
SAVINGS_CRITERIA = {"match": ("ga_potential", "random"), "relaxed match": ("ga_potential_relaxed", "random"),
                    "energy": ("ga_potential_energy", "random_energy")}


def savings_by_criterion(runs: dict[str, tuple[pd.DataFrame, pd.DataFrame | None]],
                         criteria: dict[str, tuple[str, str]] | None = None) -> pd.DataFrame:
    """:func:`oracle_savings` per (system, criterion) for ``runs`` = {system: (GA rows, random-search rows)}, for
    each criterion of ``criteria`` (default :data:`SAVINGS_CRITERIA`) whose columns both runs have; a system with
    no random-search rows is left out."""
    rows = {}
    for system, (ga, random) in runs.items():
        for criterion, (ga_column, random_column) in (criteria or SAVINGS_CRITERIA).items():
            if random is not None and ga_column in ga and random_column in random:
                rows[(system, criterion)] = oracle_savings(ga, random, column=ga_column, random_column=random_column)
    return pd.DataFrame(rows).T


def reference_lattice_a(atoms: Atoms, reference: Atoms) -> float:
    """Conventional-cell a (Å) of ``atoms`` when it is the ``reference`` crystal, else NaN."""
    return conventional_lattice(atoms)[0] if same_structure(atoms, reference) else float("nan")


LABELLINGS = {"energies only (paper)": (0.0, 0.0), "energies + forces": (1.0, 0.0),
              "energies + forces + stress": (1.0, 1.0)}


def label_study(structures: list[Atoms], energies: list[float], forces: list, stresses: list,
                unseen: list[Atoms], unseen_energies: list[float], species: list[int], settings=None,
                seed: int = 0, n_folds: int = 4) -> pd.DataFrame:
    """Potential accuracy when trained on energies only (the paper), or also on forces and stress.

    Every labelling sees the same oracle calls: k-fold cross-validation over ``structures`` (errors on
    the held-out folds, averaged), plus the error on ``unseen`` structures (e.g. oracle-relaxed final
    ones) averaged over the k fitted potentials. Stress errors are in GPa.
    """
    import dataclasses

    from ase.units import GPa

    from gapkit.search.potential import TrainSettings, fit_potential

    settings = settings or TrainSettings()
    n = len(structures)
    if n < 2 * n_folds:
        raise ValueError(f"Need at least {2 * n_folds} labelled structures for {n_folds} folds, got {n}.")
    folds = np.array_split(np.random.default_rng(seed).permutation(n), n_folds)
    rows = []
    for label, (w_f, w_s) in LABELLINGS.items():
        errors: dict[str, list[np.ndarray]] = {"E": [], "F": [], "S": [], "unseen": []}
        for k, test in enumerate(folds):
            train = np.concatenate([f for j, f in enumerate(folds) if j != k])
            pot, _ = fit_potential([structures[i] for i in train], [energies[i] for i in train], species,
                                   dataclasses.replace(settings, force_weight=w_f, stress_weight=w_s),
                                   seed=seed, forces=[forces[i] for i in train],
                                   stresses=[stresses[i] for i in train])
            for i in test:
                e_pred, f_pred, s_pred = pot.energy_forces_stress(structures[i])
                errors["E"].append(np.array([(e_pred - energies[i]) / len(structures[i])]))
                if forces[i] is not None:
                    errors["F"].append((f_pred - forces[i]).ravel())
                if stresses[i] is not None:
                    errors["S"].append((s_pred - stresses[i]).ravel() / GPa)
            errors["unseen"] += [np.array([pot.predict(a) / len(a) - e / len(a)])
                                 for a, e in zip(unseen, unseen_energies)]

        def rmse(key: str) -> float:
            return float(np.sqrt(np.mean(np.concatenate(errors[key]) ** 2))) if errors[key] else float("nan")

        rows.append({"training labels": label, "held-out E RMSE (eV/atom)": rmse("E"),
                     "held-out F RMSE (eV/Å)": rmse("F"), "held-out stress RMSE (GPa)": rmse("S"),
                     "unseen E RMSE (eV/atom)": rmse("unseen")})
    return pd.DataFrame(rows)


def recorded_calls(profile: str, directory=None) -> tuple[pd.DataFrame, dict] | None:
    """Per-seed oracle calls and provenance of a run recorded by benchmarks/search_oracle_calls.py, or None."""
    from gapkit.results import load_results, results_dir

    folder = directory or results_dir()
    if not folder.is_dir():
        return None
    for record in load_results(folder):
        if record["chapter"] == "search" and record["profile"] == profile and "per_seed" in record["metrics"]:
            calls = pd.DataFrame(record["metrics"]["per_seed"])
            methods = [c for m in METHODS for c in (m, f"{m}_below", f"{m}_relaxed", f"{m}_energy") if c in calls]
            calls[methods] = calls[methods].astype(float).fillna(np.inf)  # null = never found
            return calls.sort_values("seed").reset_index(drop=True), record["provenance"]
    return None


def wilson_interval(successes: int, n: int, level: float = 0.9) -> tuple[float, float]:
    """Wilson score interval (``level``) of a success fraction ``successes`` / ``n``: honest for few seeds and for
    fractions at 0 or 1, where the normal approximation collapses to a point."""
    from scipy.stats import norm

    if n <= 0:
        raise ValueError("Need at least one seed for a success interval.")
    z = float(norm.ppf(0.5 + level / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def headline_row(ga: pd.DataFrame, random: pd.DataFrame) -> dict[str, object]:
    """One system's row of the chapter's headline table: seeds that found the reference (with a Wilson interval),
    the calls by which half the seeds had it, and random search's calls to 50 % over the GA's with a bootstrap
    interval, both at 90 % (see :func:`oracle_savings`; ``>`` where random search never got there and its budget
    bounds the ratio)."""
    saving = oracle_savings(ga, random)
    row: dict[str, object] = {}
    for name, calls in (("GA", ga["ga_potential"]), ("random", random["random"])):
        hits = int(np.isfinite(calls.astype(float)).sum())
        low, high = wilson_interval(hits, len(calls), 0.9)
        row[f"{name}: found"] = f"{hits}/{len(calls)} ({low:.2f}-{high:.2f})"
    row["GA: calls to 50 %"] = saving["GA calls to 50 %"]
    row["random: calls to 50 %"] = saving["random calls to 50 %"]
    row["random budget"] = saving["random budget"]
    row["fewer calls"] = f"{saving['ratio is'].replace('=', '')}{saving['ratio']:.1f}x"
    row["90 % interval"] = saving["ratio, 90 % bootstrap"]
    return row


def table2_beside_paper(formula: str, ours: dict[str, tuple[Atoms, float]]) -> pd.DataFrame:
    """The paper's Table 2 for ``formula`` (its found and experimental structures: conventional a, b, c in Å and
    the DFT total energy of its cell) beside ``ours`` (``{label: (atoms, oracle energy per atom in eV)}``), whose
    energies are scaled to the paper's cell. Energies of different oracles differ in kind: compare lattices across
    sources and energies within one."""
    from gapkit.results import published_table

    table = published_table("search", "Table 2")
    rows = table[table["dataset"].str.split().str[0] == formula]
    if rows.empty:
        raise ValueError(f"The paper's Table 2 has no {formula}; it lists Si, TiO2 and CaTiO3.")
    n_cell = int(rows["dataset"].iloc[0].split()[1])
    paper = rows.set_index("metric")
    out = []
    for column, label in (("experiment", "paper: experimental structure (DFT)"), ("found", "paper: GA + NN found (DFT)")):
        a = float(paper.loc["lattice a", column])
        c = float(paper.loc["lattice c", column]) if "lattice c" in paper.index else a  # cubic rows give a alone
        out.append({"structure": label, "a (Å)": a, "b (Å)": a, "c (Å)": c,
                    f"E per {n_cell}-atom cell (eV)": float(paper.loc["E (DFT total)", column])})
    for label, (atoms, energy_per_atom) in ours.items():
        a, b, c = conventional_lattice(atoms)
        out.append({"structure": label, "a (Å)": round(a, 3), "b (Å)": round(b, 3), "c (Å)": round(c, 3),
                    f"E per {n_cell}-atom cell (eV)": round(energy_per_atom * n_cell, 2)})
    return pd.DataFrame(out)
