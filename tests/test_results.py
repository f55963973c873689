"""The results helper writes metrics with provenance and reads them back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gapkit.results import RunTimer, load_results, package_versions, record_results


def test_record_and_load(tmp_path):
    timer = RunTimer()
    path = record_results("models", "quick", {"test_mae_ev": np.float32(0.4123), "n": 10},
                          device="cpu (2 threads)", wall_time_s=timer.elapsed, seed=0, directory=tmp_path)
    assert path.name == "models-quick.json"
    record = json.loads(path.read_text())
    assert record["metrics"]["test_mae_ev"] == pytest.approx(0.4123, abs=1e-6)
    prov = record["provenance"]
    assert prov["device"] == "cpu (2 threads)" and prov["seed"] == 0
    assert set(prov) >= {"commit", "wall_time_s", "packages", "finished_utc"}
    assert prov["packages"]["torch"] != "not installed"
    assert [r["chapter"] for r in load_results(tmp_path)] == ["models"]
    assert not list(tmp_path.glob("*.tmp"))


def test_rejects_bad_names_and_values(tmp_path):
    with pytest.raises(ValueError):
        record_results("a/b", "quick", {}, device="cpu", wall_time_s=0, directory=tmp_path)
    with pytest.raises(TypeError, match="not JSON"):
        record_results("x", "quick", {"bad": object()}, device="cpu", wall_time_s=0, directory=tmp_path)


def test_package_versions():
    versions = package_versions()
    assert versions["python"].count(".") == 2 and "pymatgen" in versions


def test_results_table_flattens_nested_metrics(tmp_path):
    from gapkit.results import results_table

    record_results("models", "full", {"test_mae_ev": {"cgcnn": 0.5, "crabnet": 0.4}}, device="cuda",
                   wall_time_s=12.0, directory=tmp_path)
    table = results_table(load_results(tmp_path))
    assert set(table["metric"]) == {"test_mae_ev.cgcnn", "test_mae_ev.crabnet"}
    assert (table["device"] == "cuda").all()


def test_published_numbers_table():
    from gapkit.results import published_numbers

    pub = published_numbers()
    assert pub["value"].notna().all() and pub["chapter"].notna().all()
    energies = pub["metric"].str.startswith("E ")  # total energies (search paper) are negative
    assert (pub.loc[~energies, "value"] > 0).all() and (pub.loc[energies, "value"] < 0).all()
    assert not pub.duplicated(["chapter", "paper", "table", "dataset", "model", "split", "metric"]).any()
    keys = pub["gapkit_metric"].dropna()  # flattened record keys: mp_mae.CGCNN.test, roc_auc
    assert (keys == keys.str.strip()).all() and not keys.str.contains(r"\.\.|^\.|\.$").any()


def test_published_table_pivots_splits_to_columns():
    from gapkit.results import published_numbers, published_table

    table3 = published_table("models", "Table 3")
    assert list(table3.columns) == ["paper", "table", "dataset", "model", "metric", "unit", "train", "val", "test"]
    assert list(table3["model"]) == ["CGCNN", "Roost", "CrabNet", "HotCrab", "CGCrabNet"]  # CSV order
    cgcnn = table3.set_index("model").loc["CGCNN"]
    assert (cgcnn["train"], cgcnn["val"], cgcnn["test"]) == pytest.approx((0.502, 0.605, 0.601))

    models = published_table("models")  # both papers: a split a paper does not give is NaN
    assert models["test"].notna().all() and models["train"].isna().sum() == 1
    cgcrabnet = published_table("models", paper="Sun & Yuan 2023 (CGCrabNet)")
    assert len(cgcrabnet) == len(models) - 1 and cgcrabnet[["train", "val", "test"]].notna().all().all()

    search = published_table("search", "Table 2").set_index(["dataset", "metric"])
    assert list(search.columns[-2:]) == ["found", "experiment"]
    assert search.loc[("TiO2 12 atoms", "lattice c"), ["found", "experiment"]].tolist() == [9.059, 9.728]
    pub = published_numbers()
    assert search[["found", "experiment"]].count().sum() == (pub["chapter"] == "search").sum()

    with pytest.raises(KeyError):
        published_table("models", "Table 99")


def test_runs_table_has_one_row_per_record(tmp_path):
    from gapkit.results import load_results, record_results, runs_table

    record_results("models", "quick", {"a": 1.0, "b": {"c": 2.0}}, device="cpu", wall_time_s=90.0, directory=tmp_path)
    record_results("search", "medium", {"x": 3}, device="cpu", wall_time_s=30.0, directory=tmp_path)
    table = runs_table(load_results(tmp_path))
    assert list(table["chapter"]) == ["models", "search"]
    assert list(table["metrics"]) == [2, 1]
    assert list(table["wall_time_min"]) == [1.5, 0.5]


def test_short_commit_keeps_dirty_in_sight():
    from gapkit.results import short_commit

    assert short_commit("0123456789abcdef") == "0123456"
    assert short_commit("0123456789abcdef+dirty", 10) == "0123456789+dirty"


def test_each_committed_record_is_named_by_its_chapter_and_profile():
    from pathlib import Path

    results = Path(__file__).resolve().parents[1] / "results"
    for path in results.glob("*.json"):
        record = json.loads(path.read_text())
        # the book selects records by their content; a renamed file must not leave the stored name behind
        assert path.stem == f"{record['chapter']}-{record['profile']}", path.name
