"""`mrae pretrain`: a proxy pretraining of the ResNet trunk that runs offline, cached like the data.

The paper's rows start from ImageNet weights, which cannot be downloaded here. This pretraining
gives every row the same start that is not noise: the trunk (conv1 .. conv4_x, the levels C1..C3
the extractors read) learns the 8-way classification of :mod:`mrae.data.crops` (the six object
classes, distractors, background) from crops at native resolution, with a global average pool and
one linear layer on C3. It never sees an extractor, and its scenes are drawn with a split id that
no dataset uses, so it is one trunk for every row and never sees a validation image.

The result is a torchvision ResNet ``state_dict()`` (conv5_x and ``fc`` at torchvision's
initialisation), loaded through ``model.pretrained=PATH`` exactly like ImageNet weights: frozen
batch norm with the statistics learned here. A config asks for it with ``model.pretrained:
synthetic``; :func:`resolve_pretrained` then runs the pretraining once per setting into
``pretrain.cache_dir/<key>/`` (``<backbone>.pth`` and ``<backbone>.json`` with the settings, the
loss and accuracy curve and the held-out accuracy per class) and reuses it after; a file lock
makes a second process wait for the first instead of training the same trunk twice.

``model.pretrained: dataset`` runs the same pretraining on crops of a labelled dataset's own boxes
(each class) and of its background (:mod:`mrae.data.dataset_crops`, from ``pretrain.annotations``
and ``pretrain.images``): the stand-in for ImageNet on real images when a machine has no network.
Its cache key holds the annotation file's checksum, so a changed file is pretrained again.

Inputs are normalised with ImageNet's mean and std, as torchvision's detection transform does, so
the detector sees what the trunk was trained on.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from mrae.errors import ConfigError
from mrae.files import atomic_path, open_lock_file, write_json_atomic

SYNTHETIC = "synthetic"  # the model.pretrained value that asks for this pretraining on synthetic crops
DATASET = "dataset"  # ... on crops of pretrain.annotations' boxes and background
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def settings(cfg) -> dict[str, Any]:
    """The settings that decide the pretrained weights (the cache key is made of these); the
    dataset's (its paths and the annotation file's checksum) only with ``model.pretrained:
    dataset``."""
    p = cfg.pretrain
    source: dict[str, Any] = {}
    if cfg.model.pretrained == DATASET and p.annotations is not None:
        try:
            digest = hashlib.sha1(Path(p.annotations).read_bytes()).hexdigest()
        except OSError as error:
            raise ConfigError(f"pretrain.annotations: cannot read {p.annotations} "
                              f"({error.strerror}); check the path") from None
        source = {"annotations": str(p.annotations), "images": str(p.images),
                  "annotations_sha1": digest}
    return {
        **source,
        "backbone": cfg.model.backbone,
        "seed": int(p.seed),
        "scenes": int(p.scenes),
        "val_scenes": int(p.val_scenes),
        "crop_size": int(p.crop_size),
        "background_per_image": int(p.background_per_image),
        "steps": int(p.steps),
        "batch_size": int(p.batch_size),
        "lr": float(p.lr),
        "weight_decay": float(p.weight_decay),
    }


def cache_path(cfg) -> Path:
    """``pretrain.cache_dir/<backbone>_seed<k>_<hash of the settings>/<backbone>.pth``."""
    s = settings(cfg)
    digest = hashlib.sha1(json.dumps(s, sort_keys=True).encode()).hexdigest()[:10]
    folder = Path(cfg.pretrain.cache_dir) / f"{s['backbone']}_seed{s['seed']}_{digest}"
    return folder / f"{s['backbone']}.pth"


def report_file(weights: str | Path) -> Path:
    """The JSON report written beside a pretrained weights file (``x.pth`` -> ``x.json``)."""
    return Path(weights).with_suffix(".json")


def resolve_pretrained(cfg, progress: bool = True) -> str | None:
    """``cfg.model.pretrained`` as the backbone takes it: ``synthetic`` and ``dataset`` become the
    cached file (trained first if missing); any other value is returned as it is."""
    value = cfg.model.pretrained
    if value not in (SYNTHETIC, DATASET):
        return value
    check_source(cfg)
    path = cache_path(cfg)
    if path.is_file():
        return str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_lock_file(path.parent / ".lock") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process pretraining the same key: wait for it
        if not path.is_file():
            pretrain(cfg, path, progress=progress)
    return str(path)


def check_source(cfg) -> None:
    """ConfigError when ``model.pretrained: dataset`` has no ``pretrain.annotations``. (With
    ``synthetic`` they are not read: a config can keep them and compare both starts.)"""
    value, annotations = cfg.model.pretrained, cfg.pretrain.annotations
    if value == DATASET and annotations is None:
        raise ConfigError("model.pretrained: dataset needs pretrain.annotations and pretrain.images "
                          "(a COCO JSON of the training split and its images folder)")


def crops_of(s: dict[str, Any], progress: bool) -> tuple[Any, Any, Any, Any, tuple[str, ...]]:
    """``(train_x, train_y, val_x, val_y, classes)`` of the settings' source: synthetic scenes or
    the dataset's boxes (``s["annotations"]``)."""
    if "annotations" in s:
        from mrae.data.dataset_crops import dataset_crops

        return dataset_crops(s["annotations"], s["images"], seed=s["seed"],
                             train_images=s["scenes"], val_images=s["val_scenes"],
                             size=s["crop_size"], background_per_image=s["background_per_image"],
                             progress=progress)  # fmt: skip
    from mrae.data.crops import CROP_CLASSES, make_crops

    workers = max(1, min(2, os.cpu_count() or 1))
    train_x, train_y = make_crops(s["seed"], 0, s["scenes"], s["crop_size"],
                                  background_per_image=s["background_per_image"], workers=workers,
                                  progress=progress)
    val_x, val_y = make_crops(s["seed"], s["scenes"], s["val_scenes"], s["crop_size"],
                              background_per_image=s["background_per_image"], workers=workers,
                              progress=progress)
    return train_x, train_y, val_x, val_y, CROP_CLASSES


def _trunk_forward(net, x):
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    return net.layer3(net.layer2(net.layer1(x)))


def pretrain(cfg, out: str | Path, progress: bool = True) -> dict[str, Any]:
    """Pretrain the trunk of ``cfg.model.backbone`` on crops; write its state dict to ``out``.

    Writes ``out`` (atomically) and its report (:func:`report_file`); returns the report.
    """
    import torch
    from torch import nn
    from tqdm import tqdm

    from mrae.engine.eta import WarmupTimer, duration, expected_line
    from mrae.modeling.backbone import RESNET_DEPTHS

    s = settings(cfg)
    if s["backbone"] not in RESNET_DEPTHS:
        raise ConfigError(f"model.backbone={s['backbone']!r} has no trunk to pretrain; choose one of "
                          + ", ".join(RESNET_DEPTHS))
    out = Path(out)
    start = time.perf_counter()
    train_x, train_y, val_x, val_y, classes = crops_of(s, progress)
    data_seconds = time.perf_counter() - start

    torch.manual_seed(s["seed"])
    builder, _ = RESNET_DEPTHS[s["backbone"]]
    net = builder(weights=None)
    width = net.layer3[-1].conv3.out_channels if hasattr(net.layer3[-1], "conv3") \
        else net.layer3[-1].conv2.out_channels
    classifier = nn.Linear(width, len(classes))
    trunk = nn.ModuleList([net.conv1, net.bn1, net.layer1, net.layer2, net.layer3])
    params = list(trunk.parameters()) + list(classifier.parameters())
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]  # biases and norm weights
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": s["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=s["lr"], momentum=0.9, nesterov=True,
    )
    warmup = max(1, s["steps"] // 20)

    def lr_factor(step: int) -> float:  # linear warm-up, then a cosine to zero
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, s["steps"] - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def batch(x: torch.Tensor) -> torch.Tensor:
        return (x.float() / 255 - mean) / std

    generator = torch.Generator().manual_seed(s["seed"])
    curve = []
    window_loss, window_correct, window_count = 0.0, 0, 0
    net.train()
    bar = tqdm(range(s["steps"]), desc="pretrain", unit="step", disable=not progress, dynamic_ncols=True)
    train_start = time.perf_counter()
    timer = WarmupTimer()  # the first steps' time: the expected time of the rest
    for step in bar:
        timer.begin()
        idx = torch.randint(len(train_x), (s["batch_size"],), generator=generator)
        x = batch(train_x[idx])
        flips = torch.rand(2, generator=generator) < 0.5
        if flips[0]:
            x = x.flip(-1)
        if flips[1]:
            x = x.flip(-2)
        y = train_y[idx]
        logits = classifier(_trunk_forward(net, x).mean(dim=(2, 3)))
        loss = nn.functional.cross_entropy(logits, y)
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise ConfigError(f"pretraining diverged at step {step + 1} (loss {loss_value}); "
                              "lower pretrain.lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if timer.end() and progress and s["steps"] - step - 1 > 0:
            first, last = timer.measured_steps
            bar.write(expected_line("mrae pretrain", timer.step_seconds, s["steps"] - step - 1,
                                    first, last, f"crops took {duration(data_seconds)}"),
                      file=sys.stderr)
        window_loss += loss_value * len(y)
        window_correct += int((logits.argmax(1) == y).sum())
        window_count += len(y)
        if (step + 1) % 50 == 0 or step + 1 == s["steps"]:
            curve.append({"step": step + 1, "loss": window_loss / window_count,
                          "accuracy": window_correct / window_count})
            bar.set_postfix(loss=f"{curve[-1]['loss']:.3f}", acc=f"{curve[-1]['accuracy']:.2f}",
                            refresh=False)
            window_loss, window_correct, window_count = 0.0, 0, 0
    bar.close()
    train_seconds = time.perf_counter() - train_start

    net.eval()
    predictions = []
    with torch.no_grad():
        for i in range(0, len(val_x), 256):
            logits = classifier(_trunk_forward(net, batch(val_x[i : i + 256])).mean(dim=(2, 3)))
            predictions.append(logits.argmax(1))
    predicted = torch.cat(predictions)
    per_class = {
        name: float((predicted[val_y == k] == k).float().mean()) if (val_y == k).any() else None
        for k, name in enumerate(classes)
    }
    report = {
        "settings": s,
        "train_crops": len(train_y),
        "val_crops": len(val_y),
        "classes": list(classes),
        "val_accuracy": float((predicted == val_y).float().mean()),
        "val_accuracy_per_class": per_class,
        "curve": curve,
        "seconds": {"crops": round(data_seconds, 1), "train": round(train_seconds, 1),
                    "warmup_step": round(timer.step_seconds, 4)},
        "threads": torch.get_num_threads(),
    }
    with atomic_path(out) as tmp:
        torch.save(net.state_dict(), tmp)
    write_json_atomic(report_file(out), report)
    if progress:
        print(f"pretrained {s['backbone']} trunk: held-out crop accuracy {report['val_accuracy']:.3f} "
              f"({len(val_y)} crops), {data_seconds:.0f} s crops + {train_seconds:.0f} s training -> {out}",
              file=sys.stderr)
    return report
