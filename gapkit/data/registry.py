"""Where dataset files live: ``GAPKIT_DATA_DIR``, then the user cache, then a checked download.

Every file gapkit reads from a public dataset is listed in ``registry.json`` with its sha256 and,
where the file is a verbatim copy of a file in a public repository, the URL of that file at a pinned
commit. Files that were repackaged for this project (e.g. the gzip shards of the MP CIFs) have no
public URL: they must be placed in ``GAPKIT_DATA_DIR``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from functools import lru_cache
from pathlib import Path

import pooch

logger = logging.getLogger(__name__)

ENV_VAR = "GAPKIT_DATA_DIR"
CACHE_ENV_VAR = "GAPKIT_CACHE_DIR"
_REGISTRY_FILE = Path(__file__).with_name("registry.json")


class DataError(Exception):
    """Base class of every data-registry error."""


class UnknownDatasetError(DataError, KeyError):
    """A dataset or file name that the registry does not know."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


class DataFileNotFoundError(DataError, FileNotFoundError):
    """A registered file that is neither local, cached nor downloadable."""


class ChecksumError(DataError):
    """A file whose sha256 differs from the registered one."""


@lru_cache(maxsize=1)
def _registry() -> dict[str, dict[str, dict]]:
    with open(_REGISTRY_FILE) as fh:
        return json.load(fh)


def list_files(dataset: str) -> list[str]:
    """Return the registered file names of one dataset."""
    return sorted(_dataset_entry(dataset))


def known_datasets() -> list[str]:
    """Return the names of every registered dataset folder."""
    return sorted(_registry())


def _dataset_entry(dataset: str) -> dict[str, dict]:
    reg = _registry()
    if dataset not in reg:
        raise UnknownDatasetError(
            f"Unknown dataset {dataset!r}. Known datasets: {', '.join(sorted(reg))}."
        )
    return reg[dataset]


def _file_entry(dataset: str, filename: str) -> dict:
    entry = _dataset_entry(dataset)
    if filename not in entry:
        raise UnknownDatasetError(
            f"Dataset {dataset!r} has no file {filename!r}. Its files: {', '.join(sorted(entry))}."
        )
    return entry[filename]


def data_dir() -> Path | None:
    """Return the local data directory from ``GAPKIT_DATA_DIR``, or None when unset."""
    value = os.environ.get(ENV_VAR, "").strip()
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Return the user cache directory (``GAPKIT_CACHE_DIR`` or pooch's OS cache for gapkit)."""
    value = os.environ.get(CACHE_ENV_VAR, "").strip()
    return Path(value).expanduser() if value else Path(pooch.os_cache("gapkit"))


def sha256sum(path: Path) -> str:
    """Return the hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Hashing an 18 MB shard costs ~50 ms; remember files already verified (by size and mtime).
_verified: dict[tuple[str, int, int], str] = {}


def _verify(path: Path, expected: str, dataset: str, filename: str) -> None:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if _verified.get(key) == expected:
        return
    actual = sha256sum(path)
    if actual != expected:
        raise ChecksumError(
            f"Checksum mismatch for {dataset}/{filename} at {path}: sha256 {actual} but the "
            f"registry expects {expected}. The file is corrupt or a different version; replace it "
            f"with the original (see {dataset}/SOURCE.md)."
        )
    _verified[key] = expected


def fetch(dataset: str, filename: str, *, verify: bool = True) -> Path:
    """Return a local path to a registered file, downloading it into the cache if needed."""
    entry = _file_entry(dataset, filename)
    expected = entry["sha256"]
    searched = []
    local_root = data_dir()
    if local_root is not None:
        local = local_root / dataset / filename
        searched.append(str(local))
        if local.is_file():
            if verify:
                _verify(local, expected, dataset, filename)
            return local
    cached = cache_dir() / dataset / filename
    searched.append(str(cached))
    if cached.is_file():
        if verify:
            _verify(cached, expected, dataset, filename)
        return cached
    url = entry.get("url")
    if not url:
        where = f"{ENV_VAR}={local_root}" if local_root else f"{ENV_VAR} is not set"
        raise DataFileNotFoundError(
            f"Dataset {dataset!r}: file {filename!r} not found ({where}; looked in "
            f"{', '.join(searched)}) and it has no public download. Set {ENV_VAR} to the folder "
            f"that holds '{dataset}/' (in this project: ../shared/data)."
        )
    return _download(url, expected, cached, dataset, filename)


def _download(url: str, expected: str, target: Path, dataset: str, filename: str) -> Path:
    """Download into the cache with pooch; a failed or mismatching download leaves nothing behind."""
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.info("Downloading %s/%s from %s", dataset, filename, url)
    try:
        path = pooch.retrieve(
            url=url,
            known_hash=f"sha256:{expected}",
            fname=target.name,
            path=target.parent,
            progressbar=False,
        )
    except ValueError as exc:  # pooch raises ValueError on a hash mismatch and deletes the file
        raise ChecksumError(
            f"Checksum mismatch downloading {dataset}/{filename} from {url}: {exc}"
        ) from exc
    except Exception as exc:  # network errors come from requests; keep the message, add context
        raise DataFileNotFoundError(
            f"Dataset {dataset!r}: could not download {filename!r} from {url} ({exc}). "
            f"Without internet, set {ENV_VAR} to a folder holding '{dataset}/{filename}'."
        ) from exc
    return Path(path)
