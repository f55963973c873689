"""The search configuration: frozen, validated, built from a profile as the recommended method."""

import dataclasses

import pytest
from ase.build import bulk

from gapkit.search import FinalStage, LearningLoop, SearchConfig, Target, search_config
from gapkit.search.config import ConfigError
from gapkit.search.profiles import PAPER_FINAL, RECOMMENDED_FINAL
from gapkit.search.records import RECOMMENDED, config_changes, config_settings


def test_search_config_is_the_recommended_method_and_records_store_it_as_such():
    config = search_config("quick", formula="TiO2", n_atoms=6, seed=3)
    assert (config.formula, config.n_atoms, config.seed, config.budget) == ("TiO2", 6, 3, 1000)
    final = config.final
    assert (final.rounds, final.patience, final.frames_every, final.screen_picks, final.relax_per_round,
            final.stale_random_relaxations) == (40, 40, 5, True, 3, 1)
    target = Target(energy_per_atom=-8.0)
    assert config_settings(config.replace(target=target)) == RECOMMENDED  # what the chapter's records select
    assert config.replace(**config_changes(RECOMMENDED)) == config  # and back
    for profile in ("medium", "full"):
        assert {k: getattr(search_config(profile).final, k) for k in RECOMMENDED_FINAL} == RECOMMENDED_FINAL
    with pytest.raises(ValueError, match="Unknown profile"):
        search_config("huge")


def test_the_configuration_is_frozen_and_changed_only_by_replace():
    config = search_config("quick")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.budget = 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.final.rounds = 5
    paper = config.replace(final=PAPER_FINAL, budget=None)
    assert paper.final.rounds == 1 and paper.budget is None and config.final.rounds == 40
    assert paper.final.generations == config.final.generations  # the rest of the part is kept


@pytest.mark.parametrize("changes, message", [
    ({"final": {**PAPER_FINAL, "frames_every": 5}}, "frames_every"),
    ({"final": {**PAPER_FINAL, "stale_random_relaxations": 1}}, "stale_random_relaxations"),
    ({"final": {**PAPER_FINAL, "patience": 3}}, "patience"),
    ({"final": {"relax_per_round": 0}}, "relax_per_round"),
    ({"final": {"relax_per_round": 1, "stale_random_relaxations": 2}}, "relax_per_round"),
    ({"final": {"stale_random_relaxations": -1}}, "stale_random_relaxations"),
    ({"learning": {"max_cycles": 0}}, "max_cycles"),
    ({"budget": 1}, "budget"),
    ({"crystal_systems": ("cubic", "cubical")}, "crystal systems"),
])
def test_settings_that_would_be_ignored_or_are_out_of_range_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        search_config("quick").replace(**changes)


def test_bad_formula_and_atom_count_fail_when_the_configuration_is_made():
    with pytest.raises(ValueError, match="multiple"):
        SearchConfig(formula="TiO2", n_atoms=4)
    with pytest.raises(ValueError):
        SearchConfig(formula="Qq", n_atoms=2)


def test_a_target_needs_something_to_find_and_its_digest_sees_the_structure():
    with pytest.raises(ConfigError, match="Target"):
        Target()
    config = SearchConfig(formula="Cu", n_atoms=1, learning=LearningLoop(), final=FinalStage())
    fcc, squeezed = bulk("Cu", "fcc", 3.6), bulk("Cu", "fcc", 3.5)
    assert config.digest() != config.replace(target=Target(fcc)).digest()
    assert config.replace(target=Target(fcc)).digest() == config.replace(target=Target(fcc.copy())).digest()
    assert config.replace(target=Target(fcc)).digest() != config.replace(target=Target(squeezed)).digest()
    assert config.digest() != config.replace(final={"relax_steps": 101}).digest()


def test_a_record_of_a_deleted_setting_cannot_be_rerun():
    with pytest.raises(ValueError, match="known_error_cap"):
        config_changes({**RECOMMENDED, "known_error_cap": 0.08})
    old = config_changes({"final_rounds": 1, "round_patience": 2, "frames_every": 5})  # the benchmark's old flags
    assert old["final"]["frames_every"] == 0 and old["final"]["patience"] is None and old["budget"] is None
    search_config("quick").replace(**old)  # valid: the paper's single round


def test_the_quick_profile_and_the_random_streams_are_those_the_records_ran():
    from gapkit.search import ase_ga_search, loop, random_search

    config = search_config("quick")
    ga, learning, final, train = config.ga, config.learning, config.final, config.train
    assert (ga.population_size, ga.n_children, ga.n_immigrants, ga.potential_relax_steps) == (12, 6, 2, 20)
    assert (learning.generations, learning.picks_per_system, learning.max_cycles, learning.min_training_size,
            learning.target_rmse) == (3, 2, 3, 60, 0.08)
    assert (final.generations, final.picks_per_system, final.relax_steps, final.potential_relax_steps) == (5, 2, 60, 100)
    assert (train.max_epochs, train.patience, config.fmax, config.skip_known) == (1000, 150, 0.05, True)
    assert (loop.INITIAL_POPULATION_STREAM, loop.FINAL_GA_STREAM, loop.FINAL_ROUND_STRIDE, loop.RANDOM_START_STREAM,
            random_search.RANDOM_SEARCH_STREAM, ase_ga_search.ASE_GA_STREAM) == (99_999, 10_000, 1_000, 30_000,
                                                                                  424242, 171717)
