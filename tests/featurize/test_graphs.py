"""Crystal graphs: neighbour counts and distances on known crystals, batching, cache and bad inputs."""

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from gapkit.featurize.graphs import (
    DisorderedStructureError,
    EmptyStructureError,
    GraphCache,
    IsolatedAtomError,
    build_graph,
    build_graphs,
    collate_graphs,
    crystal_index,
)


def diamond_si() -> Structure:
    return Structure(Lattice.cubic(5.431), ["Si"] * 8,
                     [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
                      [0.25, 0.25, 0.25], [0.75, 0.75, 0.25], [0.75, 0.25, 0.75], [0.25, 0.75, 0.75]])


def rock_salt() -> Structure:
    fcc = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return Structure(Lattice.cubic(5.64), ["Na"] * 4 + ["Cl"] * 4, fcc + [[x + 0.5, y, z] for x, y, z in fcc])


def test_diamond_si_has_four_nearest_neighbours_at_2_35_angstrom():
    g = build_graph(diamond_si(), cutoff=8.0, max_neighbors=4)
    assert g.n_atoms == 8 and g.n_edges == 32
    np.testing.assert_allclose(g.distances, 5.431 * np.sqrt(3) / 4, atol=1e-4)
    assert np.all(np.bincount(g.edge_dst, minlength=8) == 4)
    np.testing.assert_allclose(g.distances, 2.3517, atol=1e-3)


def test_diamond_si_twelve_neighbours_are_4_then_8_second_shell():
    g = build_graph(diamond_si())
    assert g.n_edges == 8 * 12
    for i in range(8):
        d = np.sort(g.distances[g.edge_dst == i])
        np.testing.assert_allclose(d[:4], 2.3517, atol=1e-3)
        np.testing.assert_allclose(d[4:], 5.431 / np.sqrt(2), atol=1e-3)  # 12 second neighbours at 3.84 Å


def test_rock_salt_has_six_nearest_neighbours_of_the_other_species():
    s = rock_salt()
    g = build_graph(s, max_neighbors=6)
    assert g.n_atoms == 8 and np.all(np.bincount(g.edge_dst, minlength=8) == 6)
    np.testing.assert_allclose(g.distances, 2.82, atol=1e-3)
    z = g.atomic_numbers
    assert np.all(z[g.edge_src] != z[g.edge_dst])  # Na sees Cl and vice versa


def test_edges_sorted_and_capped_per_centre():
    g = build_graph(rock_salt(), max_neighbors=12)
    for i in range(g.n_atoms):
        d = g.distances[g.edge_dst == i]
        assert len(d) == 12 and np.all(np.diff(d) >= 0)


def test_collate_offsets_edges_and_indexes_crystals():
    g1, g2 = build_graph(diamond_si(), max_neighbors=4), build_graph(rock_salt(), max_neighbors=6)
    b = collate_graphs([g1, g2])
    assert b["atomic_numbers"].shape == (16,)
    assert b["edge_src"].shape == (32 + 48,)
    assert b["edge_dst"][32:].min() == 8 and b["edge_dst"].max() == 15
    assert torch.equal(crystal_index(b["n_atoms"]), torch.tensor([0] * 8 + [1] * 8))
    with pytest.raises(ValueError):
        collate_graphs([])


def test_cache_second_run_builds_nothing(tmp_path, monkeypatch):
    cache = GraphCache(tmp_path)
    first = build_graphs([diamond_si(), rock_salt()], cache=cache, progress=False)
    assert len(list(tmp_path.rglob("*.pkl"))) == 2
    import gapkit.featurize.graphs as graphs_mod

    def boom(*a, **k):
        raise AssertionError("a cached graph was rebuilt")

    monkeypatch.setattr(graphs_mod, "build_graph", boom)
    second = build_graphs([diamond_si(), rock_salt()], cache=cache, progress=False)
    for a, b in zip(first, second):
        assert np.array_equal(a.edge_src, b.edge_src) and np.array_equal(a.distances, b.distances)


def test_cache_key_depends_on_cutoff(tmp_path):
    cache = GraphCache(tmp_path)
    build_graphs([rock_salt()], cutoff=8.0, cache=cache, progress=False)
    build_graphs([rock_salt()], cutoff=6.0, cache=cache, progress=False)
    assert len(list(tmp_path.rglob("*.pkl"))) == 2


def test_empty_structure_is_an_error():
    with pytest.raises(EmptyStructureError, match="no atoms"):
        build_graph(Structure(Lattice.cubic(3), [], []))
    with pytest.raises(EmptyStructureError, match="Structure 1"):
        build_graphs([rock_salt(), Structure(Lattice.cubic(3), [], [])], cache=False, progress=False)


def test_isolated_atom_names_the_site_and_suggests_a_larger_cutoff():
    s = Structure(Lattice.cubic(20.0), ["Na", "Cl"], [[0, 0, 0], [0.1, 0, 0]])
    s.append("Na", [0.5, 0.5, 0.5])  # 17 Å from everything, including its own images
    with pytest.raises(IsolatedAtomError, match=r"Atom 2 \(Na\).*larger cutoff"):
        build_graph(s, cutoff=8.0)
    g = build_graph(s, cutoff=25.0)  # the suggested fix works
    assert g.n_atoms == 3


def test_disordered_site_raises_or_takes_majority():
    s = Structure(Lattice.cubic(4.0), [{"Fe": 0.6, "Co": 0.4}, "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(DisorderedStructureError, match="Site 0.*majority"):
        build_graph(s)
    g = build_graph(s, disorder="majority")
    assert sorted(g.atomic_numbers.tolist()) == [8, 26]
