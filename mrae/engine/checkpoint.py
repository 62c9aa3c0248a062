"""Checkpoints: atomic writes, the files a run keeps, RNG states, and loading a trained model.

A checkpoint is a ``torch.save``'d dict with the keys

- ``model``: the detector's ``state_dict``; ``optimizer``, ``scheduler``, ``scaler`` (AMP) states;
- ``step``: optimiser steps done; ``rng``: one RNG state dict per process (see :func:`rng_state`);
- ``config``: the resolved config as plain containers (``model.num_classes`` filled in);
- ``class_names`` (label ``k`` is ``class_names[k - 1]``), ``label_to_cat`` (label -> COCO
  category id);
- ``best_metric``: the best value of ``train.best_metric`` so far (None before any evaluation);
- ``metrics``: the last evaluation's metrics and ``metrics_step`` the step it was run at;
- ``log_window``: the running sums of the losses not yet logged (so a resumed run logs the same);
- ``checksum``: ``"sha256:<hex>"`` over everything else in the dict (:func:`state_checksum`),
  checked by every :func:`load_checkpoint`.

The checksum lives inside the checkpoint rather than in a sidecar file (or over the file's bytes)
because a checkpoint is one file written atomically: the checksum is replaced with it, travels with
it when it is hard-linked to ``step_*.pth``/``best.pth`` or copied elsewhere, and can never be out of
step with it. It is needed because ``torch.load`` does not check the zip's CRCs: 4 KiB of a
checkpoint overwritten on disk loads without complaint, with NaN or wrong weights. A checkpoint
written before checksums existed (no ``checksum`` key) loads with a one-line warning that it cannot
be verified. Whatever its age, a checkpoint whose weights are not finite (NaN or inf) is refused.

A run keeps ``checkpoints/last.pth``, the last ``train.keep_last`` ``step_<7-digit step>.pth`` files and
``best.pth`` (the best evaluation so far).
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import re
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

from mrae.errors import ConfigError, MraeError
from mrae.files import remove_stale_temp_files, temp_path
from mrae.inputs import CHECKPOINT_LIMIT, check_regular, shorten

logger = logging.getLogger(__name__)
_UNVERIFIED: set[str] = set()

_STEP_FILE = re.compile(r"step_(\d+)\.pth")
CHECKSUM_KEY = "checksum"


class CheckpointDamaged(ConfigError):
    """A checkpoint file that cannot be read or whose contents fail its checksum."""


def state_checksum(state: Mapping[str, Any]) -> str:
    """``"sha256:<hex>"`` of a checkpoint dict, its ``checksum`` entry left out.

    Covers every tensor (dtype, shape and bytes) and every plain value (their ``repr``) with the key
    path to it; dict keys in sorted order, so the digest does not depend on insertion order.
    """
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in state.items() if k != CHECKSUM_KEY})
    return f"sha256:{digest.hexdigest()}"


def _feed(digest: Any, value: Any) -> None:
    """Hash ``value`` into ``digest``, each part length-prefixed so no two structures collide."""

    def tag(text: str) -> None:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little") + data)

    if torch.is_tensor(value):
        flat = value.detach()
        if flat.layout != torch.strided:
            flat = flat.to_dense()
        flat = flat.cpu().contiguous().reshape(-1)
        tag(f"tensor {flat.dtype} {tuple(value.shape)}")
        if flat.numel():
            digest.update(flat.view(torch.uint8).numpy())
    elif isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda item: (type(item[0]).__name__, repr(item[0])))
        tag(f"mapping {len(items)}")
        for key, item in items:
            tag(f"{type(key).__name__} {key!r}")
            _feed(digest, item)
    elif isinstance(value, (list, tuple)):
        tag(f"{type(value).__name__} {len(value)}")
        for item in value:
            _feed(digest, item)
    else:
        tag(f"{type(value).__name__} {value!r}")


def save_checkpoint(path: str | PathLike[str], state: dict[str, Any]) -> None:
    """``torch.save(state)`` with its ``checksum`` to ``path`` atomically: a temporary file, fsync,
    then ``os.replace``.

    A run killed while writing leaves the previous file intact (and at worst a ``.<name>.<pid>.tmp``
    file, deleted by the next save into the folder once its writer is gone).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(path.parent)
    state = {**state, CHECKSUM_KEY: state_checksum(state)}
    previous = path.is_file()
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as error:  # a full disk: torch.save's writer raises RuntimeError
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error).splitlines()[0]
        if previous:
            raise MraeError(
                f"{path}: cannot write the checkpoint ({reason}); the previous checkpoint is intact: "
                "free disk space, then continue with --resume"
            ) from None
        raise MraeError(f"{path}: cannot write the checkpoint ({reason}); there is no earlier "
                        "checkpoint: free disk space, then start the run again") from None
    finally:
        tmp.unlink(missing_ok=True)


def link_or_copy(source: str | PathLike[str], target: str | PathLike[str]) -> None:
    """Make ``target`` hold ``source``'s bytes, atomically (a hard link where possible).

    A hard link costs no disk or time; later atomic replacements of ``source`` (a new inode) leave
    ``target`` unchanged.
    """
    source, target = Path(source), Path(target)
    tmp = temp_path(target)
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(source, tmp)
        except OSError:
            import shutil

            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def step_checkpoints(folder: str | PathLike[str]) -> list[Path]:
    """The ``step_<7-digit step>.pth`` files of a checkpoints folder, oldest step first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP_FILE.fullmatch(p.name))]
    return [p for _, p in sorted(found)]


def prune_step_checkpoints(folder: str | PathLike[str], keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` step checkpoints; return the deleted paths."""
    files = step_checkpoints(folder)
    doomed = files[: max(len(files) - keep_last, 0)]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def load_checkpoint(path: str | PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` and verify its checksum.

    Raises:
        CheckpointDamaged: the file cannot be read (truncated, overwritten, not a PyTorch file) or
            its contents do not match its checksum.
        ConfigError: the file is missing, would run code, or is not an mrae checkpoint.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: checkpoint not found; give a .pth file from RUN_DIR/checkpoints/")
    check_regular(path, CHECKPOINT_LIMIT, what="checkpoint", error=ConfigError)
    import pickle

    try:
        # Our checkpoints hold only tensors and plain containers: loading never runs code.
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        if "unsupported global" not in str(error).lower() and not _is_raw_pickle(path):  # damaged
            raise CheckpointDamaged(f"{path}: cannot read the checkpoint: the file is damaged "
                                    "(truncated or overwritten) or not a PyTorch file") from None
        raise ConfigError(
            f"{path}: refused: the file holds Python objects other than tensors and plain "
            "containers, and loading them could run code; use a checkpoint written by mrae train"
        ) from None
    except Exception as error:  # torch raises many types for a truncated or foreign file
        first = str(error).splitlines()[0][:160] if str(error) else ""
        raise CheckpointDamaged(
            f"{path}: cannot read the checkpoint: the file is damaged (truncated or overwritten) "
            f"or not a PyTorch file ({type(error).__name__}: {first})"
        ) from None
    if isinstance(state, dict) and CHECKSUM_KEY in state and state[CHECKSUM_KEY] != state_checksum(state):
        raise CheckpointDamaged(
            f"{path}: the checkpoint is damaged: its contents do not match the checksum written "
            "with them (bytes changed on disk); use another checkpoint of the run"
        )
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise ConfigError(f"{path}: not an mrae checkpoint (no 'model' and 'config' entries)")
    _check_entries(state, path)
    bad = next((key for key, value in state["model"].items() if torch.is_tensor(value)
                and value.is_floating_point() and not bool(torch.isfinite(value).all())), None)
    if bad is not None:
        raise CheckpointDamaged(f"{path}: the checkpoint's weights are not finite (NaN or inf in "
                                f"{shorten(str(bad), 80)}); use another checkpoint of the run")
    if CHECKSUM_KEY not in state and str(path) not in _UNVERIFIED:
        _UNVERIFIED.add(str(path))  # said once per file and process
        logger.warning(f"{path}: warning: the checkpoint has no checksum (written by an older mrae or "
                       "edited), so its contents cannot be verified")
    return state


def _check_entries(state: dict[str, Any], path: Path) -> None:
    """The entries every reader relies on have their types (a hostile file may carry garbage
    with a valid checksum): one ConfigError naming the entry, never a traceback later."""
    entries = {
        "model": isinstance(state["model"], Mapping)
        and all(isinstance(k, str) and torch.is_tensor(v) for k, v in state["model"].items()),
        "config": isinstance(state["config"], Mapping),
        "step": "step" not in state or (isinstance(state["step"], int) and not isinstance(state["step"], bool)
                                        and state["step"] >= 0),
        "class_names": state.get("class_names") is None or (
            isinstance(state["class_names"], list) and all(isinstance(n, str) for n in state["class_names"])),
        "label_to_cat": state.get("label_to_cat") is None or isinstance(state["label_to_cat"], Mapping),
    }
    bad = [name for name, ok in entries.items() if not ok]
    if bad:
        raise ConfigError(f"{path}: not an mrae checkpoint: its {bad[0]!r} entry has the wrong type; "
                          "use a checkpoint written by mrae train")


def _is_raw_pickle(path: Path) -> bool:
    """A plain pickle stream (protocol 2+), not torch's zip: Python objects, never weights alone."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError:
        return False
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def build_model_from_config(cfg: DictConfig, num_classes: int | None = None) -> nn.Module:
    """The detector of ``cfg.model`` with random weights, built as ``cfg.model.pretrained`` would
    build it (frozen batch norm, its trainable layers) but without reading or downloading them:
    :func:`mrae.engine.model.build_model` with ``weights_later``.

    Used where the weights come from a checkpoint next.
    """
    from mrae.engine.model import build_model

    if num_classes is None and cfg.model.num_classes is None:
        raise ConfigError("model.num_classes is null in the checkpoint's config; it cannot be rebuilt")
    return build_model(cfg, weights_later=True, num_classes=num_classes)


def load_weights_strict(model: nn.Module, weights: dict[str, Any], source: str, target: str,
                        advice: str = "") -> None:
    """``model.load_state_dict(weights, strict=True)``; a mismatch is a one-line ConfigError:
    ``"<source>: its weights do not fit <target> (<torch's first line>); <advice>"``."""
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        tail = f"; {advice}" if advice else ""
        raise ConfigError(
            f"{source}: its weights do not fit {target} ({str(error).splitlines()[0]}){tail}"
        ) from None


def load_model(
    checkpoint_path: str | PathLike[str], device: str | torch.device = "cpu"
) -> tuple[nn.Module, DictConfig, list[str]]:
    """A trained detector from a checkpoint: ``(model in eval mode on device, config, class_names)``.

    An ``.onnx`` file of ``mrae export`` loads as an :class:`~mrae.modeling.onnx_detector.OnnxDetector`
    (onnxruntime on the CPU, whatever ``device``) with the config and classes stored in it.
    """
    from mrae.engine.config import config_from_dict

    if Path(checkpoint_path).suffix.lower() == ".onnx":
        return _load_onnx(Path(checkpoint_path))
    state = load_checkpoint(checkpoint_path)
    cfg = config_from_dict(state["config"], source=f"{checkpoint_path} (its config)")
    model = build_model_from_config(cfg)
    load_weights_strict(model, state["model"], f"{checkpoint_path}", "the model of its config")
    model.to(device).eval()
    return model, cfg, list(state.get("class_names") or [])


def label_to_cat(checkpoint_path: str | PathLike[str]) -> dict[int, int] | None:
    """The label -> COCO category id of a checkpoint or an exported ``.onnx`` file (None: none stored)."""
    if Path(checkpoint_path).suffix.lower() == ".onnx":
        from mrae.modeling.onnx_detector import OnnxDetector
        from mrae.modeling.onnx_export import LABEL_TO_CAT_KEY

        mapping = OnnxDetector(checkpoint_path).metadata_json(LABEL_TO_CAT_KEY)
    else:
        mapping = load_checkpoint(checkpoint_path).get("label_to_cat")
    return {int(k): int(v) for k, v in mapping.items()} if mapping else None  # type: ignore[union-attr]


def _load_onnx(path: Path) -> tuple[nn.Module, DictConfig, list[str]]:
    from mrae.engine.config import config_from_dict
    from mrae.modeling.onnx_detector import OnnxDetector
    from mrae.modeling.onnx_export import CLASSES_KEY, CONFIG_KEY

    model = OnnxDetector(path)
    config = model.metadata_json(CONFIG_KEY)
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: no mrae config in the ONNX model's metadata; export it with mrae export")
    cfg = config_from_dict(config, source=f"{path} (its config)")
    model.detections_per_img = int(cfg.model.detections_per_img)  # the cap sliced inference reads
    return model.eval(), cfg, list(model.metadata_json(CLASSES_KEY) or [])


def rng_state() -> dict[str, Any]:
    """The states of every RNG a training step may draw from (torch CPU and CUDA, numpy, random)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        # tensors and plain values only, so that a checkpoint loads with weights_only=True
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "random": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the states saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    version, internal, gauss = state["random"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
