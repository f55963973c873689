"""Shipped, checksummed band-gap models: ``load(name)`` gives a fitted estimator, ``list()`` shows them.

    import gapkit.pretrained as pretrained
    pretrained.list()                              # name, data, split, test MAE, size
    model = pretrained.load("cgcrabnet-mp-gap")    # a fitted gapkit.estimators.CGCrabNet
    model.predict([structure])                     # gap_ev, uncertainty_ev

Each model is two files in ``data/pretrained/`` of the gapkit checkout (or ``GAPKIT_PRETRAINED_DIR``):
``<name>.pt`` (an estimator file written by ``BandGapEstimator.save``, floating tensors stored in half
precision where that kept the test MAE) and ``<name>.json``, its model card: training data, split,
hyperparameters, metrics, device, commit, wall time and the sha256 of the weights, checked on every load.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from gapkit.results import repo_root

PRETRAINED_ENV_VAR = "GAPKIT_PRETRAINED_DIR"
CARD_KEYS = ("name", "estimator", "file", "sha256", "training_data", "split", "metrics", "hyperparameters",
             "provenance")


class PretrainedModelError(RuntimeError):
    """A shipped model that is unknown, missing or corrupt."""


def pretrained_dir() -> Path:
    """Where shipped models live: ``GAPKIT_PRETRAINED_DIR``, else ``data/pretrained`` of the checkout."""
    env = os.environ.get(PRETRAINED_ENV_VAR, "").strip()
    if env:
        return Path(env)
    root = repo_root(Path(__file__).parent)
    if root is None:
        raise PretrainedModelError(
            f"No gapkit checkout found above {Path(__file__).parent}: the shipped models live in its "
            f"data/pretrained folder. Clone the gapkit book or set {PRETRAINED_ENV_VAR} to a folder of models.")
    return root / "data" / "pretrained"


def sha256(path: Path | str) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cards(folder: Path | None = None) -> dict[str, dict[str, Any]]:
    folder = folder or pretrained_dir()
    cards = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        card = json.loads(path.read_text())
        if isinstance(card, dict) and set(CARD_KEYS) <= set(card):
            cards[card["name"]] = card
    return cards


def card(name: str) -> dict[str, Any]:
    """The model card of a shipped model (data, split, hyperparameters, metrics, provenance, sha256)."""
    cards = _cards()
    if name not in cards:
        known = ", ".join(cards) or "none (the folder is empty)"
        raise PretrainedModelError(f"No shipped model named {name!r} in {pretrained_dir()}; known: {known}.")
    return cards[name]


def list() -> pd.DataFrame:  # noqa: A001 - the public name the book and README use
    """One row per shipped model: name, estimator, training data, split, test MAE (eV), size (MB)."""
    rows = []
    folder = pretrained_dir()
    for name, c in _cards(folder).items():
        weights = folder / c["file"]
        rows.append({"name": name, "estimator": c["estimator"], "training_data": c["training_data"],
                     "split": c["split"], "test_mae_ev": c["metrics"].get("test_mae_ev"),
                     "size_mb": round(weights.stat().st_size / 1e6, 1) if weights.is_file() else None})
    return pd.DataFrame(rows, columns=["name", "estimator", "training_data", "split", "test_mae_ev", "size_mb"])


def verified_path(name: str) -> Path:
    """The weight file of a shipped model, after checking that it exists and matches its card's sha256."""
    c = card(name)
    path = pretrained_dir() / c["file"]
    if not path.is_file():
        raise PretrainedModelError(f"The weights of {name!r} are missing: expected {path}. Restore the file from "
                                   "the gapkit repository (git checkout -- data/pretrained).")
    if sha256(path) != c["sha256"]:
        raise PretrainedModelError(f"The weights of {name!r} at {path} are corrupt (sha256 differs from its model "
                                   "card). Restore the file from the gapkit repository (git checkout -- "
                                   "data/pretrained).")
    return path


def resolve(name_or_path: str | Path) -> Path:
    """A saved-model path: the verified weights of a shipped model name, else the path itself."""
    path = Path(name_or_path)
    if path.suffix or path.exists():
        return path
    return verified_path(str(name_or_path))


def load(name: str):
    """A fitted estimator of a shipped model (CGCNN, CrabNet, CGCrabNet or a two-stage metal/gap model), checked by sha256."""
    from gapkit.estimators import load_estimator

    return load_estimator(verified_path(name))


def _halved(blob: dict[str, Any]) -> dict[str, Any]:
    """``blob`` with its floating-point weights in half precision (both stages of a two-stage model)."""
    out = dict(blob)
    if "state_dict" in out:
        out["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in out["state_dict"].items()}
    for part in ("classifier", "regressor"):
        if isinstance(out.get(part), dict):
            out[part] = _halved(out[part])
    return out


def export(estimator, name: str, folder: Path | str, *, half: bool = True, **card_fields: Any) -> Path:
    """Write ``<name>.pt`` (half precision when ``half``) and its model card ``<name>.json`` into ``folder``."""
    missing = set(CARD_KEYS) - {"name", "estimator", "file", "sha256"} - set(card_fields)
    if missing:
        raise ValueError(f"A model card needs {sorted(missing)}.")
    folder = Path(folder)
    path = estimator.save(folder / f"{name}.pt")
    if half:  # loading copies the weights into float32 parameters: half precision only shrinks the file
        torch.save(_halved(torch.load(path, map_location="cpu", weights_only=False)), path)
    c = {"name": name, "estimator": type(estimator).__name__, "file": path.name, "sha256": sha256(path),
         "half_precision": half, **card_fields}
    (folder / f"{name}.json").write_text(json.dumps(c, indent=2) + "\n")
    return path


__all__ = ["PretrainedModelError", "card", "export", "list", "load", "pretrained_dir", "resolve", "sha256",
           "verified_path"]
