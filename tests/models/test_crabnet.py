"""CrabNet: permutation and padding invariance, bad input, and that it can fit a tiny batch."""

import numpy as np
import pytest
import torch

from gapkit.models.crabnet import CrabNetModel, FractionalEncoder, element_table




def tiny_model(seed: int = 0, dropout: float = 0.0) -> CrabNetModel:
    torch.manual_seed(seed)
    table = np.random.default_rng(seed).normal(size=(104, 12)).astype(np.float32)
    table[0] = 0.0
    return CrabNetModel(table, d_model=32, n_layers=2, n_heads=4, d_ff=64, dropout=dropout, head_dims=(32, 16))


Z = torch.tensor([[20, 22, 8, 0, 0, 0, 0], [11, 17, 0, 0, 0, 0, 0], [3, 26, 15, 8, 0, 0, 0]])
F = torch.tensor([[0.2, 0.2, 0.6, 0, 0, 0, 0], [0.5, 0.5, 0, 0, 0, 0, 0], [1 / 7, 1 / 7, 1 / 7, 4 / 7, 0, 0, 0]])


def test_permutation_invariant():
    model = tiny_model().eval()
    z1, s1 = model(Z, F)
    perm = torch.tensor([2, 0, 1, 3, 4, 5, 6])
    z2, s2 = model(Z[:, perm], F[:, perm])
    torch.testing.assert_close(z1, z2, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(s1, s2, atol=1e-5, rtol=1e-5)


def test_padding_changes_nothing():
    model = tiny_model().eval()
    z1, s1 = model(Z, F)
    # more padded slots, padding moved between real elements, junk fractions on padded slots
    Zp = torch.cat([Z[:, :1], torch.zeros(3, 2, dtype=torch.long), Z[:, 1:]], dim=1)
    Fp = torch.cat([F[:, :1], torch.full((3, 2), 0.37), F[:, 1:]], dim=1)
    z2, s2 = model(Zp, Fp)
    torch.testing.assert_close(z1, z2, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(s1, s2, atol=1e-5, rtol=1e-5)


def test_batch_neighbours_do_not_leak():
    model = tiny_model().eval()
    z_all, _ = model(Z, F)
    z_one, _ = model(Z[1:2], F[1:2])
    torch.testing.assert_close(z_all[1:2], z_one, atol=1e-5, rtol=1e-5)


def test_composition_without_elements_is_an_error():
    model = tiny_model().eval()
    with pytest.raises(ValueError, match="at least one element"):
        model(torch.zeros(1, 7, dtype=torch.long), torch.zeros(1, 7))


def test_fractional_encoding_distinguishes_fractions():
    enc = FractionalEncoder(16)
    e = enc(torch.tensor([[0.25, 0.5, 0.25]]))
    assert e.shape == (1, 3, 16)
    torch.testing.assert_close(e[0, 0], e[0, 2])
    assert (e[0, 0] - e[0, 1]).abs().max() > 0.1


def test_overfits_a_tiny_batch():
    model = tiny_model(dropout=0.0)
    target = torch.tensor([1.5, -0.5, 0.3])
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(150):
        opt.zero_grad()
        z, s = model(Z, F)
        loss = (z - target).abs().mean()
        loss.backward()
        opt.step()
    assert (model.eval()(Z, F)[0] - target).abs().max() < 0.05


def test_element_table_from_crabnet_mat2vec(shared_data_dir):
    table = element_table("crabnet_mat2vec")
    assert table.shape == (104, 200)
    assert np.all(table[0] == 0) and np.abs(table[14]).sum() > 0
    real = np.abs(table).sum(axis=1) > 0
    np.testing.assert_allclose(table[real].mean(axis=0), 0, atol=1e-4)  # standardised over real elements


def test_packed_encoder_equals_torch_transformer_encoder(shared_data_dir):
    """The packed layers compute nn.TransformerEncoder's function on the real elements, with its weights."""
    torch.manual_seed(0)
    model = CrabNetModel(element_table("crabnet_onehot"), d_model=32, n_layers=2, n_heads=4, d_ff=64).eval()
    el = torch.tensor([[8, 22, 0, 0], [3, 8, 25, 26], [14, 0, 0, 0]])
    fr = torch.tensor([[0.6, 0.4, 0, 0], [0.25, 0.5, 0.125, 0.125], [1.0, 0, 0, 0]])
    pad = el == 0
    x = model.embed(model.element_vectors[el]) * 2**model.emb_scaler
    pe = torch.cat((model.frac_linear(fr), model.frac_log(fr)), dim=-1)
    reference = model.encoder(x + pe * 2 ** (1 - model.pe_scaler) ** 2, src_key_padding_mask=pad)
    torch.testing.assert_close(model.encode(el, fr)[~pad], reference[~pad], atol=1e-5, rtol=1e-5)
