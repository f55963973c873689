"""Oracle calls to reach the oracle's ground state of any compound: GA + learned potential vs random search vs ase-ga.

Run: ``python benchmarks/search_oracle_calls.py [--formula Si] [--seeds 5] [--first-seed 0] [--n-atoms N]
[--profile quick] [--csv runs/search_calls.csv]``. The GA is the method ``search_config(profile, ...)`` recommends;
for Si, TiO2 and CaTiO3 the reference is the paper's prototype relaxed by the oracle, for any other formula give
its structure with ``--reference FILE [FILE ...]`` (CIF or any file ASE reads; the lowest after relaxation is the
reference) and ``--n-atoms``. ``--summarise CSV`` prints the success table of a finished CSV (several processes may
each run a range of seeds into the same CSV) and, with ``--record``, writes it to ``results/search-*.json`` with
device, commit, wall time and the search's settings (``gapkit.search.records`` selects records by those settings,
never by file name). Rerun after a kill with the same ``--csv``: finished seeds are skipped and the GA resumes from
its state, kept in ``<csv>.states/``. For each seed, the GA runs to completion; random search then gets the same
number of oracle calls, and so does ASE's GA (ase-ga). Prints calls-to-success per seed and the median (inf = not
found within the budget). CHGNet is the oracle. Not a test: it measures, it asserts nothing.

Variants of the final stage (the appendix's; each flag replaces one setting of the recommended method):
``--paper`` (the paper's single final round, no budget), ``--final-rounds N``, ``--round-patience P``,
``--frames-every K``, ``--budget B``, ``--no-screen``, ``--relax-per-round K`` (0: every pick), ``--stale-randoms N``.
``--methods none`` runs the GA alone. ``--stop-when-found`` (GA alone) gives the search the reference as its target:
it stops once it matched the reference and holds a cell as low as it (its relaxed match counted), so the calls to
both are those of the whole run and only the seeds that never get there spend the whole budget. Each GA row also
says where the match came from, how far above the reference the best cell ended, the calls until the match is a
relaxed cell (``ga_potential_relaxed``) and until the search holds a cell as low as the reference, whatever crystal
(``*_energy``, every method). ``--add-unfinished`` (with the run's flags, ``--first-seed`` and ``--seeds``) adds rows
for seeds whose searches were stopped before their end, from their saved states: not found so far, ``unfinished``,
their calls so far as budget.

``--baseline-budget N [--methods random]`` runs the baselines alone with N oracle calls per seed (no GA), to
find how many calls they need to reach 50 % success when the GA's budget is too small for that. A baseline's trace
does not depend on its budget (only the last relaxation is cut short), so a longer run extends the shorter one.
Baselines run separately (``--methods random`` into one CSV, ``--methods ase_ga`` into another) are recorded
together with ``--summarise A.csv B.csv --record``, joined seed by seed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import time
import warnings
from pathlib import Path

import pandas as pd

from gapkit.search import SearchConfig, search_config
from gapkit.search.comparison import BASELINES, baseline_outcomes, calls_to_ground_state
from gapkit.search.oracle import OracleResult, chgnet_calculator
from gapkit.search.outcomes import LOWER_MARGIN, SeedOutcome, search_outcome, with_target
from gapkit.search.profiles import PAPER_FINAL
from gapkit.search.records import RECOMMENDED, config_settings
from gapkit.search.references import reference_candidates, reference_structure
from gapkit.search.state import load_state, state_file
from gapkit.search.tables import METHODS, method_summary


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


def ga_config(args: argparse.Namespace, seed: int, reference: OracleResult | None = None) -> SearchConfig:
    """The GA's configuration for ``seed`` under these flags: the profile's recommended search with the final
    stage's variants the flags name, stopping at ``reference`` with ``--stop-when-found``."""
    config = search_config(args.profile, args.formula, args.n_atoms, seed)
    if args.paper:
        config = config.replace(final=PAPER_FINAL, budget=None)
    final = {field: value for field, value in (
        ("rounds", args.final_rounds), ("patience", args.round_patience), ("frames_every", args.frames_every),
        ("screen_picks", args.screen), ("stale_random_relaxations", args.stale_randoms)) if value is not None}
    if args.relax_per_round is not None:
        final["relax_per_round"] = args.relax_per_round or None
    config = config.replace(final=final, **({"budget": args.budget} if args.budget is not None else {}))
    if args.stop_when_found and reference is not None:
        config = with_target(config, reference)
    return config


def saved_state(csv: Path, args: argparse.Namespace, seed: int, reference: OracleResult) -> tuple[SearchConfig, Path]:
    """The GA's settings for ``seed`` under these flags, and where the run into ``csv`` kept its search state."""
    config = ga_config(args, seed, reference)
    return config, state_file(csv.with_suffix(".states"), config)


def add_unfinished_seeds(csv: Path, args: argparse.Namespace, ref: OracleResult) -> None:
    """Add a row for each seed of ``--first-seed``/``--seeds`` that the CSV lacks but whose search left a saved
    state (stopped before its end, e.g. when a session's time ran out): its calls so far as the budget, not found
    (inf; it had not matched, or it would have stopped), ``unfinished`` True. Such a seed can still succeed, but
    only after more calls than its budget: a calls-to-50 % point below every unfinished budget is exact, and the
    found count a lower bound. The CSV is rewritten."""
    calls = pd.read_csv(csv)
    if "unfinished" not in calls:
        calls["unfinished"] = False
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        config, path = saved_state(csv, args, seed, ref)
        if seed in set(calls["seed"]) or not path.exists():
            continue
        state = load_state(path)
        ga = search_outcome(state, ref, chgnet_calculator, config, relax_match=False)
        if math.isfinite(ga.match):
            raise ValueError(f"Seed {seed}'s saved search matched the reference: finish it (rerun) instead.")
        ga.relaxed = math.inf
        rows.append({**SeedOutcome(seed, state.counter.total, {"ga_potential": ga}).row(), "wall_s": math.nan,
                     "unfinished": True})
    if rows:
        tmp = csv.with_suffix(".tmp")
        pd.concat([calls, pd.DataFrame(rows)], ignore_index=True)[list(calls.columns)].to_csv(tmp, index=False)
        tmp.replace(csv)


def reference_of(args: argparse.Namespace) -> tuple[str, OracleResult]:
    """The oracle-relaxed reference: of the ``--reference`` files if given, else of the paper's prototypes."""
    candidates = {Path(f).stem: f for f in args.reference} if args.reference else None
    return reference_structure(args.formula, chgnet_calculator, candidates=candidates)


def record_name(args: argparse.Namespace, settings: dict, has_ga: bool) -> str:
    """A record's file name: profile, variant and formula (for people; code selects records by their settings)."""
    if not has_ga:
        variant = "baselines"
    elif {k: v for k, v in settings.items() if k != "stopped_when_found"} == \
            {k: v for k, v in RECOMMENDED.items() if k != "stopped_when_found"}:
        variant = "recommended"
    elif settings["final_rounds"] == 1:
        variant = "paper"
    else:  # any other variant: a digest of its settings keeps records of different variants apart
        variant = "variant-" + hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:6]
    return f"{args.profile}-{variant}-{args.formula}{args.n_atoms}" + (f"-{args.tag}" if args.tag else "")


# the smallest cells holding each ground state (diamond Si, rutile/anatase TiO2, cubic perovskite CaTiO3)
QUICK_CELLS = {"Si": 2, "TiO2": 6, "CaTiO3": 5}


def main() -> None:
    """Run the three searches over several seeds and print the oracle calls each needed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formula", default="Si", help="any formula; other than Si, TiO2, CaTiO3 give --reference")
    parser.add_argument("--reference", nargs="+", metavar="FILE",
                        help="the ground state's structure (CIF or any file ASE reads; several: the lowest after the "
                             "oracle's relaxation); default the paper's prototypes of Si, TiO2 or CaTiO3")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--n-atoms", type=int, help="atoms per cell (default: the recorded quick runs' cells, "
                        + ", ".join(f"{f} {n}" for f, n in QUICK_CELLS.items()) + ")")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--csv", help="append one row per seed to this CSV")
    parser.add_argument("--summarise", nargs="+", metavar="CSV",
                        help="summarise a finished CSV instead of running; several CSVs of the same seeds and budget "
                             "(e.g. random search and ase-ga run separately) are joined seed by seed")
    parser.add_argument("--record", action="store_true", help="with --summarise: write results/search-*.json")
    parser.add_argument("--baseline-budget", type=int, help="run only the baselines, with this many oracle calls per seed")
    parser.add_argument("--methods", nargs="+", default=list(BASELINES), choices=[*BASELINES, "none"],
                        help="which baselines run (at --baseline-budget, or at each GA run's budget); 'none' for the GA alone")
    parser.add_argument("--paper", action="store_true", help="the paper's final stage: one round, no budget")
    parser.add_argument("--final-rounds", type=int, help="final rounds (each learns from the previous one's relaxations)")
    parser.add_argument("--round-patience", type=int, help="stop after this many final rounds without a lower energy")
    parser.add_argument("--frames-every", type=int, help="learn from every k-th step of the oracle's relaxations")
    parser.add_argument("--budget", "--total-budget", type=int, help="oracle calls of the whole search")
    parser.add_argument("--screen", action=argparse.BooleanOptionalAction, default=None,
                        help="screen each final round's picks with one oracle single point (FinalStage.screen_picks)")
    parser.add_argument("--relax-per-round", type=int, help="relax only this many picks per final round (0: every pick)")
    parser.add_argument("--stale-randoms", type=int, metavar="N",
                        help="in a final round after one without a lower oracle energy, N relaxations start from fresh "
                             "random structures (FinalStage.stale_random_relaxations)")
    parser.add_argument("--stop-when-found", action="store_true",
                        help="with --methods none: the reference is the search's target (it stops once it matched "
                             "it and holds a cell as low as it; the budget column becomes the calls spent until then)")
    parser.add_argument("--add-unfinished", action="store_true",
                        help="with --summarise and the run's flags, --first-seed and --seeds: add rows for seeds whose "
                             "searches were stopped before their end, from their saved states (not found, unfinished)")
    parser.add_argument("--tag", default="", help="with --record: added to the record's file name "
                        "(e.g. a rerun of a recorded setting on another machine, kept beside the first)")
    parser.add_argument("--notes", default="", help="with --record: added to the record's notes (e.g. which commits ran which seeds)")
    args = parser.parse_args()
    if args.n_atoms is None:
        if args.formula not in QUICK_CELLS:
            parser.error(f"--n-atoms is needed for {args.formula} (a multiple of its formula unit's atoms).")
        args.n_atoms = QUICK_CELLS[args.formula]
    if args.formula not in QUICK_CELLS and not args.reference:
        try:
            reference_candidates(args.formula)
        except ValueError as err:
            parser.error(f"{err} (--reference FILE)")
    if args.stop_when_found and args.methods != ["none"]:
        parser.error("--stop-when-found cuts the GA's budget, which the baselines would get: use it with --methods none.")
    if args.baseline_budget and "none" in args.methods:
        parser.error("--baseline-budget runs the baselines alone and --methods none the GA alone: choose one.")
    ga_config(args, 0)  # invalid flags fail here, before any oracle call
    warnings.filterwarnings("ignore")
    if args.summarise:
        if args.add_unfinished:
            _, ref = reference_of(args)
            for path in args.summarise:
                add_unfinished_seeds(Path(path), args, ref)
        calls = join_runs([pd.read_csv(path) for path in args.summarise])
        if args.stop_when_found:  # runs stopped at the reference never looked further for a lower crystal
            calls = calls.drop(columns=[c for c in calls if c.endswith("_below")])
        print(calls.to_string(index=False))
        summary = summarise(calls, args.formula, args.n_atoms)
        if args.record:
            from gapkit.results import record_results
            from gapkit.runtime import describe_device

            # the methods run are the per-seed columns (gapkit.search.records.record_methods), not a setting
            settings = config_settings(ga_config(args, 0), args.stop_when_found)
            path = record_results("search", record_name(args, settings, "ga_potential" in calls), {
                "formula": args.formula, "n_atoms": args.n_atoms, "settings": settings,
                # JSON has no infinity: never found -> null
                "per_seed": calls.astype(object).where(~calls.isin([float("inf")]), None).to_dict("records"),
                "summary": {k: {kk: (None if vv == float("inf") else vv) for kk, vv in v.items()}
                            for k, v in summary.items()}}, device=describe_device("cpu"), wall_time_s=float(calls["wall_s"].sum()),
                seed=int(calls["seed"].min()), notes="benchmarks/search_oracle_calls.py; wall time summed over "
                "seeds (several processes ran seed ranges side by side)" + (f"; {args.notes}" if args.notes else ""))
            print("recorded", path)
        return
    name, ref = reference_of(args)
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
            outcomes = baseline_outcomes(args.formula, args.n_atoms, ref, chgnet_calculator, args.baseline_budget,
                                         seed, ga_config(args, seed).final.relax_steps, tuple(args.methods))
            row = pd.DataFrame([SeedOutcome(seed, args.baseline_budget, outcomes).row()])
        else:
            row = calls_to_ground_state(ga_config(args, seed, ref), ref, chgnet_calculator, [seed],
                                        tuple(m for m in args.methods if m != "none"), state_dir)
        row["wall_s"] = round(time.perf_counter() - t0, 1)
        print(row.to_string(index=False, header=not printed), flush=True)  # wall_s: this run's part only
        printed = True
        if args.csv:
            Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
            row.to_csv(args.csv, mode="a", index=False, header=not Path(args.csv).exists())


if __name__ == "__main__":
    main()
