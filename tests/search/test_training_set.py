"""Which oracle labels join the potential's training set (the paper's filter)."""

from ase.build import bulk

from gapkit.search import search_config
from gapkit.search.oracle import OracleResult
from gapkit.search.state import Improvement, LabelledStructure, SearchState
from gapkit.search.training_set import accept_for_training, learn_from_single_point


def _labelled(e_atom: float, e_pred: float | None, a: float = 3.6) -> OracleResult:
    atoms = bulk("Cu", "fcc", a=a)
    if e_pred is not None:
        atoms.info["e_pred"] = e_pred
    return OracleResult(atoms, e_atom * len(atoms), n_single_points=1)


def test_labels_the_potential_already_knew_duplicates_and_high_ones_are_dropped_and_counted():
    config = search_config("quick", "Cu", 1)
    state = SearchState(min_loss=0.1)
    assert not accept_for_training(state, _labelled(-3.0, -3.05), config)  # within min_loss: known (paper)
    assert accept_for_training(state, _labelled(-3.0, -3.3), config)
    assert learn_from_single_point(state, _labelled(-3.0, None), config) and len(state.training) == 1
    assert not accept_for_training(state, _labelled(-3.001, None), config)  # the same crystal again
    state.improvements.append(Improvement(1, -3.0, bulk("Cu")))
    assert not accept_for_training(state, _labelled(-0.5, None, a=4.5), config)  # 2.5 eV/atom above the best
    assert state.dropped == {"known": 1, "duplicate": 1, "high": 1}
    assert isinstance(state.training[0], LabelledStructure) and state.training[0].energy_per_atom == -3.0


def test_a_refit_on_an_unchanged_training_set_keeps_the_potential_and_a_grown_one_refits():
    from gapkit.search.training_set import retrain

    config = search_config("quick", "Cu", 1).replace(train={"max_epochs": 20, "patience": 5})
    state = SearchState()
    for k, a in enumerate((3.4, 3.5, 3.6, 3.7, 3.8)):  # energies 0.1 eV/atom apart: none is a duplicate
        assert learn_from_single_point(state, OracleResult(bulk("Cu", "fcc", a=a), -3.0 - 0.1 * k, 1), config)
    retrain(state, config)
    first = state.potential
    retrain(state, config)  # nothing joined and the same seed (a final round): the same fit, not redone
    assert state.potential is first and state.rmse_history == [state.val_rmse] * 2
    assert state.train_size_history == [5, 5]
    assert learn_from_single_point(state, OracleResult(bulk("Cu", "fcc", a=3.3), -2.5, 1), config)
    retrain(state, config)
    assert state.potential is not first and state.train_size_history == [5, 5, 6]
