"""An exported detector (:mod:`mrae.modeling.onnx_export`) run by onnxruntime behind the PyTorch
detector's interface: ``model(list of images [3, H, W]) -> list of {"boxes", "labels", "scores"}``,
so that evaluation, sliced inference and prediction run it unchanged."""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mrae.errors import ConfigError
from mrae.modeling.onnx_export import OUTPUTS


class OnnxDetector(nn.Module):
    """An ``.onnx`` file of ``mrae export`` on onnxruntime's CPU provider (no parameters: ``to``,
    ``eval`` and ``train`` change nothing). ``threads``: onnxruntime's intra-op threads (None: its
    default). ``metadata``: the file's ``metadata_props``."""

    def __init__(self, path: str | PathLike[str], threads: int | None = None) -> None:
        super().__init__()
        try:
            import onnxruntime
        except ImportError:
            raise ConfigError("running an .onnx model needs onnxruntime: pip install 'mrae[export]'") from None
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"{self.path}: ONNX model not found; give a file written by mrae export")
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only
        if threads is not None:
            options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(str(self.path), options,
                                                        providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own types for a damaged file
            first = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
            raise ConfigError(f"{self.path}: cannot load the ONNX model ({first})") from None
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        self.output_names = list(OUTPUTS)
        check_signature(self.session, self.path)
        self.detections_per_img: int | None = None  # the cap sliced inference reads (set by the loader)
        self.num_labels: int | None = None  # labels must lie in 1..num_labels (set by the loader)

    def metadata_json(self, key: str, kind: type | tuple[type, ...] = object) -> object:
        """A JSON value of the metadata that mrae export wrote (None when absent); a value that is
        not JSON, or not of ``kind``, is a one-line ConfigError naming the file and the key."""
        text = self.metadata.get(key)
        if text is None:
            return None
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            raise ConfigError(f"{self.path}: its metadata {key} is not JSON; export the model again "
                              "with mrae export") from None
        if not isinstance(value, kind):
            names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise ConfigError(f"{self.path}: its metadata {key} is a {type(value).__name__}, not a "
                              f"{names}; export the model again with mrae export")
        return value

    def forward(self, images: list[Tensor]) -> list[dict[str, Tensor]]:
        found = []
        for image in images:
            try:
                boxes, labels, scores = self.session.run(
                    self.output_names, {"image": image.detach().float().cpu().contiguous().numpy()})
            except Exception as error:  # onnxruntime's own types: a graph that fails on an image
                first = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
                raise ConfigError(f"{self.path}: the ONNX model failed on an image ({first}); give "
                                  "a file written by mrae export") from None
            found.append(self._checked(boxes, labels, scores))
        return found

    def _checked(self, boxes: Any, labels: Any, scores: Any) -> dict[str, Tensor]:
        """The outputs as tensors, after checking they are what mrae export's graph returns:
        boxes float [D, 4], labels int64 [D] in 1..num_labels, scores float [D] (finite)."""
        import numpy as np

        count = len(scores) if getattr(scores, "ndim", 0) == 1 else -1
        problem = None
        if not (getattr(boxes, "ndim", 0) == 2 and boxes.shape == (count, 4)
                and np.issubdtype(boxes.dtype, np.floating)):
            problem = f"boxes of shape {getattr(boxes, 'shape', None)}, not [D, 4] floats"
        elif not (getattr(labels, "ndim", 0) == 1 and labels.shape == (count,)
                  and np.issubdtype(labels.dtype, np.integer)):
            problem = f"labels of shape {getattr(labels, 'shape', None)}, not [D] integers"
        elif not np.issubdtype(scores.dtype, np.floating) or not np.isfinite(scores).all() \
                or not np.isfinite(boxes).all():
            problem = "boxes or scores that are not finite numbers"
        elif count and self.num_labels is not None and (labels.min() < 1 or labels.max() > self.num_labels):
            problem = f"labels outside 1..{self.num_labels} (its class names)"
        if problem is not None:
            raise ConfigError(f"{self.path}: the ONNX model returned {problem}; give a file "
                              "written by mrae export")
        return {"boxes": torch.from_numpy(np.ascontiguousarray(boxes, dtype=np.float32)),
                "labels": torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64)),
                "scores": torch.from_numpy(np.ascontiguousarray(scores, dtype=np.float32))}


def _dims(arg: Any) -> list[Any] | None:
    shape = getattr(arg, "shape", None)
    return list(shape) if isinstance(shape, (list, tuple)) else None


def _fits(dims: list[Any] | None, want: list[int | None]) -> bool:
    """A declared shape matches ``want`` (None: any size there); a named or unknown dim fits any."""
    if dims is None or len(dims) != len(want):
        return False
    return all(w is None or not isinstance(d, int) or d == w for d, w in zip(dims, want, strict=True))


def check_signature(session: Any, path: Path) -> None:
    """ConfigError (one line naming ``path``) unless the graph has what mrae export writes: one
    input ``image`` float [3, H, W] and the outputs ``boxes`` float [D, 4], ``labels`` int64 [D],
    ``scores`` float [D] (extra ``map_*`` outputs of a parity export allowed)."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    found = {arg.name: arg for arg in outputs}
    problem = None
    if len(inputs) != 1 or inputs[0].name != "image":
        problem = f"its inputs are {[arg.name for arg in inputs]}, not one 'image'"
    elif inputs[0].type != "tensor(float)" or not _fits(_dims(inputs[0]), [3, None, None]):
        problem = f"its input 'image' is {inputs[0].type} {_dims(inputs[0])}, not float [3, H, W]"
    elif [arg.name for arg in outputs[:3]] != list(OUTPUTS) or any(
            not arg.name.startswith("map_") for arg in outputs[3:]):
        problem = f"its outputs are {[arg.name for arg in outputs]}, not {list(OUTPUTS)}"
    else:
        for name, kind, want in (("boxes", "tensor(float)", [None, 4]), ("labels", "tensor(int64)", [None]),
                                 ("scores", "tensor(float)", [None])):
            if found[name].type != kind or not _fits(_dims(found[name]), want):
                problem = (f"its output '{name}' is {found[name].type} {_dims(found[name])}, not "
                           f"{kind[7:-1]} {['D' if w is None else w for w in want]}")
                break
    if problem is not None:
        raise ConfigError(f"{path}: not a detector of mrae export ({problem}); give a file written "
                          "by mrae export")
