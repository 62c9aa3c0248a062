"""`mrae predict`: detect objects in images with a checkpoint, draw them, save the level weights.

``mrae predict --checkpoint CKPT IMAGES_OR_DIR... --out DIR [--score-thresh 0.5] [--attention]
[--overwrite] [--slice HxW --overlap F --merge nms|greedy --full-pass ...]`` writes into DIR:

- ``detections.json``: COCO results (``image_id`` = the image's index in the input order,
  ``file_name``, ``category_id`` in the checkpoint's COCO ids, ``category_name``, ``bbox`` xywh
  px, ``score``) of the detections scoring at least the threshold;
- ``<stem>.jpg``: each image with its boxes, class names and scores drawn (the paper's Fig. 5);
  with ``--attention`` and a global-mode MRAE, a bar chart of the C1/C2/C3 weights in its
  bottom-right corner;
- with ``--attention``: ``attention.json`` (per image the level weights ``[w1, w2, w3]`` of
  C1, C2, C3; for the spatial MRAE their mean over the image) and, for the spatial mode,
  ``<stem>_attention.png`` with the three weight maps beside the image;
- ``predict.json``: the run's record: checkpoint, threshold, whether the run went through every
  image (``complete``; when not, ``stopped`` says why: an error, an interruption, or a run killed
  before it ended, as the record written before the first image says), the images it skipped
  and why, and the files it wrote in DIR.

Everything is checked before the model is loaded: the checkpoint and the images exist, and DIR is
new, empty or one an earlier ``mrae predict`` made (its signed ownership marker lists the files it
wrote with their sha256, :mod:`mrae.ownership`; a ``predict.json`` alone proves nothing);
a DIR with other files, or a file of predict's names that it did not write, is refused unless ``--overwrite``, and an input image is never written
over. An image that cannot be read is skipped with a one-line warning on stderr; the other
images' results are written and the command exits with code 1 (0 when every image was read).

With ``--slice HxW`` each image is detected tile by tile at its native resolution and the tiles'
detections merged (:mod:`mrae.evaluation.slicing`, docs/slicing.md); the level weights of
``--attention`` still describe the whole image: they come from the full pass (``--full-pass``)
or, without it, from one extra forward pass over the whole image.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from tqdm import tqdm

from mrae.apps.draw import draw_detections, draw_level_weights, save_attention_figure, save_image
from mrae.data.images import read_image
from mrae.device import resolve_device
from mrae.errors import ConfigError, DataError
from mrae.evaluation.evaluator import to_coco_results
from mrae.evaluation.slicing import SliceOptions, as_record, check_tile_count, sliced_detect
from mrae.files import write_text_atomic
from mrae.inputs import CHECKPOINT_LIMIT, IMAGE_LIMIT, check_regular
from mrae.ownership import check_not_input, claim_folder, dataset_roots, read_marker

#: File suffixes a folder is scanned for (an image named explicitly may have any suffix).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})

#: The record of a predict run in its output folder: the files it wrote, the images it skipped.
MANIFEST = "predict.json"


def find_images(inputs: Sequence[str | Path]) -> list[Path]:
    """The image files named by ``inputs``: files as given, folders scanned (not recursively), sorted.

    Raises DataError for a path that does not exist or a folder without images.
    """
    if not inputs:
        raise DataError("no images given; pass image files or folders")
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            images = sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
                raise DataError(f"{item}: the folder holds no images ({suffixes}); give another folder")
            found.extend(images)
        elif item.is_file():
            found.append(item)
        elif item.exists():  # a FIFO, a device, a socket: refused, never opened
            check_regular(item, IMAGE_LIMIT, what="image file")
        else:
            raise DataError(f"{item}: no such image file or folder; check the path")
    return found


class Predictions(NamedTuple):
    """What :func:`predict_images` did: the results written and the images it skipped."""

    results: list[dict[str, Any]]  # the COCO results written to detections.json
    failed: list[tuple[Path, str]]  # (image, one-line reason) of each image that was skipped


def predict_images(
    checkpoint: str | Path,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    score_thresh: float = 0.5,
    attention: bool = False,
    device: str | torch.device = "auto",
    progress: bool = True,
    overwrite: bool = False,
    slicing: SliceOptions | None = None,
) -> Predictions:
    """Detect, draw and save; see the module docstring for what lands in ``out_dir``.

    The inputs, the output folder and the device are checked before the model is loaded. An
    image that cannot be read is skipped with a one-line warning on stderr; the results of every
    other image are written (also when the run stops early).

    Args:
        checkpoint: a checkpoint written by ``mrae train``.
        inputs: image files and/or folders of images.
        out_dir: output folder: new, empty, or one this function wrote before (its
            ``predict.json`` lists its files); any other folder needs ``overwrite``.
        score_thresh: keep detections with score >= this (in [0, 1]).
        attention: also save the level weights (and draw them: bars for the global mode, maps
            beside the image for the spatial mode).
        device: ``"cpu"``, ``"cuda"``, ... or ``"auto"``.
        progress: tqdm bar on stderr.
        overwrite: write into a folder holding other files too; files of predict's names in it
            are replaced (never an input image).
        slicing: detect on overlapping tiles of each image and merge (None: the whole image).

    Returns:
        The results written to ``detections.json`` and the images skipped.
    """
    from mrae.engine.trained import data_paths, load_trained
    from mrae.modeling.detector import attention_weights

    if not 0.0 <= score_thresh <= 1.0:
        raise ConfigError(f"--score-thresh must be in [0, 1], got {score_thresh}")
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        if checkpoint.exists():  # a FIFO, a device, a folder: said what it is
            check_regular(checkpoint, CHECKPOINT_LIMIT, what="checkpoint", error=ConfigError)
        raise ConfigError(f"--checkpoint {checkpoint}: no such file; give a .pth from RUN_DIR/checkpoints/")
    images = find_images(inputs)
    if slicing is not None:
        check_tiles(images, slicing)
    out = Path(out_dir)
    pictures = _picture_paths(images, out)
    sources = [*map(Path, inputs), *images, checkpoint]  # folders given and the images in them
    earlier = check_out_folder(out, overwrite, sources, _output_names(pictures, attention))
    device = resolve_device(device)

    model, cfg, class_names, stored = load_trained(checkpoint, device=str(device))
    model.eval()
    trained_on = data_paths(cfg)  # the model's own dataset: never written into either
    check_not_input(out, trained_on, datasets=dataset_roots(trained_on))
    # a checkpoint without a label map: the labels are the category ids
    label_to_cat = stored or {k: k for k in range(1, len(class_names) + 1)}
    cat_names = {label_to_cat[k]: name for k, name in enumerate(class_names, start=1)}
    claim = claim_folder(out, "predict", inputs=sources + trained_on, overwrite=overwrite,
                         exclusive=True, datasets=dataset_roots(trained_on))

    results: list[dict[str, Any]] = []
    weights_records: list[dict[str, Any]] = []
    failed: list[tuple[Path, str]] = []
    written: set[str] = set()
    warned = False
    stopped: str | None = "killed before it finished"  # what the record says until the loop ends

    def write_record() -> None:
        manifest = {
            "checkpoint": str(checkpoint),
            "score_thresh": score_thresh,
            "slicing": as_record(slicing),
            "images": len(images),
            "complete": stopped is None,  # False: the run stopped; its files hold part of the images
            **({"stopped": stopped} if stopped is not None else {}),
            "failed": [{"file_name": str(p), "error": e} for p, e in failed],
            "files": sorted(written | {n for n in earlier if (out / n).exists()} - {MANIFEST}),
        }
        _write_json(out / MANIFEST, manifest)
        claim.record([out / name for name in (*written, MANIFEST)])

    write_record()  # a run killed from here on leaves a record that says so, never an earlier success
    try:
        for index, (path, picture) in enumerate(
            tqdm(list(zip(images, pictures, strict=True)), desc="predict", unit="img", disable=not progress)
        ):
            try:
                image = read_image(path)
            except DataError as error:
                failed.append((path, str(error)))
                tqdm.write(f"mrae predict: warning: {error}; skipped", file=sys.stderr)
                continue
            with torch.inference_mode():
                if slicing is None:
                    output = model([image.to(device)])[0]
                else:
                    output = sliced_detect(model, image.to(device), slicing)
                    if attention and not slicing.full_pass:  # the weights of the whole image
                        model([image.to(device)])
                weights = attention_weights(model) if attention else None
            keep = output["scores"] >= score_thresh
            output = {k: v[keep].cpu() for k, v in output.items()}
            for result in to_coco_results(output, index, label_to_cat):
                result["file_name"] = str(path)
                result["category_name"] = cat_names[result["category_id"]]
                results.append(result)
            drawn = draw_detections(
                image, output["boxes"], output["labels"].tolist(), output["scores"].tolist(), class_names
            )

            if attention and weights is None and not warned:
                extractor = cfg.model.get("extractor", "this") if "model" in cfg else "this"
                print(f"--attention: the {extractor} extractor has no attention weights; drawing detections only")
                warned = True
            if weights is not None:
                record = {"image_id": index, "file_name": str(path)}
                if weights.dim() == 4:  # spatial mode: [1, 3, H1, W1]
                    maps = _valid_region(model, image.to(device), weights[0]).cpu()
                    record.update(mode="spatial", weights=maps.flatten(1).mean(1).tolist())
                    figure = picture.with_name(f"{picture.stem}_attention.png")
                    save_attention_figure(image, maps, figure, title=path.name)
                    written.add(figure.name)
                else:  # global mode: [1, 3]
                    record.update(mode="global", weights=weights[0].float().cpu().tolist())
                    drawn = draw_level_weights(drawn, weights[0])
                weights_records.append(record)
            save_image(drawn, picture)
            written.add(picture.name)
        stopped = None
    except BaseException as error:  # an error, Ctrl-C: the record says the run stopped, and why
        stopped = (str(error).splitlines() or [type(error).__name__])[0][:300] \
            if not isinstance(error, KeyboardInterrupt) else "interrupted"
        raise
    finally:
        _write_json(out / "detections.json", results)
        written.add("detections.json")
        if weights_records:
            _write_json(out / "attention.json", weights_records)
            written.add("attention.json")
        write_record()
    return Predictions(results, failed)


def check_tiles(images: Sequence[Path], slicing: SliceOptions) -> None:
    """Refuse (before the model loads) an image that ``slicing`` would cut into more than
    :data:`~mrae.evaluation.slicing.MAX_TILES` tiles; its size is read from the file's header (an
    unreadable image is left to the loop, which skips it with a warning)."""
    from PIL import Image, UnidentifiedImageError

    for path in images:
        try:
            with Image.open(path) as picture:
                width, height = picture.size
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
            continue
        check_tile_count(height, width, slicing, str(path))


def _output_names(pictures: list[Path], attention: bool) -> list[str]:
    """Every name predict may write into its folder for these pictures."""
    names = ["detections.json", MANIFEST, *(p.name for p in pictures)]
    if attention:
        names += ["attention.json", *(f"{p.stem}_attention.png" for p in pictures)]
    return names


def check_out_folder(out: Path, overwrite: bool = False, inputs: Sequence[Path] = (),
                     names: Sequence[str] = ()) -> set[str]:
    """Check that ``mrae predict`` may write ``names`` into ``out``; return the names it wrote
    there before.

    ``out`` may be missing, empty, or a folder predict made (its signed ownership marker,
    :mod:`mrae.ownership`; a ``predict.json`` alone proves nothing). A folder holding anything
    else is refused with a one-line ConfigError unless ``overwrite``, and a file of predict's
    names that it did not write (or that changed since) likewise; an input is never written over.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file, not a folder; give a folder for the results")
    claim = claim_folder(out, "predict", inputs=inputs, overwrite=overwrite, create=False,
                         exclusive=True)
    for name in names:
        claim.check(name)
    marker = read_marker(out) if claim.own else None
    return set(marker["files"]) - {MANIFEST} if marker else set()


def _write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON atomically: a reader never sees a half-written file."""
    write_text_atomic(path, json.dumps(data, indent=1) + "\n")


def _picture_paths(images: list[Path], out: Path) -> list[Path]:
    """``out/<stem>.jpg`` per image; a stem seen before gets ``_<index>``; never an input file."""
    seen: set[str] = set()
    inputs = {p.resolve() for p in images}
    paths = []
    for index, image in enumerate(images):
        stem = image.stem
        while stem in seen:
            stem = f"{stem}_{index}"
        seen.add(stem)
        path = out / f"{stem}.jpg"
        if path.resolve() in inputs:
            raise ConfigError(f"--out {out}: drawing would overwrite the input {image}; choose another folder")
        paths.append(path)
    return paths


def _valid_region(model: nn.Module, image: Tensor, maps: Tensor) -> Tensor:
    """Crop spatial maps [3, h, w] of the padded batch to the image's own (resized) region."""
    batch, _ = model.transform([image])
    height, width = batch.image_sizes[0]
    padded_h, padded_w = batch.tensors.shape[-2:]
    rows = max(1, round(maps.shape[-2] * height / padded_h))
    cols = max(1, round(maps.shape[-1] * width / padded_w))
    return maps[:, :rows, :cols]
