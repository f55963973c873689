"""benchmarks/search_oracle_calls.py: any compound given its reference, flags that map onto the configuration."""

import argparse
import importlib.util
from pathlib import Path

import pytest

from gapkit.search.records import RECOMMENDED, config_settings

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "search_oracle_calls.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("search_oracle_calls", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _args(**flags) -> argparse.Namespace:
    base = dict(profile="quick", formula="Si", n_atoms=2, paper=False, final_rounds=None, round_patience=None,
                frames_every=None, screen=None, stale_randoms=None, relax_per_round=None, budget=None,
                stop_when_found=False, tag="")
    return argparse.Namespace(**{**base, **flags})


def test_the_default_is_the_recommended_method_and_flags_name_its_variants(bench):
    settings = config_settings(bench.ga_config(_args(), 0), stopped_when_found=True)
    assert settings == RECOMMENDED and bench.record_name(_args(), settings, True) == "quick-recommended-Si2"
    # a record without the GA is named for its baselines, whatever its (unused) GA settings
    assert bench.record_name(_args(), settings, False) == "quick-baselines-Si2"
    paper = bench.ga_config(_args(paper=True), 0)
    assert paper.final.rounds == 1 and paper.budget is None
    assert bench.record_name(_args(paper=True), config_settings(paper), True) == "quick-paper-Si2"
    variant = bench.ga_config(_args(final_rounds=10, round_patience=3, screen=False, relax_per_round=0), 0)
    assert (variant.final.rounds, variant.final.patience, variant.final.screen_picks) == (10, 3, False)
    assert variant.final.relax_per_round is None


def test_any_formula_needs_its_cell_size_and_reference(bench, monkeypatch, capsys):
    for argv, message in ((["--formula", "NaCl"], "--n-atoms"), (["--formula", "NaCl", "--n-atoms", "2"], "--reference"),
                          (["--stop-when-found"], "--methods none")):
        monkeypatch.setattr("sys.argv", ["search_oracle_calls.py", *argv])
        with pytest.raises(SystemExit):
            bench.main()
        assert message in capsys.readouterr().err
