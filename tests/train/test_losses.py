"""The Laplace loss is the Laplace NLL with b = exp(S)/2: fitting S to Laplace samples recovers their scale."""

import math

import numpy as np
import pytest
import torch

from gapkit.train.losses import (
    l1_loss,
    laplace_nll,
    laplace_nll_ev,
    laplace_scale,
    log_scale_from_laplace_scale,
)


@pytest.mark.parametrize("true_scale", [0.2, 1.0, 3.0])
def test_minimising_the_loss_recovers_the_scale_of_laplace_samples(true_scale):
    rng = np.random.default_rng(0)
    target = torch.as_tensor(rng.laplace(0.0, true_scale, size=50_000), dtype=torch.float32)
    pred = torch.zeros_like(target)
    s = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([s], lr=0.05)
    for _ in range(600):
        opt.zero_grad()
        laplace_nll(pred, s.expand_as(target), target).backward()
        opt.step()
    assert float(laplace_scale(s.detach()).item()) == pytest.approx(true_scale, rel=0.03)


def test_loss_equals_the_laplace_nll_without_a_constant():
    e, s = np.array([0.3, -1.2, 2.0]), np.array([-0.5, 0.1, 1.0])
    b = laplace_scale(s)
    nll = np.log(2 * b) + np.abs(e) / b  # -log of 1/(2b) exp(-|e|/b)
    loss = laplace_nll(torch.tensor(e), torch.tensor(s), torch.zeros(3), reduction="none").numpy()
    np.testing.assert_allclose(loss, nll, rtol=1e-12)
    assert laplace_nll_ev(e, b) == pytest.approx(nll.mean())


def test_scale_in_ev_and_its_inverse():
    assert float(laplace_scale(np.array([0.0]), target_std=2.0)[0]) == pytest.approx(1.0)
    t = laplace_scale(torch.tensor([math.log(3.0)]), torch.tensor(0.5))
    assert float(t) == pytest.approx(0.75)
    np.testing.assert_allclose(log_scale_from_laplace_scale(laplace_scale(np.array([-1.0, 2.0]), 1.7), 1.7),
                               [-1.0, 2.0])


def test_l1_loss_ignores_the_scale():
    pred, target = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 4.0])
    assert float(l1_loss(pred, torch.tensor([5.0, -3.0]), target)) == pytest.approx(1.5)
