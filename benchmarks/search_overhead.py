"""Search overhead per oracle call: the wall time a search spends outside its oracle, and where it goes.

Run: ``python benchmarks/search_overhead.py [--oracle emt|chgnet] [--cases Cu:2,Cu:8] [--budget 120]
[--before REV] [--repeats 1]``. Each case is the recommended method (``search_config("quick", ...)``, seed 0) with
a small budget, run in the calling thread (a serial executor: every second is attributed to one place). Reported:

* overhead per oracle call = (time of the search - time inside the oracle's calculator) / oracle calls, in CPU
  seconds of the one thread that runs it (``search (CPU)`` in the table: the run's wall time on an idle core; the
  elapsed wall clock on the shared machine is printed too);
* the breakdown, from timers wrapped around the package's functions (inclusive: a parent's time holds its
  children's): potential training (``retrain``), GA tasks (``ga_task``: the GA on the potential), within them the
  relaxations on the potential and the potential's energy/forces/stress calls, the descriptors (forward pass only;
  their backward pass counts in the energy/forces/stress calls), duplicate checks (StructureMatcher), PyXtal random
  structures, the known-structures predictions, and the oracle jobs (single points and relaxations with their ASE
  bookkeeping);
* a fingerprint of the trajectory (every oracle call's energy and the training-set energies): equal fingerprints
  mean the code change did not alter the search.

``--before REV`` also runs the package as it was at git revision REV (extracted into a temporary folder) in
alternation with the working tree's, each in its own process, and prints both side by side: on a shared machine
only ratios measured in one invocation are comparable. Not a test: it measures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (module, attribute, timer name): wrapped where the loop looks them up, so only calls made by the search count
TIMED = [
    ("gapkit.search.loop", "retrain", "potential training"),
    ("gapkit.search.loop", "ga_task", "GA tasks (on the potential)"),
    ("gapkit.search.loop", "known_structures", "known-structure predictions"),
    ("gapkit.search.loop", "single_point", "oracle jobs (single points)"),
    ("gapkit.search.loop", "relax", "oracle jobs (relaxations)"),
    ("gapkit.search.loop", "_pre_relaxed", "pre-relaxations of final picks"),
    ("gapkit.search.loop", "check_target", "target checks"),
    ("gapkit.search.loop", "save_state", "state files"),
    ("gapkit.search.population", "same_structure", "duplicate checks (StructureMatcher)"),
    ("gapkit.search.population", "random_structure", "PyXtal random structures"),
]
# timed at their definition (every caller counts)
TIMED_METHODS = [
    ("gapkit.search.potential", "NNPotential", "energy_forces_stress", "potential energy/forces/stress"),
    ("gapkit.search.potential", "NNPotential", "predict", "potential predictions"),
]
TIMED_FUNCTIONS = [
    ("gapkit.search.descriptors", "descriptor_matrix", "descriptors (forward)"),
    ("gapkit.search.potential", "fit_potential", "potential fits"),
]
ROWS = ["elapsed (wall clock)", "search (CPU)", "oracle calculator", "overhead", "potential training",
        "GA tasks (on the potential)",
        "potential relaxations (GA scoring)", "potential energy/forces/stress", "potential predictions",
        "descriptors (forward)", "duplicate checks (StructureMatcher)", "PyXtal random structures",
        "known-structure predictions", "pre-relaxations of final picks", "oracle jobs (single points)",
        "oracle jobs (relaxations)", "target checks", "state files"]


# CPU seconds of this process, not wall seconds: the measured runs share a busy machine with other jobs, and its
# load changes within minutes (the same run took 119 s and 308 s of wall time); one thread does all the work
clock = time.process_time


def _timer(totals: dict, name: str, fn):
    """``fn`` wrapped so its inclusive CPU time adds to ``totals[name]`` (re-entrant calls counted once)."""
    depth = [0]

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        depth[0] += 1
        t0 = clock()
        try:
            return fn(*args, **kwargs)
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                totals[name] += clock() - t0
    return wrapped


def measure(formula: str, n_atoms: int, budget: int, oracle_name: str) -> dict:
    """Run one search in this process with the timers installed; return its times and fingerprint."""
    import importlib

    import torch
    torch.set_num_threads(1)
    totals: dict[str, float] = defaultdict(float)
    for module, attr, name in TIMED:
        mod = importlib.import_module(module)
        if hasattr(mod, attr):
            setattr(mod, attr, _timer(totals, name, getattr(mod, attr)))
    for module, cls, attr, name in TIMED_METHODS:
        klass = getattr(importlib.import_module(module), cls)
        setattr(klass, attr, _timer(totals, name, getattr(klass, attr)))
    for module, attr, name in TIMED_FUNCTIONS:
        mod = importlib.import_module(module)
        fn = getattr(mod, attr)
        timed = _timer(totals, name, fn)
        for other in ("gapkit.search.descriptors", "gapkit.search.potential", "gapkit.search.loop",
                      "gapkit.search.training_set"):
            m = importlib.import_module(other)
            if getattr(m, attr, None) is fn:
                setattr(m, attr, timed)
    # the GA's scoring relaxations: BFGS runs on the potential inside make_scorer (the name both versions use)
    import ase.optimize
    loop = importlib.import_module("gapkit.search.loop")
    original_bfgs_run = ase.optimize.BFGS.run

    def bfgs_run(self, *args, **kwargs):
        target = self.atoms  # the filter around the atoms, or the atoms
        calc = getattr(getattr(target, "atoms", target), "calc", None)
        if calc is not None and type(calc).__name__ == "PotentialCalculator":
            t0 = clock()
            try:
                return original_bfgs_run(self, *args, **kwargs)
            finally:
                totals["potential relaxations (GA scoring)"] += clock() - t0
        return original_bfgs_run(self, *args, **kwargs)
    ase.optimize.BFGS.run = bfgs_run
    for name in ("relax_batch",):  # the batched relaxations of the new code, if any
        if hasattr(loop, name):
            setattr(loop, name, _timer(totals, "potential relaxations (GA scoring)", getattr(loop, name)))

    from gapkit.search import oracle as oracle_mod
    from gapkit.search.profiles import search_config
    base = oracle_mod.emt_calculator if oracle_name == "emt" else oracle_mod.chgnet_calculator
    base_calc = base()
    calc_class = type(base_calc)
    original_calculate = calc_class.calculate

    def timed_calculate(self, *args, **kwargs):
        t0 = clock()
        try:
            return original_calculate(self, *args, **kwargs)
        finally:
            totals["oracle calculator"] += clock() - t0
    calc_class.calculate = timed_calculate

    config = search_config("quick", formula=formula, n_atoms=n_atoms, seed=0, budget=budget)
    t0, w0 = clock(), time.perf_counter()
    state = loop.run_search(config, oracle=base, executor=loop.SerialExecutor())
    totals["search (CPU)"] = clock() - t0
    totals["elapsed (wall clock)"] = time.perf_counter() - w0
    totals["overhead"] = totals["search (CPU)"] - totals["oracle calculator"]
    calls = state.counter.total
    fingerprint = hashlib.sha1(json.dumps({
        "improvements": [(i.calls, round(i.energy_per_atom, 10)) for i in state.improvements],
        "train": [round(float(r.energy_ev), 10) for r in state.training],
        "final": [round(r.energy_per_atom, 10) for r in state.final_results],
        "calls": calls}).encode()).hexdigest()[:12]
    return {"case": f"{formula}{n_atoms}", "calls": calls, "times": dict(totals), "fingerprint": fingerprint,
            "best": state.best.energy_per_atom if state.best is not None else None,
            "cycles": state.cycle, "final_rounds": state.final_round, "train_size": len(state.training)}


def _checkout(rev: str, into: Path) -> Path:
    """The ``gapkit`` package as it was at ``rev``, extracted into ``into``; return the folder to put on the path."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "gapkit"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def _run_child(case: str, budget: int, oracle: str, code: Path) -> dict:
    """:func:`measure` in a fresh process with ``code`` first on the path."""
    env = dict(os.environ, PYTHONPATH=f"{code}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run([sys.executable, __file__, "--child", case, "--budget", str(budget), "--oracle", oracle],
                         env=env, check=True, capture_output=True, text=True, cwd=str(code))
    return json.loads(out.stdout.strip().splitlines()[-1])


def _table(results: dict[str, list[dict]], labels: list[str]) -> str:
    """Markdown table: per case and code version, seconds per oracle call for every timer."""
    cases = sorted({r["case"] for rs in results.values() for r in rs}, key=lambda c: (len(c), c))
    header = "| seconds per oracle call | " + " | ".join(f"{c} {lab}" for c in cases for lab in labels) + " |"
    lines = [header, "|---|" + "---|" * (len(cases) * len(labels))]

    def per_call(case, label, row):
        runs = [r for r in results[label] if r["case"] == case]
        vals = [r["times"].get(row, 0.0) / r["calls"] for r in runs]
        return " / ".join(f"{v:.3f}" for v in vals) if vals else "-"
    for row in ROWS:
        lines.append(f"| {row} | " + " | ".join(per_call(c, lab, row) for c in cases for lab in labels) + " |")
    for key in ("calls", "fingerprint"):
        lines.append(f"| {key} | " + " | ".join(
            " / ".join(str(r[key]) for r in results[lab] if r["case"] == c) for c in cases for lab in labels) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--oracle", choices=("emt", "chgnet"), default="emt")
    parser.add_argument("--cases", default="Cu:2,Cu:8", help="formula:atoms, comma-separated")
    parser.add_argument("--budget", type=int, default=120)
    parser.add_argument("--before", default=None, help="git revision to compare against (run alternately)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", default=None, help="write every run's numbers here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        formula, n = args.child.split(":")
        print(json.dumps(measure(formula, int(n), args.budget, args.oracle)))
        return
    cases = args.cases.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        codes = {"after": ROOT}
        if args.before:
            codes = {"before": _checkout(args.before, Path(tmp)), "after": ROOT}
        results: dict[str, list[dict]] = {label: [] for label in codes}
        for _ in range(args.repeats):
            for case in cases:
                for label, code in codes.items():  # alternate: both see the same machine load
                    r = _run_child(case, args.budget, args.oracle, code)
                    results[label].append(r)
                    print(f"{label:6s} {r['case']:6s} calls {r['calls']:4d} cpu {r['times']['search (CPU)']:7.1f} s "
                          f"overhead {r['times']['overhead'] / r['calls']:.3f} s/call  fingerprint "
                          f"{r['fingerprint']}", flush=True)
                    if args.json:  # after every run: a long comparison cut short keeps what it measured
                        Path(args.json).write_text(json.dumps(results, indent=1))
    print()
    print(_table(results, list(codes)))


if __name__ == "__main__":
    main()
