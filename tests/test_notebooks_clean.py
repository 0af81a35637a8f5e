"""The committed notebooks are clean (no outputs, no execution counts, no volatile metadata), start with
exactly one papermill ``parameters`` cell of plain literals, and are in sync with their jupytext sources.

Every ``notebooks/NN_name.ipynb`` is paired with ``notebooks/NN_name.py`` in jupytext's percent format
(``notebooks/jupytext.toml``). Edit either side, then ``make notebooks`` (``jupytext --sync``) writes the other.
"""

from __future__ import annotations

import ast
import os
import shutil
from pathlib import Path

import jupytext
import jupytext.cli
import jupytext.config
import nbformat
import pytest

from wsol_utils.ui.reproduce import SUITE, VOLATILE_CELL_METADATA, VOLATILE_NOTEBOOK_METADATA

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ALL = sorted(NOTEBOOKS.glob("*.ipynb"))
#: The notebooks' text sources: every .py in notebooks/ except pytest's conftest.py.
SOURCES = sorted(p for p in NOTEBOOKS.glob("*.py") if p.name != "conftest.py")
PARAMETERS = ["DATASET", "DATA_ROOT", "EPOCHS", "DEVICE", "SMOKE", "RUNS_DIR", "FIGURES_DIR", "PROGRESS"]
#: Cell positions shared by the suite: the parameters cell, the title (markdown), the shared setup cell.
PARAMETERS_CELL, TITLE_CELL, SETUP_CELL = 0, 1, 2
SYNC_HINT = "edit either file, then run `make notebooks` (jupytext --sync)"
#: The most lines a notebook code cell may have (blank and comment lines count): a longer cell carries analysis code
#: that belongs in wsol_utils, with its tests (notebooks are the UI, docs/ARCHITECTURE.md).
MAX_CELL_LINES = 40


def _load(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _cells(notebook: nbformat.NotebookNode) -> list[tuple[str, str, list[str]]]:
    """What pairing must preserve: each cell's type, source and tags."""
    return [(cell.cell_type, cell.source, list(cell.metadata.get("tags", []))) for cell in notebook.cells]


def sync_differences(ipynb: Path, source: Path) -> list[str]:
    """How the cells jupytext reads from the percent-format ``source`` differ from those of ``ipynb``
    (type, source, tags); empty when the pair is in sync."""
    text_cells = _cells(jupytext.read(source, fmt="py:percent"))
    notebook_cells = _cells(_load(ipynb))
    differences = []
    if len(text_cells) != len(notebook_cells):
        differences.append(f"{ipynb.name} has {len(notebook_cells)} cells, {source.name} has {len(text_cells)}")
    for index, (in_text, in_notebook) in enumerate(zip(text_cells, notebook_cells)):
        for field, text_value, notebook_value in zip(("type", "source", "tags"), in_text, in_notebook):
            if field == "source" and text_value != notebook_value:
                assert isinstance(text_value, str) and isinstance(notebook_value, str)  # a cell's source is a str
                text_value, notebook_value = _first_different_line(text_value, notebook_value)
            if text_value != notebook_value:
                differences.append(
                    f"cell {index} {field}: {source.name} {text_value!r} != {ipynb.name} {notebook_value!r}"
                )
    return differences


def _first_different_line(a: str, b: str) -> tuple[str, str]:
    """Where two different sources differ, for a readable message (always two different strings)."""
    a_lines, b_lines = a.splitlines(), b.splitlines()
    for number, (a_line, b_line) in enumerate(zip(a_lines, b_lines), start=1):
        if a_line != b_line:
            return f"line {number}: {a_line}", f"line {number}: {b_line}"
    if len(a_lines) != len(b_lines):
        return f"{len(a_lines)} lines", f"{len(b_lines)} lines"
    return repr(a), repr(b)  # they differ only in line endings


def _copy_pair(stem: str, folder: Path) -> tuple[Path, Path]:
    for name in (f"{stem}.ipynb", f"{stem}.py", "jupytext.toml"):
        shutil.copy2(NOTEBOOKS / name, folder / name)
    return folder / f"{stem}.ipynb", folder / f"{stem}.py"


def test_the_suite_is_complete():
    assert [p.stem for p in ALL if p.stem in SUITE] == list(SUITE)


def test_pairing_is_configured_for_the_folder():
    config = jupytext.config.load_jupytext_config(str(NOTEBOOKS))
    assert config is not None, "notebooks/jupytext.toml is missing"
    assert config.formats in ("ipynb,py:percent", ["ipynb,py:percent"])
    cell_filter = config.cell_metadata_filter.split(",")
    assert {f"-{key}" for key in VOLATILE_CELL_METADATA} <= set(cell_filter), "volatile metadata reaches the .py"
    assert "-tags" not in cell_filter and "-all" not in cell_filter, "the .py must keep the parameters tag"


def test_every_notebook_has_its_text_source_and_vice_versa():
    notebooks, sources = {p.stem for p in ALL}, {p.stem for p in SOURCES}
    assert not notebooks - sources, f"notebooks without a .py source: {sorted(notebooks - sources)}; {SYNC_HINT}"
    assert not sources - notebooks, f"sources without a notebook: {sorted(sources - notebooks)}; {SYNC_HINT}"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_notebook_is_in_sync_with_its_text_source(path):
    assert sync_differences(path, path.with_suffix(".py")) == [], f"{path.name} is out of sync: {SYNC_HINT}"


@pytest.mark.parametrize("edit", ["code", "markdown", "tags", "new cell"])
def test_a_desynchronized_pair_is_detected(tmp_path, edit):
    """The parity check can fail: edit a copy of the .py without syncing and it reports the difference."""
    ipynb, source = _copy_pair("03_hclnet_complementary_maps", tmp_path)
    text = source.read_text(encoding="utf-8")
    old, new = {
        "code": ("torch.manual_seed(0)", "torch.manual_seed(1)"),
        "markdown": ("# # 03 — HCLNet", "# # 03 — HCLNet, edited"),
        "tags": ('# %% tags=["parameters"]', "# %%"),
        "new cell": ("# %% [markdown]\n# ## Reading", "# %%\nprint('new')\n\n# %% [markdown]\n# ## Reading"),
    }[edit]
    assert text.count(old) == 1
    source.write_text(text.replace(old, new), encoding="utf-8")
    differences = sync_differences(ipynb, source)
    assert differences, f"an edited {edit} was not detected"
    if edit != "new cell":
        assert len(differences) == 1 and differences[0].startswith(("cell 0 ", "cell 1 ", "cell 2 "))


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_syncing_the_committed_pair_changes_nothing(tmp_path, path):
    """``make notebooks`` on a clean checkout is a no-op: both files come back byte-identical (cell ids too)."""
    ipynb, source = _copy_pair(path.stem, tmp_path)
    newer = ipynb.stat().st_mtime + 10
    os.utime(source, (newer, newer))  # the .py is the newer side: jupytext reads the cells from it
    assert jupytext.cli.jupytext(["--quiet", "--sync", str(ipynb)]) == 0
    assert ipynb.read_bytes() == path.read_bytes(), f"{path.name} changes when synced: {SYNC_HINT}"
    assert source.read_bytes() == path.with_suffix(".py").read_bytes(), f"{source.name} changes when synced"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_notebook_is_committed_clean(path):
    nb = _load(path)
    assert not set(nb.metadata) & set(VOLATILE_NOTEBOOK_METADATA), f"{path.name}: volatile notebook metadata"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", f"{path.name}: papermill needs a kernelspec"
    for index, cell in enumerate(nb.cells):
        assert not set(cell.metadata) & set(VOLATILE_CELL_METADATA), f"{path.name} cell {index}: volatile metadata"
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {index} has outputs: clear them before committing"
            assert cell.execution_count is None, f"{path.name} cell {index} has an execution count"
    ids = [cell.get("id") for cell in nb.cells]
    assert None not in ids and len(set(ids)) == len(ids), f"{path.name}: cell ids missing or repeated"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_exactly_one_parameters_cell_at_the_top(path):
    nb = _load(path)
    tagged = [i for i, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", [])]
    assert tagged == [PARAMETERS_CELL], f"{path.name}: parameters cells at {tagged}, expected exactly one, first"


@pytest.mark.parametrize("name", SUITE)
def test_suite_parameters_are_the_shared_plain_literals(name):
    """papermill can parse (and the runner overrides) every parameter: plain ``NAME = literal`` lines."""
    source = _load(NOTEBOOKS / f"{name}.ipynb").cells[PARAMETERS_CELL].source
    assigned = {}
    for node in ast.parse(source).body:
        assert isinstance(node, ast.Assign), f"{name}: only assignments in the parameters cell"
        target = node.targets[0]
        assert isinstance(target, ast.Name), f"{name}: only plain NAME = literal lines in the parameters cell"
        assigned[target.id] = ast.literal_eval(node.value)
    assert list(assigned) == PARAMETERS
    assert assigned["SMOKE"] is False and assigned["PROGRESS"] is False and assigned["DATASET"] == "synthetic"


def test_the_shared_cells_are_identical_across_the_suite():
    """Every suite notebook opens with the same parameters cell, a markdown title and the same setup cell;
    the explorer (00) extends the parameters with its own knobs and shares the setup."""
    suite = {name: _load(NOTEBOOKS / f"{name}.ipynb").cells for name in SUITE}
    first = suite[SUITE[0]]
    for name, cells in suite.items():
        assert cells[TITLE_CELL].cell_type == "markdown" and cells[TITLE_CELL].source.startswith(f"# {name[:2]} ")
        for index, what in ((PARAMETERS_CELL, "parameters"), (SETUP_CELL, "setup")):
            assert cells[index].cell_type == "code"
            assert cells[index].source == first[index].source, (
                f"{name}: the {what} cell differs from {SUITE[0]}'s; the suite shares it, edit all notebooks alike"
            )
    assert "Suite.from_parameters(" in first[SETUP_CELL].source
    explorer = _load(NOTEBOOKS / "00_explore.ipynb").cells
    assert explorer[PARAMETERS_CELL].source.startswith(first[PARAMETERS_CELL].source + "\n")
    assert explorer[SETUP_CELL].source == first[SETUP_CELL].source


def test_deterministic_cells_are_checked_by_nbval():
    sources = [c.source for c in _load(NOTEBOOKS / "01_cam_equivalence.ipynb").cells]
    checked = [s for s in sources if s.startswith("# NBVAL_CHECK_OUTPUT")]
    assert len(checked) == 2 and all("check_line" in s for s in checked)


def long_cells(source: Path, limit: int = MAX_CELL_LINES) -> list[str]:
    """``"cell <index>: <n> lines"`` for every code cell of the percent-format ``source`` with more than ``limit``
    source lines; empty when every cell is short enough."""
    notebook = jupytext.read(source, fmt="py:percent")
    return [
        f"cell {index}: {len(cell.source.splitlines())} lines"
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and len(cell.source.splitlines()) > limit
    ]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_no_code_cell_is_longer_than_the_limit(path):
    assert long_cells(path) == [], (
        f"{path.name}: code cells over {MAX_CELL_LINES} lines; move the analysis into wsol_utils (with tests) and "
        "call it, or split the cell where it does two things"
    )


@pytest.mark.parametrize("lines", [MAX_CELL_LINES, MAX_CELL_LINES + 1])
def test_a_long_cell_is_detected(tmp_path, lines):
    """The limit can fail: a cell of ``MAX_CELL_LINES`` lines passes, one more line (blank lines count) is reported
    with its index; markdown cells never count."""
    body = "\n".join("" if i % 5 == 2 else f"x{i} = {i}" for i in range(lines))
    markdown = "\n".join(f"# line {i}" for i in range(2 * MAX_CELL_LINES))
    source = tmp_path / "99_long.py"
    source.write_text(f"# %%\nx = 1\n\n# %% [markdown]\n{markdown}\n\n# %%\n{body}\n", encoding="utf-8")
    expected = [] if lines <= MAX_CELL_LINES else [f"cell 2: {lines} lines"]
    assert long_cells(source) == expected
