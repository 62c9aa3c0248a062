"""The config's schema: the typed sections and their defaults (what a YAML file may set).

A YAML file lists only what differs from these defaults; :mod:`mrae.engine.config` reads it and
:mod:`mrae.engine.config_checks` checks what the types cannot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mrae.modeling.host_settings import HostSettings


@dataclass
class ModelConfig:
    """The keyword arguments of :func:`mrae.modeling.detector.build_detector` (see its docstring).

    The host's settings take their defaults from :class:`~mrae.modeling.host_settings.HostSettings`,
    the one place they are written (``box_score_thresh``, ``box_nms_thresh``: its ``score_thresh``,
    ``nms_thresh``); a test checks build_detector's defaults against these.
    """

    detector: str = "faster_rcnn"  # the host: faster_rcnn | retinanet | fcos
    extractor: str = "mrae"
    level: int = 1
    template: int = 2
    mode: str = "global"
    backbone: str = "resnet18"
    pretrained: str | None = None
    trainable_layers: int | None = None  # null: 3 with trained weights, 5 (all) from scratch
    norm: str = "auto"  # auto: frozen BN with trained weights, BN from scratch; groupnorm
    head: str = HostSettings.head
    out_channels: int = 256
    num_classes: int | None = None  # None: the training data's classes + 1 (background)
    anchor_sizes: list[float] = field(default_factory=lambda: list(HostSettings.anchor_sizes))
    aspect_ratios: list[float] = field(default_factory=lambda: list(HostSettings.aspect_ratios))
    min_size: int = HostSettings.min_size
    max_size: int = HostSettings.max_size
    fixed_size: list[int] | None = None
    upsample: str = "bilinear"
    learn_temperature: bool = False
    embed_channels: int = 64  # mrae: width of each level's 1x1-conv embedding
    pool_size: int = 4  # mrae (global): the P x P grid the embedding is average-pooled to
    embed_dim: int = 256  # mrae (global): length of the vectors whose cosines give the attention
    fpn_anchors: str = HostSettings.fpn_anchors
    rpn_pre_nms_top_n_train: int = HostSettings.rpn_pre_nms_top_n_train
    rpn_pre_nms_top_n_test: int = HostSettings.rpn_pre_nms_top_n_test
    rpn_post_nms_top_n_train: int = HostSettings.rpn_post_nms_top_n_train
    rpn_post_nms_top_n_test: int = HostSettings.rpn_post_nms_top_n_test
    rpn_nms_thresh: float = HostSettings.rpn_nms_thresh
    rpn_batch_size_per_image: int = HostSettings.rpn_batch_size_per_image
    box_batch_size_per_image: int = HostSettings.box_batch_size_per_image
    box_score_thresh: float = HostSettings.score_thresh
    box_nms_thresh: float = HostSettings.nms_thresh
    detections_per_class: int = HostSettings.detections_per_class
    detections_per_img: int = HostSettings.detections_per_img
    # training: anchors/proposals (not positives) whose intersection over their own area with a
    # crowd or ignore region exceeds this are neither positives nor negatives; null or < 0: off
    ignore_iof_thr: float | None = HostSettings.ignore_iof_thr


@dataclass
class SyntheticConfig:
    """The synthetic dataset (:func:`mrae.data.synth.generate`), used when the data paths are null."""

    train_images: int = 800
    val_images: int = 200
    seed: int = 0
    width: int = 512
    height: int = 300
    cache_dir: str = ".cache/synth"  # generated once into cache_dir/<key>, reused after


@dataclass
class DataConfig:
    """COCO-format data: images folders and instances JSON files (paths relative to the cwd)."""

    train_images: str | None = None
    train_annotations: str | None = None
    val_images: str | None = None
    val_annotations: str | None = None
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    workers: int = 2  # data loader processes (0: load in the training process)
    flip: bool = True  # horizontal flip (p = 0.5) of the training images
    # random crops [h, w] in model-input pixels for training (objects keep their scale; the
    # evaluation sees full images); null: full images. See mrae.data.augment.
    train_crop: list[int] | None = None
    # the crops' scale: image (the full image's resize factor) or tile (sliced training: train_crop
    # px of the original image, resized as sliced inference resizes a tile). See docs/slicing.md.
    crop_scale: str = "image"
    # a box cut by a crop is kept (clipped) when at least this share of its area, in (0, 1], is
    # inside, and the visible part of a box with less inside becomes an ignore box (neither object
    # nor background); null: boxes under half inside are dropped (become background).
    crop_min_visible: float | None = None


@dataclass
class TrainConfig:
    """An iteration-based schedule: SGD with momentum (or AdamW), piecewise-constant lr at milestones."""

    steps: int = 1000  # optimiser steps (iterations), each of batch_size images per process
    batch_size: int = 2
    lr: float = 0.02
    optimizer: str = "sgd"  # sgd (with momentum, the paper's) | adamw (give it its own lr; no momentum)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    weight_decay_norm_and_bias: bool = False  # true: decay normalization weights and biases too
    milestones: list[int] = field(default_factory=list)  # steps where lr is multiplied by gamma
    gamma: float = 0.1
    warmup_steps: int = 0  # linear warm-up from warmup_factor * lr to lr
    warmup_factor: float = 0.001
    clip_grad_norm: float | None = None  # max total gradient L2 norm; null: no clipping
    amp: bool = True  # mixed precision (float16 autocast + GradScaler), used on CUDA only
    seed: int = 0
    eval_every: int = 0  # evaluate on the val set every N steps (0: only after the last step)
    checkpoint_every: int = 500  # write a checkpoint every N steps (0: only after the last step)
    keep_last: int = 2  # step_<7-digit step>.pth checkpoints kept (plus last.pth and best.pth)
    log_every: int = 10  # log the mean losses over the last N steps
    best_metric: str = "AP"  # the eval metric (higher is better) that picks best.pth
    device: str = "auto"  # auto | cpu | cuda | cuda:N


@dataclass
class EvalConfig:
    """Evaluation on the val set during training and by ``mrae eval``."""

    max_images: int | None = None  # evaluate only the first N val images (null: all)
    # the evaluations during training before the last step (the learning curve) on only the first
    # N val images (null: as max_images); the last, and best.pth, on max_images
    curve_max_images: int | None = None
    # the detections per image COCOeval counts, increasing, the last at most model.detections_per_img:
    # AP at the last; COCO's [1, 10, 100], AI-TOD's [1, 100, 1500] (mrae.evaluation.coco_metrics)
    max_dets: list[int] = field(default_factory=lambda: [1, 10, 100])
    # AP per condition: "[FIELD:]REGEX" with named groups on the val images' file names (or FIELD
    # of their records), e.g. "^(?P<light>[01])_(?P<altitude>\d+)_" (mrae.evaluation.groups)
    group_by: str | None = None


@dataclass
class PretrainConfig:
    """The offline pretraining (:mod:`mrae.engine.pretrain`) run when ``model.pretrained`` is
    ``synthetic`` (crops of synthetic scenes) or ``dataset`` (crops of ``annotations``' boxes)."""

    # a COCO instances JSON and its images folder whose labelled boxes (and background) give the
    # crops of model.pretrained: dataset (mrae.data.dataset_crops); null: the synthetic scenes
    annotations: str | None = None
    images: str | None = None
    # synthetic scenes the training crops are cut from (split id 2: no dataset's); with
    # annotations: at most this many of its images (after the held-out ones, in a seeded order)
    scenes: int = 800
    val_scenes: int = 100  # further scenes (with annotations: its images) for the held-out accuracy
    seed: int = 0
    crop_size: int = 32  # px, square, native resolution
    background_per_image: int = 3  # background crops per scene (besides one per object/distractor)
    steps: int = 1000
    batch_size: int = 128
    lr: float = 0.1  # SGD (momentum 0.9, Nesterov), linear warm-up then cosine to 0
    weight_decay: float = 5e-4  # on conv and linear weights only
    cache_dir: str = ".cache/pretrain"  # trained once into cache_dir/<key>/, reused after


@dataclass
class Config:
    name: str | None = None  # run name; default run folder runs/<name>; null: the file's stem
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
