"""The names a config may choose from, in one torch-free module.

Loading and checking a YAML config (:mod:`mrae.engine.config`) needs only these names, so it imports
neither torch nor pycocotools; the modules that build the things named here import the same
tuples, and a test checks that every name has its builder.
"""

from __future__ import annotations

#: ``model.detector``: the host around the extractor, the keys of :data:`mrae.modeling.hosts.HOSTS`.
DETECTOR_NAMES: tuple[str, ...] = ("faster_rcnn", "retinanet", "fcos")
#: ``model.extractor``: the keys of :data:`mrae.modeling.extractors.EXTRACTORS`.
EXTRACTOR_NAMES: tuple[str, ...] = ("single", "soft", "mrae", "concat", "sum", "fpn")
#: ``model.level`` / ``model.template``: C1, C2, C3 (ResNet's conv2_x..conv4_x).
LEVEL_CHOICES: tuple[int, ...] = (1, 2, 3)
#: ``model.mode`` of MRAE: one weight per level, or one weight map per level.
MRAE_MODES: tuple[str, ...] = ("global", "spatial")
#: ``model.backbone``: the keys of :data:`mrae.modeling.backbone.RESNET_DEPTHS`.
BACKBONE_NAMES: tuple[str, ...] = ("resnet18", "resnet34", "resnet50", "resnet101")
#: ``model.norm``: batch norm (frozen with trained weights), or GroupNorm from scratch.
NORM_CHOICES: tuple[str, ...] = ("auto", "groupnorm")
#: ``model.head``: torchvision's two-layer MLP box head, or the paper's conv5_x (``c4``) head.
HEADS: tuple[str, ...] = ("mlp", "c4")
#: ``model.upsample``: how the coarser levels reach the finest level's size.
UPSAMPLE_MODES: tuple[str, ...] = ("bilinear", "nearest")
#: ``model.fcos.box_coding``: how FCOS makes its box distances positive, exp(s x) with a learnable
#: scale per map (the FCOS paper's) or ReLU (torchvision's; runs made before the key).
FCOS_BOX_CODINGS: tuple[str, ...] = ("exp", "relu")
#: ``model.retinanet.head_norm``: GroupNorm after each conv of RetinaNet's head towers (RetinaNet
#: v2's) or none (torchvision's v1 head; runs made before the key).
RETINANET_HEAD_NORMS: tuple[str, ...] = ("group", "none")
#: ``model.box_similarity``: what label assignment matches boxes by, IoU or the Normalized
#: Gaussian Wasserstein Distance (mrae.modeling.box_similarity, docs/nwd.md).
BOX_SIMILARITIES: tuple[str, ...] = ("iou", "nwd")
#: ``model.retinanet.head_init``: the init of the convs of RetinaNet's head towers, He's normal
#: (fan-in, for ReLU: the signal keeps its scale) or torchvision's N(0, 0.01) (runs made before the key).
RETINANET_HEAD_INITS: tuple[str, ...] = ("kaiming", "normal")
#: ``model.fpn_anchors``: torchvision's one anchor size per pyramid map, or every size on every map.
FPN_ANCHOR_CHOICES: tuple[str, ...] = ("per_level", "all")
#: ``model`` settings that only some extractors read: key -> those extractors. Another extractor
#: (or an extractor given as a module in the Python API) refuses a value other than the default.
EXTRACTOR_SETTINGS: dict[str, tuple[str, ...]] = {
    "level": ("single",),
    "template": ("mrae",),
    "mode": ("mrae",),
    "learn_temperature": ("mrae",),
    "embed_channels": ("mrae",),
    "pool_size": ("mrae",),
    "embed_dim": ("mrae",),
    "upsample": ("soft", "mrae", "concat", "sum"),
    "fpn_anchors": ("fpn",),
}
#: ``model`` settings that only some hosts read: key -> those hosts (refused by the others as above).
DETECTOR_SETTINGS: dict[str, tuple[str, ...]] = {
    "head": ("faster_rcnn",),
    "anchor_sizes": ("faster_rcnn", "retinanet"),
    "aspect_ratios": ("faster_rcnn", "retinanet"),
    "fpn_anchors": ("faster_rcnn", "retinanet"),
    "rpn_pre_nms_top_n_train": ("faster_rcnn",),
    "rpn_pre_nms_top_n_test": ("faster_rcnn",),
    "rpn_post_nms_top_n_train": ("faster_rcnn",),
    "rpn_post_nms_top_n_test": ("faster_rcnn",),
    "rpn_nms_thresh": ("faster_rcnn",),
    "rpn_batch_size_per_image": ("faster_rcnn",),
    "box_batch_size_per_image": ("faster_rcnn",),
}


def out_of_scope(settings: dict[str, object], defaults: dict[str, object], extractor: str | None,
                 detector: str) -> str | None:
    """The first setting of ``settings`` that differs from its default but that ``extractor``
    (None: a module given in the Python API) or ``detector`` does not read, as a one-line message
    ``"model.KEY=VALUE applies to ... only, not ...; remove it"``; None when every setting applies."""
    for key in inapplicable(settings, defaults, extractor, detector):
        value = settings[key]
        users = EXTRACTOR_SETTINGS.get(key)
        if users is not None and extractor not in users:
            given = repr(extractor) if extractor is not None else "an extractor given as a module"
            return (f"model.{key}={value!r} applies to extractor {' / '.join(users)} only, not to "
                    f"{given}; remove it")
        users = DETECTOR_SETTINGS[key]
        return (f"model.{key}={value!r} applies to detector {' / '.join(users)} only, not to "
                f"{detector!r}; remove it")
    return None


def inapplicable(settings: dict[str, object], defaults: dict[str, object], extractor: str | None,
                 detector: str) -> list[str]:
    """The keys of ``settings`` that differ from their defaults but that ``extractor`` or
    ``detector`` does not read (see :func:`out_of_scope`), in ``settings``' order."""
    found = []
    for key, value in settings.items():
        if key not in defaults or _same(value, defaults[key]):
            continue
        if (extractor not in EXTRACTOR_SETTINGS.get(key, (extractor,))
                or detector not in DETECTOR_SETTINGS.get(key, (detector,))):
            found.append(key)
    return found


def _same(value: object, default: object) -> bool:
    if isinstance(value, list | tuple) and isinstance(default, list | tuple):
        try:
            return [float(v) for v in value] == [float(v) for v in default]  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return list(value) == list(default)
    return value == default


#: ``train.optimizer``: SGD with momentum (the paper's) or AdamW.
OPTIMIZERS: tuple[str, ...] = ("sgd", "adamw")
#: ``data.crop_scale``: training crops at the full image's scale, or tiles as sliced inference cuts them.
CROP_SCALES: tuple[str, ...] = ("image", "tile")

#: COCOeval ``stats`` index of each Table 2 metric (5 is APl and 11 ARl: the paper leaves them out).
COCO_STATS: dict[str, int] = {
    "AP": 0,
    "AP50": 1,
    "AP75": 2,
    "APs": 3,
    "APm": 4,
    "AR1": 6,
    "AR10": 7,
    "AR100": 8,
    "ARs": 9,
    "ARm": 10,
}
#: The paper's Table 2 columns (AP and AR rows side by side) and the inference time.
TABLE_COLUMNS: tuple[str, ...] = (*COCO_STATS, "ms_per_image")
#: The columns that say why small objects are missed: AP in AI-TOD's size buckets and RPN
#: proposal recall.
DIAGNOSTIC_COLUMNS: tuple[str, ...] = (
    "AP_verytiny",
    "AP_tiny",
    "AP_small",
    "AP_medium",
    "recall@100",
    "recall@300",
    "recall@1000",
)
