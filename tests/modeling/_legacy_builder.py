"""A frozen copy of ``build_detector`` as it was before the hosts (commit eeb5a0c): the reference
that tests/modeling/test_faster_rcnn_pinned.py compares the refactored builder with."""

# ruff: noqa: E501
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign

from mrae.choices import FPN_ANCHOR_CHOICES, HEADS, LEVEL_CHOICES
from mrae.errors import ConfigError
from mrae.modeling.backbone import RESNET_DEPTHS, ResNetLevels
from mrae.modeling.detector import (
    MLP_REPRESENTATION,
    ExtractorBackbone,
    ResNetC4Head,
    ScaleAwareTransform,
    _anchors_and_roi_maps,
    _choice,
    _positive_int,
    _positive_numbers,
)
from mrae.modeling.extractors import EXTRACTORS
from mrae.modeling.extractors._common import UPSAMPLE_MODES
from mrae.modeling.extractors.mrae import MRAE_MODES
from mrae.modeling.ignore import IgnoringRPN, check_iof_thr
from mrae.modeling.roi_heads import CappedRoIHeads


def legacy_build_detector(
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
