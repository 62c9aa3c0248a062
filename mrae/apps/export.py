"""``mrae export``: a trained checkpoint to an ONNX file that onnxruntime runs
(:mod:`mrae.modeling.onnx_export`), with the run's config and classes in its metadata."""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path

from mrae.errors import ConfigError


def export_checkpoint(
    checkpoint: str | PathLike[str],
    out: str | PathLike[str],
    *,
    overwrite: bool = False,
    example_size: tuple[int, int] | None = None,
) -> Path:
    """Export the detector of ``checkpoint`` to ``out`` (.onnx), written atomically.

    Args:
        example_size: (H, W) of the traced example; default the config's ``fixed_size`` or
            ``min_size`` x ``max_size`` (any size runs afterwards).

    Raises:
        ConfigError: ``out`` exists without ``overwrite``, is not a .onnx path, or onnx is missing.
    """
    from mrae.engine.config import to_dict
    from mrae.engine.trained import load_trained
    from mrae.files import atomic_path

    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise ConfigError(f"--out {out}: give a .onnx file name")
    if out.exists() and not overwrite:
        raise ConfigError(f"--out {out} exists; give another name or --overwrite")
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ConfigError("mrae export needs onnx: pip install 'mrae[export]'") from None
    from mrae.modeling.onnx_export import CLASSES_KEY, CONFIG_KEY, LABEL_TO_CAT_KEY, export_onnx

    model, cfg, class_names, label_to_cat = load_trained(checkpoint)
    m = cfg.model
    size = example_size or (tuple(m.fixed_size) if m.fixed_size else (m.min_size, m.max_size))
    metadata = {CONFIG_KEY: json.dumps(to_dict(cfg)), CLASSES_KEY: json.dumps(class_names),
                LABEL_TO_CAT_KEY: json.dumps({str(k): v for k, v in (label_to_cat or {}).items()})}
    with atomic_path(out) as tmp:
        export_onnx(model, tmp, example_size=size, metadata=metadata)
    return out
