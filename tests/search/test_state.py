"""Saved search states: keyed by every setting and a schema version, never patched."""

import pickle

import pytest

from gapkit.search import search_config
from gapkit.search.state import (SCHEMA_VERSION, Improvement, LabelledStructure, Phase, SearchState, StateSchemaError,
                                 load_state, save_state, state_file)


def test_state_file_is_keyed_by_the_whole_configuration_and_the_schema(tmp_path):
    config = search_config("quick", "Cu", 2, seed=4)
    path = state_file(tmp_path, config)
    assert path.name.startswith(f"Cu2-seed4-v{SCHEMA_VERSION}-")
    assert state_file(tmp_path, config) == path
    for changed in (config.replace(seed=5), config.replace(budget=999), config.replace(final={"relax_steps": 61}),
                    config.replace(ga={"n_children": 7}), config.replace(train={"lr": 0.02})):
        assert state_file(tmp_path, changed) != path


def test_a_state_of_another_schema_is_refused_with_what_to_do(tmp_path):
    state = SearchState(training=[LabelledStructure(__import__("ase").build.bulk("Cu"), -3.0)])
    save_state(state, tmp_path / "now.pkl")
    assert load_state(tmp_path / "now.pkl").train_energies == [-3.0]
    state.schema = SCHEMA_VERSION - 1
    (tmp_path / "old.pkl").write_bytes(pickle.dumps(state))
    with pytest.raises(StateSchemaError, match="delete it"):
        load_state(tmp_path / "old.pkl")


def test_an_improvement_names_its_phase_as_records_store_it():
    from ase.build import bulk

    cu = bulk("Cu")
    assert Improvement(3, -3.0, cu, Phase.LEARNING_CYCLE, 0).label == "learning cycle 0"
    assert Improvement(3, -3.0, cu, Phase.SCREENING, 2).label == "final round 2 screening"
    assert Improvement(3, -3.0, cu, Phase.RANDOM_START, 1).label == "final round 1 random start relaxation"
    assert Improvement(3, -3.0, cu).label == "" and Improvement(3, -3.0, cu, Phase.RELAXED_MATCH).label == "relaxed match"
