"""mrae: the MultiResolution Attention Extractor for small-object detection (Faster R-CNN,
RetinaNet or FCOS around it)."""

__version__ = "0.1.0"

__all__ = ["build_backbone", "build_detector", "__version__"]


def __getattr__(name: str):
    # Lazy, so that `import mrae` (and the data commands) does not import torch.
    if name == "build_detector":
        from mrae.modeling.detector import build_detector

        return build_detector
    if name == "build_backbone":
        from mrae.modeling.extractor_backbone import build_backbone

        return build_backbone
    raise AttributeError(f"module 'mrae' has no attribute {name!r}")
