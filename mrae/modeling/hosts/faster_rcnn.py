"""Faster R-CNN around the extractor (the paper's host): RPN with ignore regions, the box head
(``mlp`` or the paper's ``c4``) and RoI heads with per-class caps."""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.models.detection.rpn import RPNHead

from mrae.modeling.box_similarity import box_similarity
from mrae.modeling.caps import DetectionCaps
from mrae.modeling.extractor_backbone import ExtractorBackbone
from mrae.modeling.host_settings import FasterRCNNSettings
from mrae.modeling.hosts.anchors import anchors_and_roi_maps
from mrae.modeling.roi_heads import CappedRoIHeads
from mrae.modeling.roi_pool import ExportableMultiScaleRoIAlign
from mrae.modeling.rpn import RPN, RPNSettings
from mrae.modeling.transform import build_transform

MLP_REPRESENTATION = 1024


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


def build_faster_rcnn(backbone: ExtractorBackbone, s: FasterRCNNSettings) -> GeneralizedRCNN:
    """Faster R-CNN on ``backbone``, composed as torchvision's ``GeneralizedRCNN(backbone, rpn,
    roi_heads, transform)``: anchors from its maps (:class:`~mrae.modeling.rpn.RPN`, ignore regions),
    RoIs pooled from them into the box head ``s.head`` (``"c4"`` takes conv5_x from the backbone),
    :class:`~mrae.modeling.roi_heads.CappedRoIHeads` (ignore regions, per-class and per-image caps)
    with torchvision's FasterRCNN defaults for the settings mrae does not expose. The RPN and the
    RoI heads match boxes to targets by ``s.box_similarity`` (their thresholds on its scale)."""
    anchors, roi_maps = anchors_and_roi_maps(backbone.name, backbone.output_shape(), s.anchor_sizes,
                                             s.aspect_ratios, s.fpn_anchors)
    if s.head == "mlp":
        roi_pool = ExportableMultiScaleRoIAlign(roi_maps, output_size=7, sampling_ratio=2)
        box_head: nn.Module = TwoMLPHead(backbone.out_channels * 7 * 7, MLP_REPRESENTATION)
        representation = MLP_REPRESENTATION
    else:
        roi_pool = ExportableMultiScaleRoIAlign(roi_maps, output_size=14, sampling_ratio=2)
        box_head = ResNetC4Head(backbone.out_channels, backbone.take_conv5(), backbone.body.layer4_channels)
        representation = box_head.out_channels
    predictor = FastRCNNPredictor(representation, s.num_classes)
    similarity = box_similarity(s.box_similarity, s.nwd_constant)
    # the RPN head after the box head and predictor: the order torchvision's FasterRCNN draws
    # their initial weights in (the same seed gives the same model as before)
    rpn_head = RPNHead(backbone.out_channels, anchors.num_anchors_per_location()[0])
    rpn = RPN(anchors, rpn_head, RPNSettings(
        pre_nms_top_n_train=s.rpn_pre_nms_top_n_train, pre_nms_top_n_test=s.rpn_pre_nms_top_n_test,
        post_nms_top_n_train=s.rpn_post_nms_top_n_train, post_nms_top_n_test=s.rpn_post_nms_top_n_test,
        nms_thresh=s.rpn_nms_thresh, batch_size_per_image=s.rpn_batch_size_per_image,
        ignore_iof_thr=s.ignore_iof_thr, box_similarity=similarity,
    ))
    roi_heads = CappedRoIHeads(
        roi_pool,
        box_head,
        predictor,
        fg_iou_thresh=0.5,
        bg_iou_thresh=0.5,
        batch_size_per_image=s.box_batch_size_per_image,
        positive_fraction=0.25,
        bbox_reg_weights=None,
        score_thresh=s.box_score_thresh,
        nms_thresh=s.box_nms_thresh,
        caps=DetectionCaps(s.detections_per_img, s.detections_per_class),
        ignore_iof_thr=s.ignore_iof_thr,
        box_similarity=similarity,
    )
    transform = build_transform(s.min_size, s.max_size, s.fixed_size)
    return GeneralizedRCNN(backbone, rpn, roi_heads, transform)
