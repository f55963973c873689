"""The bad-input table (issue 29): every way a new user's first hour went wrong, and what gapkit does now.

One row per case: ``(id, action, exception, phrase)``. ``action(kit)`` runs the case; with an exception
the test asserts its type and a phrase of its message, with ``None`` the action asserts the correct result
itself. Models are tiny and trained for one epoch on twelve rock-salt crystals, so the table runs in about
a minute.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.core import Lattice, Structure

from gapkit.cli import InputFileError, main
from gapkit.data.structures import CIFParseError
from gapkit.estimators import (
    CGCNN,
    BadTargetError,
    BadTargetsWarning,
    BandGapEstimator,
    CGCrabNet,
    CrabNet,
    ElementOutsideTableError,
    EmptyInputError,
    ModelFileError,
    StructureRequiredError,
)
from gapkit.featurize.composition import FormulaError
from gapkit.featurize.graphs import (
    DisorderedStructureError,
    EmptyStructureError,
    GraphCacheNotice,
    IsolatedAtomError,
)
from gapkit.train.trainer import NonFiniteMetricError
from tests.test_estimators import params, tiny_frame

MINERAL = "Na1Al6Fe3Si6B3H3O30F1"  # a real MP mineral with 8 elements (the old limit was 7)


@dataclass
class Kit:
    """What the rows share: the tiny data, two fitted models and their files, a scratch folder."""

    tmp: Path
    frame: pd.DataFrame
    crab: CrabNet
    cgcnn: CGCNN
    crab_file: Path
    cgcnn_file: Path

    def p(self, cls, **kw) -> dict:
        """Tiny-model parameters with a private run folder and graph cache."""
        return params(cls, self.tmp, **{"max_epochs": 1, "run_dir": None, **kw})

    def cli(self, *args: str) -> int:
        """Run ``gapkit`` with these arguments."""
        return main([str(a) for a in args])


@pytest.fixture(scope="module")
def kit(tmp_path_factory, shared_data_dir) -> Kit:
    tmp = tmp_path_factory.mktemp("bad_inputs")
    frame = tiny_frame()
    crab = CrabNet(**params(CrabNet, tmp, max_epochs=1, run_dir=tmp / "crab")).fit(frame.iloc[:9], frame.iloc[9:])
    cgcnn = CGCNN(**params(CGCNN, tmp, max_epochs=1, run_dir=tmp / "cg")).fit(frame.iloc[:9], frame.iloc[9:])
    return Kit(tmp, frame, crab, cgcnn, crab.save(tmp / "crab.pt"), cgcnn.save(tmp / "cgcnn.pt"))


def _with_gaps(kit: Kit, rows: dict[int, float]) -> pd.DataFrame:
    df = kit.frame.copy()
    for i, value in rows.items():
        df.loc[i, "gap_ev"] = value
    return df


def _disordered() -> Structure:
    fcc = Lattice([[0, 2.9, 2.9], [2.9, 0, 2.9], [2.9, 2.9, 0]])
    return Structure(fcc, [{"Na": 0.5, "K": 0.5}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


# ---------------------------------------------------------------------------------------- the rows
def nan_targets(kit):
    CrabNet(**kit.p(CrabNet)).fit(_with_gaps(kit, {0: np.nan}).iloc[:9], kit.frame.iloc[9:])


def nan_targets_dropped_when_asked(kit):
    with pytest.warns(BadTargetsWarning, match="Dropped 1 of 9 training rows"):
        model = CrabNet(**kit.p(CrabNet, bad_targets="drop")).fit(_with_gaps(kit, {0: np.nan}).iloc[:9],
                                                                  kit.frame.iloc[9:])
    assert np.isfinite(model.predict(kit.frame)["gap_ev"]).all()


def nan_validation_targets(kit):
    CrabNet(**kit.p(CrabNet)).fit(kit.frame.iloc[:9], _with_gaps(kit, {10: np.nan}).iloc[9:])


def negative_target(kit):
    CrabNet(**kit.p(CrabNet)).fit(_with_gaps(kit, {1: -5.0}).iloc[:9], kit.frame.iloc[9:])


def huge_target(kit):
    CrabNet(**kit.p(CrabNet)).fit(_with_gaps(kit, {2: 1e6}).iloc[:9], kit.frame.iloc[9:])


def negative_predictions_are_clipped(kit):
    model = copy.deepcopy(kit.cgcnn)
    model.task_.target_mean.fill_(-100.0)  # every raw output far below zero
    pred = model.predict(list(kit.frame["structure"]))
    assert (pred["gap_ev"] == 0.0).all() and (pred["uncertainty_ev"] > 0).all()


def cli_reads_poscar_contcar_vasp_json_extxyz(kit):
    from ase.io import write
    from pymatgen.io.ase import AseAtomsAdaptor

    folder = kit.tmp / "formats"
    folder.mkdir(exist_ok=True)
    s = kit.frame["structure"][0]
    s.to(filename=str(folder / "POSCAR"), fmt="poscar")
    s.to(filename=str(folder / "CONTCAR"), fmt="poscar")
    s.to(filename=str(folder / "nacl.vasp"), fmt="poscar")
    s.to(filename=str(folder / "nacl.json"))
    write(folder / "nacl.extxyz", AseAtomsAdaptor.get_atoms(s), format="extxyz")
    out = kit.tmp / "formats.csv"
    assert kit.cli("predict", "--model", kit.cgcnn_file, folder, "-o", out) == 0  # a folder
    got = pd.read_csv(out)
    assert len(got) == 5 and set(got["formula"]) == {"NaCl"}
    expected = kit.cgcnn.predict(s)["gap_ev"].iloc[0]
    assert np.allclose(got["gap_ev"], expected, atol=1e-4)
    assert kit.cli("predict", "--model", kit.cgcnn_file, str(folder / "*.vasp"), "-o", out) == 0  # a glob
    assert len(pd.read_csv(out)) == 1


def one_bad_formula_is_skipped_when_asked(kit):
    formulas = ["NaCl", "Xx2O", "MgO", "OgO2", "KBr"]
    pd.DataFrame({"formula": formulas}).to_csv(kit.tmp / "mixed.csv", index=False)
    out = kit.tmp / "mixed_out.csv"
    assert kit.cli("predict", "--model", kit.crab_file, kit.tmp / "mixed.csv", "--on-error", "skip", "-o", out) == 1
    got = pd.read_csv(out, keep_default_na=False)
    assert list(got.columns) == ["formula", "source", "gap_ev", "uncertainty_ev", "error"]
    bad = got["error"] != ""
    assert bad.tolist() == [False, True, False, True, False]
    assert "Xx" in got["error"][1] and "Og (Z=118)" in got["error"][3]
    good = kit.crab.predict(["NaCl", "MgO", "KBr"])["gap_ev"].to_numpy()
    np.testing.assert_allclose(got.loc[~bad, "gap_ev"].astype(float), good, rtol=1e-5)


def one_bad_formula_stops_by_default(kit):
    kit.crab.predict(["NaCl", "Xx2O", "MgO"])


def element_outside_the_table(kit):
    kit.crab.predict(["OgO2"])


def element_outside_the_structure_table(kit):
    s = Structure(Lattice.cubic(4.0), ["Og", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    kit.cgcnn.predict([s])


def predict_empty_list(kit):
    kit.crab.predict([])


def predict_empty_dataframe(kit):
    kit.cgcnn.predict(kit.frame.iloc[:0])


def corrupt_model_file(kit):
    (kit.tmp / "corrupt.pt").write_bytes(b"this is not a model" * 50)
    BandGapEstimator.load(kit.tmp / "corrupt.pt")


def truncated_model_file(kit):
    data = kit.crab_file.read_bytes()
    (kit.tmp / "truncated.pt").write_bytes(data[: len(data) // 2])
    BandGapEstimator.load(kit.tmp / "truncated.pt")


def foreign_model_file(kit):
    torch.save({"state_dict": {}}, kit.tmp / "foreign.pt")
    BandGapEstimator.load(kit.tmp / "foreign.pt")


def model_file_of_another_format(kit):
    blob = torch.load(kit.crab_file, weights_only=False)
    torch.save({**blob, "format": 99}, kit.tmp / "future.pt")
    BandGapEstimator.load(kit.tmp / "future.pt")


def disordered_structure_by_default(kit):
    kit.cgcnn.predict([_disordered()])


def disordered_structure_majority(kit):
    gap = kit.cgcnn.predict([_disordered()], disorder="majority")["gap_ev"]
    assert np.isfinite(gap).all()
    est = CGCNN(**kit.p(CGCNN, disorder="majority"))
    assert est.params["disorder"] == "majority"
    _disordered().to(filename=str(kit.tmp / "disordered.cif"))
    out = kit.tmp / "disordered_out.csv"
    assert kit.cli("predict", "--model", kit.cgcnn_file, kit.tmp / "disordered.cif", "-o", out) == 2
    assert kit.cli("predict", "--model", kit.cgcnn_file, kit.tmp / "disordered.cif", "--disorder", "majority",
                   "-o", out) == 0
    assert np.isfinite(pd.read_csv(out)["gap_ev"]).all()


def empty_formula_in_csv(kit):
    (kit.tmp / "empty.csv").write_text("formula\nNaCl\n\"\"\nMgO\n")
    out = kit.tmp / "empty_out.csv"
    assert kit.cli("predict", "--model", kit.crab_file, kit.tmp / "empty.csv", "--on-error", "skip", "-o", out) == 1
    assert "Empty formula" in pd.read_csv(out, keep_default_na=False)["error"][1]
    kit.crab.predict(pd.read_csv(kit.tmp / "empty.csv"))


def progress_by_default(kit):
    import contextlib
    import io

    assert CGCrabNet().params["progress"] is True and CrabNet(progress=False).params["progress"] is False
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(err):  # Lightning's bar writes to stdout
        CrabNet(**kit.p(CrabNet, progress=True)).fit(kit.frame.iloc[:9], kit.frame.iloc[9:])
    assert "Epoch 0" in err.getvalue() and "val_mae=" in err.getvalue() and "v_num" not in err.getvalue()


def checkpoints_removed_unless_run_dir(kit, monkeypatch=None):
    scratch = kit.tmp / "scratch"
    scratch.mkdir(exist_ok=True)
    import tempfile

    old, tempfile.tempdir = tempfile.tempdir, str(scratch)
    try:
        model = CrabNet(**kit.p(CrabNet)).fit(kit.frame.iloc[:9], kit.frame.iloc[9:])
    finally:
        tempfile.tempdir = old
    assert list(scratch.iterdir()) == [] and model.run_dir_ is None
    assert model.history()["epoch"].tolist() == [0]
    kept = CrabNet(**kit.p(CrabNet, run_dir=kit.tmp / "kept")).fit(kit.frame.iloc[:9], kit.frame.iloc[9:])
    assert (kit.tmp / "kept" / "checkpoints" / "best.ckpt").is_file() and kept.run_dir_ == kit.tmp / "kept"


def graph_cache_is_announced_and_can_be_switched_off(kit):
    import gapkit.featurize.graphs as graphs

    cache = Path(graphs.default_cache_dir())
    graphs._announced.discard(cache)
    model = copy.deepcopy(kit.cgcnn)
    model.params["graph_cache"] = True
    with pytest.warns(GraphCacheNotice, match="graph_cache=False"):
        model.predict(list(kit.frame["structure"][:2]))
    assert any(cache.rglob("*.pkl"))
    model.params["graph_cache"] = False
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphCacheNotice)
        model.predict(list(kit.frame["structure"][:2]))


def eight_element_formula(kit):
    df = pd.concat([kit.frame, pd.DataFrame([{"formula": MINERAL, "gap_ev": 5.5}])], ignore_index=True)
    df = df.drop(columns="structure")  # formulas only, as a composition user has them
    model = CrabNet(**kit.p(CrabNet)).fit(df.iloc[:10], df.iloc[10:])
    assert np.isfinite(model.predict([MINERAL, "NaCl"])["gap_ev"]).all()
    # a file saved while max_elements was fixed at 7 still predicts any width
    blob = torch.load(kit.crab_file, weights_only=False)
    blob["params"]["max_elements"] = 7
    torch.save(blob, kit.tmp / "old_crab.pt")
    assert np.isfinite(BandGapEstimator.load(kit.tmp / "old_crab.pt").predict([MINERAL])["gap_ev"]).all()


# ------------------------------------------------------------------------------------ already handled before
def unknown_element_symbol(kit):
    kit.crab.predict(["Xx2O"])


def structure_model_given_formulas(kit):
    kit.cgcnn.predict(["NaCl"])


def structure_model_row_without_structure(kit):
    df = kit.frame[["formula", "structure"]].copy()
    df.loc[1, "structure"] = None
    kit.cgcnn.predict(df)


def missing_target_column(kit):
    CrabNet(**kit.p(CrabNet)).fit(kit.frame.drop(columns="gap_ev"))


def missing_model_file(kit):
    BandGapEstimator.load(kit.tmp / "absent.pt")


def unknown_parameter(kit):
    CrabNet(d_modle=4)


def bad_option_value(kit):
    CrabNet(bad_targets="ignore")


def not_fitted(kit):
    CrabNet().predict(["NaCl"])


def mixed_list(kit):
    kit.crab.predict(["NaCl", kit.frame["structure"][0]])


def empty_structure(kit):
    kit.cgcnn.predict([Structure(Lattice.cubic(4.0), [], [])])


def isolated_atom(kit):
    kit.cgcnn.predict([Structure(Lattice.cubic(30.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])])


def unparsable_cif(kit):
    (kit.tmp / "bad.cif").write_text("data_x\n_cell_length_a oops\n")
    from gapkit.cli import read_inputs

    read_inputs([str(kit.tmp / "bad.cif")])


def unreadable_structure_file(kit):
    from gapkit.cli import read_inputs

    (kit.tmp / "notes.txt").write_text("NaCl is salt\n")
    read_inputs([str(kit.tmp / "notes.txt")])


def csv_without_formula_column(kit):
    from gapkit.cli import read_inputs

    pd.DataFrame({"name": ["salt"]}).to_csv(kit.tmp / "noformula.csv", index=False)
    read_inputs([str(kit.tmp / "noformula.csv")])


def empty_csv_file(kit):
    from gapkit.cli import read_inputs

    (kit.tmp / "blank.csv").write_text("")
    read_inputs([str(kit.tmp / "blank.csv")])


def csv_with_a_header_only(kit):
    from gapkit.cli import read_inputs

    (kit.tmp / "header.csv").write_text("formula\n")
    read_inputs([str(kit.tmp / "header.csv")])


def training_diverges(kit):
    CrabNet(**kit.p(CrabNet, lr_max=1e30, lr_min=1e30, max_epochs=3)).fit(kit.frame.iloc[:9], kit.frame.iloc[9:])


ROWS = [
    ("nan-targets", nan_targets, BadTargetError, "1 missing or not a number"),
    ("nan-targets-dropped-when-asked", nan_targets_dropped_when_asked, None, None),
    ("nan-validation-targets", nan_validation_targets, BadTargetError, "validation rows"),
    ("negative-target", negative_target, BadTargetError, "1 negative"),
    ("huge-target", huge_target, BadTargetError, "above 20 eV"),
    ("negative-predictions-clipped", negative_predictions_are_clipped, None, None),
    ("cli-structure-formats-folders-globs", cli_reads_poscar_contcar_vasp_json_extxyz, None, None),
    ("one-bad-formula-skipped", one_bad_formula_is_skipped_when_asked, None, None),
    ("one-bad-formula-stops", one_bad_formula_stops_by_default, FormulaError, "Row 1"),
    ("element-outside-table", element_outside_the_table, ElementOutsideTableError, "Og (Z=118)"),
    ("element-outside-structure-table", element_outside_the_structure_table, ElementOutsideTableError,
     "'atom_init'"),
    ("predict-empty-list", predict_empty_list, EmptyInputError, "No inputs"),
    ("predict-empty-dataframe", predict_empty_dataframe, EmptyInputError, "no rows"),
    ("corrupt-model-file", corrupt_model_file, ModelFileError, "corrupt"),
    ("truncated-model-file", truncated_model_file, ModelFileError, "truncated"),
    ("foreign-model-file", foreign_model_file, ModelFileError, "not written by gapkit"),
    ("model-file-of-another-format", model_file_of_another_format, ModelFileError, "format 99"),
    ("disordered-structure-default", disordered_structure_by_default, DisorderedStructureError,
     "predict(..., disorder='majority')"),
    ("disordered-structure-majority", disordered_structure_majority, None, None),
    ("empty-formula-in-csv", empty_formula_in_csv, FormulaError, "Empty formula"),
    ("progress-by-default", progress_by_default, None, None),
    ("checkpoints-removed-unless-run-dir", checkpoints_removed_unless_run_dir, None, None),
    ("graph-cache-announced-and-optional", graph_cache_is_announced_and_can_be_switched_off, None, None),
    ("eight-element-formula", eight_element_formula, None, None),
    ("unknown-element-symbol", unknown_element_symbol, FormulaError, "Xx"),
    ("structure-model-given-formulas", structure_model_given_formulas, StructureRequiredError, "CrabNet"),
    ("structure-model-row-without-structure", structure_model_row_without_structure, StructureRequiredError,
     "Row 1 has no structure"),
    ("missing-target-column", missing_target_column, KeyError, "gap_ev"),
    ("missing-model-file", missing_model_file, FileNotFoundError, "No saved model"),
    ("unknown-parameter", unknown_parameter, TypeError, "unknown parameters"),
    ("bad-option-value", bad_option_value, ValueError, "bad_targets must be one of"),
    ("not-fitted", not_fitted, ValueError, "not fitted"),
    ("mixed-list", mixed_list, TypeError, "mixture"),
    ("empty-structure", empty_structure, EmptyStructureError, "no atoms"),
    ("isolated-atom", isolated_atom, IsolatedAtomError, "larger cutoff"),
    ("unparsable-cif", unparsable_cif, CIFParseError, "bad.cif"),
    ("unreadable-structure-file", unreadable_structure_file, InputFileError, "neither pymatgen"),
    ("csv-without-formula-column", csv_without_formula_column, InputFileError, "'formula' column"),
    ("empty-csv-file", empty_csv_file, InputFileError, "blank.csv is empty"),
    ("csv-with-a-header-only", csv_with_a_header_only, InputFileError, "no rows"),
    ("training-diverges", training_diverges, NonFiniteMetricError, "training diverged"),
]


@pytest.mark.parametrize("action, exception, phrase", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_input(kit, isolated_cache, action, exception, phrase):
    if exception is None:
        action(kit)
        return
    with pytest.raises(exception) as info:
        action(kit)
    assert phrase in str(info.value)


def test_cli_version_and_help_describe_the_outputs(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("gapkit ")
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = capsys.readouterr().out
    for phrase in ("gap_ev", "uncertainty_ev", "never negative", "error", "--on-error", "--disorder", "POSCAR"):
        assert phrase in text
