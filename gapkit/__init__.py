"""gapkit: machine-learning band gaps and ML-accelerated crystal structure search, the companion of the gapkit book."""

from importlib import import_module

__version__ = "0.1.0"

_SUBMODULES = {"data", "featurize", "embeddings", "estimators", "results", "runtime", "models", "train",
               "evaluate", "search", "baselines"}


def __getattr__(name: str):
    # Lazy submodules keep `import gapkit` fast (torch and pymatgen load only when used).
    if name in _SUBMODULES:
        return import_module(f"gapkit.{name}")
    raise AttributeError(f"module 'gapkit' has no attribute {name!r}")
