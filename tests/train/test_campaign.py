"""The data-scale campaign: its plan, its validation, the summary statistics and a tiny resumable run."""

import json

import pytest

from gapkit.train.campaign import CampaignConfig, Run, plan, summarise, train_run, verdict


def test_plan_puts_the_headline_first_and_covers_every_split():
    runs = plan(CampaignConfig())
    assert runs[0] == Run("mp", "CGCrabNet (learned)", 0)
    keys = [r.key for r in runs]
    assert len(keys) == len(set(keys)) == 15
    for model in ("CGCNN", "CrabNet (mat2vec)", "CGCrabNet (learned)"):
        assert {r.split_seed for r in runs if r.dataset == "mp" and r.model == model} == {0, 1, 2}


def test_runs_and_configs_refuse_what_cannot_work():
    with pytest.raises(ValueError, match="needs structures"):
        Run("oqmd", "CGCNN", 0)
    with pytest.raises(ValueError, match="Unknown model"):
        Run("mp", "ALIGNN", 0)
    with pytest.raises(ValueError, match="sum to 1"):
        CampaignConfig(split=(0.5, 0.2, 0.2))
    assert Run("mp", "CGCrabNet (7:3)", 1).key == "mp-cgcrabnet-7-3-split1"


def _result(model, seed, test, dataset="mp"):
    return {"run": {"dataset": dataset, "model": model, "split_seed": seed},
            "mae": {"train": 0.1, "val": 0.2, "test": test}, "epochs": 3, "wall_time_s": 1.0}


def test_summary_statistics_and_the_paired_verdict():
    results = [_result("CGCNN", s, t) for s, t in [(0, 0.5), (1, 0.6), (2, 0.4)]]
    results += [_result("CGCrabNet (learned)", s, t) for s, t in [(0, 0.45), (1, 0.55), (2, 0.41)]]
    m = summarise(results)
    assert m["mp_mae"]["CGCNN"]["test_mean"] == 0.5 and m["mp_mae"]["CGCNN"]["test_std"] == 0.1
    pair = m["paired_difference"]["CGCrabNet (learned) - CGCNN"]
    assert pair["per_split"] == [-0.05, -0.05, 0.01] and pair["verdict"] == "no significant difference"
    assert verdict([-0.1, -0.2, -0.01]) == "beats" and verdict([-0.1]).startswith("not enough")


TINY_CONFIG = CampaignConfig(max_epochs=2, patience=2, batch_size=4,
                             crab=dict(d_model=16, n_layers=1, n_heads=2, d_ff=32, head_dims=(16,)))
TINY_RUN = Run("mp", "CrabNet (mat2vec)", 0)


@pytest.fixture
def toy_splits(tmp_path, monkeypatch, shared_data_dir):
    """Train/val/test of 12 rock-salt crystals, with results written to a private folder, not the book's ledger."""
    from tests.test_estimators import tiny_frame

    monkeypatch.setenv("GAPKIT_RESULTS_DIR", str(tmp_path / "results"))
    df = tiny_frame()
    return {"train": df.iloc[:8], "val": df.iloc[8:10], "test": df.iloc[10:]}


def test_a_finished_run_is_read_back_not_retrained(tmp_path, toy_splits):
    config, run = TINY_CONFIG, TINY_RUN
    first = train_run(run, config, tmp_path, toy_splits)
    assert first["epochs"] == 2 and set(first["mae"]) == {"train", "val", "test"}
    assert (tmp_path / run.key / "model.pt").is_file()
    again = train_run(run, config, tmp_path, {})  # no data needed: the result is on disk
    assert again == json.loads((tmp_path / run.key / "result.json").read_text())


def test_record_and_ship_from_finished_runs(tmp_path, monkeypatch, toy_splits):
    import gapkit.pretrained as pretrained
    from gapkit.train import campaign

    config, run, splits = TINY_CONFIG, TINY_RUN, toy_splits
    train_run(run, config, tmp_path / "runs", splits)
    monkeypatch.setattr(campaign, "SHIPPED", {"toy-crabnet": run, "toy-cgcnn": Run("mp", "CGCNN", 0)})
    monkeypatch.setattr(campaign, "load_splits", lambda *a: splits)
    paths = campaign.ship(tmp_path / "runs", config, tmp_path / "pretrained")
    assert [p.name for p in paths] == ["toy-crabnet.pt"]  # the unfinished run is not shipped
    monkeypatch.setenv(pretrained.PRETRAINED_ENV_VAR, str(tmp_path / "pretrained"))
    card = pretrained.card("toy-crabnet")
    assert card["calibration"]["n_val"] == 2 and pretrained.load("toy-crabnet").calibration_ is not None
    assert abs(card["metrics"]["test_mae_ev_as_shipped"] - card["metrics"]["test_mae_ev"]) < 0.005
    rec = json.loads(campaign.record(tmp_path / "runs", config).read_text())
    assert rec["metrics"]["mp_mae"]["CrabNet (mat2vec)"]["per_split"] == [card["metrics"]["test_mae_ev"]]
    assert len(rec["metrics"]["runs_pending"]) == 14
    # the ledger keeps the run when its folder is gone (a fresh clone)
    import shutil
    shutil.rmtree(tmp_path / "runs")
    assert [r["key"] for r in campaign.finished(tmp_path / "runs")] == [run.key]
    assert train_run(run, config, tmp_path / "runs", {})["key"] == run.key
    # retrained (the ledger's entry came from a modified tree, say), the run's new result under root wins
    again = train_run(run, config, tmp_path / "rerun", splits, retrain=True)
    assert (tmp_path / "rerun" / run.key / "result.json").is_file()
    assert [r["wall_time_s"] for r in campaign.finished(tmp_path / "rerun")] == [again["wall_time_s"]]
    with pytest.raises(SystemExit):
        campaign.main(["--retrain"])  # every run again is a new campaign, not a retrain
