"""CGCNN: permutation invariance of sites, batch independence, both edge variants, tiny-batch overfit."""

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from gapkit.featurize.graphs import build_graph, collate_graphs
from gapkit.models.cgcnn import CGCNNModel, GaussianDistance, atom_init_table, distinct_rows, regular_degree
from tests._fitting import fit_l1




def structures() -> list[Structure]:
    def rock_salt(a, b, lat):
        return Structure(Lattice([[0, lat / 2, lat / 2], [lat / 2, 0, lat / 2], [lat / 2, lat / 2, 0]]),
                         [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])

    nacl, mgo = rock_salt("Na", "Cl", 5.64), rock_salt("Mg", "O", 4.21)
    si = Structure(Lattice.cubic(5.431), ["Si"] * 2, [[0, 0, 0], [0.25, 0.25, 0.25]])
    tio = Structure(Lattice.tetragonal(4.59, 2.96), ["Ti", "Ti", "O", "O", "O", "O"],
                    [[0, 0, 0], [0.5, 0.5, 0.5], [0.3, 0.3, 0], [0.7, 0.7, 0], [0.8, 0.2, 0.5], [0.2, 0.8, 0.5]])
    return [nacl, mgo, si, tio]


def tiny_model(use_distance: bool = True, seed: int = 0) -> CGCNNModel:
    torch.manual_seed(seed)
    return CGCNNModel(atom_init_table("onehot"), node_dim=16, n_conv=3, hidden_dim=16,
                      use_distance=use_distance, cutoff=6.0, gaussian_step=0.5)


def batch_of(structs):
    return collate_graphs([build_graph(s, cutoff=6.0) for s in structs])


@pytest.mark.parametrize("use_distance", [True, False])
def test_site_permutation_invariant(use_distance):
    model = tiny_model(use_distance).eval()
    s = structures()[3]
    perm = [4, 1, 5, 0, 3, 2]
    shuffled = Structure(s.lattice, [s[i].specie for i in perm], [s[i].frac_coords for i in perm])
    z1, s1 = model.forward_batch(batch_of([s]))
    z2, s2 = model.forward_batch(batch_of([shuffled]))
    torch.testing.assert_close(z1, z2, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(s1, s2, atol=1e-5, rtol=1e-5)


def test_batch_members_do_not_interact():
    model = tiny_model().eval()
    z_all, _ = model.forward_batch(batch_of(structures()))
    z_alone = torch.cat([model.forward_batch(batch_of([s]))[0] for s in structures()])
    torch.testing.assert_close(z_all, z_alone, atol=1e-5, rtol=1e-5)


def test_supercell_gives_the_same_prediction():
    model = tiny_model().eval()
    s = structures()[0]
    z1, _ = model.forward_batch(batch_of([s]))
    z2, _ = model.forward_batch(batch_of([s * (2, 1, 1)]))  # mean pooling: an intensive property
    torch.testing.assert_close(z1, z2, atol=1e-5, rtol=1e-5)


def test_gaussian_expansion_peaks_at_the_distance():
    g = GaussianDistance(8.0, 0.2)
    e = g(torch.tensor([2.0, 5.0]))
    assert e.shape == (2, g.size) and g.size == 41
    assert int(e[0].argmax()) == 10 and int(e[1].argmax()) == 25


def test_gaussian_expansion_is_the_formula_with_negligible_terms_zeroed():
    g = GaussianDistance(8.0, 0.2)
    d = torch.linspace(0.5, 8.0, 997)
    exact = torch.exp(-((d.unsqueeze(-1) - g.centres) ** 2) / 0.2**2)
    fast = g(d)
    kept = exact >= 2e-22
    assert torch.equal(fast[kept], exact[kept]) and torch.all(fast[~kept] == 0)
    assert not torch.any((fast > 0) & (fast < torch.finfo(torch.float32).tiny))  # no denormals
    d.requires_grad_()
    g(d).sum().backward()  # distances that need a gradient take the plain formula
    assert d.grad is not None and torch.isfinite(d.grad).all()


def test_distinct_rows_rebuild_every_distance():
    bond = torch.tensor(2.35)
    next_float = torch.nextafter(bond, torch.tensor(3.0))  # one rounding step apart: another bond length
    d = torch.stack([bond, torch.tensor(3.1), bond, next_float, torch.tensor(3.1)])
    values, row = distinct_rows(d)
    assert values.tolist() == sorted(set(d.tolist())) and len(values) == 3
    assert row.dtype == torch.long and torch.equal(values[row], d)


def test_atom_init_table(shared_data_dir):
    table = atom_init_table("atom_init")
    assert table.shape == (104, 92) and np.all(table[0] == 0) and table[8].sum() > 0
    with pytest.raises(ValueError, match="node_features"):
        atom_init_table("nonsense")


@pytest.mark.parametrize("use_distance", [True, False])
def test_overfits_a_tiny_batch(use_distance):
    model = tiny_model(use_distance)
    batch = batch_of(structures())
    target = torch.tensor([1.0, -1.0, 0.5, -0.2])
    fit_l1(model, batch, target, lr=1e-2)
    model.train()  # batch-norm statistics of this one batch: judge the fit in training mode
    assert (model.forward_batch(batch)[0] - target).abs().max() < 0.1


def test_regular_and_general_edge_layouts_agree():
    """The reshape-and-sum path (k edges per atom, centre by centre) equals the gather/scatter path."""
    torch.manual_seed(1)
    model = tiny_model()
    batch = batch_of(structures())
    assert regular_degree(batch["edge_dst"], batch["atomic_numbers"].shape[0]) is not None
    perm = torch.randperm(batch["edge_dst"].shape[0])
    shuffled = {**batch, **{k: batch[k][perm] for k in ("edge_src", "edge_dst", "distances")}}
    assert regular_degree(shuffled["edge_dst"], shuffled["atomic_numbers"].shape[0]) is None
    for mode in (model.train, model.eval):
        mode()
        torch.testing.assert_close(model.forward_batch(batch), model.forward_batch(shuffled), atol=1e-5, rtol=1e-5)


def test_eval_batch_norm_folding_matches_the_layer():
    torch.manual_seed(2)
    model = tiny_model()
    batch = batch_of(structures())
    model.train()
    for _ in range(3):
        model.forward_batch(batch)  # give the running statistics non-trivial values
    with torch.no_grad():
        for conv in model.convs:
            conv.bn_in.weight.uniform_(0.5, 1.5)
            conv.bn_in.bias.uniform_(-0.3, 0.3)
    model.eval()
    folded = model.forward_batch(batch)
    for conv in model.convs:
        conv._folded = lambda: (None, None)  # run the batch norm as a layer
    torch.testing.assert_close(model.forward_batch(batch), folded, atol=1e-5, rtol=1e-5)
