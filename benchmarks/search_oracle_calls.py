"""Oracle calls to reach the oracle's Si ground state: GA + learned potential vs random search vs ase-ga.

Run: ``python benchmarks/search_oracle_calls.py [--seeds 5] [--n-atoms 2] [--profile quick]``.
For each seed, the active-learning GA runs to completion; random search then gets the same number
of oracle calls, and so does ASE's GA (ase-ga). Prints calls-to-success per seed and the median (inf = not found within the
budget). CHGNet is the oracle. Not a test: it measures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

from gapkit.search.baselines import reference_structure
from gapkit.search.compare import calls_to_ground_state
from gapkit.search.oracle import chgnet_calculator


def main() -> None:
    """Run both searches over several seeds and print the oracle calls each needed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n-atoms", type=int, default=2)
    parser.add_argument("--profile", default="quick")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    name, ref = reference_structure("Si", chgnet_calculator)
    print(f"reference: {name}, {ref.energy_per_atom:.3f} eV/atom")
    t0 = time.perf_counter()
    calls = calls_to_ground_state("Si", args.n_atoms, ref.atoms, chgnet_calculator, args.profile,
                                  range(args.seeds))
    print(calls.to_string(index=False))
    print(f"({time.perf_counter() - t0:.0f} s)")
    for column, label in (("ga_potential", "GA+potential"), ("random", "random search"), ("ase_ga", "ase-ga")):
        found = calls[column].tolist()
        print(f"{label}: median calls to Si{args.n_atoms} ground state {statistics.median(found)}, "
              f"found within budget in {sum(c != float('inf') for c in found)}/{args.seeds} seeds")


if __name__ == "__main__":
    main()
