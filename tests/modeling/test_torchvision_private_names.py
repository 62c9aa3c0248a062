"""The torchvision names mrae relies on beyond its documented API (mrae.modeling.torchvision_private):
each still exists with the parameters mrae overrides or calls it with, and the overridden methods
are still called by torchvision. A torchvision upgrade that renames one fails here, naming it."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import re
import textwrap
from pathlib import Path

import pytest
import torchvision
from torch import nn
from torchvision.models.detection.rpn import RegionProposalNetwork

from mrae.modeling import torchvision_private as tvp
from mrae.modeling.torchvision_private import RELIED_ON, ROI_HEADS, Relied, check


@pytest.fixture(scope="module")
def examples():
    return tvp._examples()


@pytest.mark.parametrize("relied", RELIED_ON, ids=lambda r: f"{r.owner.rsplit('.', 1)[-1]}.{r.name}")
def test_torchvision_still_has_it(relied, examples):
    problem = check(relied, examples)
    assert problem is None, problem


def test_a_missing_name_fails_naming_it_and_the_version(examples):
    gone = check(Relied(ROI_HEADS, "select_training_samples_v2", "a test", ("proposals", "targets")), examples)
    assert gone is not None and "RoIHeads.select_training_samples_v2" in gone
    assert f"torchvision {torchvision.__version__}" in gone and "a test" in gone
    attribute = check(Relied(ROI_HEADS, "_no_such_attribute", "a test"), examples)
    assert attribute is not None and "no such attribute" in attribute


def test_changed_parameters_and_a_call_no_longer_made_fail(examples):
    renamed = check(Relied(ROI_HEADS, "select_training_samples", "a test", ("proposals", "gt")), examples)
    assert renamed is not None and "its parameters are ('proposals', 'targets')" in renamed
    not_called = check(Relied(ROI_HEADS, "postprocess_detections", "a test",
                              ("class_logits", "box_regression", "proposals", "image_shapes"),
                              ("forward", "self.postprocess_detections(logits)")), examples)
    assert not_called is not None and "RoIHeads.forward no longer calls" in not_called
    value = check(Relied(f"{tvp.UTILS}.Matcher", "BETWEEN_THRESHOLDS", "a test", value=-3), examples)
    assert value is not None and "is -2, not -3" in value


def test_no_other_module_touches_the_rpn_counts_or_swaps_the_caps():
    """The private RPN counts are read and written in torchvision_private alone, and no module
    raises a torchvision cap for the length of a call (``sys.maxsize``) any more."""
    root = Path(tvp.__file__).resolve().parents[1]
    offenders = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if path.name != "torchvision_private.py" and re.search(r"\._(pre|post)_nms_top_n\b", text):
            offenders.append(f"{path.relative_to(root)}: _pre/_post_nms_top_n")
        if re.search(r"detections_per_img\s*=\s*sys\.maxsize", text) or "self._ignore_boxes" in text:
            offenders.append(f"{path.relative_to(root)}: state swapped for a call")
    assert not offenders


# ---- every private name the package uses is listed ---------------------------------------------
# A torchvision name is documented when it is reachable, without a leading underscore, from one of
# these namespaces (torchvision's API reference); anything else the package imports or reads from
# torchvision must be in RELIED_ON. Inside a subclass of a torchvision class, every method it
# overrides and every ``self.NAME`` it reads or sets that a torchvision base defines (in its class
# or as ``self.NAME = ...`` in its ``__init__``) is relied on too. Calls into a torchvision object
# held elsewhere (``model.transform.postprocess``) cannot be seen by type here and are listed by hand.
DOCUMENTED = ("torchvision", "torchvision.ops", "torchvision.models", "torchvision.models.detection",
              "torchvision.transforms.v2", "torchvision.transforms.v2.functional", "torchvision.utils",
              "torchvision.tv_tensors", "torchvision.io")
PACKAGE = Path(tvp.__file__).resolve().parents[1]


def _documented(module: str, name: str) -> bool:
    if name.startswith("_") or any(part.startswith("_") for part in module.split(".")):
        return False
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return False
    if inspect.ismodule(obj):
        return True  # a path: what is taken from it is judged by itself
    return any(getattr(importlib.import_module(space), name, None) is obj for space in DOCUMENTED)


def _names_taken(tree: ast.AST) -> set[tuple[str, str]]:
    """(module, name) of every torchvision name a module's source imports or reads from an
    imported torchvision module (``det_utils._topk_min``)."""
    modules: dict[str, str] = {}  # local name -> torchvision module
    taken = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("torchvision"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if importlib.util.find_spec(node.module) and _is_module(full):
                    modules[alias.asname or alias.name] = full
                else:
                    taken.add((node.module, alias.name))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("torchvision"):
                    modules[alias.asname or alias.name.split(".")[0]] = alias.asname and alias.name or "torchvision"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            module = modules[node.value.id]
            if not _is_module(f"{module}.{node.attr}"):
                taken.add((module, node.attr))
    return taken


def _is_module(dotted: str) -> bool:
    try:
        return importlib.util.find_spec(dotted) is not None
    except (ImportError, ValueError):
        return False


def _init_attributes(cls: type) -> set[str]:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls.__init__)))
    except (OSError, TypeError):
        return set()
    return {t.attr for node in ast.walk(tree) if isinstance(node, ast.Assign) for t in node.targets
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"}


def _used_on_self(cls: type) -> set[str]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    used = {node.name for node in body if isinstance(node, ast.FunctionDef)}
    used |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
             and isinstance(node.value, ast.Name) and node.value.id == "self"}
    return used


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def unlisted() -> list[str]:
    """Every private torchvision name the package's source uses that RELIED_ON does not list."""
    listed = {(r.owner, r.name) for r in RELIED_ON}
    missing = set()
    modules = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "torchvision_private.py":
            continue  # the list itself
        text = path.read_text(encoding="utf-8")
        if "torchvision" not in text:
            continue
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        modules.append(".".join(relative.parts[:-1] if relative.name == "__init__" else relative.parts))
        for module, name in _names_taken(ast.parse(text)):
            if not _documented(module, name) and (module, name) not in listed:
                missing.add(f"{path.relative_to(PACKAGE.parent)}: {module}.{name}")
    for module_name in modules:
        module = importlib.import_module(module_name)
        for cls in vars(module).values():
            if not inspect.isclass(cls) or cls.__module__ != module_name:
                continue
            bases = [b for b in cls.__mro__ if b.__module__.startswith("torchvision.")]
            if not bases:
                continue
            members: dict[str, set[str]] = {}
            for base in bases:
                for name in set(vars(base)) | _init_attributes(base):
                    members.setdefault(name, set()).add(_dotted(base))
            ours = [b for b in cls.__mro__ if b.__module__.startswith("mrae.")]
            for name in set().union(*(_used_on_self(b) for b in ours)) & set(members):
                if name.startswith("__") or name == "forward" or hasattr(nn.Module, name):
                    continue
                if not any((owner, name) in listed for owner in members[name]):
                    missing.add(f"{module_name}.{cls.__qualname__}: {' / '.join(sorted(members[name]))}.{name}")
    return sorted(missing)


def test_every_private_name_the_package_uses_is_listed():
    missing = unlisted()
    assert not missing, "not in mrae.modeling.torchvision_private.RELIED_ON:\n" + "\n".join(missing)


def test_the_scan_finds_an_import_a_module_read_and_an_override():
    tree = ast.parse("from torchvision.models.detection.transform import resize_boxes\n"
                     "from torchvision.models.detection import _utils as det_utils\n"
                     "from torchvision.ops import box_iou\n"
                     "x = det_utils._topk_min\n")
    taken = _names_taken(tree)
    assert {("torchvision.models.detection.transform", "resize_boxes"),
            ("torchvision.models.detection._utils", "_topk_min"), ("torchvision.ops", "box_iou")} <= taken
    assert not _documented("torchvision.models.detection.transform", "resize_boxes")
    assert _documented("torchvision.ops", "box_iou") and _documented("torchvision.ops.boxes", "batched_nms")
    assert not _documented("torchvision.models.detection._utils", "BoxLinearCoder")

    class Overrides(RegionProposalNetwork):
        def pre_nms_top_n(self):
            return self.box_similarity
    assert {"pre_nms_top_n", "box_similarity"} <= _used_on_self(Overrides) & _init_attributes(
        RegionProposalNetwork) | set(vars(RegionProposalNetwork))
