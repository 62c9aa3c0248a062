"""The runnable examples in the extractors' docstrings print what the extractors return."""

from __future__ import annotations

import doctest
import importlib

import pytest

from mrae.modeling import registry

# each registered builder is its class's from_settings
CLASSES = {name: entry.resolve().__self__ for name, entry in registry.EXTRACTORS.items()}
MODULES = sorted({cls.__module__ for cls in CLASSES.values()} | {"mrae.modeling.shapes", "mrae.modeling.settings"})


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module):
    results = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert results.attempted > 0, f"{module} has no example"
    assert results.failed == 0


def test_every_extractor_class_has_an_example():
    for name, cls in CLASSES.items():
        assert ">>> " in (cls.__doc__ or ""), f"{name} ({cls.__name__}) has no example"
