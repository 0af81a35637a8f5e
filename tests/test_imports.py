"""The package's import structure, read from the source with :mod:`ast` (every import, function-level ones too):
no import circle, no private name taken from another module, and a lower layer never imports a higher one.

The layers (docs/ARCHITECTURE.md): base < networks < scoring < data < engine < studies < ui. ``base`` is the
plain utilities that import nothing of the package; ``ui`` holds every front door (figures, the explorer, the
notebooks' :class:`~wsol_utils.ui.suite.Suite`, the command lines, the notebook runner and the site).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "wsol_utils"
LAYER_ORDER = ("base", "networks", "scoring", "data", "engine", "studies", "ui")
#: Each layer is one subpackage of ``wsol_utils`` (the layout shows the layers); a module's layer is its folder's.
SUBPACKAGE_LAYERS: dict[str, str] = {
    "base": "base",
    "nets": "networks",
    "scoring": "scoring",
    "data": "data",
    "engine": "engine",
    "studies": "studies",
    "ui": "ui",
}
#: The two modules at the top: the package (imports nothing) and ``python -m wsol_utils``'s dispatcher.
TOP_LEVEL_LAYERS = {"wsol_utils": "base", "wsol_utils.__main__": "ui"}


def layer_of(module: str) -> str | None:
    """The layer of ``wsol_utils.<subpackage>[.<module>]``: its subpackage's (None for a folder outside the map)."""
    if module in TOP_LEVEL_LAYERS:
        return TOP_LEVEL_LAYERS[module]
    return SUBPACKAGE_LAYERS.get(module.split(".")[1])


#: Known arrows still to remove, each ``(importer, imported)``; the lead drops them as they go (none left):
KNOWN_EDGES: set[tuple[str, str]] = set()
#: Known private imports, ``(importer, imported module, name)``: the compiled component tree is boxeval's own half
#: (``_component_tree.c``, no Python source), private to it.
KNOWN_PRIVATE: set[tuple[str, str, str]] = {
    ("wsol_utils.scoring.boxeval", "wsol_utils.scoring", "_component_tree"),
    ("wsol_utils.nets.fused", "wsol_utils.nets", "_fused_small"),
}


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
    """``viz`` imports ``wsol_utils.scoring.metrics`` only inside a function, ``suite`` imports
    ``wsol_utils.data.wsoleval`` only inside a function: both are arrows (the check sees lazy imports), and so is the
    package a submodule's import runs (``wsol_utils.ui.train_cli`` -> ``wsol_utils.data`` for
    ``wsol_utils.data.synthetic``...)."""
    arrows = edges()
    assert ("wsol_utils.ui.viz", "wsol_utils.scoring.metrics") in arrows
    assert ("wsol_utils.ui.suite", "wsol_utils.data.wsoleval") in arrows
    # every arrow into a subpackage's module comes with one into that subpackage, unless it is the importer's own
    parents = {
        (m, t.rpartition(".")[0])
        for m, t in arrows
        if t.count(".") == 2 and t.rpartition(".")[0] not in (*ancestors(m), m)
    }
    assert ("wsol_utils.ui.suite", "wsol_utils.data") in parents and parents <= arrows
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


def test_every_module_lives_in_a_layer_folder():
    """No module beside the layer subpackages but the package itself and ``__main__``; every folder is a layer."""
    assert {module for module in MODULES if layer_of(module) is None} == set(), "move it into a layer's subpackage"
    assert {m for m in MODULES if m.count(".") == 1} - set(TOP_LEVEL_LAYERS) <= {
        f"wsol_utils.{sub}" for sub in SUBPACKAGE_LAYERS
    }, "a module sits at the top of the package: move it into its layer's subpackage"
    assert set(SUBPACKAGE_LAYERS.values()) == set(LAYER_ORDER)
    for sub in SUBPACKAGE_LAYERS:
        assert (PACKAGE / sub / "__init__.py").is_file(), f"wsol_utils/{sub}/__init__.py is missing"


def test_layer_of_reads_the_folder():
    assert layer_of("wsol_utils.nets.models") == "networks"
    assert layer_of("wsol_utils.data") == "data"
    assert layer_of("wsol_utils.__main__") == "ui"
    assert layer_of("wsol_utils.somewhere.else") is None


@pytest.mark.parametrize("layer", LAYER_ORDER)
def test_a_layer_never_imports_a_higher_one(layer):
    def rank(module: str) -> int:
        return LAYER_ORDER.index(layer_of(module) or "ui")

    upward = sorted(
        (importer, imported)
        for importer, imported in edges()
        if layer_of(importer) == layer and rank(imported) > rank(importer) and (importer, imported) not in KNOWN_EDGES
    )
    assert upward == [], f"{layer} imports a higher layer: {upward}"


def test_the_allow_lists_are_still_needed():
    """A known violation that is gone must leave the allow-list too (so the lists only shrink)."""
    arrows = edges()
    assert {edge for edge in KNOWN_EDGES if edge not in arrows} == set()
    private = {(m, t, n) for m in MODULES for t, n in imported_names(m) if n is not None and n.startswith("_")}
    assert KNOWN_PRIVATE - private == set(), "drop the fixed entries from KNOWN_PRIVATE"
