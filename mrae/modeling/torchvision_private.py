"""What mrae relies on in torchvision's detection code beyond its documented API, in one place.

The hosts subclass torchvision's detectors. Some of torchvision's methods are overridden
(torchvision's own ``forward`` calls them: renamed there, the override would silently stop
running), some undocumented ones are called, and the RPN's NMS counts are read from private
attributes. :data:`RELIED_ON` lists every such name with the parameters mrae overrides or calls
it with; :func:`problems` checks each against the installed torchvision (that the name exists,
that its parameters start as listed, and for an override that torchvision still calls it).
``tests/modeling/test_torchvision_private_names.py`` runs it, so an upgrade that renames one of
them fails loudly, naming it and the version.

The RPN's private count dicts are read and written only here (:func:`rpn_nms_top_n`,
:func:`set_rpn_post_nms_top_n`); everything else mrae changes on a torchvision module is passed
as an argument (the per-image cap, the ignore boxes), never swapped in for the length of a call.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any

from torch import nn

RPN = "torchvision.models.detection.rpn.RegionProposalNetwork"
ROI_HEADS = "torchvision.models.detection.roi_heads.RoIHeads"
RETINANET = "torchvision.models.detection.retinanet.RetinaNet"
RETINANET_HEAD = "torchvision.models.detection.retinanet.RetinaNetHead"
FCOS = "torchvision.models.detection.fcos.FCOS"
FCOS_HEAD = "torchvision.models.detection.fcos.FCOSHead"
UTILS = "torchvision.models.detection._utils"
POOLERS = "torchvision.ops.poolers"


@dataclass(frozen=True)
class Relied:
    """One name of torchvision's that mrae relies on.

    owner: the class (or module) that holds it, dotted; name: the method or attribute;
    params: a method's parameters after ``self`` as mrae overrides or calls it (None: an
    attribute); called_by: ``(method of owner, text)`` where torchvision's source calls it, for an
    override that only works as long as torchvision calls it; value: an attribute's expected
    value (None: any); used_in: the mrae code that relies on it.
    """

    owner: str
    name: str
    used_in: str
    params: tuple[str, ...] | None = None
    called_by: tuple[str, str] | None = None
    value: Any = None


RELIED_ON: tuple[Relied, ...] = (
    # Faster R-CNN's RoI heads (mrae.modeling.roi_heads.CappedRoIHeads)
    Relied(ROI_HEADS, "select_training_samples", "CappedRoIHeads (overrides it: ignore boxes)",
           ("proposals", "targets"), ("forward", "self.select_training_samples(proposals, targets)")),
    Relied(ROI_HEADS, "postprocess_detections", "CappedRoIHeads (overrides it: the caps)",
           ("class_logits", "box_regression", "proposals", "image_shapes"),
           ("forward", "self.postprocess_detections(class_logits, box_regression, proposals, image_shapes)")),
    Relied(ROI_HEADS, "assign_targets_to_proposals", "CappedRoIHeads.select_training_samples",
           ("proposals", "gt_boxes", "gt_labels")),
    Relied(ROI_HEADS, "check_targets", "CappedRoIHeads.select_training_samples", ("targets",)),
    Relied(ROI_HEADS, "add_gt_proposals", "CappedRoIHeads.select_training_samples",
           ("proposals", "gt_boxes")),
    Relied(ROI_HEADS, "subsample", "CappedRoIHeads.select_training_samples", ("labels",)),
    Relied(ROI_HEADS, "box_coder", "CappedRoIHeads"),
    Relied(ROI_HEADS, "score_thresh", "CappedRoIHeads.postprocess_detections"),
    Relied(ROI_HEADS, "nms_thresh", "CappedRoIHeads.postprocess_detections"),
    Relied(ROI_HEADS, "detections_per_img", "CappedRoIHeads.postprocess_detections (the cap)"),
    # Faster R-CNN's RPN (mrae.modeling.ignore.IgnoringRPN)
    Relied(RPN, "_pre_nms_top_n", "IgnoringRPN.from_rpn (rpn_nms_top_n)"),
    Relied(RPN, "_post_nms_top_n", "IgnoringRPN.from_rpn, IgnoringRPN.set_post_nms_top_n"),
    Relied(RPN, "post_nms_top_n", "IgnoringRPN.set_post_nms_top_n (reads _post_nms_top_n)", (),
           ("filter_proposals", "self.post_nms_top_n()")),
    Relied(RPN, "assign_targets_to_anchors", "IgnoringRPN (overrides it: ignore boxes)",
           ("anchors", "targets"), ("forward", "self.assign_targets_to_anchors(anchors, targets)")),
    Relied(RPN, "proposal_matcher", "IgnoringRPN.from_rpn"),
    Relied(RPN, "fg_bg_sampler", "IgnoringRPN.from_rpn"),
    Relied(RPN, "nms_thresh", "IgnoringRPN.from_rpn"),
    Relied(RPN, "score_thresh", "IgnoringRPN.from_rpn"),
    # the one-stage hosts (mrae.modeling.hosts.one_stage.CappedOneStage, retinanet, fcos)
    *(Relied(owner, "postprocess_detections", "CappedOneStage (overrides it: the caps)",
             ("head_outputs", "anchors", "image_shapes"),
             ("forward", "self.postprocess_detections(split_head_outputs, split_anchors, images.image_sizes)"))
      for owner in (RETINANET, FCOS)),
    *(Relied(owner, name, "CappedOneStage.postprocess_detections")
      for owner in (RETINANET, FCOS)
      for name in ("score_thresh", "topk_candidates", "nms_thresh", "detections_per_img", "box_coder",
                   "head")),
    Relied(RETINANET_HEAD, "compute_loss", "IgnoringRetinaNetHead (overrides it: ignore boxes)",
           ("targets", "head_outputs", "anchors", "matched_idxs")),
    Relied(RETINANET, "compute_loss", "IgnoringRetinaNetHead: RetinaNet calls its head's compute_loss",
           ("targets", "head_outputs", "anchors"),
           ("compute_loss", "self.head.compute_loss(targets, head_outputs, anchors, matched_idxs)")),
    Relied(FCOS_HEAD, "compute_loss", "IgnoringFCOSHead (overrides it: ignore boxes)",
           ("targets", "head_outputs", "anchors", "matched_idxs")),
    Relied(FCOS, "compute_loss", "IgnoringFCOSHead: FCOS calls its head's compute_loss",
           ("targets", "head_outputs", "anchors", "num_anchors_per_level"),
           ("compute_loss", "self.head.compute_loss(targets, head_outputs, anchors, matched_idxs)")),
    *(Relied(FCOS_HEAD, name, "IgnoringFCOSHead.__init__ (sets FCOSHead's parts itself)")
      for name in ("box_coder", "classification_head", "regression_head")),
    Relied(UTILS, "_topk_min", "CappedOneStage.postprocess_detections (ONNX-safe top-k)",
           ("input", "orig_kval", "axis")),
    Relied(f"{UTILS}.Matcher", "BETWEEN_THRESHOLDS", "IgnoringRetinaNetHead (NEITHER)", value=-2),
    # RoI pooling over several maps, exported (mrae.modeling.roi_pool.ExportableMultiScaleRoIAlign)
    Relied(POOLERS, "_filter_input", "ExportableMultiScaleRoIAlign.pool_by_gather", ("x", "featmap_names")),
    Relied(POOLERS, "_setup_scales", "ExportableMultiScaleRoIAlign.pool_by_gather",
           ("features", "image_shapes", "canonical_scale", "canonical_level")),
    Relied(POOLERS, "_convert_to_roi_format", "ExportableMultiScaleRoIAlign.pool_by_gather", ("boxes",)),
    *(Relied(f"{POOLERS}.MultiScaleRoIAlign", name, "ExportableMultiScaleRoIAlign.pool_by_gather")
      for name in ("featmap_names", "output_size", "sampling_ratio", "scales", "map_levels",
                   "canonical_scale", "canonical_level")),
)


def rpn_nms_top_n(rpn: nn.Module) -> tuple[dict[str, int], dict[str, int]]:
    """Copies of a torchvision RPN's pre- and post-NMS counts, ``{"training": n, "testing": n}``
    each (torchvision keeps them in the private ``_pre_nms_top_n`` and ``_post_nms_top_n``)."""
    return dict(rpn._pre_nms_top_n), dict(rpn._post_nms_top_n)


def set_rpn_post_nms_top_n(rpn: nn.Module, mode: str, count: int) -> None:
    """Set a torchvision RPN's post-NMS count of ``mode`` (``"training"`` or ``"testing"``)."""
    top_n = rpn._post_nms_top_n
    if mode not in top_n:
        raise ValueError(f"mode must be one of {sorted(top_n)}, got {mode!r}")
    top_n[mode] = int(count)


# ---------------------------------------------------------------------------------- the check


def _resolve(dotted: str) -> Any:
    """The class or module of a dotted name (a class inside a module may be nested: Matcher)."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for part in parts[split:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(dotted)


def _examples() -> dict[str, Any]:
    """Small instances of the owners, for the attributes set in ``__init__``."""
    from torchvision.models.detection import fcos, retinanet
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.roi_heads import RoIHeads
    from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
    from torchvision.ops import MultiScaleRoIAlign

    backbone = nn.Identity()
    backbone.out_channels = 32  # FCOS's GroupNorm: 32 groups
    counts = {"training": 1, "testing": 1}
    return {
        RPN: RegionProposalNetwork(AnchorGenerator(((32,),), ((1.0,),)), RPNHead(32, 1), 0.7, 0.3,
                                   16, 0.5, dict(counts), dict(counts), 0.7),
        ROI_HEADS: RoIHeads(None, None, None, 0.5, 0.5, 16, 0.25, None, 0.05, 0.5, 10),
        RETINANET: retinanet.RetinaNet(backbone, num_classes=2),
        RETINANET_HEAD: retinanet.RetinaNetHead(32, 1, 2),
        FCOS: fcos.FCOS(backbone, num_classes=2),
        FCOS_HEAD: fcos.FCOSHead(32, 1, 2),
        f"{POOLERS}.MultiScaleRoIAlign": MultiScaleRoIAlign(["0", "1"], 7, 2),
    }


def check(relied: Relied, examples: dict[str, Any] | None = None) -> str | None:
    """What is wrong with ``relied`` in the installed torchvision, or None when it is as mrae needs."""
    import torchvision

    where = f"torchvision {torchvision.__version__}: {relied.owner}.{relied.name}"
    needs = f"(mrae's {relied.used_in} relies on it; update the code that uses it and {__name__})"
    try:
        owner = _resolve(relied.owner)
    except (ImportError, AttributeError):
        return f"{where}: {relied.owner} no longer exists {needs}"
    if relied.params is None:  # an attribute: of the class, or set by __init__
        holder = (examples if examples is not None else _examples()).get(relied.owner, owner)
        if not hasattr(holder, relied.name):
            return f"{where}: no such attribute {needs}"
        if relied.value is not None and getattr(holder, relied.name) != relied.value:
            return f"{where} is {getattr(holder, relied.name)!r}, not {relied.value!r} {needs}"
        if relied.name in ("_pre_nms_top_n", "_post_nms_top_n"):
            top_n = getattr(holder, relied.name)
            if not isinstance(top_n, dict) or set(top_n) != {"training", "testing"}:
                return f"{where} is {top_n!r}, not a dict of 'training' and 'testing' {needs}"
        return None
    function = getattr(owner, relied.name, None)
    if not callable(function):
        return f"{where}: no such method {needs}"
    parameters = list(inspect.signature(function).parameters.values())
    if inspect.isclass(owner):
        parameters = parameters[1:]  # self
    names = tuple(p.name for p in parameters)
    extra = parameters[len(relied.params):]
    if names[: len(relied.params)] != relied.params or any(p.default is p.empty for p in extra):
        return f"{where}: its parameters are {names}, not {relied.params} {needs}"
    if relied.called_by is not None:
        caller, text = relied.called_by
        source = " ".join(inspect.getsource(getattr(owner, caller)).split())
        if " ".join(text.split()) not in source:
            return f"{where}: {relied.owner}.{caller} no longer calls {text!r} {needs}"
    return None


def problems() -> list[str]:
    """Every name of :data:`RELIED_ON` that the installed torchvision does not have as mrae needs it."""
    examples = _examples()
    return [p for relied in RELIED_ON if (p := check(relied, examples)) is not None]
