"""The package's import structure, read from the source with :mod:`ast` (every import, function-level ones too):
no import circle, no private name taken from another module, and a lower layer never imports a higher one.

The layers (docs/ARCHITECTURE.md): base < networks < scoring < data < engine < studies < ui. ``base`` is the
plain utilities that import nothing of the package; ``ui`` holds every front door (figures, the explorer, the
notebooks' :class:`~wsol_utils.suite.Suite`, the command lines, the notebook runner and the site).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "wsol_utils"
LAYER_ORDER = ("base", "networks", "scoring", "data", "engine", "studies", "ui")
LAYERS: dict[str, str] = {
    "wsol_utils": "base",
    "wsol_utils.atomic": "base",
    "wsol_utils.allocator": "base",
    "wsol_utils.maps": "networks",
    "wsol_utils.backbones": "networks",
    "wsol_utils.pretrained": "networks",
    "wsol_utils.erasing": "networks",
    "wsol_utils.fusion": "networks",
    "wsol_utils.methods": "networks",
    "wsol_utils.models": "networks",
    "wsol_utils.metrics": "scoring",
    "wsol_utils.boxeval": "scoring",
    "wsol_utils.pipeline": "scoring",
    "wsol_utils.protocol": "scoring",
    "wsol_utils.scorer": "scoring",
    "wsol_utils.data": "data",
    "wsol_utils.data.base": "data",
    "wsol_utils.data.cub": "data",
    "wsol_utils.data.metadata": "data",
    "wsol_utils.data.synthetic": "data",
    "wsol_utils.data.transforms": "data",
    "wsol_utils.data.wsoleval": "data",
    "wsol_utils.engine": "engine",
    "wsol_utils.engine.checkpoint": "engine",
    "wsol_utils.engine.config": "engine",
    "wsol_utils.engine.distributed": "engine",
    "wsol_utils.engine.evaluate": "engine",
    "wsol_utils.engine.examples": "engine",
    "wsol_utils.engine.optim": "engine",
    "wsol_utils.engine.pool": "engine",
    "wsol_utils.engine.precision": "engine",
    "wsol_utils.engine.run": "engine",
    "wsol_utils.engine.train": "engine",
    "wsol_utils.baselines": "engine",
    "wsol_utils.cam_bridge": "engine",
    "wsol_utils.equivalence": "engine",
    "wsol_utils.analysis": "studies",
    "wsol_utils.compare_figures": "studies",
    "wsol_utils.provenance": "studies",
    "wsol_utils.stats": "studies",
    "wsol_utils.tables": "studies",
    "wsol_utils.suite": "ui",
    "wsol_utils.experiments": "ui",  # runs the design on a Suite (the notebooks' front door, which publishes figures)
    "wsol_utils.viz": "ui",
    "wsol_utils.widgets": "ui",
    "wsol_utils.reproduce": "ui",
    "wsol_utils.site": "ui",
    "wsol_utils.__main__": "ui",
    "wsol_utils.boxeval_cli": "ui",
    "wsol_utils.data.cli": "ui",
    "wsol_utils.engine.cli": "ui",
    "wsol_utils.engine.cli_eval": "ui",
}
#: Mapped before they exist: the ``protocol`` branch adds them (drop from here once merged).
PENDING_MODULES: set[str] = set()

#: Known arrows still to remove, each ``(importer, imported)``; the lead drops them as they go:
KNOWN_EDGES = {
    # evaluate_scoremaps reads wsoleval metadata files: the files-in front door belongs above the data layer
    ("wsol_utils.boxeval", "wsol_utils.data.metadata"),
    ("wsol_utils.boxeval", "wsol_utils.data"),
}
#: Known private imports, ``(importer, imported module, name)``: baselines.py's go with the ``protocol`` branch.
KNOWN_PRIVATE: set[tuple[str, str, str]] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def ancestors(module: str) -> list[str]:
    """``a.b.c`` -> ``["a", "a.b"]``: the packages Python initialises before the module."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imported_names(module: str) -> list[tuple[str, str | None]]:
    """``(package module, name or None)`` of every import in ``module``'s source, at any depth: ``from m import n``
    gives ``(n's module, None)`` when ``m.n`` is a module, else ``(m, n)``."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names if alias.name.split(".")[0] == "wsol_utils"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if base.split(".")[0] != "wsol_utils":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub, None) if sub in MODULES else (base, alias.name))
    return found


def private_attribute_uses(module: str) -> list[tuple[str, str]]:
    """``(module, name)`` for every ``alias._name`` where ``alias`` is bound to another package module by an
    import (``from wsol_utils.engine import checkpoint as ckpt`` ... ``ckpt._x``)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("wsol_utils"):
            for alias in node.names:
                if f"{node.module}.{alias.name}" in MODULES:
                    bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and alias.name in MODULES:
                    bound[alias.asname] = alias.name
    return [
        (bound[node.value.id], node.attr)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in bound
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
    ]


def edges() -> set[tuple[str, str]]:
    """Module -> module arrows; importing ``a.b.c`` also runs the packages ``a.b`` (unless they are the
    importer's own packages, initialised before it)."""
    out = set()
    for module in MODULES:
        for target, _ in imported_names(module):
            own = set(ancestors(module)) | {module}
            for name in [*ancestors(target), target]:
                if name in MODULES and name not in own:
                    out.add((module, name))
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or ``None`` when it is acyclic (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_a_planted_circle_and_passes_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_edges_see_function_level_imports_and_the_parent_package():
    """``viz`` imports ``wsol_utils.metrics`` only inside a function, ``suite`` imports ``wsol_utils.data.wsoleval``
    only inside a function: both are arrows (the check sees lazy imports), and so is the package a submodule's
    import runs (``wsol_utils.engine.cli`` -> ``wsol_utils.data`` for ``wsol_utils.data.synthetic``...)."""
    arrows = edges()
    assert ("wsol_utils.viz", "wsol_utils.metrics") in arrows
    assert ("wsol_utils.suite", "wsol_utils.data.wsoleval") in arrows
    # every arrow into a subpackage's module comes with one into that subpackage, unless it is the importer's own
    parents = {
        (m, t.rpartition(".")[0])
        for m, t in arrows
        if t.count(".") == 2 and t.rpartition(".")[0] not in (*ancestors(m), m)
    }
    assert ("wsol_utils.suite", "wsol_utils.data") in parents and parents <= arrows
    assert ("wsol_utils.engine.evaluate", "wsol_utils.engine") not in arrows  # its own package


def test_the_package_has_no_import_circle():
    graph: dict[str, set[str]] = {}
    for importer, imported in edges():
        if (importer, imported) in KNOWN_EDGES:
            continue
        graph.setdefault(importer, set()).add(imported)
    assert find_cycle(graph) is None, f"import circle: {' -> '.join(find_cycle(graph) or [])}"


def test_no_module_imports_a_private_name_of_another():
    found = set()
    for module in MODULES:
        for target, name in imported_names(module):
            if name is not None and name.startswith("_") and target != module:
                found.add((module, target, name))
        found |= {(module, target, name) for target, name in private_attribute_uses(module) if target != module}
    assert found <= KNOWN_PRIVATE, f"private names imported: {sorted(found - KNOWN_PRIVATE)}"


def test_every_module_has_a_layer():
    assert set(MODULES) - set(LAYERS) == set(), "map the new module to a layer in LAYERS"
    assert set(LAYERS) - set(MODULES) <= PENDING_MODULES, "LAYERS names a module that is gone"
    assert set(LAYERS.values()) <= set(LAYER_ORDER)


@pytest.mark.parametrize("layer", LAYER_ORDER)
def test_a_layer_never_imports_a_higher_one(layer):
    rank = {name: LAYER_ORDER.index(value) for name, value in LAYERS.items()}
    upward = sorted(
        (importer, imported)
        for importer, imported in edges()
        if LAYERS.get(importer) == layer and rank[imported] > rank[importer] and (importer, imported) not in KNOWN_EDGES
    )
    assert upward == [], f"{layer} imports a higher layer: {upward}"


def test_the_allow_lists_are_still_needed():
    """A known violation that is gone must leave the allow-list too (so the lists only shrink)."""
    arrows = edges()
    assert {edge for edge in KNOWN_EDGES if edge not in arrows} == set()
    private = {(m, t, n) for m in MODULES for t, n in imported_names(m) if n is not None and n.startswith("_")}
    assert KNOWN_PRIVATE - private == set(), "drop the fixed entries from KNOWN_PRIVATE"
