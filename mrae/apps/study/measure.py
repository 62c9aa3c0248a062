"""What the study measures on a trained model besides COCO AP/AR: inference speed, parameters and
FLOPs, and the mean attention weights of the rows whose model keeps them."""

from __future__ import annotations

import functools
from pathlib import Path

from mrae.apps.study.spec import Study, find_row, row_config, run_dir


def measure_speed(study: Study, rows: list[dict], quick: bool = False, images: int = 20,
                  progress: bool = True) -> str:
    """Inference ms/image of every row, one after another in this process (batch 1, val images).

    The runs' own ms/image were taken while other runs shared the cores; this measures each row's
    first finished model on the same images with the same threads, so the rows compare as ratios.
    Sets ``entry["ms_per_image"]`` and ``entry["ms_images"]`` (not for a row none of whose runs has
    its weights here, which keeps its runs' own mean ms/image). Returns the machine's speed and
    load as the measurement starts (:func:`mrae.engine.eta.machine_now`), for the page: a busy
    machine times every row slower, so the numbers are read as ratios beside it.
    """
    import torch
    from tqdm import tqdm

    from mrae.device import timed
    from mrae.engine.eta import machine_now
    from mrae.engine.trained import load_trained

    machine = machine_now()

    for entry in tqdm(rows, desc="inference time", unit="row", disable=not progress):
        row = find_row(study, entry["name"])
        # The first seed whose weights are here (a run known only from the study's ledger has none;
        # a row without any keeps the runs' own ms/image).
        found = [path for seed in entry["seeds"]
                 if (path := run_dir(study, row, seed) / "checkpoints" / "last.pth").is_file()]
        if not found:
            continue
        model = load_trained(found[0]).model
        model.eval()
        dataset = val_dataset(row_config(study, row, quick=quick))
        count = min(images, len(dataset))
        batch = [dataset[i][0] for i in range(count)]
        seconds = []
        with torch.inference_mode():
            model([batch[0]])  # warm-up
            for image in batch:
                seconds.append(timed(functools.partial(model, [image]), torch.device("cpu"))[1])
        entry["ms_per_image"] = 1000.0 * sum(seconds) / len(seconds)
        entry["ms_images"] = count
    return machine


def run_machine(cfg) -> dict:
    """Where a run trained: ``device`` ("CPU" or the GPU's name), ``torch`` (its version) and
    ``mixed_precision`` (``train.amp``, which applies on CUDA only); on the CPU also ``gflops``
    and ``threads``: float32 matmul GFLOP/s at the run's torch threads, measured now (as the run
    finishes, with whatever else shares the cores). Records without it were trained on the CPU
    with the project's pinned torch."""
    import torch

    from mrae.device import resolve_device
    from mrae.engine.eta import matmul_gflops

    device = resolve_device(cfg.train.device, key="train.device")
    cuda = device.type == "cuda"
    machine = {"device": torch.cuda.get_device_name(device) if cuda else "CPU",
               "torch": torch.__version__, "mixed_precision": bool(cfg.train.amp) and cuda}
    if not cuda:  # the speed the study's time estimates scale by (mrae.apps.study.pace)
        machine.update(gflops=round(matmul_gflops(), 1), threads=torch.get_num_threads())
    return machine


def trunk_identity(cfg) -> dict | None:
    """The trunk file a run starts from: ``{"pretrained": cfg.model.pretrained, "sha256": the
    file's first 16 hex digits, "held_out_accuracy": the pretraining report's, where there is
    one}``; None for a random start or torchvision's ImageNet weights (fixed by their name).

    Pretraining is bit-reproducible on one machine, not across CPUs (their float rounding
    differs, and 1000 SGD steps amplify it), so the same recipe on two machines gives two trunks:
    the study keeps which one each run began from."""
    import hashlib
    import json

    from mrae.engine.pretrain import report_file, resolve_pretrained

    if cfg.model.pretrained in (None, "imagenet"):
        return None
    path = Path(resolve_pretrained(cfg, progress=False))
    identity = {"pretrained": str(cfg.model.pretrained),
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16]}
    try:
        accuracy = json.loads(report_file(path).read_text()).get("val_accuracy")
    except (OSError, ValueError, AttributeError):
        accuracy = None
    if isinstance(accuracy, int | float):
        identity["held_out_accuracy"] = round(float(accuracy), 4)
    return identity


def input_hw(cfg) -> tuple[int, int]:
    """The (height, width) one inference is measured at: the fixed size, or min/max side."""
    if cfg.model.get("fixed_size"):
        return int(cfg.model.fixed_size[0]), int(cfg.model.fixed_size[1])
    return int(cfg.model.min_size), int(cfg.model.max_size)


def complexity(model, cfg) -> dict:
    """Parameters (millions) and GFLOPs of one inference at the config's input size (h x w)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    height, width = input_hw(cfg)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model([torch.rand(3, height, width)])
    return {
        "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
        "GFLOPs": counter.get_total_flops() / 1e9,
    }


def val_dataset(cfg):
    """The config's validation split, without augmentation."""
    from mrae.data.coco import CocoDetection
    from mrae.engine.config import resolve_data

    paths = resolve_data(cfg)
    return CocoDetection(paths["val_images"], paths["val_annotations"], train=False)


def mean_attention(model, cfg, images: int = 50) -> list[float]:
    """The level weights (C1, C2, C3) of the final model averaged over the first validation images
    (and over positions, for the spatial mode)."""
    import torch

    from mrae.modeling.detector import attention_weights

    dataset = val_dataset(cfg)
    totals = torch.zeros(3)
    count = min(images, len(dataset))
    model.eval()
    with torch.inference_mode():
        for i in range(count):
            image, _ = dataset[i]
            model([image])
            weights = attention_weights(model)
            totals += weights.flatten(2).mean(-1)[0] if weights.dim() == 4 else weights[0]
    return (totals / max(count, 1)).tolist()
