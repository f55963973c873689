"""Helpers the book's build uses (not part of gapkit's API): how Jupyter Book reads a chapter notebook."""

from __future__ import annotations

import nbformat

# papermill writes the parameters a run was given into a cell tagged like this, right after the chapter's
# own `parameters` cell; rendered, every page would show its parameters twice
INJECTED_TAG = "injected-parameters"


def read_notebook(text: str) -> nbformat.NotebookNode:
    """Read a chapter notebook for rendering, with papermill's injected-parameters cell removed from the page.

    Jupyter Book's reader for ``.ipynb`` (``nb_custom_formats`` in ``_config.yml``); the file is unchanged.
    """
    notebook = nbformat.reads(text, as_version=4)
    for cell in notebook.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if INJECTED_TAG in tags and "remove-cell" not in tags:
            cell.setdefault("metadata", {})["tags"] = [*tags, "remove-cell"]
    return notebook
