"""The book's machinery: chapters take papermill's parameters, pages hide the injected cell, the build is offline."""

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

from gapkit._book import read_notebook
from gapkit.results import repo_root

ROOT = repo_root(Path(__file__).parent)
TOC_FILES = re.findall(r"^\s*- file:\s*(book/\w+)\s*$", (ROOT / "_toc.yml").read_text(), flags=re.M)
CHAPTERS = [ROOT / f"{name}.ipynb" for name in TOC_FILES if (ROOT / f"{name}.ipynb").is_file()]


def _load_checker():
    spec = importlib.util.spec_from_file_location("check_offline", ROOT / ".ci" / "check_offline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_takes_papermills_parameters_and_runs_quick_under_nbval(path):
    import papermill

    params = papermill.inspect_notebook(str(path))
    assert "profile" in params, f"{path.name}: the `parameters` cell must define profile"
    assert params["profile"]["default"].strip("\"'") == "quick"
    # nbval executes the committed notebook as it is, injected parameters included: they must say quick too
    for cell in nbformat.read(path, as_version=4).cells:
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            assert re.search(r"""^profile = ["']quick["']""", cell.source, flags=re.M), \
                f"{path.name} was committed after a non-quick papermill run; re-run `make book`"


def test_rendered_pages_hide_the_injected_parameters_cell():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('profile = "quick"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell('# Parameters\nprofile = "full"\n', metadata={"tags": ["injected-parameters"]})])
    read = read_notebook(nbformat.writes(nb))
    assert read.cells[0].metadata["tags"] == ["parameters"]
    assert read.cells[1].metadata["tags"] == ["injected-parameters", "remove-cell"]
    assert "gapkit._book.read_notebook" in (ROOT / "_config.yml").read_text()


def test_offline_check_flags_cdn_scripts_and_missing_files(tmp_path):
    checker = _load_checker()
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "mathjax.js").write_text("")
    (tmp_path / "index.html").write_text(
        '<script src="_static/mathjax.js"></script><link rel="next" href="https://example.org/x.html">')
    assert checker.problems(tmp_path) == []
    (tmp_path / "page.html").write_text(
        '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>'
        '<link rel="stylesheet" href="_static/gone.css"><img src="//cdn.example.org/logo.png">')
    found = checker.problems(tmp_path)
    assert len(found) == 3 and sum("outside the build" in line for line in found) == 2
    assert checker.main(["check_offline.py", str(tmp_path)]) == 1


def test_ci_runs_the_readmes_test_command():
    assert re.search(r"^make test$", (ROOT / ".ci" / "run").read_text(), flags=re.M)
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: install unit nbval$", makefile, flags=re.M)  # each notebook executed once
    assert "check_offline.py" in makefile


# distributions used as tools (commands, plugins, kernels), not imported by our code
_TOOLS = {"jupyter-book", "sphinx-mathjax-offline", "papermill", "ipykernel", "pytest", "nbval", "gapkit"}
_IMPORT_NAMES = {"scikit-learn": "sklearn", "pytorch-optimizer": "pytorch_optimizer", "ase-ga": "ase_ga"}


def test_every_declared_dependency_is_imported():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *(d for extra in project["optional-dependencies"].values() for d in extra)]
    names = {re.match(r"[A-Za-z0-9_.-]+", d).group(0).lower() for d in declared} - _TOOLS
    sources = [p.read_text(errors="replace") for folder in ("gapkit", "tests", "benchmarks")
               for p in (ROOT / folder).rglob("*.py")] + [p.read_text() for p in (ROOT / "book").glob("*.ipynb")]
    text = "\n".join(sources)
    unused = sorted(n for n in names
                    if not re.search(rf"(?:^|\W)(?:import|from)\s+{_IMPORT_NAMES.get(n, n.replace('-', '_'))}\b", text))
    assert not unused, f"declared in pyproject.toml but imported nowhere: {unused}"
