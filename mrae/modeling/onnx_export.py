"""A detector to ONNX: the whole model (resize, normalise, backbone, extractor, heads,
post-processing with the caps) for one image of any size, through torch's TorchScript-based
exporter (``torch.onnx.export(..., dynamo=False)``, the one that handles torchvision's detectors).

The graph takes ``image``: float32 [3, H, W] in [0, 1] (H and W dynamic) and returns ``boxes``
[D, 4] xyxy in the image's pixels, ``labels`` [D] int64 and ``scores`` [D] float32, best first:
what the PyTorch model returns for ``model([image])[0]``. With ``raw_maps`` it also returns the
extractor's maps (``map_<name>``, of the resized, padded input) to compare raw numbers.
"""

from __future__ import annotations

import warnings
from os import PathLike
from pathlib import Path

import torch
from torch import Tensor, nn

#: metadata_props keys that mrae export writes: the resolved config, the class names (label k is
#: ``class_names[k - 1]``) and label -> COCO category id, each as JSON.
CONFIG_KEY, CLASSES_KEY, LABEL_TO_CAT_KEY = "mrae.config", "mrae.class_names", "mrae.label_to_cat"
#: The ONNX opset written (onnxruntime >= 1.14 runs it).
OPSET = 17
OUTPUTS = ("boxes", "labels", "scores")


class SingleImageDetector(nn.Module):
    """``forward(image [3, H, W]) -> (boxes, labels, scores[, maps...])`` around a torchvision
    detector in eval mode (what the exporter traces)."""

    def __init__(self, detector: nn.Module, raw_maps: bool = False) -> None:
        super().__init__()
        self.detector = detector
        self.raw_maps = raw_maps
        self._maps: list[Tensor] = []
        if raw_maps:
            detector.backbone.register_forward_hook(lambda _m, _i, out: self._maps.extend(out.values()))

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        self._maps.clear()
        found = self.detector([image])[0]
        outputs = (found["boxes"], found["labels"], found["scores"])
        return (*outputs, *self._maps) if self.raw_maps else outputs


def map_names(detector: nn.Module) -> list[str]:
    """The output names of the extractor's maps (``map_<name>``) that ``raw_maps`` adds."""
    return [f"map_{name}" for name in detector.backbone.output_shape()]


def export_onnx(
    detector: nn.Module,
    path: str | PathLike[str],
    *,
    example_size: tuple[int, int] = (300, 512),
    raw_maps: bool = False,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write ``detector`` (a torchvision detector of :func:`mrae.modeling.detector.build_detector`)
    as ONNX to ``path``; see the module docstring for its inputs and outputs.

    Args:
        example_size: (H, W) of the example image traced (a random one; any size runs afterwards).
        raw_maps: also output the extractor's maps (for parity tests).
        metadata: strings stored in the model's ``metadata_props`` (e.g. the config, class names).
    """
    import onnx

    path = Path(path)
    was_training = detector.training
    detector.eval()
    wrapper = SingleImageDetector(detector, raw_maps)
    example = torch.rand(3, *example_size, generator=torch.Generator().manual_seed(0))
    names = list(OUTPUTS) + (map_names(detector) if raw_maps else [])
    dynamic = {"image": {1: "height", 2: "width"}, "boxes": {0: "detections"},
               "labels": {0: "detections"}, "scores": {0: "detections"}}
    dynamic.update({name: {2: f"{name}_height", 3: f"{name}_width"} for name in names[3:]})
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the tracer's warnings about Python values in the graph
            torch.onnx.export(wrapper, (example,), str(path), dynamo=False, opset_version=OPSET,
                              input_names=["image"], output_names=names, dynamic_axes=dynamic)
    finally:
        detector.train(was_training)
    model = onnx.load(str(path))
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
