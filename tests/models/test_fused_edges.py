"""Fused CGCNN edge kernels: the same outputs, gradients and batch-norm statistics as the layer-by-layer
convolution, compiled or not, and a clear fallback where torch.compile cannot run."""

import shutil

import pytest
import torch
from torch.nn import functional as F

from gapkit.models import fused_edges
from gapkit.models.cgcnn import use_fused_edges
from tests.models.test_cgcnn import batch_of, structures, tiny_model

N_ATOMS, K, HALF = 30, 12, 8


@pytest.fixture
def unfused_kernels(monkeypatch):
    """The kernels' maths without torch.compile (fast; the compiled ones are checked separately)."""
    monkeypatch.setitem(fused_edges._state, "compiled", False)


def inputs(with_edges: bool, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    src = torch.randint(0, N_ATOMS, (N_ATOMS * K,), generator=gen)
    neighbour = torch.randn(N_ATOMS, 2 * HALF, generator=gen).requires_grad_()
    centre = torch.randn(N_ATOMS, 2 * HALF, generator=gen).requires_grad_()
    edge = ((torch.randn(N_ATOMS * K, 5, generator=gen), torch.randn(2 * HALF, 5, generator=gen).requires_grad_())
            if with_edges else None)  # (edge features, edge weight)
    bn = torch.nn.BatchNorm1d(2 * HALF)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5, generator=gen)
        bn.bias.uniform_(-0.3, 0.3, generator=gen)
    return src, neighbour, centre, edge, bn


def layer_by_layer(src, neighbour, centre, edge, bn):
    z = neighbour[src] + centre.repeat_interleave(K, 0) + (F.linear(*edge) if edge is not None else 0)
    f, c = bn(z).chunk(2, -1)
    return (torch.sigmoid(f) * F.softplus(c)).view(N_ATOMS, K, HALF).sum(1)


def fused(src, neighbour, centre, edge, bn):
    return fused_edges.fused_gated_edge_sum(neighbour, centre, *(edge or (None, None)), src, K, bn)


def outputs_and_grads(fn, with_edges):
    src, neighbour, centre, edge, bn = inputs(with_edges)
    out = fn(src, neighbour, centre, edge, bn)
    out.backward(torch.linspace(-1, 1, out.numel()).view_as(out))
    tensors = [out.detach(), neighbour.grad, centre.grad, bn.weight.grad, bn.bias.grad, bn.running_mean,
               bn.running_var]
    return tensors + ([edge[1].grad] if with_edges else []), int(bn.num_batches_tracked)


@pytest.mark.parametrize("with_edges", [True, False])
def test_same_function_gradients_and_running_statistics(unfused_kernels, with_edges):
    expected, n_ref = outputs_and_grads(layer_by_layer, with_edges)
    got, n_fused = outputs_and_grads(fused, with_edges)
    assert n_fused == n_ref == 1
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                    reason="torch.compile on a CPU needs a C++ compiler")
def test_compiled_kernels_agree():
    expected, _ = outputs_and_grads(layer_by_layer, True)
    got, _ = outputs_and_grads(fused, True)
    assert fused_edges._state["compiled"], "torch.compile failed on this machine"
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_a_failing_compiler_falls_back_with_a_warning(monkeypatch):
    def broken(name):
        def kernel(*args):
            raise RuntimeError("no C++ compiler")
        return kernel

    monkeypatch.setattr(fused_edges, "_compiled", broken)
    monkeypatch.setitem(fused_edges._state, "compiled", True)
    expected, _ = outputs_and_grads(layer_by_layer, True)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        got, _ = outputs_and_grads(fused, True)
    assert not fused_edges._state["compiled"]
    torch.testing.assert_close(got[0], expected[0], rtol=1e-5, atol=1e-5)


def distinct_bond_inputs(seed: int = 1):
    """Inputs whose edge features come as one row per distinct bond (6 of them) and a row index per edge."""
    src, neighbour, centre, (_, weight), bn = inputs(True, seed)
    gen = torch.Generator().manual_seed(seed)
    table, edge_row = torch.randn(6, 5, generator=gen), torch.randint(0, 6, (N_ATOMS * K,), generator=gen)
    return src, neighbour, centre, table, weight, edge_row, bn


@pytest.mark.parametrize("compiled", [False, True])
def test_edge_features_per_distinct_bond_give_the_per_edge_results(monkeypatch, compiled):
    if compiled and shutil.which("c++") is None and shutil.which("g++") is None:
        pytest.skip("torch.compile on a CPU needs a C++ compiler")
    monkeypatch.setitem(fused_edges._state, "compiled", compiled)
    results = []
    for per_bond in (False, True):
        src, neighbour, centre, table, weight, edge_row, bn = distinct_bond_inputs()
        table.requires_grad_()
        if per_bond:
            out = fused_edges.fused_gated_edge_sum(neighbour, centre, table, weight, src, K, bn, edge_row)
        else:
            out = layer_by_layer(src, neighbour, centre, (table[edge_row], weight), bn)
        out.backward(torch.linspace(-1, 1, out.numel()).view_as(out))
        results.append([out.detach(), neighbour.grad, centre.grad, weight.grad, table.grad, bn.weight.grad,
                        bn.bias.grad, bn.running_mean, bn.running_var])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert not compiled or fused_edges._state["compiled"], "torch.compile failed on this machine"


def test_edge_rows_need_edge_features_and_one_index_per_edge():
    src, neighbour, centre, table, weight, edge_row, bn = distinct_bond_inputs()
    with pytest.raises(ValueError, match="one row index per edge"):
        fused_edges.fused_gated_edge_sum(neighbour, centre, table, weight, src, K, bn, edge_row[:-1])
    with pytest.raises(ValueError, match="one row index per edge"):
        fused_edges.fused_gated_edge_sum(neighbour, centre, None, None, src, K, bn, edge_row)


def test_needs_a_training_batch_norm():
    src, neighbour, centre, edge, bn = inputs(True)
    bn.eval()
    with pytest.raises(ValueError, match="training mode"):
        fused(src, neighbour, centre, edge, bn)


def test_a_fused_model_trains_like_the_layer_by_layer_one(unfused_kernels, monkeypatch):
    calls = []
    original = fused_edges.fused_gated_edge_sum
    monkeypatch.setattr(fused_edges, "fused_gated_edge_sum", lambda *a: calls.append(1) or original(*a))
    batch = batch_of(structures())
    losses, grads = [], []
    for enabled in (False, True):
        model = use_fused_edges(tiny_model(seed=3), enabled).train()
        z, s = model.forward_batch(batch)
        loss = (z.square() + s).sum()
        loss.backward()
        losses.append(loss.detach())
        grads.append([p.grad for p in model.parameters()])
    assert len(calls) == 3  # one per convolution, only when enabled
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-5, atol=1e-5)
    for a, b in zip(grads[1], grads[0]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_a_model_with_only_some_fused_convolutions_reads_the_per_bond_table_right(unfused_kernels):
    batch = batch_of(structures())
    outputs = []
    for fused in ([False, False, False], [True, False, True]):
        model = tiny_model(seed=4).train()
        for conv, on in zip(model.convs, fused):
            conv.fused = on  # the unfused one gets the per-bond table and expands it per edge
        outputs.append(model.forward_batch(batch)[0].detach())
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-5, atol=1e-5)


def test_edge_feature_gradient_and_paired_edge_arguments(unfused_kernels):
    grads = []
    for fn in (layer_by_layer, fused):
        src, neighbour, centre, (attr, weight), bn = inputs(True)
        attr.requires_grad_()
        out = fn(src, neighbour, centre, (attr, weight), bn)
        out.backward(torch.linspace(-1, 1, out.numel()).view_as(out))
        grads.append(attr.grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-5)
    src, neighbour, centre, (attr, _), bn = inputs(True)
    with pytest.raises(ValueError, match="come together"):
        fused_edges.fused_gated_edge_sum(neighbour, centre, attr, None, src, K, bn)
