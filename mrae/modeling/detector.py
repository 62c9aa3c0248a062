"""Build a detector that hosts an extractor: ResNet levels -> extractor -> a host (``model.detector``:
Faster R-CNN, the paper's, RetinaNet or FCOS).

    model = build_detector(extractor="mrae", template=2, backbone="resnet50", head="c4")
    model.backbone.body        # ResNetLevels: C1..C3
    model.backbone.extractor   # the extractor (registry.EXTRACTORS[extractor]'s, or the module given)
    model.roi_heads.box_head   # Faster R-CNN: TwoMLPHead ("mlp") or ResNetC4Head ("c4", holds conv5_x)
    model.head                 # RetinaNet, FCOS: torchvision's heads with ignore regions

The backbone alone (for torchvision's own detector classes): :func:`mrae.modeling.extractor_backbone.build_backbone`.
The extractors and hosts by name, with their settings: :mod:`mrae.modeling.registry`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from mrae.errors import ConfigError
from mrae.modeling import registry
from mrae.modeling.backbone_settings import BackboneSettings
from mrae.modeling.box_similarity import check_assignment
from mrae.modeling.extractor_backbone import (
    ExtractorSpec,
    build_levels_and_extractor,
    split_settings,
)
from mrae.modeling.ignore import check_iof_thr
from mrae.modeling.settings import declared, make_settings

__all__ = ["attention_weights", "build_detector"]


def build_detector(*, detector: str = "faster_rcnn", extractor: ExtractorSpec = "mrae",
                   num_classes: int = 2, weights_later: bool = False, **settings: Any) -> nn.Module:
    """A detector (the host ``detector``) whose backbone is ResNet levels + the chosen extractor.

    The settings are those a config's ``model`` section holds, declared once with their defaults,
    ranges and help by the extractors and hosts (:mod:`mrae.modeling.registry`;
    :mod:`mrae.modeling.backbone_settings`, :mod:`mrae.modeling.extractor_settings`,
    :mod:`mrae.modeling.host_settings`), each absent one at its default.

    Args:
        detector: the host, a name of :data:`mrae.modeling.registry.HOSTS`: "faster_rcnn" (the
            paper's), "retinanet" or "fcos".
        extractor: a name of :data:`mrae.modeling.registry.EXTRACTORS` ("single", "soft",
            "mrae", "concat", "sum", "fpn"); or (Python API) an ``nn.Module`` taking the levels
            ``{"c1", "c2", "c3"}`` with ``output_shape()``, or a function from the levels' widths
            to one.
        num_classes: object classes + 1 (background), torchvision's convention.
        weights_later: the weights come afterwards from a checkpoint of a model built with this
            ``pretrained``: build its structure (frozen batch norm, trainable layers) without
            reading or downloading ``pretrained``.
        settings: the trunk's keys (``backbone``, ``pretrained``, ``trainable_layers``, ``norm``,
            ``out_channels``), the extractor's (``level``; ``template``, ``mode``, ...; ``upsample``),
            the keys every host reads (``min_size``, ``max_size``, ``fixed_size``,
            ``box_score_thresh``, ``box_nms_thresh``, ``detections_per_class``,
            ``detections_per_img``, ``ignore_iof_thr``) and the host's own keys, given flat
            (``head="c4"``) or as the host's section (``faster_rcnn={"head": "c4"}``, as a config
            holds them). Another host's section is not read.

    A setting that the extractor or the host does not read must keep its default.

    Raises:
        ConfigError (a ValueError): one line naming the setting (``model.<key>``) and its valid
        values, or the setting that does not apply.
    """
    entry = registry.host(detector)
    if num_classes is None:
        raise ConfigError("model.num_classes is null; give the object classes + 1 (the background)")
    values = {k: v for k, v in settings.items() if k not in registry.HOSTS}
    section = settings.get(detector) or {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"model.{detector}={section!r} is not valid; give a mapping of its settings")
    own = registry.host_section_fields(detector)
    stray = sorted(set(section) - set(own))
    if stray:
        raise ConfigError(f"model.{detector}.{stray[0]} is not a setting of {detector}; "
                          f"valid keys of model.{detector}: {', '.join(own) or 'none'}")
    known = (set(declared(BackboneSettings)) | set(registry.extractor_fields())
             | set(registry.common_host_fields()) | registry.section_keys())
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"build_detector: unknown settings {unknown}; give the keys of a "
                          "config's model section (mrae.modeling.registry)")
    trunk, extractor_settings = split_settings(extractor, values)
    problem = registry.out_of_scope(values, extractor if isinstance(extractor, str) else None, detector)
    if problem is not None:
        raise ConfigError(problem)
    host_values = {**{k: v for k, v in values.items() if k in declared(entry.settings)}, **section,
                   "num_classes": num_classes}
    host_settings = make_settings(entry.settings, host_values,
                                  prefix=lambda k: f"model.{detector}.{k}" if k in section else f"model.{k}")
    host_settings = dataclasses.replace(host_settings, ignore_iof_thr=check_iof_thr(host_settings.ignore_iof_thr))
    if hasattr(host_settings, "box_similarity"):  # nwd_constant with nwd only
        check_assignment(detector, host_settings.box_similarity, host_settings.nwd_constant)
    backbone = build_levels_and_extractor(extractor, trunk, extractor_settings, weights_later)
    model = entry.resolve()(backbone, host_settings)
    backbone.drop_conv5()
    return model


def attention_weights(model: nn.Module) -> Tensor | None:
    """The attention of the detector's last forward pass, or None (no attention / no forward yet).

    Returns [N, 3] per-image level weights ("soft", "mrae" global) or [N, 3, H1, W1]
    ("mrae" spatial, on C1's grid of the resized, padded batch).
    """
    extractor = getattr(getattr(model, "backbone", None), "extractor", None)
    return getattr(extractor, "attention", None)
