"""The reproduction page's matching: published numbers beside recorded ones, with a verdict per row."""

import pandas as pd
import pytest

from gapkit.reproduction import (
    chapter_view,
    comparison_table,
    committed_records,
    find_metric,
    published_rows,
    status_counts,
    table4_mae_rows,
)
from gapkit.results import published_numbers, repo_root


def _record(chapter, profile, metrics):
    return {"chapter": chapter, "profile": profile, "metrics": metrics,
            "provenance": {"device": "cpu", "commit": "abc", "wall_time_s": 1.0}}


def test_table4_maes_come_from_the_printed_predictions():
    rows = table4_mae_rows().set_index("model")
    assert len(rows) == 9  # 3 methods x 3 features
    assert rows.loc["KRR (Atom_DL)", "value"] == pytest.approx(0.128)
    assert rows.loc["SVR (Magpie)", "gapkit_metric"] == "cv_mae.SVR.Magpie.mean"


def test_table5_predictions_reproduce_the_papers_text_maes():
    # a check of the transcription: the text's test MAEs are the MAEs of Table 5's 35 predictions
    table = pd.read_csv(repo_root() / "data" / "papers" / "cgcrabnet_table5_perovskite_predictions.csv")
    text = published_numbers().query("chapter == 'transfer'").set_index("model")["value"]
    for column, model in [("cgcrabnet_ev", "CGCrabNet (transfer)"), ("rf_ev", "RF"), ("svr_ev", "SVR"),
                          ("gbr_ev", "GBR")]:
        assert (table[column] - table["dft_gap_ev"]).abs().mean() == pytest.approx(text[model], abs=5e-4)


def test_every_published_number_gets_one_row_and_a_verdict():
    table = comparison_table(records=[])
    assert len(table) == len(published_rows())
    assert table["status"].str.match(r"^(comparable|not comparable because .+|not yet: .+)$").all()
    assert status_counts(table)["not yet"] == len(table)  # no records: nothing measured yet


def test_full_profile_on_the_papers_data_is_comparable_and_preferred():
    records = [_record("janus", "medium", {"cv_mae": {"KRR": {"Atom_DL": {"mean": 0.31}}}}),
               _record("janus", "full", {"cv_mae": {"KRR": {"Atom_DL": {"mean": 0.2049}}}})]
    table = comparison_table(records=records)
    row = table[(table["chapter"] == "janus") & (table["model"] == "KRR (Atom_DL)")].iloc[0]
    assert row["gapkit"] == pytest.approx(0.205) and row["profile"] == "full"
    assert row["record"] == "results/janus-full.json"
    # the paper's Table 4 is one split of 24, ours a CV over 93: said, not hidden
    assert row["status"].startswith("not comparable because the paper tests on one split")


def test_reduced_profile_and_other_database_are_named_and_quick_records_ignored():
    metrics = {"mp_mae": {"CGCNN": {"test": 0.7}}, "oqmd_mae": {"CrabNet (mat2vec)": {"test": 0.45}},
               "n_mp": 3000, "n_oqmd": 30368}
    table = comparison_table(records=[_record("models", "medium", metrics)])
    cgcnn = table[(table["table"] == "Table 3") & (table["model"] == "CGCNN") & (table["split"] == "test")].iloc[0]
    assert "profile medium is a reduced run" in cgcnn["status"] and "the paper used OQMD, gapkit MP" in cgcnn["status"]
    assert cgcnn["gapkit_data"] == "MP crystals, gap > 0: 3,000"
    crabnet = table[(table["table"] == "Table 3") & (table["model"] == "CrabNet") & (table["split"] == "test")].iloc[0]
    assert crabnet["status"] == "not comparable because profile medium is a reduced run, not the paper's settings"

    quick = comparison_table(records=[_record("models", "quick", metrics)])
    assert (quick["gapkit"].isna() | (quick["gapkit"] == "")).all()  # quick records are never committed
    assert committed_records([_record("models", "quick", metrics)]) == []


def test_full_run_on_the_same_data_is_comparable():
    pub = pd.DataFrame([{"chapter": "x", "paper": "P", "table": "T", "dataset": "OQMD, 30,368 gaps", "model": "M",
                         "split": "test", "metric": "MAE", "value": 0.4, "unit": "eV", "gapkit_metric": "mae.M",
                         "note": ""}])
    rec = _record("x", "full", {"mae": {"M": 0.39}, "dataset": "OQMD, 30,368 gaps"})
    assert comparison_table(records=[rec], published=pub)["status"].tolist() == ["comparable"]
    smaller = _record("x", "full", {"mae": {"M": 0.39}, "dataset": "OQMD, 22,706 gaps"})
    assert comparison_table(records=[smaller], published=pub)["status"].tolist() == [
        "not comparable because 30,368 samples in the paper, 22,706 here"]
    assert find_metric([rec], "x", "mae.missing") is None


def test_chapter_view_is_one_narrow_table_per_chapter():
    metrics = {"mp_mae": {"CGCNN": {"test": 0.7}}, "n_mp": 3000}
    table = comparison_table(records=[_record("models", "medium", metrics)])
    view = chapter_view(table, "models")
    assert len(view) == (table["chapter"] == "models").sum()
    assert list(view.columns) == ["number", "paper", "paper's data", "gapkit", "gapkit's data [profile]", "status"]
    row = view.loc["CGCNN"].iloc[0]
    assert row["number"] == "Sun & Yuan 2023 (CGCrabNet), Table 3: test MAE (eV)"
    assert row["gapkit's data [profile]"] == "MP crystals, gap > 0: 3,000 [medium]"
    with pytest.raises(KeyError):
        chapter_view(table, "nope")


def test_repeated_split_means_are_found_and_full_beats_medium():
    medium = _record("models", "medium", {"mp_mae": {"CGCNN": {"test": 0.75}}, "n_mp": 3000})
    full = _record("models", "full", {"mp_mae": {"CGCNN": {"test_mean": 0.5, "test_std": 0.01}}, "n_mp": 20966})
    record, value = find_metric([medium, full], "models", "mp_mae.CGCNN.test")
    assert record["profile"] == "full" and value == 0.5


def test_committed_reproduction_page_is_current():
    # the page must be re-executed (`make reproduction`) whenever a record or a published number changes;
    # nbval checks this too, but only in the notebook stage of `make test`
    import nbformat

    nb = nbformat.read(repo_root() / "book" / "reproduction.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and c.source.strip() == "table")
    committed = next(o for o in cell.outputs if o.output_type == "execute_result").data["text/html"]
    with pd.option_context("display.max_rows", 500, "display.max_colwidth", None):
        current = comparison_table()._repr_html_()
    assert committed == current, "book/reproduction.ipynb is out of date: run `make reproduction` and commit it"
