"""Atom_DL: tokens, pair labels, the masking rule, the network overfitting a tiny batch, the trainer path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gapkit.models.atom_dl import (
    CLS,
    IGNORE,
    MASK,
    PAD,
    SEP,
    AtomDL,
    AtomDLDataset,
    assemble,
    build_pairs,
    collate,
    formula_tokens,
    group_signature,
    mask_tokens,
    pair_label,
    tokenize_formulas,
)
from gapkit.runtime import seed_everything
from gapkit.train.atom_dl_task import AtomDLConfig, AtomDLTask, atom_dl_losses, pretrain_atom_dl



@pytest.fixture(autouse=True)
def one_thread():
    """A d=16 model is all per-op overhead: one thread is faster than two (and immune to a busy CPU)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


FORMULAS = ["HF", "HCl", "HBr", "H2O", "H2S", "NaCl", "KBr", "LiF", "SiO2", "CO2", "GeO2", "MgO", "CaO",
            "BaS", "Fe2O3", "Al2O3", "Ga2O3", "GaAs", "InP", "AlN", "ZnO", "CdS", "NaBr", "KCl"]


def test_formula_tokens_repeat_reduced_counts():
    assert formula_tokens("SiO2").tolist() == [14, 8, 8]
    assert formula_tokens("Fe4O6").tolist() == [26, 26, 8, 8, 8]  # reduced to Fe2O3
    assert formula_tokens("Ba0.5Sr0.5TiO3").tolist() == [56, 38, 22, 8, 8, 8]  # fractional counts give at least one token


def test_formula_tokens_caps():
    assert formula_tokens("H20O").tolist() == [1] * 8 + [8]  # a count is capped at 8 tokens
    long = formula_tokens("Co8Mn7Nd7Fe7")  # 29 tokens: the largest counts are lowered to fit 24
    assert len(long) == 24 and sorted(set(long.tolist())) == [25, 26, 27, 60]


def test_pair_labels_hand_made():
    assert group_signature("HF") == (1, 17)
    assert pair_label("HF", "HCl") == 1
    assert pair_label("HF", "H2O") == 0
    assert pair_label("NaCl", "KBr") == 1
    assert pair_label("Fe2O3", "FeO") == 1  # stoichiometry is ignored
    assert pair_label("SiO2", "MgO") == 0


def test_build_pairs_balanced_and_correct():
    pairs = build_pairs(FORMULAS, n_samples=200, seed=0, progress=False)
    assert len(pairs) == 200 and pairs["label"].sum() == 100
    for f1, f2, label in pairs.itertuples(index=False):
        assert pair_label(f1, f2) == label
        if label == 1:
            assert f1 != f2
    again = build_pairs(FORMULAS, n_samples=200, seed=0, progress=False)
    assert again.equals(pairs)


def test_build_pairs_needs_two_classes():
    with pytest.raises(ValueError, match="one group signature"):
        build_pairs(["SiO2", "GeO2", "CO2"], n_samples=10, progress=False)


def test_assemble_layout():
    ids, seg = assemble(np.array([1, 9]), np.array([1, 17]))
    assert ids.tolist() == [CLS, 1, 9, SEP, 1, 17, SEP]
    assert seg.tolist() == [0, 0, 0, 0, 1, 1, 1]


def test_masking_proportions_on_a_large_sample():
    rng = np.random.default_rng(0)
    ids, _ = assemble(np.full(50, 8), np.full(50, 8))  # 100 oxygen tokens
    pool = np.array([1, 2, 3])  # random replacements never equal the original: they can be told apart
    chosen = masked = randomised = kept = 0
    for _ in range(3000):
        out, labels = mask_tokens(ids, rng, pool)
        sel = labels != IGNORE
        assert not sel[[0, 51, 102]].any()  # [CLS]/[SEP] are never chosen
        assert (labels[sel] == 8).all()
        assert (out[~sel] == ids[~sel]).all()  # unchosen tokens untouched
        chosen += sel.sum()
        masked += (out[sel] == MASK).sum()
        randomised += np.isin(out[sel], pool).sum()
        kept += (out[sel] == 8).sum()
    assert chosen == 3000 * 15  # exactly 15 % of 100 element tokens
    assert masked / chosen == pytest.approx(0.8, abs=0.01)
    assert randomised / chosen == pytest.approx(0.1, abs=0.01)
    assert kept / chosen == pytest.approx(0.1, abs=0.01)


def test_short_sequences_still_get_one_target():
    ids, _ = assemble(np.array([1, 9]), np.array([1, 17]))
    _, labels = mask_tokens(ids, np.random.default_rng(0), np.array([1, 9, 17]))
    assert (labels != IGNORE).sum() == 1


def _tiny_batch(n: int = 8):
    pairs = build_pairs(FORMULAS, n_samples=n, seed=0, progress=False)
    tokens = tokenize_formulas(FORMULAS, progress=False)
    ds = AtomDLDataset(pairs, tokens, np.array(sorted({int(z) for t in tokens.values() for z in t})),
                       static=True)
    return collate([ds[i] for i in range(len(ds))])


def test_collate_pads():
    batch = _tiny_batch()
    lengths = (batch["input_ids"] != PAD).sum(1)
    assert batch["input_ids"].shape[1] == lengths.max()
    assert (batch["mlm_labels"][batch["input_ids"] == PAD] == IGNORE).all()


def test_forward_shapes_and_padding_row():
    seed_everything(0)
    model = AtomDL(n_layers=2)
    batch = _tiny_batch()
    mlm, pair = model(batch["input_ids"], batch["segment_ids"])
    assert mlm.shape == (*batch["input_ids"].shape, model.token_embedding.num_embeddings)
    assert pair.shape == (8, 2)
    assert torch.all(model.token_embedding.weight[PAD] == 0)
    vectors = model.element_vectors([1, 8])
    assert vectors.shape == (2, 16) and list(vectors.index) == ["H", "O"]


def test_overfits_a_tiny_batch():
    seed_everything(0)
    model = AtomDL(n_layers=2, dropout=0.0)
    batch = _tiny_batch()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = atom_dl_losses(model, batch)["loss"].item()
    for _ in range(300):
        loss = atom_dl_losses(model, batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    final = atom_dl_losses(model, batch)
    assert final["loss"].item() < first / 10
    assert final["mlm_acc"].item() == 1.0 and final["pair_acc"].item() == 1.0


def test_pretrain_through_the_shared_trainer(tmp_path):
    from gapkit.train.trainer import read_log

    config = AtomDLConfig(n_samples=64, n_layers=1, epochs=2, batch_size=16, val_fraction=0.25)
    task = pretrain_atom_dl(FORMULAS * 4, config, tmp_path / "run", device="cpu", progress=False)
    assert isinstance(task, AtomDLTask)
    log = read_log(tmp_path / "run")
    assert len(log) == 2
    for col in ("train_loss_lm", "train_loss_label", "val_loss", "val_mlm_acc", "val_pair_acc"):
        assert col in log.columns and log[col].notna().all()
    vectors = task.element_vectors()
    assert vectors.shape[1] == 16 and "O" in vectors.index and "U" not in vectors.index


def test_loader_workers_draw_their_own_masks():
    from gapkit.train.atom_dl_task import make_loaders

    config = AtomDLConfig(n_samples=64, batch_size=8, val_fraction=0.25, num_workers=2)
    train, val, elements = make_loaders(FORMULAS, config, progress=False)
    batches = list(train)
    assert sum(len(b["pair_label"]) for b in batches) == 48
    # worker 0 serves batch 0, worker 1 batch 1: their masking streams must differ
    first = [b["mlm_labels"] != IGNORE for b in batches[:2]]
    assert not all(torch.equal(a, b) for a, b in zip(first[0], first[1]))
    assert len(list(val)) == 2 and 8 in elements.tolist()


def test_atom_dl_config_refuses_bad_sizes():
    with pytest.raises(ValueError, match="multiple of n_heads"):
        AtomDLConfig(d_model=16, n_heads=5)
    with pytest.raises(ValueError, match="epochs"):
        AtomDLConfig(epochs=0)
