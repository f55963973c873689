"""The ``gapkit predict`` command on a tiny saved model: CSV of formulas, CIF files, and the errors."""

import pandas as pd
import pytest
import torch

from gapkit.cli import main
from gapkit.estimators import CGCNN, CrabNet
from tests.test_estimators import params, tiny_frame




@pytest.fixture(scope="module")
def frame():
    return tiny_frame()


def test_predict_formulas_from_csv(tmp_path, frame, shared_data_dir):
    model = CrabNet(**params(CrabNet, tmp_path, max_epochs=1)).fit(frame.iloc[:9], frame.iloc[9:])
    model.save(tmp_path / "crab.pt")
    frame[["formula"]].to_csv(tmp_path / "in.csv", index=False)
    assert main(["predict", "--model", str(tmp_path / "crab.pt"), str(tmp_path / "in.csv"),
                 "-o", str(tmp_path / "out.csv")]) == 0
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == ["formula", "source", "gap_ev", "uncertainty_ev"] and len(out) == len(frame)
    pd.testing.assert_series_equal(out["gap_ev"], model.predict(frame)["gap_ev"], check_exact=False, rtol=1e-6)


def test_predict_from_cif_files_and_formula_error(tmp_path, frame, capsys, shared_data_dir):
    model = CGCNN(**params(CGCNN, tmp_path, max_epochs=1)).fit(frame.iloc[:9], frame.iloc[9:])
    model.save(tmp_path / "cgcnn.pt")
    cifs = []
    for i, s in enumerate(frame["structure"][:3]):
        s.to(filename=str(tmp_path / f"x{i}.cif"))
        cifs.append(str(tmp_path / f"x{i}.cif"))
    assert main(["predict", "--model", str(tmp_path / "cgcnn.pt"), *cifs, "-o", str(tmp_path / "o.csv")]) == 0
    out = pd.read_csv(tmp_path / "o.csv")
    assert out["formula"].tolist() == frame["formula"][:3].tolist()
    expected = model.predict(list(frame["structure"][:3]))["gap_ev"]
    assert (out["gap_ev"] - expected).abs().max() < 1e-4  # CIF text rounds coordinates slightly
    frame[["formula"]].to_csv(tmp_path / "f.csv", index=False)
    assert main(["predict", "--model", str(tmp_path / "cgcnn.pt"), str(tmp_path / "f.csv")]) == 2
    assert "only formulas were given" in capsys.readouterr().err


def test_bad_inputs_give_an_error_code(tmp_path, capsys):
    assert main(["predict", "--model", str(tmp_path / "none.pt"), "x.csv"]) == 2
    assert "No saved model" in capsys.readouterr().err
    (tmp_path / "in.txt").write_text("NaCl\n")
    torch.save({"format": 0}, tmp_path / "m.pt")
    assert main(["predict", "--model", str(tmp_path / "m.pt"), str(tmp_path / "in.txt")]) == 2
