"""Build the Faster R-CNN that hosts an extractor: ResNet levels -> extractor -> RPN -> RoI head.

    model = build_detector(extractor="mrae", template=2, backbone="resnet50", head="c4")
    model.backbone.body        # ResNetLevels: C1..C3
    model.backbone.extractor   # the extractor (EXTRACTORS[extractor])
    model.roi_heads.box_head   # TwoMLPHead ("mlp") or ResNetC4Head ("c4", holds conv5_x)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from torch import Tensor, nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform, resize_boxes
from torchvision.ops import MultiScaleRoIAlign

from mrae.choices import FPN_ANCHOR_CHOICES, HEADS, LEVEL_CHOICES
from mrae.errors import ConfigError
from mrae.modeling.backbone import RESNET_DEPTHS, ResNetLevels
from mrae.modeling.extractors import EXTRACTORS
from mrae.modeling.extractors._common import UPSAMPLE_MODES
from mrae.modeling.extractors.mrae import MRAE_MODES
from mrae.modeling.ignore import IgnoringRPN, check_iof_thr
from mrae.modeling.roi_heads import CappedRoIHeads
from mrae.modeling.shapes import ShapeSpec

MLP_REPRESENTATION = 1024
# Maps that carry anchors but are not pooled for RoIs: torchvision's extra pyramid map
# (LastLevelMaxPool's "pool", stride 32), as in torchvision's fasterrcnn_resnet50_fpn.
RPN_ONLY_MAPS = ("pool",)


class ExtractorBackbone(nn.Module):
    """FasterRCNN's `backbone`: ResNet levels followed by an extractor.

    forward(images: Tensor[N, 3, H, W]) -> the extractor's OrderedDict of maps, as its
    `output_shape()` describes them; `out_channels` is their one width (torchvision's RPN head
    and box heads take a single width).
    """

    def __init__(self, body: ResNetLevels, extractor: nn.Module) -> None:
        super().__init__()
        self.body = body
        self.extractor = extractor
        widths = {spec.channels for spec in extractor.output_shape().values()}
        if len(widths) != 1:
            raise ValueError(f"the extractor's maps have the widths {sorted(widths)}; "
                             "torchvision's RPN and box heads need one")
        self.out_channels: int = widths.pop()

    def output_shape(self) -> dict[str, ShapeSpec]:
        """The extractor's maps: {name: ShapeSpec(channels, stride)} in forward's order."""
        return self.extractor.output_shape()

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        return self.extractor(self.body(x))


class ResNetC4Head(nn.Module):
    """The paper's box head: conv5_x on each 14x14 RoI crop, then global average pooling.

    A 1x1 conv adapts the extractor's width to conv5_x's input width when they differ.
    forward(x: [R, in_channels, 14, 14]) -> [R, out_channels] (512 for ResNet-18/34, 2048 for 50/101).
    """

    def __init__(self, in_channels: int, layer4: nn.Sequential, layer4_channels: int) -> None:
        super().__init__()
        width = layer4[0].conv1.in_channels
        self.adapter = nn.Identity() if in_channels == width else nn.Conv2d(in_channels, width, 1)
        self.layer4 = layer4
        self.out_channels = layer4_channels

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer4(self.adapter(x))
        return nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)


class ScaleAwareTransform(GeneralizedRCNNTransform):
    """torchvision's detection transform, except that a training target carrying ``"scale"`` (a
    random crop, :class:`mrae.data.augment.AugmentByKey`) is resized by that factor, the one its
    full image would get, instead of being fitted to ``min_size`` / ``max_size``: the objects keep
    the scale of full-image training and of evaluation."""

    def resize(self, image: Tensor, target: dict[str, Tensor] | None = None):
        """torchvision's resize (or the crop's ``"scale"``); a target's ``"ignore_boxes"``
        ([M, 4] xyxy px) are resized as its ``"boxes"`` are."""
        h, w = image.shape[-2:]
        image, target = self._resize(image, target)
        if target is not None and "ignore_boxes" in target:
            target["ignore_boxes"] = resize_boxes(target["ignore_boxes"], (h, w), image.shape[-2:])
        return image, target

    def _resize(self, image: Tensor, target: dict[str, Tensor] | None):
        scale = target.get("scale") if (self.training and target is not None) else None
        if scale is None:
            return super().resize(image, target)
        scale = float(scale)
        if scale != 1.0:
            h, w = image.shape[-2:]
            image = nn.functional.interpolate(
                image[None], scale_factor=scale, mode="bilinear", recompute_scale_factor=True,
                align_corners=False,
            )[0]
            target["boxes"] = resize_boxes(target["boxes"], (h, w), image.shape[-2:])
        return image, target


def _choice(name: str, value: object, choices: Sequence[object]) -> None:
    if isinstance(value, bool) or value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"model.{name}={value!r} is not valid; choose one of: {valid}")


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"model.{name}={value!r} is not valid; give an integer >= {minimum}")
    return value


def _positive_numbers(name: str, values: object, kind: type) -> tuple:
    try:
        out = tuple(kind(v) for v in values)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        out = ()
    if not out or any(v <= 0 for v in out):
        raise ConfigError(f"model.{name}={values!r} is not valid; give a list of positive numbers")
    return out


def _anchors_and_roi_maps(
    extractor: str, shapes: dict[str, ShapeSpec], sizes: tuple[float, ...],
    ratios: tuple[float, ...], fpn_anchors: str,
) -> tuple[AnchorGenerator, list[str]]:
    """The RPN's anchors and the maps the RoI pooling reads, for the extractor's maps ``shapes``.

    One map: every size x ratio on it. Several maps (a pyramid, finest first): torchvision's one
    size per map (``fpn_anchors="per_level"``: size k on map k) or every size on every map
    (``"all"``). RoIs are pooled from every map except ``RPN_ONLY_MAPS``.
    """
    names = list(shapes)
    if len(names) > 1 and fpn_anchors == "per_level":
        if len(sizes) != len(names):
            raise ConfigError(
                f"model.anchor_sizes={list(sizes)} is not valid for extractor {extractor!r}; give "
                f"{len(names)} sizes, one per map {names}, or set fpn_anchors='all'"
            )
        per_map = tuple((s,) for s in sizes)
    else:
        per_map = (sizes,) * len(names)
    anchors = AnchorGenerator(per_map, (ratios,) * len(names))
    return anchors, [name for name in names if name not in RPN_ONLY_MAPS]


def build_detector(
    *,
    extractor: str = "mrae",
    level: int = 1,
    template: int = 2,
    mode: str = "global",
    backbone: str = "resnet18",
    pretrained: str | Path | None = None,
    trainable_layers: int | None = None,
    norm: str = "auto",
    weights_later: bool = False,
    head: str = "mlp",
    out_channels: int = 256,
    num_classes: int = 2,
    anchor_sizes: Sequence[float] = (8, 16, 32, 64),
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
    min_size: int = 300,
    max_size: int = 512,
    fixed_size: Sequence[int] | None = None,
    upsample: str = "bilinear",
    learn_temperature: bool = False,
    embed_channels: int = 64,
    pool_size: int = 4,
    embed_dim: int = 256,
    fpn_anchors: str = "per_level",
    rpn_pre_nms_top_n_train: int = 2000,
    rpn_pre_nms_top_n_test: int = 1000,
    rpn_post_nms_top_n_train: int = 2000,
    rpn_post_nms_top_n_test: int = 1000,
    rpn_nms_thresh: float = 0.7,
    rpn_batch_size_per_image: int = 256,
    box_batch_size_per_image: int = 512,
    box_score_thresh: float = 0.05,
    box_nms_thresh: float = 0.5,
    detections_per_class: int = 100,
    detections_per_img: int = 300,
    ignore_iof_thr: float | None = 0.5,
) -> FasterRCNN:
    """A torchvision FasterRCNN whose backbone is ResNet levels + the chosen extractor.

    Args:
        extractor: one of EXTRACTORS: "single", "soft", "mrae", "concat", "sum", "fpn".
        level: the level of "single" (1: C1 stride 4, 2: C2 stride 8, 3: C3 stride 16).
        template: the template level of "mrae" (1, 2 or 3).
        mode: "mrae" attention: "global" (per image, the paper) or "spatial" (per position).
        backbone: "resnet18", "resnet34", "resnet50" or "resnet101".
        pretrained: None, "imagenet" (torchvision weights, downloads) or a local state-dict path.
        trainable_layers: ResNet stages that train, 0..5, counted from conv5_x (torchvision's rule);
            None: 3 with trained weights, 5 from scratch.
        norm: "auto" (frozen batch norm with trained weights, batch norm from scratch) or
            "groupnorm" (from scratch only).
        weights_later: the weights come afterwards from a checkpoint of a model built with this
            ``pretrained``: build its structure (frozen batch norm, trainable layers) without
            reading or downloading ``pretrained``.
        head: "mlp" (torchvision's TwoMLPHead on 7x7 RoIAlign) or "c4" (conv5_x on 14x14 RoIAlign).
        out_channels: width of the extractor's output (ignored by "single": the level's width).
        num_classes: object classes + 1 (background), torchvision's convention.
        anchor_sizes, aspect_ratios: anchors (pixels of the resized input; ratio = h/w). An
            extractor with one map gets every size x ratio on it (12 anchors per position); one
            with several maps ("fpn") gets one size per map by default, so it needs exactly as
            many sizes as maps, 4 for "fpn" (see ``fpn_anchors``).
        min_size, max_size: resize keeping the aspect ratio (300/512 = the paper's 512x300).
        fixed_size: (height, width) to resize every image to instead, or None.
        upsample: "bilinear" or "nearest", how the extractors bring C2/C3 to C1's grid.
        learn_temperature: "mrae" only: learn a scale on the cosine similarities.
        embed_channels, pool_size, embed_dim: "mrae" only: the width of the 1x1-conv embedding of
            each level, the P x P grid it is average-pooled to and the length of the vectors
            compared (the last two in global mode only); see :class:`~mrae.modeling.extractors.MRAE`.
        fpn_anchors: extractors with several maps ("fpn") only: "per_level" (torchvision's: size k
            on map k, the smallest on the finest map) or "all" (every size x ratio on every map,
            as the single-map extractors have).
        rpn_*, box_*: torchvision's FasterRCNN settings of the same names
            (box_batch_size_per_image: sampled RoIs per image in training).
        detections_per_class, detections_per_img: caps after NMS (the paper: 100 and 300).
        ignore_iof_thr: in training, anchors and proposals that are not positives and whose
            intersection over their own area (IoF) with a target's ``"ignore_boxes"`` exceeds this
            are neither positives nor negatives (:mod:`mrae.modeling.ignore`); None or < 0: off.

    Raises:
        ConfigError (a ValueError) naming the setting and its valid choices.
    """
    _choice("extractor", extractor, tuple(EXTRACTORS))
    _choice("level", level, LEVEL_CHOICES)
    _choice("template", template, LEVEL_CHOICES)
    _choice("mode", mode, MRAE_MODES)
    _choice("backbone", backbone, tuple(RESNET_DEPTHS))
    _choice("head", head, HEADS)
    _choice("upsample", upsample, UPSAMPLE_MODES)
    _choice("fpn_anchors", fpn_anchors, FPN_ANCHOR_CHOICES)
    _positive_int("out_channels", out_channels)
    _positive_int("num_classes", num_classes, minimum=2)
    for name, value in [
        ("min_size", min_size),
        ("max_size", max_size),
        ("rpn_pre_nms_top_n_train", rpn_pre_nms_top_n_train),
        ("rpn_pre_nms_top_n_test", rpn_pre_nms_top_n_test),
        ("rpn_post_nms_top_n_train", rpn_post_nms_top_n_train),
        ("rpn_post_nms_top_n_test", rpn_post_nms_top_n_test),
        ("rpn_batch_size_per_image", rpn_batch_size_per_image),
        ("box_batch_size_per_image", box_batch_size_per_image),
        ("detections_per_class", detections_per_class),
        ("detections_per_img", detections_per_img),
        ("embed_channels", embed_channels),
        ("pool_size", pool_size),
        ("embed_dim", embed_dim),
    ]:
        _positive_int(name, value)
    iof_thr = check_iof_thr(ignore_iof_thr)
    sizes = _positive_numbers("anchor_sizes", anchor_sizes, float)
    ratios = _positive_numbers("aspect_ratios", aspect_ratios, float)
    transform_kwargs = {}
    if fixed_size is not None:
        hw = _positive_numbers("fixed_size", fixed_size, int)
        if len(hw) != 2:
            raise ConfigError(f"model.fixed_size={fixed_size!r} is not valid; give [height, width]")
        transform_kwargs["fixed_size"] = (hw[1], hw[0])  # torchvision's fixed_size is (w, h)

    body = ResNetLevels(backbone, pretrained=pretrained, trainable_layers=trainable_layers, norm=norm,
                        weights_later=weights_later)
    if extractor == "single":
        ext = EXTRACTORS["single"](body.channels, level=level)
    elif extractor == "fpn":
        ext = EXTRACTORS["fpn"](body.channels, out_channels=out_channels)
    elif extractor == "mrae":
        ext = EXTRACTORS["mrae"](
            body.channels,
            out_channels=out_channels,
            template=template,
            mode=mode,
            embed_channels=embed_channels,
            pool_size=pool_size,
            embed_dim=embed_dim,
            learn_temperature=learn_temperature,
            upsample=upsample,
        )
    else:
        ext = EXTRACTORS[extractor](body.channels, out_channels=out_channels, upsample=upsample)

    # conv5_x belongs to the c4 head only; the mlp model leaves it out (no unused parameters).
    layer4, body.layer4 = body.layer4, None
    wrapped = ExtractorBackbone(body, ext)
    anchors, roi_maps = _anchors_and_roi_maps(extractor, wrapped.output_shape(), sizes, ratios,
                                              fpn_anchors)

    if head == "mlp":
        roi_pool = MultiScaleRoIAlign(roi_maps, output_size=7, sampling_ratio=2)
        box_head: nn.Module = TwoMLPHead(wrapped.out_channels * 7 * 7, MLP_REPRESENTATION)
        representation = MLP_REPRESENTATION
    else:
        roi_pool = MultiScaleRoIAlign(roi_maps, output_size=14, sampling_ratio=2)
        box_head = ResNetC4Head(wrapped.out_channels, layer4, body.layer4_channels)
        representation = box_head.out_channels

    model = FasterRCNN(
        wrapped,
        num_classes=None,
        min_size=min_size,
        max_size=max_size,
        rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=rpn_pre_nms_top_n_train,
        rpn_pre_nms_top_n_test=rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_train=rpn_post_nms_top_n_train,
        rpn_post_nms_top_n_test=rpn_post_nms_top_n_test,
        rpn_nms_thresh=rpn_nms_thresh,
        rpn_batch_size_per_image=rpn_batch_size_per_image,
        box_roi_pool=roi_pool,
        box_head=box_head,
        box_predictor=FastRCNNPredictor(representation, num_classes),
        **transform_kwargs,
    )
    model.transform = ScaleAwareTransform(
        model.transform.min_size, model.transform.max_size, model.transform.image_mean,
        model.transform.image_std, fixed_size=model.transform.fixed_size,
    )
    model.rpn = IgnoringRPN.from_rpn(model.rpn, iof_thr)
    model.roi_heads = CappedRoIHeads(
        roi_pool,
        box_head,
        model.roi_heads.box_predictor,
        fg_iou_thresh=0.5,
        bg_iou_thresh=0.5,
        batch_size_per_image=box_batch_size_per_image,
        positive_fraction=0.25,
        bbox_reg_weights=None,
        score_thresh=box_score_thresh,
        nms_thresh=box_nms_thresh,
        detections_per_img=detections_per_img,
        detections_per_class=detections_per_class,
        ignore_iof_thr=iof_thr,
    )
    return model


def attention_weights(model: nn.Module) -> Tensor | None:
    """The attention of the detector's last forward pass, or None (no attention / no forward yet).

    Returns [N, 3] per-image level weights ("soft", "mrae" global) or [N, 3, H1, W1]
    ("mrae" spatial, on C1's grid of the resized, padded batch).
    """
    extractor = getattr(getattr(model, "backbone", None), "extractor", None)
    return getattr(extractor, "attention", None)
