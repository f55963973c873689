"""The registry: lookup order, checksums, downloads from a local HTTP server, clear errors."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import threading
from pathlib import Path

import pytest

from gapkit.data import registry
from gapkit.data.registry import (
    ChecksumError,
    DataFileNotFoundError,
    UnknownDatasetError,
    fetch,
    known_datasets,
)

PAYLOAD = b"formula,target\nSiO2,5.6\nNaCl,5.0\n"


@pytest.fixture
def fake_registry(monkeypatch):
    """Replace the registry with one small dataset whose single file is served locally."""
    entry = {"toy": {"toy.csv": {"sha256": hashlib.sha256(PAYLOAD).hexdigest(), "url": None}}}
    monkeypatch.setattr(registry, "_registry", lambda: entry)
    registry._verified.clear()
    return entry


@pytest.fixture
def http_server(tmp_path):
    """Serve tmp_path/www on 127.0.0.1 (an ephemeral port) for the duration of a test."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_registry_covers_every_shared_folder(shared_data_dir):
    folders = {p.name for p in shared_data_dir.iterdir() if p.is_dir()}
    assert folders == set(known_datasets())


def test_every_registered_file_exists_and_matches(shared_data_dir, monkeypatch):
    monkeypatch.setenv("GAPKIT_DATA_DIR", str(shared_data_dir))
    for dataset in known_datasets():
        for name in registry.list_files(dataset):
            assert fetch(dataset, name).is_file()


def test_local_dir_wins(fake_registry, tmp_path, monkeypatch, isolated_cache):
    (tmp_path / "local" / "toy").mkdir(parents=True)
    (tmp_path / "local" / "toy" / "toy.csv").write_bytes(PAYLOAD)
    monkeypatch.setenv("GAPKIT_DATA_DIR", str(tmp_path / "local"))
    assert fetch("toy", "toy.csv") == tmp_path / "local" / "toy" / "toy.csv"


def test_missing_file_names_env_var_and_dataset(fake_registry, tmp_path, monkeypatch, isolated_cache):
    monkeypatch.setenv("GAPKIT_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(DataFileNotFoundError) as err:
        fetch("toy", "toy.csv")
    assert "GAPKIT_DATA_DIR" in str(err.value) and "toy" in str(err.value)


def test_unknown_dataset_lists_known(fake_registry):
    with pytest.raises(UnknownDatasetError, match="Known datasets: toy"):
        fetch("nope", "x.csv")
    with pytest.raises(UnknownDatasetError, match="toy.csv"):
        fetch("toy", "other.csv")


def test_local_checksum_mismatch(fake_registry, tmp_path, monkeypatch, isolated_cache):
    (tmp_path / "local" / "toy").mkdir(parents=True)
    (tmp_path / "local" / "toy" / "toy.csv").write_bytes(PAYLOAD + b"tampered\n")
    monkeypatch.setenv("GAPKIT_DATA_DIR", str(tmp_path / "local"))
    with pytest.raises(ChecksumError, match="Checksum mismatch"):
        fetch("toy", "toy.csv")


def test_download_from_local_http_server(fake_registry, http_server, monkeypatch, isolated_cache):
    root, base = http_server
    (root / "toy.csv").write_bytes(PAYLOAD)
    fake_registry["toy"]["toy.csv"]["url"] = f"{base}/toy.csv"
    monkeypatch.delenv("GAPKIT_DATA_DIR", raising=False)
    path = fetch("toy", "toy.csv")
    assert path == isolated_cache / "toy" / "toy.csv"
    assert path.read_bytes() == PAYLOAD
    # second call is served from the cache: stop serving and it still works
    (root / "toy.csv").unlink()
    assert fetch("toy", "toy.csv") == path


def test_download_checksum_mismatch_leaves_nothing(fake_registry, http_server, monkeypatch, isolated_cache):
    root, base = http_server
    (root / "toy.csv").write_bytes(b"not the registered content\n")
    fake_registry["toy"]["toy.csv"]["url"] = f"{base}/toy.csv"
    monkeypatch.delenv("GAPKIT_DATA_DIR", raising=False)
    with pytest.raises(ChecksumError):
        fetch("toy", "toy.csv")
    assert not (isolated_cache / "toy" / "toy.csv").exists()


def test_download_unreachable_says_what_to_do(fake_registry, http_server, monkeypatch, isolated_cache):
    root, base = http_server
    fake_registry["toy"]["toy.csv"]["url"] = f"{base}/missing.csv"  # 404
    monkeypatch.delenv("GAPKIT_DATA_DIR", raising=False)
    with pytest.raises(DataFileNotFoundError, match="GAPKIT_DATA_DIR"):
        fetch("toy", "toy.csv")


def test_registry_json_is_well_formed():
    reg = json.loads(Path(registry.__file__).with_name("registry.json").read_text())
    for dataset, files in reg.items():
        for name, entry in files.items():
            assert len(entry["sha256"]) == 64
            assert entry["url"] is None or entry["url"].startswith("https://raw.githubusercontent.com/")
