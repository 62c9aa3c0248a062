"""The package's layers (docs/architecture.md): no module imports a module of a layer above its
own, not even lazily inside a function, so there are no import circles between layers; and no
import circle inside a layer either: the graph of every import of the package (at the top, inside
functions, for type checking) has no circle."""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Collection, Mapping
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mrae"

# Lowest first; a module may import its own layer and the ones below.
LAYERS = {
    "foundations": ("mrae.errors", "mrae.choices", "mrae.files", "mrae.tables", "mrae.device",
                    "mrae.inputs", "mrae.ownership", "mrae.parallel"),
    "models": ("mrae.modeling",),
    "data": ("mrae.data",),
    "evaluation": ("mrae.evaluation",),
    "training engine": ("mrae.engine",),
    "applications": ("mrae.apps",),
    "command line": ("mrae.commands", "mrae.cli"),
    # mrae/__init__.py: the public facade (`from mrae import build_detector`, resolved lazily).
    "package root": ("mrae",),
}
RANK = {prefix: rank for rank, prefixes in enumerate(LAYERS.values()) for prefix in prefixes}


def layer_of(module: str) -> int:
    """The rank of the longest layer prefix of ``module`` (``mrae`` alone: the package root)."""
    matches = [p for p in RANK if module == p or module.startswith(p + ".")]
    return RANK[max(matches, key=len)]


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package by name (a package by its ``__init__.py``)."""
    return {module_name(path, package): path for path in sorted(package.rglob("*.py"))}


MODULES = package_modules()


def imports(path: Path, modules: Collection[str] = MODULES) -> list[tuple[int, str]]:
    """``(line, module)`` of every ``mrae`` import in the file, at any depth (inside functions and
    ``if TYPE_CHECKING:`` blocks too). ``from mrae.x import y`` imports the module ``mrae.x.y``
    when ``modules`` has it (``from mrae import choices``, ``from mrae.engine import rng``), else
    ``mrae.x``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "mrae"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "mrae":
                for alias in node.names:
                    inner = f"{node.module}.{alias.name}"
                    found.append((node.lineno, inner if inner in modules else node.module))
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, dict[str, int]]:
    """``{module: {module it imports: the line of the first such import}}`` over the package's
    own modules (an import that names no module of the package is left out)."""
    modules = package_modules(package)
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges = graph.setdefault(name, {})
        for line, target in imports(path, modules):
            if target in modules and target != name:
                edges.setdefault(target, line)
    return graph


def circles(graph: Mapping[str, Mapping[str, int]]) -> list[list[str]]:
    """One circle ``[a, b, ..., a]`` per strongly connected component of more than one module
    (scipy's): the shortest through the component's first module by name."""
    import numpy as np
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    names = sorted(graph)
    index = {name: i for i, name in enumerate(names)}
    rows = [index[a] for a in names for _ in graph[a]]
    cols = [index[b] for a in names for b in graph[a]]
    matrix = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(names), len(names)))
    count, labels = connected_components(matrix, directed=True, connection="strong")
    components = [[n for n in names if labels[index[n]] == k] for k in range(count)]
    return sorted(_shortest_circle(graph, members) for members in components if len(members) > 1)


def _shortest_circle(graph: Mapping[str, Mapping[str, int]], members: list[str]) -> list[str]:
    """A breadth-first search from ``members[0]`` back to itself inside the component."""
    start, inside = members[0], set(members)
    previous: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target in sorted(graph[node]):
            if target == start:
                chain: list[str] = []
                step: str | None = node
                while step is not None:
                    chain.append(step)
                    step = previous[step]
                return [*reversed(chain), start]
            if target in inside and target not in previous:
                previous[target] = node
                queue.append(target)
    raise AssertionError(f"{start} is on no circle of its component")  # never: a component is one


def describe(circle: list[str], graph: Mapping[str, Mapping[str, int]], package: Path = PACKAGE) -> str:
    """``a -> b (a.py:12) -> a (b.py:40)``: each step with the file and line of its import."""
    paths = package_modules(package)
    steps = [circle[0]]
    for source, target in zip(circle, circle[1:], strict=False):
        where = paths[source].relative_to(package.parent)
        steps.append(f"{target} ({where}:{graph[source][target]})")
    return " -> ".join(steps)


def reachable(graph: Mapping[str, Mapping[str, int]], start: str) -> set[str]:
    """Every module that importing ``start`` and calling its functions may import."""
    seen, queue = {start}, deque([start])
    while queue:
        for target in graph[queue.popleft()]:
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return seen


def test_layer_table_covers_every_module():
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        assert name == "mrae" or layer_of(name) < RANK["mrae"], f"{name} belongs to no layer"


def test_no_module_imports_a_layer_above_its_own():
    names = list(LAYERS)
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = module_name(path)
        for line, target in imports(path):
            if layer_of(target) > layer_of(own):
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({names[layer_of(own)]}) "
                              f"imports {target} ({names[layer_of(target)]})")
    assert upward == []


def test_the_checker_sees_lazy_upward_imports(tmp_path):
    """A lazy import inside a function counts as much as one at the top."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from mrae.engine.train import train\n    import mrae.apps.demo\n")
    assert imports(source) == [(2, "mrae.engine.train"), (3, "mrae.apps.demo")]
    assert layer_of("mrae.engine.train") > layer_of("mrae.data.coco")


def test_no_import_circle():
    """Not at import time and not at call time: a circle through an import inside a function or
    for type checking is one too (break it by moving what both sides need below both, or by
    passing it in)."""
    graph = import_graph()
    found = [describe(circle, graph) for circle in circles(graph)]
    assert found == [], "import circles:\n" + "\n".join(found)


def test_the_checker_finds_a_circle_through_a_lazy_or_type_checking_import(tmp_path):
    package = tmp_path / "mrae"
    files = {
        "__init__.py": "",
        "engine/__init__.py": "",
        "engine/a.py": "from mrae.engine import b\n",
        "engine/b.py": "def f():\n    from mrae.engine.a import g\n",
        "engine/c.py": "import mrae.engine.a\n",  # imports the circle, is not on it
        "engine/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from mrae.engine.e import E\n",
        "engine/e.py": "import mrae.engine.f\n",
        "engine/f.py": "from mrae.engine import d\n",
    }
    for name, text in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    graph = import_graph(package)
    found = circles(graph)
    assert found == [["mrae.engine.a", "mrae.engine.b", "mrae.engine.a"],
                     ["mrae.engine.d", "mrae.engine.e", "mrae.engine.f", "mrae.engine.d"]]
    assert describe(found[0], graph, package) == (
        "mrae.engine.a -> mrae.engine.b (mrae/engine/a.py:1) -> mrae.engine.a (mrae/engine/b.py:2)")
    assert circles({k: v for k, v in graph.items() if k != "mrae.engine.b"} | {"mrae.engine.b": {}}) == [
        ["mrae.engine.d", "mrae.engine.e", "mrae.engine.f", "mrae.engine.d"]]


def test_loading_a_trained_model_never_reaches_the_pretraining_code():
    """Evaluating, predicting, exporting: the trained model's own weights, never the offline
    pretraining of a trunk (mrae.engine.pretrain), not even through an import inside a function."""
    graph = import_graph()
    for start in ("mrae.engine.trained", "mrae.apps.evaluate", "mrae.apps.predict", "mrae.apps.export"):
        assert start in graph and "mrae.engine.pretrain" not in reachable(graph, start), start
