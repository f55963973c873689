"""MetalTask: softmax + cross-entropy in the shared trainer; probabilities sum to one; a tiny batch is memorised."""

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from gapkit.featurize.graphs import build_graph
from gapkit.models.cgcnn import CGCNNModel, atom_init_table
from gapkit.train.tasks import METAL, MaterialsDataset, MetalTask
from gapkit.train.trainer import TrainConfig, fit


def fcc_lattice(a: float) -> Lattice:
    return Lattice([[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]])


def materials() -> tuple[list[Structure], np.ndarray]:
    """Three fcc metals and three rock salts, as primitive cells (from_spacegroup costs seconds each)."""
    metal = lambda el, a: Structure(fcc_lattice(a), [el], [[0, 0, 0]])  # noqa: E731
    salt = lambda a, b, lat: Structure(fcc_lattice(lat), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])  # noqa: E731
    structs = [metal("Cu", 3.61), metal("Al", 4.05), salt("Na", "Cl", 5.64), salt("Mg", "O", 4.21),
               metal("Ag", 4.09), salt("K", "Br", 6.6)]
    return structs, np.array([1, 1, 0, 0, 1, 0], dtype=np.float32)


def tiny_task(seed: int = 0) -> MetalTask:
    torch.manual_seed(seed)
    model = CGCNNModel(atom_init_table("onehot"), node_dim=12, n_conv=2, hidden_dim=12, cutoff=6.0, gaussian_step=0.5)
    return MetalTask(model, lr_min=1e-3, lr_max=2e-2, cycle_epochs=2)


def dataset() -> MaterialsDataset:
    structs, labels = materials()
    return MaterialsDataset(graphs=[build_graph(s, cutoff=6.0) for s in structs], targets=labels)


def test_probabilities_sum_to_one_and_metal_is_column_one():
    task = tiny_task().eval()
    ds = dataset()
    with torch.no_grad():
        p = task(ds.collate(list(range(len(ds)))))
    assert p.shape == (6, 2)
    torch.testing.assert_close(p.sum(-1), torch.ones(6, dtype=p.dtype), rtol=0, atol=1e-6)
    assert METAL == 1


def test_classifier_overfits_a_tiny_batch_with_the_shared_trainer(tmp_path):
    ds = dataset()
    task = tiny_task()
    with torch.no_grad():
        before = float(torch.nn.functional.cross_entropy(task.model.outputs_batch(ds.collate(list(range(6)))),
                                                         ds.targets.long()))
    config = TrainConfig(max_epochs=60, run_dir=tmp_path / "run", device="cpu", monitor="train_loss", patience=None,
                         progress=False, seed=0)
    fit(task, ds.loader(batch_size=6, shuffle=True), None, config, resume=False)
    task.eval()
    with torch.no_grad():
        batch = ds.collate(list(range(6)))
        p_metal = task(batch)[:, METAL].numpy()
        after = float(torch.nn.functional.cross_entropy(task.model.outputs_batch(batch), ds.targets.long()))
    assert ((p_metal >= 0.5) == ds.targets.numpy().astype(bool)).all()
    assert after < 0.1 < before


def test_labels_must_be_zero_or_one():
    task = tiny_task()
    ds = dataset()
    batch = ds.collate([0, 1])
    batch["target"] = torch.tensor([0.0, 2.0])
    with pytest.raises(ValueError, match="0 \\(semiconductor\\) or 1 \\(metal\\)"):
        task._step(batch, "train")


def test_metal_task_needs_a_model_with_raw_outputs():
    with pytest.raises(TypeError, match="outputs_batch"):
        MetalTask(torch.nn.Linear(2, 2))
