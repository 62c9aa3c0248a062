"""The names a config may choose from, in one torch-free module.

Loading and checking a YAML config (:mod:`mrae.engine.config`) needs only these names, so it imports
neither torch nor pycocotools; the modules that build the things named here import the same
tuples, and a test checks that every name has its builder. The extractors' and hosts' names are
their registrations (:mod:`mrae.modeling.registry`), and the model settings' choices are given
where each setting is declared, from the tuples here.
"""

from __future__ import annotations

#: ``model.level`` / ``model.template``: C1, C2, C3 (ResNet's conv2_x..conv4_x).
LEVEL_CHOICES: tuple[int, ...] = (1, 2, 3)
#: ``model.mode`` of MRAE: one weight per level, or one weight map per level.
MRAE_MODES: tuple[str, ...] = ("global", "spatial")
#: ``model.backbone``: the keys of :data:`mrae.modeling.backbone.RESNET_DEPTHS`.
BACKBONE_NAMES: tuple[str, ...] = ("resnet18", "resnet34", "resnet50", "resnet101")
#: ``model.norm``: batch norm (frozen with trained weights), or GroupNorm from scratch.
NORM_CHOICES: tuple[str, ...] = ("auto", "groupnorm")
#: ``model.faster_rcnn.head``: torchvision's two-layer MLP box head, or the paper's conv5_x (``c4``) head.
HEADS: tuple[str, ...] = ("mlp", "c4")
#: ``model.upsample``: how the coarser levels reach the finest level's size.
UPSAMPLE_MODES: tuple[str, ...] = ("bilinear", "nearest")
#: ``model.fcos.box_coding``: how FCOS makes its box distances positive, exp(s x) with a learnable
#: scale per map (the FCOS paper's) or ReLU (torchvision's; runs made before the key).
FCOS_BOX_CODINGS: tuple[str, ...] = ("exp", "relu")
#: ``model.retinanet.head_norm``: GroupNorm after each conv of RetinaNet's head towers (RetinaNet
#: v2's) or none (torchvision's v1 head; runs made before the key).
RETINANET_HEAD_NORMS: tuple[str, ...] = ("group", "none")
#: ``model.<anchored host>.box_similarity``: what label assignment matches boxes by, IoU or the Normalized
#: Gaussian Wasserstein Distance (mrae.modeling.box_similarity, docs/nwd.md).
BOX_SIMILARITIES: tuple[str, ...] = ("iou", "nwd")
#: ``model.retinanet.head_init``: the init of the convs of RetinaNet's head towers, He's normal
#: (fan-in, for ReLU: the signal keeps its scale) or torchvision's N(0, 0.01) (runs made before the key).
RETINANET_HEAD_INITS: tuple[str, ...] = ("kaiming", "normal")
#: ``model.fpn_anchors``: torchvision's one anchor size per pyramid map, or every size on every map.
FPN_ANCHOR_CHOICES: tuple[str, ...] = ("per_level", "all")
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
