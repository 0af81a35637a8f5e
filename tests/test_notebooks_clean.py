"""The committed notebooks are clean (no outputs, no execution counts, no volatile metadata), start with
exactly one papermill ``parameters`` cell of plain literals, and match their generator notebooks/_build.py."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import nbformat
import pytest

from wsol_utils.reproduce import SUITE, VOLATILE_CELL_METADATA, VOLATILE_NOTEBOOK_METADATA

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ALL = sorted(NOTEBOOKS.glob("*.ipynb"))
PARAMETERS = ["DATASET", "DATA_ROOT", "EPOCHS", "DEVICE", "SMOKE", "RUNS_DIR", "FIGURES_DIR", "PROGRESS"]


def _load(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def test_the_suite_is_complete():
    assert [p.stem for p in ALL if p.stem in SUITE] == list(SUITE)


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_notebook_is_committed_clean(path):
    nb = _load(path)
    assert not set(nb.metadata) & set(VOLATILE_NOTEBOOK_METADATA), f"{path.name}: volatile notebook metadata"
    for index, cell in enumerate(nb.cells):
        assert not set(cell.metadata) & set(VOLATILE_CELL_METADATA), f"{path.name} cell {index}: volatile metadata"
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {index} has outputs: clear them before committing"
            assert cell.execution_count is None, f"{path.name} cell {index} has an execution count"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_exactly_one_parameters_cell_at_the_top(path):
    nb = _load(path)
    tagged = [i for i, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", [])]
    assert tagged == [0], f"{path.name}: parameters cells at {tagged}, expected exactly one, first"


@pytest.mark.parametrize("name", SUITE)
def test_suite_parameters_are_the_shared_plain_literals(name):
    """papermill can parse (and the runner overrides) every parameter: plain ``NAME = literal`` lines."""
    source = _load(NOTEBOOKS / f"{name}.ipynb").cells[0].source
    assigned = {}
    for node in ast.parse(source).body:
        assert isinstance(node, ast.Assign), f"{name}: only assignments in the parameters cell"
        assigned[node.targets[0].id] = ast.literal_eval(node.value)
    assert list(assigned) == PARAMETERS
    assert assigned["SMOKE"] is False and assigned["PROGRESS"] is False and assigned["DATASET"] == "synthetic"


def test_committed_notebooks_match_the_generator():
    spec = importlib.util.spec_from_file_location("notebooks_build", NOTEBOOKS / "_build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert list(build.NOTEBOOKS) == list(SUITE)
    for name, generated in build.NOTEBOOKS.items():
        committed = _load(NOTEBOOKS / f"{name}.ipynb")
        assert [c.source for c in committed.cells] == [c.source for c in generated.cells], (
            f"{name}.ipynb differs from notebooks/_build.py: run `python notebooks/_build.py`")


def test_deterministic_cells_are_checked_by_nbval():
    sources = [c.source for c in _load(NOTEBOOKS / "01_cam_equivalence.ipynb").cells]
    checked = [s for s in sources if s.startswith("# NBVAL_CHECK_OUTPUT")]
    assert len(checked) == 2 and all("check_line" in s for s in checked)
