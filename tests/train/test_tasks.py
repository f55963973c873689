"""The band-gap task: Laplace loss by hand, cyclic learning rate, resume after an interrupted run."""

import math

import numpy as np
import pytest
import torch

from gapkit.train.losses import laplace_nll
from gapkit.train.tasks import BandGapTask, MaterialsDataset
from gapkit.train.trainer import TrainConfig, fit, read_log




class Linear(torch.nn.Module):
    """A minimal forward_batch model: mean element vector -> (z, S)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(104, 8, padding_idx=0)
        self.out = torch.nn.Linear(8, 2)

    def forward_batch(self, batch):
        h = (self.emb(batch["elements"]) * batch["fractions"].unsqueeze(-1)).sum(1)
        return self.out(h).unbind(-1)


def tiny_dataset(n: int = 40, seed: int = 0) -> MaterialsDataset:
    rng = np.random.default_rng(seed)
    z = np.zeros((n, 7), dtype=np.int64)
    z[:, 0] = rng.integers(1, 90, n)
    z[:, 1] = rng.integers(1, 90, n)
    frac = np.zeros((n, 7), dtype=np.float32)
    frac[:, :2] = 0.5
    y = (z[:, 0] % 7 + z[:, 1] % 5).astype(np.float32) * 0.3
    return MaterialsDataset(z, frac, None, y)


def test_laplace_loss_matches_a_hand_computation():
    pred = torch.tensor([1.0, 2.0])
    log_scale = torch.tensor([0.0, math.log(2.0)])
    target = torch.tensor([0.0, 4.0])
    # 2*exp(0)*|1-0| + 0 = 2 ;  2*exp(-ln 2)*|2-4| + ln 2 = 2 + 0.6931
    assert float(laplace_nll(pred, log_scale, target)) == pytest.approx((2.0 + 2.0 + math.log(2.0)) / 2)
    assert float(laplace_nll(pred, log_scale, target, reduction="sum")) == pytest.approx(4.0 + math.log(2.0))


def test_dataset_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="common length"):
        MaterialsDataset(np.zeros((3, 7), dtype=np.int64), np.zeros((3, 7)), None, np.zeros(4))
    with pytest.raises(ValueError, match="go together"):
        MaterialsDataset(np.zeros((3, 7), dtype=np.int64), None, None, np.zeros(3))


def test_task_rejects_a_bad_target_scale():
    with pytest.raises(ValueError, match="target_std"):
        BandGapTask(Linear(), 1.0, 0.0)


def test_task_predicts_in_ev_with_the_stored_scaling():
    task = BandGapTask(Linear(), target_mean=2.0, target_std=3.0)
    batch = tiny_dataset(4).collate([0, 1, 2, 3])
    z, s = task.model.forward_batch(batch)
    gap, unc = task(batch)
    torch.testing.assert_close(gap, z * 3.0 + 2.0)
    torch.testing.assert_close(unc, torch.exp(s) / 2 * 3.0)  # the Laplace scale b = exp(S)/2 * std


def test_training_cycles_the_lr_and_resumes_after_an_interrupt(tmp_path):
    ds = tiny_dataset()
    lrs: list[float] = []

    import lightning as L

    class RecordLR(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    def run(max_epochs: int):
        torch.manual_seed(0)
        task = BandGapTask(Linear(), 1.0, 1.0)
        cfg = TrainConfig(max_epochs=max_epochs, run_dir=tmp_path / "run", progress=False, patience=None,
                          extra_callbacks=[RecordLR()])
        return fit(task, ds.loader(10, shuffle=True), ds.loader(20), cfg)

    first = run(2)  # the "interrupted" run: 2 epochs, 4 steps each
    assert first.current_epoch == 2 and first.global_step == 8
    # the LR climbs from 1e-4 for one epoch, then descends: one full cycle every 2 epochs
    assert lrs[0] == pytest.approx(1e-4) and max(lrs) == pytest.approx(1e-2)
    assert lrs[4] == pytest.approx(1e-2) and lrs[7] < lrs[4]
    lrs.clear()
    second = run(4)  # asked for 4 epochs: continues at epoch 2, does not restart
    assert second.current_epoch == 4 and second.global_step == 16
    assert len(lrs) == 8 and lrs[0] == pytest.approx(1e-4)  # the scheduler state came back too
    log = read_log(tmp_path / "run")
    assert log["epoch"].tolist() == [0, 1, 2, 3]
    assert {"train_loss", "val_loss", "train_mae", "val_mae"} <= set(log.columns)
    assert log["val_mae"].notna().all()


def test_two_data_parallel_processes_train_like_one(tmp_path):
    """DDP with two CPU processes (gloo) on half batches gives the weights of one process on whole batches:
    the distributed sampler deals each rank every other row of the same shuffled order, and the gradients
    are averaged."""
    ds = tiny_dataset()

    def run(name: str, batch: int, devices: int):
        torch.manual_seed(0)
        task = BandGapTask(Linear(), 1.0, 1.0)
        cfg = TrainConfig(max_epochs=2, run_dir=tmp_path / name, progress=False, patience=None, devices=devices,
                          strategy="ddp_spawn")
        fit(task, ds.loader(batch), ds.loader(20), cfg, resume=False)
        return torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=False)

    one = run("one", 10, devices=1)
    two = run("two", 5, devices=2)
    assert two["global_step"] == one["global_step"] == 8
    for key, value in one["state_dict"].items():
        torch.testing.assert_close(two["state_dict"][key], value, rtol=1e-5, atol=1e-6)
    log = read_log(tmp_path / "two")
    assert log["val_mae"].notna().all() and len(log) == 2


@pytest.mark.parametrize("keep", [True, False])
def test_cpu_training_keeps_large_allocations_unless_told_not_to(tmp_path, monkeypatch, keep):
    from gapkit.train import trainer

    calls = []
    monkeypatch.setattr(trainer, "keep_large_allocations", lambda: calls.append(1) or True)
    ds = tiny_dataset(20)
    cfg = TrainConfig(max_epochs=1, run_dir=tmp_path / "run", device="cpu", progress=False, patience=None,
                      keep_allocations=keep)
    fit(BandGapTask(Linear(), 1.0, 1.0), ds.loader(10), None, cfg)
    assert calls == ([1] if keep else [])

