"""An exported detector (:mod:`mrae.modeling.onnx_export`) run by onnxruntime behind the PyTorch
detector's interface: ``model(list of images [3, H, W]) -> list of {"boxes", "labels", "scores"}``,
so that evaluation, sliced inference and prediction run it unchanged."""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path

import torch
from torch import Tensor, nn

from mrae.errors import ConfigError


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
        self.output_names = ["boxes", "labels", "scores"]
        self.detections_per_img: int | None = None  # the cap sliced inference reads (set by the loader)

    def metadata_json(self, key: str) -> object:
        """A JSON value of the metadata that mrae export wrote (None when absent)."""
        text = self.metadata.get(key)
        return None if text is None else json.loads(text)

    def forward(self, images: list[Tensor]) -> list[dict[str, Tensor]]:
        found = []
        for image in images:
            boxes, labels, scores = self.session.run(
                self.output_names, {"image": image.detach().float().cpu().contiguous().numpy()})
            found.append({"boxes": torch.from_numpy(boxes), "labels": torch.from_numpy(labels),
                          "scores": torch.from_numpy(scores)})
        return found
