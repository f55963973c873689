"""Oracle calls to reach the oracle's ground state (Si, TiO2 or CaTiO3): GA + learned potential vs random search vs ase-ga.

Run: ``python benchmarks/search_oracle_calls.py [--formula Si] [--seeds 5] [--first-seed 0] [--n-atoms N] [--profile quick]
[--csv runs/search_calls.csv]``; ``--summarise CSV`` prints the success table of a finished CSV (several
processes may each run a range of seeds into the same CSV) and, with ``--record``, writes it to
``results/search-<profile>-<formula>.json`` with device, commit and wall time. Rerun after a kill with the
same ``--csv``: finished seeds are skipped and the GA resumes from its state, kept in ``<csv>.states/``.
For each seed, the active-learning GA runs to completion; random search then gets the same number
of oracle calls, and so does ASE's GA (ase-ga). Prints calls-to-success per seed and the median (inf = not found within the
budget). CHGNet is the oracle. Not a test: it measures, it asserts nothing.

``--final-rounds N [--round-patience P] [--frames-every K] [--total-budget B]`` runs the GA with more final
rounds (each learns from the previous round's oracle relaxations; see ``SearchConfig.final_rounds``); with
``--record`` such runs are written as ``results/search-<profile>-rounds-<formula>.json`` (pass the same
``--final-rounds`` to ``--summarise``). ``--methods none`` runs the GA alone. ``--screen`` ranks each round's
picks by one oracle single point (learned from, like the relaxations) and ``--relax-per-round K`` relaxes only
the first K (records ``...-rounds-screened-topK-<formula>.json``; pass the same flags to ``--summarise``).
``--known-cap EV`` counts a label as already known to the potential only if its error is below min(min_loss, EV)
eV/atom (records ``...-capped-<formula>.json``). ``--stale-randoms N`` relaxes N fresh random structures in place of
the last GA picks in each final round after one without a lower energy (records ``...-randomsN-<formula>.json``).
``--stop-when-found`` (GA alone) stops a seed once it matched the reference and holds a cell as low as it (its
relaxed match counted): the calls to both are those of the whole run, only the seeds that never get there spend
the whole budget. Each GA row also says where the match came from, how far above the reference the best cell
ended, the calls until the match is a relaxed cell (``ga_potential_relaxed``: a match that is not a converged
relaxation is relaxed by the oracle and its calls added) and until the search holds a cell as low as the
reference, whatever crystal (``*_energy``, every method). ``--summarise CSV
--relax-matches [the run's flags]`` adds the GA's two to CSVs written before they existed, from the saved states.
``--add-unfinished`` (with the run's flags, ``--first-seed`` and ``--seeds``) adds rows for seeds whose searches were
stopped before their end, from their saved states: not found so far, ``unfinished``, their calls so far as budget.

``--baseline-budget N [--methods random]`` runs the baselines alone with N oracle calls per seed (no GA), to
find how many calls they need to reach 50 % success when the GA's budget is too small for that; such runs
are recorded as ``results/search-<profile>-<formula>-baselines.json``. A baseline's trace does not depend
on its budget (only the last relaxation is cut short), so a longer run extends the shorter one. Baselines run
separately (``--methods random`` into one CSV, ``--methods ase_ga`` into another) are recorded together with
``--summarise A.csv B.csv --record``, joined seed by seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import time
import warnings
from pathlib import Path

import pandas as pd

from gapkit.search.baselines import LOWER_MARGIN, reference_structure
from gapkit.search.compare import (BASELINES, METHODS, baseline_calls, calls_to_ground_state,
                                   method_summary, relaxed_outcomes)
from gapkit.search.active import SearchConfig
from gapkit.search.oracle import OracleResult, chgnet_calculator
from gapkit.search.profiles import search_config
from gapkit.search.runner import load_state, state_file


def summarise(calls: pd.DataFrame, formula: str, n_atoms: int) -> dict[str, dict[str, float]]:
    """Per method: seeds, seeds that found the ground state, median calls to it (inf = not found), and seeds
    whose best became another, lower crystal (when the run tracked it); counts from ``method_summary``."""
    table = method_summary(calls).set_index("method")
    out = {}
    for column, label in METHODS.items():
        if column not in calls:
            continue
        row = table.loc[label]
        out[label] = {"seeds": int(row["seeds"]), "found": int(row["found"]),
                      "median_calls": statistics.median(calls[column].astype(float))}
        print(f"{label}: median calls to the {formula} ({n_atoms} atoms) ground state {out[label]['median_calls']}, "
              f"found within budget in {out[label]['found']}/{out[label]['seeds']} seeds")
        if pd.notna(row.get("found lower crystal")):  # another crystal the oracle ranks below the reference
            out[label]["found_lower"] = int(row["found lower crystal"])
            print(f"{label}: found another crystal more than {1000 * LOWER_MARGIN:.0f} meV/atom below the reference in "
                  f"{out[label]['found_lower']}/{out[label]['seeds']} seeds")
    return out


def join_runs(runs: list[pd.DataFrame]) -> pd.DataFrame:
    """One row per seed from runs of different methods on the same seeds and budget (wall times added)."""
    joined = runs[0]
    for run in runs[1:]:
        shared = (set(joined) & set(run)) - {"seed", "budget", "wall_s"}
        if shared:
            raise ValueError(f"Both runs hold the columns {sorted(shared)}; join runs of different methods.")
        if set(joined["seed"]) != set(run["seed"]):
            raise ValueError(f"The runs cover different seeds: {sorted(joined['seed'])} and {sorted(run['seed'])}.")
        joined = joined.merge(run, on="seed", suffixes=("", "_other"), validate="one_to_one")
        if not (joined["budget"] == joined["budget_other"]).all():
            raise ValueError("The runs gave the seeds different oracle budgets; join runs of the same budget.")
        joined["wall_s"] = joined["wall_s"] + joined["wall_s_other"]
        joined = joined.drop(columns=["budget_other", "wall_s_other"])
    return joined


def ga_overrides(args: argparse.Namespace) -> dict:
    """The SearchConfig fields the command line changes from the profile's."""
    overrides = {} if args.final_rounds == 1 else {
        "final_rounds": args.final_rounds, "round_patience": args.round_patience,
        "relaxation_frames_every": args.frames_every, "total_budget": args.total_budget}
    if args.screen:
        overrides["screen_final_picks"] = True
    if args.relax_per_round:
        overrides["relax_per_round"] = args.relax_per_round
    if args.known_cap is not None:
        overrides["known_error_cap"] = args.known_cap
    if args.stale_randoms:
        overrides["stale_random_relaxations"] = args.stale_randoms
    return overrides


def saved_state(csv: Path, args: argparse.Namespace, seed: int) -> tuple[SearchConfig, Path]:
    """The GA's settings for ``seed`` under these flags, and where the run into ``csv`` kept its search state."""
    config = dataclasses.replace(search_config(args.profile, args.formula, args.n_atoms, seed), **ga_overrides(args))
    return config, state_file(csv.with_suffix(".states"), config)


def add_relaxed_matches(csv: Path, args: argparse.Namespace, ref: OracleResult) -> None:
    """Add the ``ga_potential_relaxed`` and ``ga_potential_energy`` columns (``relaxed_outcomes``) to a GA run's CSV
    written before they existed, from the searches' saved states beside it (one oracle relaxation per seed whose
    match was a single point); the CSV is rewritten."""
    calls = pd.read_csv(csv)
    if "ga_potential" not in calls or "ga_potential_energy" in calls:
        return
    added = []
    for seed in calls["seed"]:
        config, path = saved_state(csv, args, int(seed))
        if not path.exists():
            raise FileNotFoundError(f"No saved search state {path} for seed {seed}: pass the flags the CSV's run had.")
        added.append(relaxed_outcomes(load_state(path).improvements, ref, chgnet_calculator,
                                      config.final_relax_steps, config.fmax))
    for k, column in enumerate(["ga_potential_relaxed", "ga_potential_energy"]):
        calls.insert(list(calls.columns).index("ga_potential") + 1 + k, column, [row[column] for row in added])
    tmp = csv.with_suffix(".tmp")
    calls.to_csv(tmp, index=False)
    tmp.replace(csv)


def add_unfinished_seeds(csv: Path, args: argparse.Namespace, ref: OracleResult) -> None:
    """Add a row for each seed of ``--first-seed``/``--seeds`` that the CSV lacks but whose search left a saved
    state (stopped before its end, e.g. when a session's time ran out): its calls so far as the budget, not found
    (inf; it had not matched, or it would have stopped), ``unfinished`` True. Such a seed can still succeed, but
    only after more calls than its budget: a calls-to-50 % point below every unfinished budget is exact, and the
    found count a lower bound. The CSV is rewritten."""
    from gapkit.search.compare import search_outcomes

    calls = pd.read_csv(csv)
    if "unfinished" not in calls:
        calls["unfinished"] = False
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        config, path = saved_state(csv, args, seed)
        if seed in set(calls["seed"]) or not path.exists():
            continue
        state = load_state(path)
        ga = search_outcomes(state, ref, chgnet_calculator, config, stopped_when_found=True, relax_match=False)
        if math.isfinite(ga["ga_potential"]):
            raise ValueError(f"Seed {seed}'s saved search matched the reference: finish it (rerun) instead.")
        rows.append({"seed": seed, "budget": state.counter.total, **ga, "ga_potential_relaxed": math.inf,
                     "wall_s": math.nan, "unfinished": True})
    if rows:
        tmp = csv.with_suffix(".tmp")
        pd.concat([calls, pd.DataFrame(rows)], ignore_index=True)[list(calls.columns)].to_csv(tmp, index=False)
        tmp.replace(csv)


# the smallest cells holding each ground state (diamond Si, rutile/anatase TiO2, cubic perovskite CaTiO3)
QUICK_CELLS = {"Si": 2, "TiO2": 6, "CaTiO3": 5}


def main() -> None:
    """Run the three searches over several seeds and print the oracle calls each needed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formula", default="Si", choices=["Si", "TiO2", "CaTiO3"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--n-atoms", type=int, help="atoms per cell (default: the recorded quick runs' cells, "
                        + ", ".join(f"{f} {n}" for f, n in QUICK_CELLS.items()) + ")")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--csv", help="append one row per seed to this CSV")
    parser.add_argument("--summarise", nargs="+", metavar="CSV",
                        help="summarise a finished CSV instead of running; several CSVs of the same seeds and budget "
                             "(e.g. random search and ase-ga run separately) are joined seed by seed")
    parser.add_argument("--record", action="store_true", help="with --summarise: write results/search-<profile>-<formula>.json")
    parser.add_argument("--baseline-budget", type=int, help="run only the baselines, with this many oracle calls per seed")
    parser.add_argument("--methods", nargs="+", default=list(BASELINES), choices=[*BASELINES, "none"],
                        help="which baselines run (at --baseline-budget, or at each GA run's budget); 'none' for the GA alone")
    parser.add_argument("--final-rounds", type=int, default=1,
                        help="final rounds of the GA (>1: learn from the oracle's relaxations and search again)")
    parser.add_argument("--round-patience", type=int, default=2, help="with --final-rounds: stop after this many rounds without improvement")
    parser.add_argument("--frames-every", type=int, default=5, help="with --final-rounds: keep every k-th relaxation step for training")
    parser.add_argument("--total-budget", type=int, help="with --final-rounds: stop the GA after this many oracle calls")
    parser.add_argument("--screen", action="store_true",
                        help="the GA screens each final round's picks with one oracle single point and relaxes them "
                             "lowest oracle energy first (SearchConfig.screen_final_picks; not in the paper)")
    parser.add_argument("--relax-per-round", type=int,
                        help="with --final-rounds: the oracle relaxes only this many picks per round, the first in "
                             "the round's order (SearchConfig.relax_per_round; not in the paper)")
    parser.add_argument("--known-cap", type=float, metavar="EV",
                        help="a label counts as known to the potential only if its error is below min(min_loss, EV) "
                             "eV/atom (SearchConfig.known_error_cap; not in the paper)")
    parser.add_argument("--stale-randoms", type=int, default=0, metavar="N",
                        help="with --final-rounds: in a round after one without a lower oracle energy, N relaxations "
                             "start from fresh random structures (SearchConfig.stale_random_relaxations; not in the paper)")
    parser.add_argument("--stop-when-found", action="store_true",
                        help="with --methods none: stop each seed's search once it matched the reference and holds "
                             "a cell as low as it (same calls to both; the budget column becomes the calls spent "
                             "until then)")
    parser.add_argument("--relax-matches", action="store_true",
                        help="with --summarise: add the calls until the GA's match is a relaxed cell to CSVs written "
                             "before that column existed (from the saved states; pass the run's flags)")
    parser.add_argument("--add-unfinished", action="store_true",
                        help="with --summarise and the run's flags, --first-seed and --seeds: add rows for seeds whose "
                             "searches were stopped before their end, from their saved states (not found, unfinished)")
    parser.add_argument("--tag", default="", help="with --record: added to the record's profile name "
                        "(e.g. a rerun of a recorded setting on another machine, kept beside the first)")
    parser.add_argument("--notes", default="", help="with --record: added to the record's notes (e.g. which commits ran which seeds)")
    args = parser.parse_args()
    args.n_atoms = args.n_atoms or QUICK_CELLS[args.formula]
    if args.stop_when_found and args.methods != ["none"]:
        parser.error("--stop-when-found cuts the GA's budget, which the baselines would get: use it with --methods none.")
    if args.baseline_budget and "none" in args.methods:
        parser.error("--baseline-budget runs the baselines alone and --methods none the GA alone: choose one.")
    warnings.filterwarnings("ignore")
    if args.summarise:
        if args.relax_matches or args.add_unfinished:  # both need the reference: relax it once
            _, ref = reference_structure(args.formula, chgnet_calculator)
            for path in args.summarise:
                if args.relax_matches:
                    add_relaxed_matches(Path(path), args, ref)
                if args.add_unfinished:
                    add_unfinished_seeds(Path(path), args, ref)
        calls = join_runs([pd.read_csv(path) for path in args.summarise])
        if args.stop_when_found:  # runs stopped at the reference never looked further for a lower crystal
            calls = calls.drop(columns=[c for c in calls if c.endswith("_below")])
        print(calls.to_string(index=False))
        summary = summarise(calls, args.formula, args.n_atoms)
        if args.record:
            from gapkit.results import record_results
            from gapkit.runtime import describe_device

            # one record per profile and system; the chapter's own quick run writes search-quick.json
            variant = ("-rounds" if args.final_rounds > 1 else "") + ("-screened" if args.screen else "") + \
                (f"-top{args.relax_per_round}" if args.relax_per_round else "") + \
                ("-capped" if args.known_cap is not None else "") + \
                (f"-randoms{args.stale_randoms}" if args.stale_randoms else "") + (f"-{args.tag}" if args.tag else "")
            profile = f"{args.profile}{variant}-{args.formula}" + ("" if "ga_potential" in calls else "-baselines")
            path = record_results("search", profile, {
                "formula": args.formula, "n_atoms": args.n_atoms,
                "settings": {"final_rounds": args.final_rounds, "round_patience": args.round_patience,
                             "frames_every": args.frames_every, "total_budget": args.total_budget,
                             "methods": args.methods, "screen_final_picks": args.screen,
                             "relax_per_round": args.relax_per_round, "known_error_cap": args.known_cap,
                             "stale_random_relaxations": args.stale_randoms,
                             "stopped_when_found": args.stop_when_found},
                # JSON has no infinity: never found -> null
                "per_seed": calls.astype(object).where(~calls.isin([float("inf")]), None).to_dict("records"),
                "summary": {k: {kk: (None if vv == float("inf") else vv) for kk, vv in v.items()}
                            for k, v in summary.items()}}, device=describe_device("cpu"), wall_time_s=float(calls["wall_s"].sum()),
                seed=int(calls["seed"].min()), notes="benchmarks/search_oracle_calls.py; wall time summed over "
                "seeds (several processes ran seed ranges side by side)" + (f"; {args.notes}" if args.notes else ""))
            print("recorded", path)
        return
    name, ref = reference_structure(args.formula, chgnet_calculator)
    print(f"reference: {name}, {ref.energy_per_atom:.3f} eV/atom")
    # with --csv nothing is lost to a kill: finished seeds are skipped on a rerun, and a GA search stopped
    # half way resumes from its saved state (kept beside the CSV)
    done = set(pd.read_csv(args.csv)["seed"]) if args.csv and Path(args.csv).exists() else set()
    state_dir = Path(args.csv).with_suffix(".states") if args.csv else None
    printed = False
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        if seed in done:
            print(f"seed {seed}: already in {args.csv}, skipped")
            continue
        t0 = time.perf_counter()
        if args.baseline_budget:
            relax_steps = search_config(args.profile, args.formula, args.n_atoms, seed).final_relax_steps
            row = pd.DataFrame([{"seed": seed, "budget": args.baseline_budget, **baseline_calls(
                args.formula, args.n_atoms, ref, chgnet_calculator, args.baseline_budget, seed, relax_steps,
                tuple(args.methods))}])
        else:
            row = calls_to_ground_state(args.formula, args.n_atoms, ref, chgnet_calculator, args.profile,
                                        [seed], ga_overrides(args), tuple(m for m in args.methods if m != "none"),
                                        state_dir, stop_when_found=args.stop_when_found)
        row["wall_s"] = round(time.perf_counter() - t0, 1)
        print(row.to_string(index=False, header=not printed), flush=True)  # wall_s: this run's part only
        printed = True
        if args.csv:
            Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
            row.to_csv(args.csv, mode="a", index=False, header=not Path(args.csv).exists())


if __name__ == "__main__":
    main()
