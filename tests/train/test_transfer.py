"""Transfer helper: a fine-tuned model starts from the source weights; freezing keeps layers fixed; errors."""

import numpy as np
import pytest
import torch

from gapkit.models.mlp import MLPConfig, MLPRegressor, last_layers
from gapkit.train.tabular import TabularFitConfig, fit_task, make_task, task_loss
from gapkit.train.transfer import freeze_except, load_pretrained, transferred_copy


def data(n=200, shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return x, (x[:, 0] - 2 * x[:, 1] + shift).astype(np.float32)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    torch.set_num_threads(1)
    x, y = data()
    config = TabularFitConfig(max_epochs=5, batch_size=32, patience=None)
    torch.manual_seed(0)
    model = MLPRegressor(MLPConfig(3, (16, 8)))
    model.set_input_scaling(torch.as_tensor(x))
    return fit_task(make_task(model, y, config), x, y, config, tmp_path_factory.mktemp("src"))


def test_transfer_starts_from_the_source_model(source, tmp_path):
    xt, yt = data(80, shift=0.7, seed=1)
    copy = transferred_copy(source.model)
    scale = (float(source.target_mean), float(source.target_std))
    target = make_task(copy, yt, TabularFitConfig(), target_scale=scale)
    # the loss the first fine-tuning step sees is exactly the source model's loss on the target data
    assert task_loss(target, xt, yt) == pytest.approx(task_loss(source, xt, yt), rel=0, abs=1e-7)
    fresh = MLPRegressor(MLPConfig(3, (16, 8)))
    load_pretrained(fresh, source.model)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), source.model.state_dict().values()))


def test_last_layers_only_leaves_the_rest_unchanged(source, tmp_path):
    xt, yt = data(80, shift=0.7, seed=1)
    copy = transferred_copy(source.model, tuple(last_layers(source.model, 1)))
    before = {k: v.clone() for k, v in copy.state_dict().items()}
    config = TabularFitConfig(max_epochs=3, batch_size=16, patience=None)
    task = fit_task(make_task(copy, yt, config, target_scale=(float(source.target_mean), float(source.target_std))),
                    xt, yt, config, tmp_path / "ft")
    after = task.model.state_dict()
    assert torch.equal(before["body.0.0.weight"], after["body.0.0.weight"])
    assert torch.equal(before["x_mean"], after["x_mean"])  # the source input scaling travels with the model
    assert not torch.equal(before["head.weight"], after["head.weight"])
    # the source itself is untouched by fine-tuning its copy
    assert not torch.equal(source.model.state_dict()["head.weight"], after["head.weight"])


def test_errors_name_what_is_wrong(source, tmp_path):
    with pytest.raises(ValueError, match="shapes differ"):
        load_pretrained(MLPRegressor(MLPConfig(4, (16, 8))), source.model)
    with pytest.raises(KeyError, match="no parameter of the model starts with 'haed'"):
        freeze_except(MLPRegressor(MLPConfig(3, (4,))), ["haed"])
    with pytest.raises(FileNotFoundError, match="train the source model first"):
        load_pretrained(MLPRegressor(MLPConfig(3, (4,))), tmp_path / "nope.pt")


def test_load_from_a_lightning_checkpoint(source, tmp_path):
    path = tmp_path / "task.ckpt"
    torch.save({"state_dict": source.state_dict()}, path)
    fresh = load_pretrained(MLPRegressor(MLPConfig(3, (16, 8))), path, prefix="model.")
    x, _ = data(5)
    assert torch.allclose(fresh(torch.as_tensor(x))[0], source.model(torch.as_tensor(x))[0])
