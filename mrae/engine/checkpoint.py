"""The checkpoint file: an atomic, checksummed write, and a read that verifies it.

A checkpoint is a ``torch.save``'d dict with the keys

- ``model``: the detector's ``state_dict``; ``optimizer``, ``scheduler``, ``scaler`` (AMP) states;
- ``step``: optimiser steps done; ``rng``: one RNG state dict per process
  (:func:`mrae.engine.rng.rng_state`);
- ``config``: the resolved config as plain containers (``model.num_classes`` filled in);
- ``class_names`` (label ``k`` is ``class_names[k - 1]``), ``label_to_cat`` (label -> COCO
  category id);
- ``best_metric``: the best value of ``train.best_metric`` so far (None before any evaluation);
- ``metrics``: the last evaluation's metrics and ``metrics_step`` the step it was run at;
- ``log_window``: the running sums of the losses not yet logged (so a resumed run logs the same);
- ``checksum``: ``"sha256:<hex>"`` over everything else in the dict (:func:`state_checksum`),
  checked by every :func:`load_checkpoint`.

:meth:`mrae.engine.trainer.Trainer.state_dict` writes these entries and
:meth:`~mrae.engine.trainer.Trainer.load_state_dict` sets a run back to them;
:func:`mrae.engine.trained.load_trained` makes a model of them; the files a run keeps
(``last.pth``, ``step_*.pth``, ``best.pth``) are :mod:`mrae.engine.run_folder`'s.

The checksum lives inside the checkpoint rather than in a sidecar file (or over the file's bytes)
because a checkpoint is one file written atomically: the checksum is replaced with it, travels with
it when it is hard-linked to ``step_*.pth``/``best.pth`` or copied elsewhere, and can never be out of
step with it. It is needed because ``torch.load`` does not check the zip's CRCs: 4 KiB of a
checkpoint overwritten on disk loads without complaint, with NaN or wrong weights. A checkpoint
written before checksums existed (no ``checksum`` key) loads with a one-line warning that it cannot
be verified. Whatever its age, a checkpoint whose weights are not finite (NaN or inf) is refused.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import torch

from mrae.errors import ConfigError, MraeError
from mrae.files import open_temp, remove_stale_temp_files, temp_path
from mrae.inputs import CHECKPOINT_LIMIT, check_regular, shorten

logger = logging.getLogger(__name__)
_UNVERIFIED: set[str] = set()

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
        tmp, fd = open_temp(path)
        with open(fd, "wb") as f:
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
