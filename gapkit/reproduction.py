"""Every number the papers publish beside gapkit's recorded one, with a verdict: the reproduction page's logic.

A published row (``data/papers/published_numbers.csv``, plus the per-model MAEs of the Janus paper's Table 4,
which that paper shows only in a figure) names in ``gapkit_metric`` the flattened key under which a chapter
records the comparable number (``results/<chapter>-<profile>.json``). :func:`comparison_table` looks the key up
in the committed records of that chapter, prefers the profile closest to the paper's settings, and says per row
whether the two numbers are comparable, why not, or that gapkit has no such number yet. New records (another
chapter, a full-profile run) are picked up as soon as they are in ``results/``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from gapkit.results import _flatten, load_results, published_numbers, repo_root

# Profiles in the order they are preferred for a comparison: the papers' settings first.
PROFILE_RANK = ("full", "medium")
# quick-profile records are written by every `make test` run and never committed (see .gitignore)
UNCOMMITTED_PROFILES = ("quick",)

COLUMNS = ["chapter", "paper", "table", "model", "split", "metric", "unit", "published", "paper_data",
           "gapkit", "gapkit_data", "profile", "record", "status"]

_TABLE4_METHODS = {"rf": "RF", "krr": "KRR", "svr": "SVR"}
_TABLE4_FEATURES = {"magpie": "Magpie", "atom2vec": "Atom2Vec", "atomdl": "Atom_DL"}


def table4_mae_rows() -> pd.DataFrame:
    """Per-model MAE of the Janus paper's Table 4 predictions (24 test monolayers), in the CSV's columns.

    The paper shows these MAEs only as bars (its Fig. 7); they are computed here from its printed predictions.
    """
    root = repo_root(Path(__file__).parent)
    if root is None:
        raise FileNotFoundError("data/papers/ ships with the gapkit book checkout, not with the installed package.")
    table = pd.read_csv(root / "data" / "papers" / "atomdl_janus_table4_predictions.csv")
    rows = []
    for column in table.columns.drop(["formula", "dft_gap_ev"]):
        method, feature = column.split("_")
        mae = (table[column] - table["dft_gap_ev"]).abs().mean()
        rows.append({
            "chapter": "janus", "paper": "Sun & Yuan 2023 (Atom_DL)", "table": "Table 4 (MAE computed)",
            "dataset": f"C2DB Janus MXY, {len(table)} test monolayers", "model": f"{_TABLE4_METHODS[method]} "
            f"({_TABLE4_FEATURES[feature]})", "split": "test", "metric": "MAE", "value": round(float(mae), 3),
            "unit": "eV",
            "gapkit_metric": f"cv_mae.{_TABLE4_METHODS[method]}.{_TABLE4_FEATURES[feature]}.mean",
            "note": "the paper tests on one split of 24; gapkit cross-validates over all 93 semiconductors"})
    return pd.DataFrame(rows)


def published_rows() -> pd.DataFrame:
    """Every published number the page compares: the transcribed CSV, then the Janus Table 4 MAEs."""
    return pd.concat([published_numbers(), table4_mae_rows()], ignore_index=True)


def committed_records(records: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The result records a clean clone has: every record but the quick profile's, which runs regenerate."""
    records = load_results() if records is None else records
    return [r for r in records if r["profile"] not in UNCOMMITTED_PROFILES]


def _profile_rank(profile: str) -> int:
    return PROFILE_RANK.index(profile) if profile in PROFILE_RANK else len(PROFILE_RANK)


def find_metric(records: list[dict[str, Any]], chapter: str, key: str) -> tuple[dict[str, Any], Any] | None:
    """The record of ``chapter`` holding ``key`` (or ``key_mean``) whose profile is closest to the papers' (full first), and the value."""
    hits = []
    for rec in records:
        flat = _flatten(rec["metrics"]) if rec["chapter"] == chapter else {}
        # repeated-split records keep the mean under '<split>_mean' (models-full: mp_mae.CGCNN.test_mean)
        found = next((k for k in (key, f"{key}_mean") if k in flat), None)
        if found is not None:
            hits.append((rec, flat[found]))
    if not hits:
        return None
    return min(hits, key=lambda hit: (_profile_rank(hit[0]["profile"]), hit[0]["profile"]))


def gapkit_data(record: dict[str, Any], key: str) -> str:
    """Which data a recorded number comes from, in words (from the key's prefix or the record's own words)."""
    metrics = record["metrics"]
    if key.startswith("mp_mae."):
        return f"MP crystals, gap > 0: {metrics['n_mp']:,}" if "n_mp" in metrics else "MP crystals, gap > 0"
    if key.startswith("oqmd_mae."):
        return f"OQMD formulas, gap > 0: {metrics['n_oqmd']:,}" if "n_oqmd" in metrics else "OQMD formulas, gap > 0"
    if isinstance(metrics.get("dataset"), str):
        return metrics["dataset"]
    return f"see the {record['chapter']} chapter"


def _source(text: str) -> str | None:
    """The database a dataset description names (OQMD, MP, C2DB, ...), if any."""
    match = re.search(r"\b(OQMD|MP|C2DB|Castelli)\b", text)
    return match.group(1) if match else None


def _size(text: str) -> int | None:
    """The first comma-grouped count a dataset description names ('OQMD, 30,368 nonzero gaps' -> 30368)."""
    match = re.search(r"\b(\d{1,3}(?:,\d{3})+)\b", text)
    return int(match.group(1).replace(",", "")) if match else None


def verdict(row: pd.Series, record: dict[str, Any] | None, ours_data: str = "") -> str:
    """'comparable', 'not comparable because ...' or 'not yet: ...' for one published row."""
    chapter, key = row["chapter"], row["gapkit_metric"]
    note = row["note"] if isinstance(row.get("note"), str) and row["note"] else ""
    if not isinstance(key, str) or not key:
        return f"not yet: {note}" if note else "not yet: no gapkit run measures this"
    if record is None:
        return f"not yet: no committed {chapter} record holds {key}"
    reasons = []
    if record["profile"] != "full":
        reasons.append(f"profile {record['profile']} is a reduced run, not the paper's settings")
    paper_src, ours_src = _source(str(row["dataset"])), _source(ours_data)
    if paper_src and ours_src and paper_src != ours_src:
        reasons.append(f"the paper used {paper_src}, gapkit {ours_src}")
    elif (_size(str(row["dataset"])) or 0) and (_size(ours_data) or 0) and _size(str(row["dataset"])) != _size(ours_data):
        reasons.append(f"{_size(str(row['dataset'])):,} samples in the paper, {_size(ours_data):,} here")
    if note:
        reasons.append(note)
    return "not comparable because " + "; ".join(reasons) if reasons else "comparable"


def comparison_table(records: list[dict[str, Any]] | None = None,
                     published: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per published number: the paper's value and data, gapkit's value, data, profile and record, a verdict."""
    records = committed_records(records)
    published = published_rows() if published is None else published
    rows = []
    for _, row in published.iterrows():
        key = row["gapkit_metric"] if isinstance(row["gapkit_metric"], str) else ""
        hit = find_metric(records, row["chapter"], key) if key else None
        record, value = hit if hit else (None, None)
        ours_data = gapkit_data(record, key) if record else ""
        rows.append({
            "chapter": row["chapter"], "paper": row["paper"], "table": row["table"], "model": row["model"],
            "split": row["split"], "metric": row["metric"], "unit": row["unit"] if isinstance(row["unit"], str) else "",
            "published": row["value"], "paper_data": row["dataset"],
            "gapkit": round(float(value), 3) if isinstance(value, (int, float)) else value,
            "gapkit_data": ours_data, "profile": record["profile"] if record else "",
            "record": f"results/{record['chapter']}-{record['profile']}.json" if record else "",
            "status": verdict(row, record, ours_data)})
    return pd.DataFrame(rows, columns=COLUMNS)


def status_counts(table: pd.DataFrame) -> pd.Series:
    """How many published numbers are comparable, not comparable, or not yet measured."""
    kind = table["status"].str.extract(r"^(comparable|not comparable|not yet)")[0]
    return kind.value_counts().reindex(["comparable", "not comparable", "not yet"], fill_value=0)


def chapter_view(table: pd.DataFrame, chapter: str) -> pd.DataFrame:
    """One chapter's rows of :func:`comparison_table`, narrow enough to read: one row per number, by model."""
    rows = table[table["chapter"] == chapter]
    if rows.empty:
        raise KeyError(f"No published numbers for chapter {chapter!r}; chapters: {sorted(set(table['chapter']))}.")
    unit = rows["unit"].where(rows["unit"] == "", " (" + rows["unit"] + ")")
    ours = rows["gapkit_data"].where(rows["profile"] == "", rows["gapkit_data"] + " [" + rows["profile"] + "]")
    view = pd.DataFrame({
        "model": rows["model"],
        "number": rows["paper"] + ", " + rows["table"] + ": " + rows["split"] + " " + rows["metric"] + unit,
        "paper": rows["published"], "paper's data": rows["paper_data"],
        "gapkit": rows["gapkit"].where(rows["gapkit"].notna(), ""), "gapkit's data [profile]": ours,
        "status": rows["status"]})
    return view.set_index("model")
