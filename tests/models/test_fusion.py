"""CGCrabNet fusion: z = w1 z1 + w2 z2 with fixed 7:3 or learned weights."""

import pytest
import torch

from gapkit.models.fusion import CGCrabNetModel
from tests.models.test_cgcnn import batch_of, structures
from tests.models.test_cgcnn import tiny_model as tiny_cgcnn
from tests.models.test_crabnet import tiny_model as tiny_crabnet
from tests._fitting import fit_l1




def fused_batch():
    from gapkit.featurize.composition import encode_formulas

    structs = structures()
    batch = batch_of(structs)
    z, f = encode_formulas([s.composition.formula for s in structs], progress=False)
    batch["elements"], batch["fractions"] = torch.as_tensor(z), torch.as_tensor(f)
    return batch


def test_fixed_weights_mix_the_branches_7_to_3():
    model = CGCrabNetModel(tiny_crabnet(), tiny_cgcnn()).eval()
    batch = fused_batch()
    z, s = model.forward_batch(batch)
    z1, s1 = model.crabnet.forward_batch(batch)
    z2, s2 = model.cgcnn.forward_batch(batch)
    torch.testing.assert_close(z, 0.7 * z1 + 0.3 * z2)
    torch.testing.assert_close(s, 0.7 * s1 + 0.3 * s2)
    assert not any("logits" in n for n, _ in model.named_parameters())


def test_learned_weights_sum_to_one_and_get_gradients():
    model = CGCrabNetModel(tiny_crabnet(), tiny_cgcnn(), weights="learned")
    torch.testing.assert_close(model.weights, torch.tensor([0.7, 0.3]))
    z, s = model.forward_batch(fused_batch())
    z.sum().backward()
    assert model.logits.grad is not None and model.logits.grad.abs().sum() > 0
    assert float(model.weights.detach().sum()) == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [(0.5, 0.6), (1.2, -0.2), (1.0,), "equal"])
def test_bad_weights_are_rejected(bad):
    with pytest.raises(ValueError, match="weights"):
        CGCrabNetModel(tiny_crabnet(), tiny_cgcnn(), weights=bad)


def test_overfits_a_tiny_batch():
    model = CGCrabNetModel(tiny_crabnet(), tiny_cgcnn(), weights="learned")
    batch = fused_batch()
    target = torch.tensor([1.0, -1.0, 0.5, -0.2])
    fit_l1(model, batch, target, lr=3e-3)
    assert (model.forward_batch(batch)[0] - target).abs().max() < 0.1


@pytest.mark.parametrize("weights", [(0.7, 0.3), "learned"])
def test_runs_under_bf16_mixed_precision(weights):
    """The CUDA path trains in bf16-mixed; autocast on the CPU exercises the same dtype handling here."""
    model = CGCrabNetModel(tiny_crabnet(), tiny_cgcnn(), weights=weights).eval()
    batch = fused_batch()
    with torch.no_grad():
        reference = model.forward_batch(batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model.forward_batch(batch)
    for a, b in zip(low, reference):
        torch.testing.assert_close(a.float(), b, rtol=0.05, atol=0.05)  # bf16 keeps ~3 significant digits
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z, s = model.train().forward_batch(batch)
        loss = (z.float() - 1.0).abs().mean() + s.float().mean()
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
