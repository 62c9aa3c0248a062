"""The package's layers (docs/architecture.md): no module imports a module of a layer above its
own, not even lazily inside a function, so there are no import circles between layers."""

from __future__ import annotations

import ast
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


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every ``mrae`` import in the file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "mrae"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "mrae":
                # `from mrae import choices` imports the module mrae.choices
                names = [f"{node.module}.{a.name}" for a in node.names] if node.module == "mrae" else [node.module]
                found += [(node.lineno, name) for name in names]
    return found


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
