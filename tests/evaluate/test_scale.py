"""Tables of the data-scale models read from a record."""

from gapkit.evaluate.scale import full_table, paired_table, size_curve
from gapkit.train.campaign import summarise


def _result(model, seed, test):
    return {"run": {"dataset": "mp", "model": model, "split_seed": seed},
            "mae": {"train": 0.1, "val": 0.2, "test": test}, "epochs": 5, "wall_time_s": 1.0}


def test_tables_from_a_record():
    metrics = summarise([_result("CGCNN", 0, 0.5), _result("CGCNN", 1, 0.7),
                         _result("CGCrabNet (learned)", 0, 0.4), _result("CGCrabNet (learned)", 1, 0.6)])
    table = full_table({"metrics": metrics})
    row = table.set_index("model").loc["CGCNN"]
    assert row["test_mean"] == 0.6 and row["splits"] == 2 and row["per_split"] == "0.500, 0.700"
    paired = paired_table({"metrics": metrics})
    assert paired.loc[0, "per_split"] == "-0.100, -0.100" and paired.loc[0, "verdict"].startswith("not enough")


def test_size_curve_is_sorted_by_size_per_model():
    curve = size_curve([("full", 12000, {"CGCNN": 0.4}), ("quick", 900, {"CGCNN": 1.0})])
    assert curve["n_train"].tolist() == [900, 12000] and curve["profile"].tolist() == ["quick", "full"]
