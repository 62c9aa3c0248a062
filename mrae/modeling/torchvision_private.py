"""What mrae relies on in torchvision's detection code beyond its documented API, in one place.

The hosts are composed of torchvision's parts and subclass some of them. Some of torchvision's
methods are overridden (torchvision's own code calls them: renamed there, the override would
silently stop running), some undocumented classes, functions and attributes are used.
:data:`RELIED_ON` lists every such name with the parameters mrae overrides or calls it with;
:func:`problems` checks each against the installed torchvision (that the name exists, that its
parameters start as listed, and for an override that torchvision still calls it).
``tests/modeling/test_torchvision_private_names.py`` runs it, so an upgrade that renames one of
them fails loudly, naming it and the version; the same test scans the package's source and fails
on a name taken from torchvision beyond its documented namespaces, or a torchvision member used
inside a subclass, that this list misses.

Nothing mrae changes on a torchvision module is swapped in for the length of a call: what
torchvision's code does not take as an argument is a setting of mrae's own subclass (the RPN's
counts, :class:`mrae.modeling.rpn.RPN`) or is passed as an argument (the ignore boxes).
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
FCOS_REGRESSION_HEAD = "torchvision.models.detection.fcos.FCOSRegressionHead"
UTILS = "torchvision.models.detection._utils"
DETECTION = "torchvision.models.detection"
TRANSFORM = "torchvision.models.detection.transform.GeneralizedRCNNTransform"
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
    Relied(ROI_HEADS, "postprocess_detections", "CappedRoIHeads (overrides it: calls it, then the caps)",
           ("class_logits", "box_regression", "proposals", "image_shapes"),
           ("forward", "self.postprocess_detections(class_logits, box_regression, proposals, image_shapes)")),
    Relied(ROI_HEADS, "assign_targets_to_proposals",
           "CappedRoIHeads (overrides it: box_similarity, ignore boxes; its select_training_samples calls it)",
           ("proposals", "gt_boxes", "gt_labels")),
    Relied(ROI_HEADS, "check_targets", "CappedRoIHeads.select_training_samples", ("targets",)),
    Relied(ROI_HEADS, "add_gt_proposals", "CappedRoIHeads.select_training_samples",
           ("proposals", "gt_boxes")),
    Relied(ROI_HEADS, "subsample", "CappedRoIHeads.select_training_samples", ("labels",)),
    Relied(ROI_HEADS, "box_coder", "CappedRoIHeads"),
    Relied(ROI_HEADS, "proposal_matcher", "CappedRoIHeads.assign_targets_to_proposals"),
    Relied(ROI_HEADS, "box_similarity", "CappedRoIHeads (sets it: the matching of proposals to targets)"),
    Relied(ROI_HEADS, "detections_per_img", "CappedRoIHeads.__init__ (caps.UNCUT: torchvision's cut out of reach), "
           "caps.detections_per_image (another model's cap)"),
    # Faster R-CNN's RPN (mrae.modeling.rpn.RPN)
    Relied(RPN, "__init__", "RPN.__init__ (passes torchvision's settings in this order)",
           ("anchor_generator", "head", "fg_iou_thresh", "bg_iou_thresh", "batch_size_per_image",
            "positive_fraction", "pre_nms_top_n", "post_nms_top_n", "nms_thresh", "score_thresh")),
    Relied(RPN, "pre_nms_top_n", "RPN (overrides it: the count of its settings)", (),
           ("_get_top_n_idx", "self.pre_nms_top_n()")),
    Relied(RPN, "post_nms_top_n", "RPN (overrides it: the count of its settings)", (),
           ("filter_proposals", "self.post_nms_top_n()")),
    Relied(RPN, "assign_targets_to_anchors", "RPN (overrides it: ignore boxes)",
           ("anchors", "targets"), ("forward", "self.assign_targets_to_anchors(anchors, targets)")),
    Relied(RPN, "box_similarity", "RPN.__init__ (sets it: the matching of anchors to targets)",
           called_by=("assign_targets_to_anchors", "self.box_similarity(gt_boxes, anchors_per_image)")),
    Relied(RPN, "anchor_generator", "RPN.with_post_nms_top_n (shares it)"),
    Relied(RPN, "head", "RPN.with_post_nms_top_n (shares it)"),
    # the classes the hosts are composed of, called with these parameters
    Relied(f"{DETECTION}.generalized_rcnn", "GeneralizedRCNN", "build_faster_rcnn",
           ("backbone", "rpn", "roi_heads", "transform")),
    Relied(f"{DETECTION}.rpn", "RegionProposalNetwork", "mrae.modeling.rpn.RPN (subclasses it)"),
    Relied(f"{DETECTION}.rpn", "RPNHead", "build_faster_rcnn", ("in_channels", "num_anchors")),
    Relied(f"{DETECTION}.roi_heads", "RoIHeads", "CappedRoIHeads (subclasses it, keywords of build_faster_rcnn)",
           ("box_roi_pool", "box_head", "box_predictor", "fg_iou_thresh", "bg_iou_thresh",
            "batch_size_per_image", "positive_fraction", "bbox_reg_weights", "score_thresh", "nms_thresh",
            "detections_per_img")),
    Relied(f"{DETECTION}.faster_rcnn", "TwoMLPHead", "build_faster_rcnn", ("in_channels", "representation_size")),
    Relied(f"{DETECTION}.faster_rcnn", "FastRCNNPredictor", "build_faster_rcnn", ("in_channels", "num_classes")),
    Relied(f"{DETECTION}.anchor_utils", "AnchorGenerator", "mrae.modeling.hosts.anchors",
           ("sizes", "aspect_ratios")),
    Relied(f"{DETECTION}.retinanet", "RetinaNetHead", "IgnoringRetinaNetHead (subclasses it)",
           ("in_channels", "num_anchors", "num_classes")),
    Relied(f"{DETECTION}.fcos", "FCOSHead", "IgnoringFCOSHead (subclasses it)",
           ("in_channels", "num_anchors", "num_classes")),
    Relied(f"{DETECTION}.fcos", "FCOSClassificationHead", "IgnoringFCOSHead.__init__",
           ("in_channels", "num_anchors", "num_classes")),
    Relied(f"{DETECTION}.fcos", "FCOSRegressionHead", "IgnoringFCOSHead.__init__", ("in_channels", "num_anchors")),
    Relied(UTILS, "BoxLinearCoder", "IgnoringFCOSHead.__init__", ("normalize_by_size",)),
    Relied("torchvision.ops.feature_pyramid_network", "LastLevelMaxPool", "mrae.modeling.extractors.fpn"),
    # the transform (mrae.modeling.transform.ScaleAwareTransform) and the evaluator
    Relied(f"{DETECTION}.transform", "GeneralizedRCNNTransform", "ScaleAwareTransform (subclasses it)",
           ("min_size", "max_size", "image_mean", "image_std", "size_divisible", "fixed_size")),
    Relied(TRANSFORM, "resize", "ScaleAwareTransform (overrides it: crops' scale, ignore boxes)",
           ("image", "target"), ("forward", "self.resize(image, target_index)")),
    Relied(TRANSFORM, "postprocess", "mrae.evaluation.evaluator.detect_with_proposals",
           ("result", "image_shapes", "original_image_sizes")),
    Relied(f"{DETECTION}.transform", "resize_boxes", "ScaleAwareTransform.resize, detect_with_proposals",
           ("boxes", "original_size", "new_size")),
    # the one-stage hosts (mrae.modeling.hosts.one_stage.CappedOneStage, retinanet, fcos)
    *(Relied(owner, "postprocess_detections", "CappedOneStage (overrides it: calls it, then the caps)",
             ("head_outputs", "anchors", "image_shapes"),
             ("forward", "self.postprocess_detections(split_head_outputs, split_anchors, images.image_sizes)"))
      for owner in (RETINANET, FCOS)),
    *(Relied(owner, "detections_per_img", "build_retinanet, build_fcos (caps.UNCUT: torchvision's cut out of "
             "reach; the caps follow)") for owner in (RETINANET, FCOS)),
    Relied(RETINANET, "head", "MraeRetinaNet.compute_loss"),
    Relied(RETINANET_HEAD, "compute_loss", "IgnoringRetinaNetHead (overrides it: ignore boxes)",
           ("targets", "head_outputs", "anchors", "matched_idxs")),
    Relied(RETINANET, "compute_loss", "MraeRetinaNet (overrides it: the anchors matched by its box_similarity)",
           ("targets", "head_outputs", "anchors"), ("forward", "self.compute_loss(targets, head_outputs, anchors)")),
    Relied(RETINANET, "proposal_matcher", "MraeRetinaNet.compute_loss"),
    Relied(FCOS_HEAD, "compute_loss", "IgnoringFCOSHead (overrides it: ignore boxes)",
           ("targets", "head_outputs", "anchors", "matched_idxs")),
    Relied(FCOS, "compute_loss", "IgnoringFCOSHead: FCOS calls its head's compute_loss",
           ("targets", "head_outputs", "anchors", "num_anchors_per_level"),
           ("compute_loss", "self.head.compute_loss(targets, head_outputs, anchors, matched_idxs)")),
    *(Relied(FCOS_HEAD, name, "IgnoringFCOSHead.__init__ (sets FCOSHead's parts itself)")
      for name in ("box_coder", "classification_head", "regression_head")),
    *(Relied(RETINANET_HEAD, name, "IgnoringRetinaNetHead.__init__ (head_init: re-draws the towers)")
      for name in ("classification_head", "regression_head")),
    *(Relied(FCOS_REGRESSION_HEAD, name, "CodedFCOSRegressionHead.forward (its own box coding)")
      for name in ("conv", "bbox_reg", "bbox_ctrness")),
    Relied(f"{UTILS}.Matcher", "BETWEEN_THRESHOLDS", "IgnoringRetinaNetHead (NEITHER), "
           "CappedRoIHeads.assign_targets_to_proposals", value=-2),
    Relied(f"{UTILS}.Matcher", "BELOW_LOW_THRESHOLD", "CappedRoIHeads.assign_targets_to_proposals", value=-1),
    # RoI pooling over several maps, exported (mrae.modeling.roi_pool.ExportableMultiScaleRoIAlign)
    Relied(POOLERS, "_filter_input", "ExportableMultiScaleRoIAlign.pool_by_gather", ("x", "featmap_names")),
    Relied(POOLERS, "_setup_scales", "ExportableMultiScaleRoIAlign.pool_by_gather",
           ("features", "image_shapes", "canonical_scale", "canonical_level")),
    Relied(POOLERS, "_convert_to_roi_format", "ExportableMultiScaleRoIAlign.pool_by_gather", ("boxes",)),
    *(Relied(f"{POOLERS}.MultiScaleRoIAlign", name, "ExportableMultiScaleRoIAlign.pool_by_gather")
      for name in ("featmap_names", "output_size", "sampling_ratio", "scales", "map_levels",
                   "canonical_scale", "canonical_level")),
)


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
        FCOS_REGRESSION_HEAD: fcos.FCOSRegressionHead(32, 1),
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
        return _still_called(relied, owner, where, needs)
    function = getattr(owner, relied.name, None)
    if not callable(function):
        return f"{where}: no such method {needs}"
    parameters = list(inspect.signature(function).parameters.values())
    if inspect.isclass(owner):
        parameters = parameters[1:]  # self
    names = tuple(p.name for p in parameters)
    extra = [p for p in parameters[len(relied.params):] if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if names[: len(relied.params)] != relied.params or any(p.default is p.empty for p in extra):
        return f"{where}: its parameters are {names}, not {relied.params} {needs}"
    return _still_called(relied, owner, where, needs)


def _still_called(relied: Relied, owner: Any, where: str, needs: str) -> str | None:
    """What is wrong with ``relied.called_by`` (torchvision's source no longer making that call)."""
    if relied.called_by is None:
        return None
    caller, text = relied.called_by
    source = " ".join(inspect.getsource(getattr(owner, caller)).split())
    if " ".join(text.split()) not in source:
        return f"{where}: {relied.owner}.{caller} no longer calls {text!r} {needs}"
    return None


def problems() -> list[str]:
    """Every name of :data:`RELIED_ON` that the installed torchvision does not have as mrae needs it."""
    examples = _examples()
    return [p for relied in RELIED_ON if (p := check(relied, examples)) is not None]
