"""Record a run's headline metrics with provenance, so the reproduction page shows where numbers came from."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS_ENV_VAR = "GAPKIT_RESULTS_DIR"
_PACKAGES = ("gapkit", "torch", "numpy", "pandas", "pymatgen", "scikit-learn")


def repo_root(start: Path | None = None) -> Path | None:
    """Return the gapkit book checkout containing ``start`` (the folder holding _toc.yml), if any."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file() and (folder / "gapkit").is_dir():
            return folder
    return None


def results_dir() -> Path:
    """Where results go: ``GAPKIT_RESULTS_DIR``, else ``<repo>/results``, else ``./results``."""
    env = os.environ.get(RESULTS_ENV_VAR, "").strip()
    if env:
        return Path(env)
    root = repo_root()
    return (root or Path.cwd()) / "results"


def git_commit(path: Path | None = None) -> str:
    """Return the current commit hash (with '+dirty' when tracked files changed), or 'unknown'."""
    cwd = str(path or repo_root() or Path.cwd())
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def short_commit(commit: str, length: int = 7) -> str:
    """A commit hash shortened for tables, keeping '+dirty' (code that differed from the commit) in sight."""
    sha, dirty, _ = commit.partition("+dirty")
    return sha[:length] + ("+dirty" if dirty else "")


def package_versions() -> dict[str, str]:
    """Return the installed versions of the packages that decide the numbers."""
    out = {"python": sys.version.split()[0]}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


class RunTimer:
    """Wall-clock timer started at construction; ``elapsed`` gives seconds so far."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def elapsed(self) -> float:
        """Seconds since the timer was created."""
        return time.perf_counter() - self.start


def record_results(
    chapter: str,
    profile: str,
    metrics: dict[str, Any],
    *,
    device: str,
    wall_time_s: float,
    seed: int | None = None,
    notes: str = "",
    directory: Path | None = None,
) -> Path:
    """Write ``results/<chapter>-<profile>.json`` with metrics and provenance; return its path."""
    if not chapter or "/" in chapter or not profile or "/" in profile:
        raise ValueError(f"chapter and profile must be plain names, got {chapter!r}, {profile!r}.")
    record = {
        "chapter": chapter,
        "profile": profile,
        "metrics": _jsonable(metrics),
        "provenance": {
            "commit": git_commit(),
            "device": device,
            "wall_time_s": round(float(wall_time_s), 1),
            "seed": seed,
            "finished_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "host": platform.node(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "packages": package_versions(),
        },
        "notes": notes,
    }
    folder = Path(directory) if directory is not None else results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{chapter}-{profile}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)  # atomic: a reader never sees half a file
    return path


def load_results(directory: Path | None = None) -> list[dict[str, Any]]:
    """Read every results JSON in the results folder, sorted by chapter then profile."""
    folder = Path(directory) if directory is not None else results_dir()
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    return sorted(records, key=lambda r: (r["chapter"], r["profile"]))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    raise TypeError(f"Metric value {value!r} of type {type(value).__name__} is not JSON-serialisable.")


def results_table(records: list[dict[str, Any]]) -> "pd.DataFrame":
    """Flatten result records into one row per (chapter, profile, metric) with provenance columns."""
    import pandas as pd

    rows = [{"chapter": rec["chapter"], "profile": rec["profile"], "metric": key, "value": value, **_provenance(rec)}
            for rec in records for key, value in _flatten(rec["metrics"]).items()]
    return pd.DataFrame(rows, columns=["chapter", "profile", "metric", "value", "device", "commit", "wall_time_s"])


def runs_table(records: list[dict[str, Any]]) -> "pd.DataFrame":
    """One row per recorded run: chapter, profile, metric count and provenance (device, commit, time)."""
    import pandas as pd

    rows = []
    for rec in records:
        prov = _provenance(rec)
        rows.append({"chapter": rec["chapter"], "profile": rec["profile"], "metrics": len(_flatten(rec["metrics"])),
                     "device": prov["device"], "commit": prov["commit"],
                     "wall_time_min": round(prov["wall_time_s"] / 60, 1),
                     "finished_utc": rec["provenance"].get("finished_utc", "")})
    return pd.DataFrame(rows, columns=["chapter", "profile", "metrics", "device", "commit", "wall_time_min",
                                       "finished_utc"])


def _provenance(record: dict[str, Any]) -> dict[str, Any]:
    """Device, short commit and wall time of a result record: the columns every results table shows."""
    prov = record["provenance"]
    return {"device": prov["device"], "commit": str(prov["commit"])[:12], "wall_time_s": prov["wall_time_s"]}


def _flatten(metrics: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, prefix=f"{name}."))
        else:
            out[name] = value
    return out


def published_numbers() -> "pd.DataFrame":
    """The papers' headline numbers transcribed in data/papers/published_numbers.csv."""
    import pandas as pd

    root = repo_root(Path(__file__).parent)
    if root is None:
        raise FileNotFoundError("data/papers/published_numbers.csv ships with the gapkit book checkout, "
                                "not with the installed package.")
    return pd.read_csv(root / "data" / "papers" / "published_numbers.csv")


_SPLIT_ORDER = ("train", "val", "test")
_TABLE_KEYS = ["paper", "table", "dataset", "model", "metric", "unit"]


def published_table(chapter: str, table: str | None = None, *, paper: str | None = None) -> "pd.DataFrame":
    """One chapter's published numbers as a wide table: one row per (paper, table, dataset, model,
    metric, unit) in CSV order, one column per split (train, val, test first, then the others in CSV
    order; NaN where the paper gives none). ``table`` and ``paper`` keep only that table / paper."""
    import pandas as pd

    pub = published_numbers()
    keep = pub["chapter"] == chapter
    if table is not None:
        keep &= pub["table"] == table
    if paper is not None:
        keep &= pub["paper"] == paper
    pub = pub[keep]
    if pub.empty:
        raise KeyError(f"No published numbers for chapter={chapter!r}, table={table!r}, paper={paper!r}.")
    if pub.duplicated(_TABLE_KEYS + ["split"]).any():
        raise ValueError("published_numbers.csv lists a (paper, table, dataset, model, metric, unit, split) twice.")
    seen = list(dict.fromkeys(pub["split"]))
    splits = [s for s in _SPLIT_ORDER if s in seen] + [s for s in seen if s not in _SPLIT_ORDER]
    rows = pub[_TABLE_KEYS].drop_duplicates()  # first appearance decides the row order
    wide = pub.pivot(index=_TABLE_KEYS, columns="split", values="value")
    wide = wide.reindex(pd.MultiIndex.from_frame(rows))[splits].reset_index()
    wide.columns.name = None
    return wide
