"""The torchvision names mrae relies on beyond its documented API (mrae.modeling.torchvision_private):
each still exists with the parameters mrae overrides or calls it with, and the overridden methods
are still called by torchvision. A torchvision upgrade that renames one fails here, naming it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torchvision

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


def test_the_rpn_count_is_set_in_public(examples):
    from mrae.modeling.ignore import IgnoringRPN

    rpn = IgnoringRPN.from_rpn(examples[tvp.RPN], ignore_iof_thr=0.5)
    assert rpn.test_post_nms_top_n == 1
    rpn.set_post_nms_top_n(testing=7)
    assert rpn.test_post_nms_top_n == 7 and rpn.eval().post_nms_top_n() == 7  # torchvision reads it
    assert rpn.train().post_nms_top_n() == 1  # the training count is its own
    rpn.set_post_nms_top_n(training=3)
    assert rpn.post_nms_top_n() == 3 and rpn.test_post_nms_top_n == 7
    assert examples[tvp.RPN].eval().post_nms_top_n() == 1  # the RPN it was made from keeps its own
    with pytest.raises(ValueError, match="testing=0"):
        rpn.set_post_nms_top_n(testing=0)
