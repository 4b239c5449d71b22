"""The tutorial notebook runs from top to bottom, as a user runs it, and is committed without outputs."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parent.parent / "examples" / "tutorial.ipynb"


def test_the_tutorial_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)


def test_the_tutorial_runs_and_proves_its_program(tmp_path, monkeypatch):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                     for output in cell.outputs)
    assert "checked on all 1,364 inputs: 0 disagreements" in text
    assert "def run(tokens):" in text and "prediction" in text
    assert "mistaken positions in" in text and "(e.g. <s>" in text  # an error group with its example
    html = notebook.cells[-1].outputs[0]["data"]["text/html"]
    assert "<h2>Program</h2>" in html and "program.py: proved on every one of its 1,364 inputs" in html
    assert (tmp_path / "runs" / "tutorial-hist" / "program.py").is_file()
    assert not os.path.exists(NOTEBOOK.parent / "runs")  # it ran where it was told to
