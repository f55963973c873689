"""The data-scale training campaign of the models chapter: every model on all the data, resumable run by run.

A campaign is a list of runs (dataset, model, split seed). Each run trains in its own folder with
checkpoints, so a stopped campaign resumes where it stopped (a finished run is read back from its
``result.json``, a killed one continues from its last checkpoint). ``summarise`` turns the finished runs
into the metrics of ``results/models-full.json``: per model, the test MAE of every split, their mean
and standard deviation, and the per-split paired differences of the fusion against each parent.

    python -m gapkit.train.campaign --root runs/models-full      # runs what is missing, in order
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

# model name (as in results/models-*.json) -> (estimator class name, its own parameters)
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "CGCNN": ("CGCNN", {}),
    "CrabNet (mat2vec)": ("CrabNet", {"embedding": "crabnet_mat2vec"}),
    "HotCrab (one-hot)": ("CrabNet", {"embedding": "crabnet_onehot"}),
    "CrabNet (Magpie)": ("CrabNet", {"embedding": "crabnet_magpie"}),
    "CGCrabNet (7:3)": ("CGCrabNet", {}),
    "CGCrabNet (learned)": ("CGCrabNet", {"weights": "learned"}),
}
DATASETS = ("mp", "oqmd")
HEADLINE = ("CGCNN", "CrabNet (mat2vec)", "CGCrabNet (learned)")  # trained on several splits
COMPOSITION_ONLY = ("CrabNet (mat2vec)", "HotCrab (one-hot)", "CrabNet (Magpie)")


@dataclass(frozen=True)
class CampaignConfig:
    """Hyperparameters shared by every run of the campaign (the paper's, scaled to the CPU time we have)."""

    max_epochs: int = 40
    patience: int = 10
    batch_size: int = 256
    crab: dict[str, Any] = field(default_factory=lambda: dict(d_model=256, d_ff=1024, n_layers=3, n_heads=4,
                                                              head_dims=(512, 256, 128), dropout=0.1))
    cgcnn: dict[str, Any] = field(default_factory=lambda: dict(node_dim=64, hidden_dim=128, n_conv=3))
    split: tuple[float, float, float] = (0.6, 0.2, 0.2)
    split_seeds: tuple[int, ...] = (0, 1, 2)
    threads: int = 2

    def __post_init__(self) -> None:
        if self.max_epochs < 1 or self.patience < 1 or self.batch_size < 1:
            raise ValueError("max_epochs, patience and batch_size must be positive.")
        if not np.isclose(sum(self.split), 1.0):
            raise ValueError(f"split fractions must sum to 1, got {self.split}.")
        if not self.split_seeds:
            raise ValueError("At least one split seed is needed.")
        if self.threads < 1:
            raise ValueError(f"threads must be positive, got {self.threads}.")


@dataclass(frozen=True)
class Run:
    """One training run: a model on one dataset's split."""

    dataset: str
    model: str
    split_seed: int

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"Unknown dataset {self.dataset!r}; choose from {DATASETS}.")
        if self.model not in MODELS:
            raise ValueError(f"Unknown model {self.model!r}; choose from {list(MODELS)}.")
        if self.dataset == "oqmd" and self.model not in COMPOSITION_ONLY:
            raise ValueError(f"{self.model} needs structures; OQMD rows have formulas only.")

    @property
    def key(self) -> str:
        """A folder name for the run, e.g. 'mp-cgcrabnet-learned-split0'."""
        slug = "".join(c if c.isalnum() else "-" for c in self.model.lower()).strip("-")
        while "--" in slug:
            slug = slug.replace("--", "-")
        return f"{self.dataset}-{slug}-split{self.split_seed}"


def plan(config: CampaignConfig) -> list[Run]:
    """Every run of the campaign, most important first (so a short session yields the headline)."""
    first = config.split_seeds[0]
    runs = [Run("mp", m, first) for m in ("CGCrabNet (learned)", "CGCNN", "CrabNet (mat2vec)")]
    runs.append(Run("oqmd", "CrabNet (mat2vec)", first))
    runs += [Run("mp", m, s) for s in config.split_seeds[1:] for m in HEADLINE]
    runs += [Run("mp", m, first) for m in ("CGCrabNet (7:3)", "HotCrab (one-hot)", "CrabNet (Magpie)")]
    runs += [Run("oqmd", m, first) for m in ("HotCrab (one-hot)", "CrabNet (Magpie)")]
    return runs


def perovskite_targets() -> tuple[set[str], list[str]]:
    """MP ids and formulas of the 175 CGCrabNet perovskites, kept out of every training set (transfer chapter)."""
    from gapkit.data import load_perovskites_175

    targets = load_perovskites_175()
    return set(targets["mp_id"]), list(targets["formula"])


def load_splits(dataset: str, split_seed: int, config: CampaignConfig) -> dict[str, pd.DataFrame]:
    """Formula-grouped train/val/test of a dataset; the perovskite targets are removed from train and val."""
    from gapkit.data import load_mp_structures, load_oqmd_bandgap
    from gapkit.data.splits import remove_materials, train_val_test_split

    df = load_mp_structures(nonzero=True, progress=False) if dataset == "mp" else load_oqmd_bandgap(nonzero=True)
    train, val, test = train_val_test_split(df, config.split, seed=split_seed)
    ids, formulas = perovskite_targets()
    ids = ids if "mp_id" in df.columns else None  # OQMD rows have formulas only
    return {"train": remove_materials(train, ids=ids, formulas=formulas),
            "val": remove_materials(val, ids=ids, formulas=formulas), "test": test}


def make_estimator(run: Run, config: CampaignConfig, run_dir: Path):
    """The estimator of a run, with the campaign's hyperparameters."""
    from gapkit import estimators

    cls_name, own = MODELS[run.model]
    cls = getattr(estimators, cls_name)
    params: dict[str, Any] = dict(max_epochs=config.max_epochs, patience=config.patience,
                                  batch_size=config.batch_size, seed=run.split_seed, run_dir=run_dir, progress=True)
    if cls.uses_composition:
        params.update(config.crab)
    if cls.uses_structure and cls_name == "CGCNN":
        params.update(config.cgcnn)  # the fusion keeps the paper's own structure branch (one-hot, 16)
    return cls(**params, **own)


def train_run(run: Run, config: CampaignConfig, root: Path, splits: dict[str, pd.DataFrame],
              retrain: bool = False) -> dict[str, Any]:
    """Train one run (resuming a killed one), save its model, and write and return its result; ``retrain``
    ignores a result kept in the committed ledger (e.g. one trained from a modified tree), not one under ``root``."""
    from gapkit.evaluate.metrics import regression_metrics
    from gapkit.results import git_commit
    from gapkit.runtime import describe_device

    folder = root / run.key
    done = folder / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    kept = results_dir_for_artefacts() / f"result-{run.key}.json"
    if kept.is_file() and not retrain:  # finished in an earlier session, its folder gone
        return json.loads(kept.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    estimator = make_estimator(run, config, folder / "train")
    start = time.perf_counter()
    estimator.fit(splits["train"], splits["val"], resume=True)
    wall = time.perf_counter() - start
    maes = {name: regression_metrics(df["gap_ev"], estimator.predict(df)["gap_ev"])["mae"]
            for name, df in splits.items()}
    estimator.save(folder / "model.pt")
    history = estimator.history()
    test_pred = estimator.predict(splits["test"])
    pd.DataFrame({"formula": splits["test"]["formula"], "gap_ev": splits["test"]["gap_ev"],
                  "pred_ev": test_pred["gap_ev"], "uncertainty_ev": test_pred["uncertainty_ev"]}
                 ).to_csv(folder / "test_predictions.csv", index=False)
    result = {"run": asdict(run), "key": run.key, "mae": {k: round(v, 4) for k, v in maes.items()},
              "n": {k: len(v) for k, v in splits.items()}, "epochs": int(history["epoch"].max()) + 1,
              "best_epoch": int(history.loc[history["val_mae"].idxmin(), "epoch"]),
              "wall_time_s": round(wall, 1), "device": describe_device(), "commit": git_commit(),
              "history": history.round(5).to_dict(orient="list")}
    if run.model == "CGCrabNet (learned)":
        result["learned_weights"] = [round(float(w), 4) for w in estimator.task_.model.weights.detach()]
    done.write_text(json.dumps(result, indent=1) + "\n")
    return result


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Metrics of results/models-full.json: per dataset and model, test MAE mean, std and per split;
    the fusion's per-split paired differences against each parent (negative = the fusion is better)."""
    out: dict[str, Any] = {"mp_mae": {}, "oqmd_mae": {}}
    by = {(r["run"]["dataset"], r["run"]["model"]): [] for r in results}
    for r in sorted(results, key=lambda r: r["run"]["split_seed"]):
        by[(r["run"]["dataset"], r["run"]["model"])].append(r)
    for (dataset, model), rs in by.items():
        tests = [r["mae"]["test"] for r in rs]
        out[f"{dataset}_mae"][model] = {
            "test_mean": round(float(np.mean(tests)), 4),
            "test_std": round(float(np.std(tests, ddof=1)), 4) if len(tests) > 1 else None,
            "per_split": tests, "split_seeds": [r["run"]["split_seed"] for r in rs],
            "train": rs[0]["mae"]["train"], "val": rs[0]["mae"]["val"],
            "epochs": [r["epochs"] for r in rs], "wall_time_s": [r["wall_time_s"] for r in rs]}
    fusion = out["mp_mae"].get("CGCrabNet (learned)")
    out["paired_difference"] = {}
    for parent in ("CGCNN", "CrabNet (mat2vec)"):
        other = out["mp_mae"].get(parent)
        if fusion and other:
            common = sorted(set(fusion["split_seeds"]) & set(other["split_seeds"]))
            diffs = [round(fusion["per_split"][fusion["split_seeds"].index(s)]
                           - other["per_split"][other["split_seeds"].index(s)], 4) for s in common]
            out["paired_difference"][f"CGCrabNet (learned) - {parent}"] = {
                "split_seeds": common, "per_split": diffs,
                "verdict": verdict(diffs)}
    return out


def verdict(diffs: list[float]) -> str:
    """'beats' only when every split agrees (and there are at least 3), else 'no significant difference'."""
    if len(diffs) >= 3 and all(d < 0 for d in diffs):
        return "beats"
    if len(diffs) >= 3 and all(d > 0 for d in diffs):
        return "worse"
    return "no significant difference" if len(diffs) >= 3 else f"not enough splits ({len(diffs)} of 3)"


def run_campaign(root: Path, config: CampaignConfig, only: list[str] | None = None,
                 retrain: bool = False) -> list[dict[str, Any]]:
    """Train every planned run that is not finished yet (``only``: run keys to restrict to; ``retrain``: train
    them again under ``root`` even where the committed ledger has their result)."""
    import torch

    torch.set_num_threads(config.threads)
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(asdict(config), indent=1) + "\n")
    results, cache = [], {}
    for run in plan(config):
        if only and run.key not in only:
            continue
        kept = () if retrain else (results_dir_for_artefacts() / f"result-{run.key}.json",)
        if not any(p.is_file() for p in (root / run.key / "result.json", *kept)):
            data_key = (run.dataset, run.split_seed)
            if data_key not in cache:
                cache.clear()  # one dataset in memory at a time
                cache[data_key] = load_splits(run.dataset, run.split_seed, config)
            logger.info("training %s", run.key)
        result = train_run(run, config, root, cache.get((run.dataset, run.split_seed), {}), retrain=retrain)
        logger.info("%s: test MAE %.4f eV after %d epochs (%.0f s)", run.key, result["mae"]["test"],
                    result["epochs"], result["wall_time_s"])
        results.append(result)
    return results


def finished(root: Path, ledger: Path | None = None) -> list[dict[str, Any]]:
    """The results of every finished run: under ``root``, and in the committed ledger (results/models-full/),
    so a fresh clone keeps the statistics of runs whose folders are gone."""
    found = {p.parent.name: json.loads(p.read_text()) for p in sorted(Path(root).glob("*/result.json"))}
    ledger = results_dir_for_artefacts() if ledger is None else ledger
    for path in sorted(ledger.glob("result-*.json")) if ledger.is_dir() else []:
        found.setdefault(path.stem.removeprefix("result-"), json.loads(path.read_text()))
    return [found[k] for k in sorted(found)]


# shipped model name -> the run it comes from (split 0: the split the book's tables use)
SHIPPED: dict[str, Run] = {
    "cgcrabnet-mp-gap": Run("mp", "CGCrabNet (learned)", 0),
    "cgcnn-mp-gap": Run("mp", "CGCNN", 0),
    "crabnet-mp-gap": Run("mp", "CrabNet (mat2vec)", 0),
    "crabnet-oqmd-gap": Run("oqmd", "CrabNet (mat2vec)", 0),
}
DATA_NAMES = {"mp": "Materials Project PBE band gaps > 0 (mp_structures_kdmsit), structures",
              "oqmd": "OQMD PBE band gaps > 0 (oqmd_bandgap_crabnet), formulas"}
HALF_PRECISION_TOLERANCE_EV = 0.005  # ship float16 weights only if the test MAE moves less than this


def record(root: Path, config: CampaignConfig) -> Path:
    """Write results/models-full.json from the finished runs (pending runs listed, never invented)."""
    from gapkit.results import record_results

    results = finished(root)
    if not results:
        raise FileNotFoundError(f"No finished run under {root}: run the campaign first.")
    metrics = summarise(results)
    mp = [r for r in results if r["run"]["dataset"] == "mp"]
    metrics["n_train_mp"] = mp[0]["n"]["train"] if mp else None
    metrics["n_mp"] = sum(mp[0]["n"].values()) if mp else None
    metrics["epochs"] = {r["key"]: r["epochs"] for r in results}
    metrics["settings"] = {k: v for k, v in asdict(config).items() if k != "threads"}
    metrics["learned_weights"] = {r["key"]: r["learned_weights"] for r in results if "learned_weights" in r}
    metrics["epoch_time_s"] = {r["key"]: round(r["wall_time_s"] / max(1, r["epochs"]), 1) for r in results}
    done = {r["key"] for r in results}
    metrics["runs_pending"] = [r.key for r in plan(config) if r.key not in done]
    export_artefacts(root, results_dir_for_artefacts())
    devices = sorted({r.get("device", "unknown") for r in results})
    commits = sorted({r.get("commit", "unknown") for r in results})
    notes = (f"{len(done)} of {len(plan(config))} planned runs finished; commits of the runs: {', '.join(commits)}. "
             "Perovskite targets of the transfer chapter were removed from every train and val set.")
    return record_results("models", "full", metrics, device="; ".join(devices),
                          wall_time_s=sum(r["wall_time_s"] for r in results), seed=0, notes=notes)


def results_dir_for_artefacts() -> Path:
    """results/models-full/: the training curves and test predictions the models chapter draws."""
    from gapkit.results import results_dir

    return results_dir() / "models-full"


def export_artefacts(root: Path, dest: Path) -> list[Path]:
    """Copy every finished run's result (the ledger) and each split-0 run's training log and test
    predictions (rounded CSV) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for result in finished(root, dest):
        written.append(dest / f"result-{result['key']}.json")
        written[-1].write_text(json.dumps(result, indent=1) + "\n")
        if result["run"]["split_seed"] != 0 or not (root / result["key"] / "test_predictions.csv").is_file():
            continue
        history = pd.DataFrame(result["history"])
        cols = [c for c in ("epoch", "train_loss", "val_loss", "train_mae", "val_mae") if c in history.columns]
        written.append(dest / f"history-{result['key']}.csv")
        history[cols].round(4).to_csv(written[-1], index=False)
        # the gap only: the uncertainty chapter derives its scales from the shipped models themselves
        preds = pd.read_csv(root / result["key"] / "test_predictions.csv")[["formula", "gap_ev", "pred_ev"]].round(3)
        written.append(dest / f"test-{result['key']}.csv")
        preds.to_csv(written[-1], index=False)
    return written


def ship(root: Path, config: CampaignConfig, folder: Path | None = None) -> list[Path]:
    """Export the finished runs of SHIPPED into the pretrained folder with their model cards."""
    from gapkit import pretrained
    from gapkit.estimators import BandGapEstimator
    from gapkit.evaluate.metrics import regression_metrics

    folder = folder or pretrained.pretrained_dir()
    folder.mkdir(parents=True, exist_ok=True)
    written, splits_of = [], {}
    for name, run in SHIPPED.items():
        result_path = root / run.key / "result.json"
        if not result_path.is_file():
            logger.info("not shipping %s: run %s has not finished", name, run.key)
            continue
        result = json.loads(result_path.read_text())
        card_path = folder / f"{name}.json"
        if card_path.is_file() and (folder / f"{name}.pt").is_file():
            old = json.loads(card_path.read_text())
            if old["provenance"].get("run") == run.key and "calibration" in old:
                continue  # shipped already from this run
        estimator = BandGapEstimator.load(root / run.key / "model.pt")
        key = (run.dataset, run.split_seed)
        if key not in splits_of:  # the MP models share one split: parse and featurise it once
            splits_of = {key: load_splits(run.dataset, run.split_seed, config)}
        splits = splits_of[key]
        test = splits["test"]
        # intervals out of the box: scaled split-conformal scores from the validation split (uncertainty chapter)
        estimator.calibrate(splits["val"])
        card = dict(training_data=f"{DATA_NAMES[run.dataset]}; {result['n']['train']} train / "
                                  f"{result['n']['val']} val; the 175 CGCrabNet perovskites removed",
                    split=f"formula-grouped 6:2:2, seed {run.split_seed} (gapkit.data.splits.train_val_test_split)",
                    hyperparameters={k: (str(v) if isinstance(v, Path) else v) for k, v in estimator.params.items()
                                     if k not in ("run_dir", "graph_cache", "progress")},
                    provenance={"device": result.get("device"), "commit": result.get("commit"),
                                "wall_time_s": result["wall_time_s"], "epochs": result["epochs"],
                                "best_epoch": result["best_epoch"], "run": run.key},
                    calibration={"method": estimator.calibration_["method"], "n_val": estimator.calibration_["n"],
                                 "split": "val"})
        for half in (True, False):
            card["metrics"] = {"train_mae_ev": result["mae"]["train"], "val_mae_ev": result["mae"]["val"],
                               "test_mae_ev": result["mae"]["test"], "n_test": len(test)}
            path = pretrained.export(estimator, name, folder, half=half, **card)
            shipped = BandGapEstimator.load(path)
            shipped_mae = regression_metrics(test["gap_ev"], shipped.predict(test)["gap_ev"])["mae"]
            if not half or abs(shipped_mae - result["mae"]["test"]) < HALF_PRECISION_TOLERANCE_EV:
                card["metrics"]["test_mae_ev_as_shipped"] = round(shipped_mae, 4)
                pretrained.export(estimator, name, folder, half=half, **card)
                break
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line: run the campaign (or the listed run keys) under --root."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path("runs/models-full"))
    parser.add_argument("--only", nargs="*", help="run keys to train (default: every planned run)")
    parser.add_argument("--retrain", action="store_true",
                        help="with --only: train those runs again under --root although the ledger has them")
    parser.add_argument("--plan", action="store_true", help="print the planned run keys and exit")
    parser.add_argument("--record", action="store_true", help="write results/models-full.json from finished runs")
    parser.add_argument("--ship", action="store_true", help="export finished shipped runs to data/pretrained")
    parser.add_argument("--threads", type=int, default=CampaignConfig.threads,
                        help="torch CPU threads (results do not depend on it; only the wall time does)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    config = CampaignConfig(threads=args.threads)
    if args.plan:
        print("\n".join(r.key for r in plan(config)))
        return 0
    if args.record or args.ship:
        if args.ship:
            for path in ship(args.root, config):
                print("shipped", path)
        if args.record:
            print("recorded", record(args.root, config))
        return 0
    if args.retrain and not args.only:
        parser.error("--retrain needs --only KEY...: retraining every run is a new campaign (a new --root)")
    run_campaign(args.root, config, args.only, retrain=args.retrain)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
