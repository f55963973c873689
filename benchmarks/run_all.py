"""Run every benchmark script in this folder in turn; each prints its measured figures and ratios.

Benchmarks measure speed and memory on the machine they run on; they are never unit tests.
Usage: python benchmarks/run_all.py [name-substring ...]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """Run the selected benchmark scripts; return non-zero if any failed."""
    here = Path(__file__).resolve().parent
    scripts = sorted(p for p in here.glob("*.py") if p.name != Path(__file__).name)
    if argv:
        scripts = [p for p in scripts if any(a in p.name for a in argv)]
    failed = 0
    for script in scripts:
        print(f"\n=== {script.name}", flush=True)
        failed += subprocess.run([sys.executable, str(script)], check=False).returncode != 0
    return int(failed > 0)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
