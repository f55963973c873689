"""Relax the 216 C2DB Janus MXY monolayers with CHGNet and write data/janus/relaxed_geometries.csv.

Usage: python scripts/relax_janus.py [--limit N] [--out PATH]
One thread (the machines are shared); a few seconds per monolayer on a 2-core CPU (twice that with --free-cell).
Writes the CSV and a provenance JSON beside it (commit, versions, wall time).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from gapkit.data import load_c2db_janus
from gapkit.data.janus import GEOMETRIES, relax_all
from gapkit.results import git_commit


def main() -> None:
    """Relax every Janus row (or the first --limit) and write the geometries with their provenance."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", type=Path, default=GEOMETRIES)
    parser.add_argument("--free-cell", action="store_true", help="also relax a (twice the cost)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    table = load_c2db_janus()
    if args.limit:
        table = table.head(args.limit)
    t0 = time.perf_counter()
    geo = relax_all(table, free_cell=args.free_cell)
    wall = time.perf_counter() - t0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    geo.to_csv(args.out, index=False)
    from importlib import metadata

    meta = {"rows": len(geo), "wall_time_s": round(wall, 1), "commit": git_commit(), "threads": 1,
            "relaxation": "CHGNet (chgnet package weights), ASE FIRE fmax 0.02 eV/A, <= 300 steps, FixSymmetry (P3m1); "
                          "h_x_A/h_y_A at C2DB's a" + ("; *_free at CHGNet's a (in-plane cell relaxed)" if args.free_cell else ""),
            "packages": {k: metadata.version(k) for k in ("chgnet", "ase", "torch", "pymatgen")}}
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
