"""wsol_utils.studies.provenance: the source hash, the PROVENANCE.json manifest, and the gate on the committed figures/.

The last test (marker ``figures``) is the gate: it fails when the committed ``figures/`` were made by another
library source than the one on disk. Deselect it with ``-m "not figures"`` while figures are being regenerated.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import pytest
from PIL import Image

from wsol_utils.studies import provenance, tables
from wsol_utils.ui import viz

REPO = Path(__file__).resolve().parents[1]

MODULE = '''"""The module's docstring."""

import math


def area(radius):
    """Area of a circle."""
    return math.pi * radius**2  # pi r squared


class Shape:
    """A shape."""

    sides = 0
'''

#: The same code: other formatting, comments and docstrings.
SAME_CODE = '''"""Another docstring, several
lines long."""
import math
# a comment
def area( radius ):
    return (math.pi * radius ** 2)
class Shape:
    """Edited."""
    sides = (0)  # none
'''


def make_checkout(root: Path, module: str = MODULE, notebook: str | None = "x = 1\n") -> Path:
    """A minimal checkout: ``wsol_utils/{__init__,shapes}.py`` and, unless ``notebook`` is None,
    ``notebooks/01_demo.py``."""
    package = root / "wsol_utils"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""Package."""\n', encoding="utf-8")
    (package / "shapes.py").write_text(module, encoding="utf-8")
    if notebook is not None:
        (root / "notebooks").mkdir()
        (root / "notebooks" / "01_demo.py").write_text(notebook, encoding="utf-8")
    return root


# --------------------------------------------------------------------------------------------------
# The source hash
# --------------------------------------------------------------------------------------------------


def test_hash_ignores_formatting_comments_and_docstrings(tmp_path):
    reference = provenance.source_hash(make_checkout(tmp_path / "a"))
    assert len(reference) == 12 and int(reference, 16) >= 0
    assert provenance.source_hash(make_checkout(tmp_path / "b", SAME_CODE)) == reference
    # Jupytext markdown cells are comments: editing them keeps the figures current.
    notebook = "# %% [markdown]\n# Some prose, reworded.\n\n# %%\nx = 1\n"
    assert provenance.source_hash(make_checkout(tmp_path / "c", notebook=notebook)) == reference


@pytest.mark.parametrize(
    "change",
    [
        ("radius**2", "radius**3"),  # one token of code
        ("sides = 0", "sides = 1"),
        ("import math", "import cmath as math"),
        ('"""A shape."""\n', '"""A shape."""\n    """Not a docstring: a second string statement."""\n'),
    ],
)
def test_hash_changes_with_any_code_change(tmp_path, change):
    old, new = change
    assert MODULE.count(old) == 1
    reference = provenance.source_hash(make_checkout(tmp_path / "a"))
    assert provenance.source_hash(make_checkout(tmp_path / "b", MODULE.replace(old, new))) != reference


def test_hash_covers_notebooks_new_files_and_names(tmp_path):
    root = make_checkout(tmp_path / "a")
    reference = provenance.source_hash(root)
    (root / "notebooks" / "01_demo.py").write_text("x = 2\n", encoding="utf-8")
    changed_notebook = provenance.source_hash(root)
    assert changed_notebook != reference
    (root / "notebooks" / "00_scratch.txt").write_text("not code", encoding="utf-8")
    (root / "notebooks" / "conftest.py").write_text("y = 1\n", encoding="utf-8")  # not notebooks/[0-9]*.py
    assert provenance.source_hash(root) == changed_notebook
    (root / "wsol_utils" / "sub").mkdir()
    (root / "wsol_utils" / "sub" / "extra.py").write_text("z = 1\n", encoding="utf-8")
    assert provenance.source_hash(root) != changed_notebook
    renamed = make_checkout(tmp_path / "b")
    (renamed / "wsol_utils" / "shapes.py").rename(renamed / "wsol_utils" / "circles.py")
    assert provenance.source_hash(renamed) != reference


def test_hash_covers_the_c_source_byte_for_byte(tmp_path):
    root = make_checkout(tmp_path)
    reference = provenance.source_hash(root)
    (root / "wsol_utils" / "tree.so").write_bytes(b"\x7fELF built")  # a build product: not source
    assert provenance.source_hash(root) == reference
    source = root / "wsol_utils" / "tree.c"
    source.write_text("int f(void) { return 1; }\n", encoding="utf-8")
    with_c = provenance.source_hash(root)
    assert with_c != reference
    source.write_text("int f(void) { return 2; }\n", encoding="utf-8")
    assert provenance.source_hash(root) != with_c


def test_hash_of_an_installed_package_says_it_covers_the_package_only(tmp_path):
    record = provenance.source_record(make_checkout(tmp_path, notebook=None))
    assert record["source_scope"] == "wsol_utils only (no notebooks/ folder beside the package)"
    assert provenance.source_record(REPO)["source_scope"] == "wsol_utils + notebooks/[0-9]*.py"
    with pytest.raises(FileNotFoundError, match="no wsol_utils/ folder"):
        provenance.source_hash(tmp_path / "nowhere")


def test_hash_of_a_copied_real_package_ignores_reformatting(tmp_path):
    """The real package and notebooks, copied; one file reformatted by ``ast.unparse`` (no comments, other
    layout), one docstring edited: same hash. One token of code changed: another hash."""
    shutil.copytree(REPO / "wsol_utils", tmp_path / "wsol_utils", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "notebooks").mkdir()
    for notebook in REPO.glob("notebooks/[0-9]*.py"):
        shutil.copy2(notebook, tmp_path / "notebooks" / notebook.name)
    reference = provenance.source_hash(tmp_path)
    assert reference == provenance.source_hash(REPO)
    copied = tmp_path / "wsol_utils" / "studies" / "provenance.py"
    text = copied.read_text(encoding="utf-8")
    import ast

    copied.write_text(ast.unparse(ast.parse(text)).replace("What made each table", "Who made every table"))
    assert copied.read_text(encoding="utf-8") != text
    assert provenance.source_hash(tmp_path) == reference
    copied.write_text(text.replace("HASH_LENGTH = 12", "HASH_LENGTH = 13"), encoding="utf-8")
    assert provenance.source_hash(tmp_path) != reference


def test_file_digest_names_a_broken_file(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.py: not valid Python"):
        provenance.file_digest(broken)


# --------------------------------------------------------------------------------------------------
# Stamps and the manifest
# --------------------------------------------------------------------------------------------------


def test_stamp_holds_hash_date_versions_and_what(monkeypatch):
    monkeypatch.setattr(provenance, "today", lambda: "2025-01-02")
    entry = provenance.stamp(notebook="02_acol_training", seeds=[0])
    assert entry["source_hash"] == provenance.source_hash()
    assert entry["date"] == "2025-01-02"
    assert set(entry["versions"]) == {"python", "torch", "torchvision", "numpy", "opencv"}
    assert entry["versions"]["numpy"] is not None
    assert (entry["notebook"], entry["seeds"]) == ("02_acol_training", [0])
    with pytest.raises(ValueError, match="source_hash"):
        provenance.stamp(source_hash="forged")


def test_stamp_records_the_machine(monkeypatch):
    import torch

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    entry = provenance.stamp(runs=[{"run": "cam-1", "config": {"device": "cpu"}}])
    made_on = entry["machine"]
    assert set(made_on) == {
        "cpu_model",
        "cpu_capability",
        "compute_dtype",
        "torch_threads",
        "omp_num_threads",
        "platform",
    }
    assert made_on["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert made_on["torch_threads"] == torch.get_num_threads() and made_on["omp_num_threads"] == "1"
    assert made_on["compute_dtype"] == "float32 (cpu)"
    assert made_on["cpu_model"] == provenance.cpu_model()
    json.dumps(entry)  # JSON-able as it is written to PROVENANCE.json
    with pytest.raises(ValueError, match="machine"):
        provenance.stamp(machine={"cpu_model": "forged"})


def test_cpu_model_reads_cpuinfo_and_falls_back(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9B14\n", encoding="utf-8")
    assert provenance.cpu_model(cpuinfo) == "AMD EPYC 9B14"
    cpuinfo.write_text("processor\t: 0\nBogoMIPS\t: 50.00\nHardware\t: BCM2835\n", encoding="utf-8")
    assert provenance.cpu_model(cpuinfo) == "BCM2835"  # "processor: 0" is a number, not a model
    monkeypatch.setattr(provenance.platform, "processor", lambda: "arm")
    assert provenance.cpu_model(tmp_path / "missing") == "arm"
    monkeypatch.setattr(provenance.platform, "processor", lambda: "")
    assert provenance.cpu_model(tmp_path / "missing") is None


def test_machine_without_torch_says_none(monkeypatch):
    monkeypatch.setattr(provenance, "_torch", lambda: None)
    made_on = provenance.machine(["auto"])
    assert (made_on["cpu_capability"], made_on["torch_threads"]) == (None, None)
    assert made_on["compute_dtype"] == "float32 (cpu)"


def test_compute_dtype_follows_the_runs_device(monkeypatch):
    class FakeCuda:
        @staticmethod
        def is_available() -> bool:
            return True

        @staticmethod
        def is_bf16_supported() -> bool:
            return True

    class FakeTorch:
        cuda = FakeCuda

    monkeypatch.setattr(provenance, "_torch", lambda: FakeTorch)
    assert provenance.compute_dtype([]) == "float32 (cpu)"
    assert provenance.compute_dtype(["cpu"]) == "float32 (cpu)"
    assert provenance.compute_dtype(["auto"]) == "float32 weights, autocast bfloat16 (cuda)"
    assert provenance.compute_dtype(["cuda:1"]) == "float32 weights, autocast bfloat16 (cuda)"
    FakeCuda.is_available = staticmethod(lambda: False)  # type: ignore[method-assign]
    assert provenance.compute_dtype(["auto"]) == "float32 (cpu)"


def test_today_is_an_iso_day():
    assert len(provenance.today()) == 10 and provenance.today()[4] == "-"


def test_manifest_merges_entries_and_is_written_atomically(tmp_path):
    for name in ("a.csv", "b.png"):
        (tmp_path / name).write_text(name, encoding="utf-8")
    provenance.record([tmp_path / "a.csv"], {"source_hash": "1" * 12, "notebook": "01"})
    provenance.record([tmp_path / "b.png"], {"source_hash": "2" * 12, "notebook": "02"})
    manifest = provenance.read_manifest(tmp_path)
    assert manifest == {
        "a.csv": {"source_hash": "1" * 12, "notebook": "01", "sha256": hashlib.sha256(b"a.csv").hexdigest()},
        "b.png": {"source_hash": "2" * 12, "notebook": "02", "sha256": hashlib.sha256(b"b.png").hexdigest()},
    }
    # Rewriting one entry keeps the other; sorted keys, indent 1.
    provenance.record([tmp_path / "a.csv"], {"source_hash": "3" * 12})
    text = (tmp_path / "PROVENANCE.json").read_text(encoding="utf-8")
    assert text == json.dumps(provenance.read_manifest(tmp_path), sort_keys=True, indent=1) + "\n"
    assert json.loads(text)["a.csv"] == {"source_hash": "3" * 12, "sha256": hashlib.sha256(b"a.csv").hexdigest()}
    assert json.loads(text)["b.png"]["notebook"] == "02"
    # A failing write leaves the old manifest and no temporary file.
    circular: dict = {}
    circular["self"] = circular
    with pytest.raises(ValueError, match="Circular"):
        provenance.record([tmp_path / "b.png"], circular)
    assert (tmp_path / "PROVENANCE.json").read_text(encoding="utf-8") == text
    assert sorted(path.name for path in tmp_path.iterdir()) == ["PROVENANCE.json", "a.csv", "b.png"]
    with pytest.raises(FileNotFoundError, match="no such file"):
        provenance.record([tmp_path / "c.csv"], {})


def test_read_manifest_rejects_garbage(tmp_path):
    assert provenance.read_manifest(tmp_path) == {}
    (tmp_path / "PROVENANCE.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"PROVENANCE\.json: not valid JSON"):
        provenance.read_manifest(tmp_path)
    assert provenance.check_figures(tmp_path)[0].startswith(f"{tmp_path / 'PROVENANCE.json'}: not valid JSON")


# --------------------------------------------------------------------------------------------------
# The writers
# --------------------------------------------------------------------------------------------------


def test_markdown_table_is_byte_identical_when_written_again(tmp_path, monkeypatch):
    frame = pd.DataFrame({"method": ["CAM", "ACoL"], "loc err top-1": [50.0, 48.25]})
    what = {"notebook": "02_acol_training", "runs": [{"run": "acol-abc", "config": {"seed": 0}}], "seeds": [0]}
    first = tables.write_table(frame, tmp_path / "a", "table_x", title="T", provenance=what)
    monkeypatch.setattr(provenance, "today", lambda: "2099-12-31")  # another day: same bytes
    second = tables.write_table(frame, tmp_path / "b", "table_x", title="T", provenance=what)
    assert first.markdown.read_bytes() == second.markdown.read_bytes()
    assert first.csv.read_bytes() == second.csv.read_bytes()
    text = first.markdown.read_text(encoding="utf-8")
    made_on = provenance.machine()
    assert text.endswith(
        f"| ACoL | 48.25 |\n\n_Made by wsol_utils source {provenance.source_hash()}; computed in float32 (cpu) on "
        f"{made_on['cpu_model']}, {made_on['cpu_capability']}; configs, seeds and date in PROVENANCE.json._\n"
    )
    bare = {"source_hash": "0123456789ab"}  # a stamp from before the machine was recorded
    assert (
        provenance.markdown_line(bare)
        == "_Made by wsol_utils source 0123456789ab; configs, seeds and date in PROVENANCE.json._"
    )
    assert "2099" not in second.markdown.read_text(encoding="utf-8")
    manifest = provenance.read_manifest(tmp_path / "b")
    assert sorted(manifest) == ["table_x.csv", "table_x.md"]
    for name, entry in manifest.items():
        assert entry["source_hash"] == provenance.source_hash() and entry["date"] == "2099-12-31"
        assert entry["runs"] == what["runs"] and entry["seeds"] == [0] and entry["notebook"] == "02_acol_training"
        assert entry["sha256"] == hashlib.sha256((tmp_path / "b" / name).read_bytes()).hexdigest()
    assert provenance.check_figures(tmp_path / "b") == []


def test_write_table_without_provenance_still_records_hash_and_date(tmp_path):
    tables.write_table(pd.DataFrame({"a": [1]}), tmp_path, "t", title="t")
    entry = provenance.read_manifest(tmp_path)["t.md"]
    assert entry["source_hash"] == provenance.source_hash() and entry["date"] == provenance.today()


def test_png_carries_the_source_hash_and_is_deterministic(tmp_path, monkeypatch):
    def draw():
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot([0, 1], [1, 0])
        return fig

    path = viz.save_figure(draw(), tmp_path / "f.png", provenance={"notebook": "05_threshold_sweep"})
    with Image.open(path) as image:
        text = dict(image.text)
    assert text[provenance.PNG_HASH_KEY] == provenance.source_hash()
    assert provenance.source_hash() in text["Software"]
    assert not any(provenance.today() in value for value in text.values())
    monkeypatch.setattr(provenance, "today", lambda: "2099-12-31")
    again = viz.save_figure(draw(), tmp_path / "g.png")
    plt.close("all")
    assert again.read_bytes() == path.read_bytes()
    manifest = provenance.read_manifest(tmp_path)
    assert manifest["f.png"]["notebook"] == "05_threshold_sweep" and "notebook" not in manifest["g.png"]
    assert manifest["g.png"]["date"] == "2099-12-31"


def test_publish_passes_provenance_through(tmp_path):
    fig, _ = plt.subplots(figsize=(1, 1))
    viz.publish(fig, tmp_path / "p.png", provenance={"seeds": [3]})
    assert provenance.read_manifest(tmp_path)["p.png"]["seeds"] == [3]


def test_suite_provenance_and_publish(tmp_path, monkeypatch):
    from wsol_utils.ui.suite import NOTEBOOK_ENV, Suite

    monkeypatch.setenv(NOTEBOOK_ENV, "04_fusion_ablation")
    suite = Suite.from_parameters(figures_dir=tmp_path / "figs", runs_dir=tmp_path / "runs")
    assert suite.notebook == "04_fusion_ablation"
    runs = []
    for name, seed in (("acol-1", 2), ("cam-2", 0), ("hclnet-3", 2)):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "config.json").write_text(json.dumps({"method": name, "seed": seed}))
        runs.append(tmp_path / "runs" / name)
    what = suite.provenance(*runs)
    assert what == {
        "notebook": "04_fusion_ablation",
        "runs": [  # no done.json in these folders: whether the backbone was pretrained is unknown
            {"run": r.name, "config": json.loads((r / "config.json").read_text()), "pretrained_backbone": None}
            for r in runs
        ],
        "seeds": [0, 2],
    }
    fig, _ = plt.subplots(figsize=(1, 1))
    suite.publish(fig, "x.png", provenance=what)
    fig, _ = plt.subplots(figsize=(1, 1))
    suite.publish(fig, "y.png")
    manifest = provenance.read_manifest(tmp_path / "figs")
    assert manifest["x.png"]["runs"][0]["config"]["method"] == "acol-1" and manifest["x.png"]["seeds"] == [0, 2]
    assert (manifest["y.png"]["notebook"], manifest["y.png"]["runs"]) == ("04_fusion_ablation", [])
    monkeypatch.delenv(NOTEBOOK_ENV)
    assert Suite.from_parameters(figures_dir=tmp_path / "figs").provenance() == {
        "notebook": None,
        "runs": [],
        "seeds": [],
    }
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        suite.provenance(tmp_path / "runs" / "missing")


# --------------------------------------------------------------------------------------------------
# The gate
# --------------------------------------------------------------------------------------------------


def test_check_figures_reports_each_problem(tmp_path):
    figures = tmp_path / "figures"
    figures.mkdir()
    (figures / "README.md").write_text("not a table", encoding="utf-8")  # never checked
    for name in ("ok.csv", "stale.png", "edited.md", "unlisted.png", "gone.csv"):
        (figures / name).write_text(name, encoding="utf-8")
    provenance.record([figures / n for n in ("ok.csv", "edited.md", "gone.csv")], provenance.stamp())
    provenance.record([figures / "stale.png"], {**provenance.stamp(), "source_hash": "0123456789ab"})
    (figures / "edited.md").write_text("edited by hand", encoding="utf-8")
    (figures / "gone.csv").unlink()
    (figures / "unlisted.png").write_text("made before the manifest", encoding="utf-8")
    now = provenance.source_hash()
    fix = "run `make reproduce` and commit figures/"
    assert provenance.check_figures(figures) == [
        f"unlisted.png: no entry in PROVENANCE.json (written by hand or by old code); {fix}",
        (
            "edited.md: its bytes differ from those recorded in PROVENANCE.json (edited or copied in after it was "
            f"made); {fix}"
        ),
        f"gone.csv: listed in PROVENANCE.json but the file is missing; {fix}",
        f"stale.png: made by wsol_utils source 0123456789ab, but the source is {now} now (stale); {fix}",
    ]


def test_check_figures_names_the_notebook_to_rerun_and_a_missing_manifest(tmp_path):
    (tmp_path / "t.csv").write_text("x", encoding="utf-8")
    problems = provenance.check_figures(tmp_path)
    assert problems[0].startswith(f"{tmp_path / 'PROVENANCE.json'}: missing")
    assert problems[1].startswith("t.csv: no entry")
    provenance.record([tmp_path / "t.csv"], {"source_hash": "0" * 12, "notebook": "05_threshold_sweep"})
    assert provenance.check_figures(tmp_path) == [
        (
            f"t.csv: made by wsol_utils source {'0' * 12}, but the source is {provenance.source_hash()} now "
            "(stale); run `make reproduce` and commit figures/ (this file alone: "
            "`python -m wsol_utils reproduce --only 05`)"
        )
    ]
    with pytest.raises(FileNotFoundError, match="no such folder"):
        provenance.check_figures(tmp_path / "nowhere")


@pytest.mark.figures
def test_committed_figures_were_made_by_the_committed_source():
    """The gate: every table and figure in figures/ has a PROVENANCE.json entry made by today's source.

    Fails after any code change to wsol_utils/ or notebooks/[0-9]*.py until the figures are regenerated
    (``make reproduce``) and committed with it; deselect with ``-m "not figures"`` meanwhile."""
    problems = provenance.check_figures(REPO / "figures")
    assert not problems, f"{len(problems)} problem(s) with the committed figures/:\n" + "\n".join(problems)
