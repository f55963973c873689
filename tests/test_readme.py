"""The README tells the truth: its Python blocks run as written, its chapter table matches the book,
and its headline numbers are the ones the committed records hold."""

import json
import re
import subprocess
from pathlib import Path

import pytest

from gapkit.results import _flatten, repo_root

ROOT = repo_root(Path(__file__).parent)
README = (ROOT / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"^```python\n(.*?)^```", README, flags=re.M | re.S)


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, flags=re.M | re.S)
    assert match, f"README has no section '## {title}'"
    return match.group(1)


def _table_rows(text: str) -> list[list[str]]:
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("|")]
    return rows[2:]  # header and separator


def test_readme_has_python_blocks():
    assert len(PYTHON_BLOCKS) >= 2  # a band-gap and a structure-search quickstart


@pytest.mark.parametrize("source", PYTHON_BLOCKS, ids=[f"block{i}" for i in range(len(PYTHON_BLOCKS))])
def test_python_block_runs_as_written(source, tmp_path, monkeypatch, request):
    if "gapkit.data" in source:  # a block that loads the real datasets needs them
        request.getfixturevalue("shared_data_dir")
    # each block stands alone (a user may copy just one), and runs where a user would: files go to ./runs
    monkeypatch.chdir(tmp_path)
    exec(compile(source, "README.md", "exec"), {"__name__": "__readme__"})


def _committed(path: Path) -> bool:
    """Whether git tracks ``path`` (a chapter being written in a shared checkout is not yet in the book)."""
    try:
        done = subprocess.run(["git", "ls-files", "--error-unmatch", str(path.relative_to(ROOT))], cwd=ROOT,
                              capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return path.is_file()  # no git: the files are the checkout
    return done.returncode == 0


def test_chapter_table_is_true():
    rows = _table_rows(_section("Chapters"))
    toc = set(re.findall(r"^\s*- file:\s*(book/\w+)\s*$", (ROOT / "_toc.yml").read_text(), flags=re.M))
    listed = set()
    for chapter, _paper, status in rows:
        name = re.search(r"`(book/\w+)`", chapter).group(1)
        listed.add(name)
        written = _committed(ROOT / f"{name}.ipynb")
        assert status.startswith("written") == written, (
            f"README says {name} is '{status}' but {name}.ipynb {'is' if written else 'is not'} committed: "
            "update the README's chapter table")
    assert toc <= listed, f"chapters in _toc.yml missing from the README table: {sorted(toc - listed)}"


def test_headline_numbers_are_the_records():
    rows = _table_rows(_section("Headline results"))
    assert rows
    for what, ours, _paper, source in rows:
        file, keys = re.fullmatch(r"`([^`]+\.json)`: (.+)", source).groups()
        metrics = _flatten(json.loads((ROOT / "results" / file).read_text())["metrics"])
        values = [metrics[key] for key in re.findall(r"`([^`]+)`", keys)]
        printed = re.findall(r"-?\d+(?:\.\d+)?", ours)
        # a number is printed rounded (to the decimals shown), never altered
        rounded = [round(float(v), len(p.partition(".")[2])) for p, v in zip(printed, values)]
        assert [float(p) for p in printed] == rounded and len(printed) == len(values), (
            f"README row '{what}': {ours} but {file} holds {values}")


def test_no_run_history_in_the_readme():
    # results belong in the records, the reproduction page and benchmarks/RESULTS.md, not in prose here
    assert len(README.split()) < 1000 and len(README.splitlines()) < 150  # a user's README
    assert len(re.findall(r"\d+(?:\.\d+)?x\b", README)) <= 2  # speed-up ratios
