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
    assert (pub["value"] > 0).all() and pub["chapter"].notna().all()
    assert pub["gapkit_metric"].dropna().str.count(r"\.").ge(1).all()  # nested keys like mp_mae.CGCNN.test
