"""``mrae export``: a trained checkpoint to an ONNX file that onnxruntime runs
(:mod:`mrae.modeling.onnx_export`), with the run's config and classes in its metadata."""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path

from mrae.errors import ConfigError
from mrae.ownership import check_file, check_not_input, dataset_roots

#: The largest side of ``--example-size`` (px): the traced example and the model's maps of it are
#: held in memory at once, and the exported model takes any size, so a larger example buys nothing.
MAX_EXAMPLE_SIDE = 4096


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
    from mrae.engine.trained import data_paths, load_trained
    from mrae.files import atomic_path

    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise ConfigError(f"--out {out}: give a .onnx file name")
    check_example_size(example_size)
    if out.exists() and not overwrite:
        raise ConfigError(f"--out {out} exists; give another name or --overwrite")
    check_file(out, "export", inputs=[checkpoint], overwrite=overwrite)
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ConfigError("mrae export needs onnx: pip install 'mrae[export]'") from None
    from mrae.modeling.onnx_export import CLASSES_KEY, CONFIG_KEY, LABEL_TO_CAT_KEY, export_onnx

    model, cfg, class_names, label_to_cat = load_trained(checkpoint)
    trained_on = data_paths(cfg)  # never among the model's own data (where convert would find it)
    check_not_input(out, [checkpoint, *trained_on], datasets=dataset_roots(trained_on))
    m = cfg.model
    size = example_size or (tuple(m.fixed_size) if m.fixed_size else (m.min_size, m.max_size))
    metadata = {CONFIG_KEY: json.dumps(to_dict(cfg)), CLASSES_KEY: json.dumps(class_names),
                LABEL_TO_CAT_KEY: json.dumps({str(k): v for k, v in (label_to_cat or {}).items()})}
    try:
        # without --overwrite the file is created only if it is still missing: of two exports
        # racing for one --out, one writes it and the other is refused (the check above ran first)
        with atomic_path(out, replace=overwrite) as tmp:
            export_onnx(model, tmp, example_size=size, metadata=metadata)
    except FileExistsError:
        raise ConfigError(f"--out {out} was written by another command while this export ran; it "
                          "is kept: give another name or --overwrite") from None
    return out


def check_example_size(size: tuple[int, int] | None) -> None:
    """Refuse an example size past :data:`MAX_EXAMPLE_SIDE` px a side (the traced image is held in
    memory several times over) or under 1 px."""
    if size is None:
        return
    height, width = size
    if not (1 <= height <= MAX_EXAMPLE_SIDE and 1 <= width <= MAX_EXAMPLE_SIDE):
        raise ConfigError(f"--example-size {height}x{width}: each side must be 1..{MAX_EXAMPLE_SIDE} "
                          "px (the exported model takes any size; the example only traces it)")
