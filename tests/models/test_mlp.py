"""The MLP regressor: shapes, input scaling, config errors, and a short training that must learn."""

import numpy as np
import pytest
import torch

from gapkit.models.mlp import MLPConfig, MLPRegressor, last_layers


def test_shapes_and_layer_names():
    model = MLPRegressor(MLPConfig(5, (8, 4)))
    z, s = model.forward_batch({"x": torch.randn(3, 5)})
    assert z.shape == s.shape == (3,)
    assert model.layer_names() == ["body.0", "body.1", "head"]
    assert list(last_layers(model, 2)) == ["body.1", "head"]
    with pytest.raises(ValueError, match="between 1 and 3"):
        last_layers(model, 4)


def test_input_scaling_is_part_of_the_model():
    model = MLPRegressor(MLPConfig(2, (4,)))
    x = torch.tensor([[0.0, 5.0], [2.0, 5.0], [4.0, 5.0]])
    model.set_input_scaling(x)
    assert torch.allclose(model.x_mean, torch.tensor([2.0, 5.0]))
    assert model.x_std[1] == 1.0  # a constant column is not divided by zero
    assert "x_mean" in model.state_dict()


@pytest.mark.parametrize("kwargs, match", [({"n_features": 0}, "n_features"), ({"n_features": 3, "hidden": ()}, "hidden"),
                                           ({"n_features": 3, "dropout": 1.0}, "dropout"),
                                           ({"n_features": 3, "activation": "gelu2"}, "activation")])
def test_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLPConfig(**kwargs)


def test_short_training_with_the_shared_trainer_learns(tmp_path):
    from gapkit.train.tabular import TabularFitConfig, fit_task, make_task, predict_task

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4)).astype(np.float32)
    y = (1.5 * x[:, 0] - x[:, 1] + 0.5 * x[:, 2] * x[:, 3]).astype(np.float32)
    config = TabularFitConfig(max_epochs=60, batch_size=32, lr_max=1e-2, patience=None, seed=0)
    torch.manual_seed(0)
    model = MLPRegressor(MLPConfig(4, (32, 32)))
    model.set_input_scaling(torch.as_tensor(x))
    task = fit_task(make_task(model, y, config), x[:300], y[:300], config, tmp_path / "run")
    pred, unc = predict_task(task, x[300:])
    mae = float(np.abs(pred - y[300:]).mean())
    assert mae < 0.25 * float(np.abs(y[300:] - y[:300].mean()).mean())  # far better than the mean
    assert (unc > 0).all()
