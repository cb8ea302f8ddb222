"""Every notebook is stored executed, with outputs matching its current cells, and still executes
top to bottom (with short durations) against the current library."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import nbformat
import pytest
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(HERE.glob("*.ipynb"))
RERUN = "run `make notebooks` to re-execute the notebooks and store their outputs"


def load(name: str) -> ModuleType:
    """A script of ``notebooks/`` as a module (the directory is not a package)."""
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


execute_notebooks = load("execute_notebooks")
make_notebooks = load("make_notebooks")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_executed_and_fresh(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    missing = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and not c.outputs]
    assert code and not missing, f"{path.name}: cells {missing} have no stored outputs; {RERUN}"
    errors = [o.ename for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path.name} was stored with errors {errors}; {RERUN}"
    stored = nb.metadata.get("simulator", {}).get("source_sha256")
    assert stored == execute_notebooks.source_sha256(nb), (
        f"{path.name}: its cells changed since it was executed; {RERUN}")


@pytest.mark.parametrize("name", sorted(make_notebooks.NOTEBOOKS))
def test_generated_notebook_matches_its_generator(name: str) -> None:
    stored = nbformat.read(HERE / name, as_version=4)
    assert make_notebooks.sources(stored) == make_notebooks.sources(make_notebooks.build(name)), (
        f"{name} differs from notebooks/make_notebooks.py; {RERUN}")


def test_freshness_hash_sees_an_edited_cell_and_ignores_outputs() -> None:
    nb = nbformat.read(HERE / "quickstart.ipynb", as_version=4)
    before = execute_notebooks.source_sha256(nb)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    cell.outputs, cell.execution_count = [], None
    assert execute_notebooks.source_sha256(nb) == before
    cell.source += "\n"
    assert execute_notebooks.source_sha256(nb) != before


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATOR_NOTEBOOK_SHORT", "1")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    # a notebook exists to show results: it must have drawn a figure and displayed a table
    shown = {mime for c in nb.cells if c.cell_type == "code" for o in c.outputs
             for mime in o.get("data", {})}
    assert "image/png" in shown, f"{path.name} drew no figure"
    assert "text/html" in shown, f"{path.name} displayed no table"
