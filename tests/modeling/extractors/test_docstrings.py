"""The runnable examples in the extractors' docstrings print what the extractors return."""

from __future__ import annotations

import doctest
import importlib

import pytest

from mrae.modeling.extractors import EXTRACTORS

MODULES = sorted({cls.__module__ for cls in EXTRACTORS.values()} | {"mrae.modeling.shapes"})


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module):
    results = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert results.attempted > 0, f"{module} has no example"
    assert results.failed == 0


def test_every_extractor_class_has_an_example():
    for name, cls in EXTRACTORS.items():
        assert ">>> " in (cls.__doc__ or ""), f"{name} ({cls.__name__}) has no example"
