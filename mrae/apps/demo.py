"""The demo (`mrae demo`): the README's main command, end to end on the embedded synthetic data.

:func:`run_demo` generates (or reuses) the synthetic small-object dataset, trains MRAE template 2
on ResNet-18 with ``configs/synth/demo.yaml`` (resuming a stopped demo run), evaluates it with
COCOeval (the paper's Table 2 columns), and draws the detections of a few validation images with
their level weights.
"""

from __future__ import annotations

from pathlib import Path

from mrae.files import write_json_atomic

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO_ROOT / "configs" / "synth" / "demo.yaml"


def run_demo(cfg, run_dir: str | Path, *, images: int = 4, score_thresh: float = 0.3) -> dict[str, float]:
    """Train, evaluate and draw with a loaded config ``cfg`` in ``run_dir``; print what it does.

    Writes ``run_dir/demo_metrics.json`` and the drawings of the first ``images`` validation
    images (detections scoring at least ``score_thresh``) into ``run_dir/predictions``. Returns
    the final metrics.
    """
    from mrae.apps.predict import predict_images
    from mrae.engine.config import resolve_data
    from mrae.engine.train import train
    from mrae.evaluation.coco_metrics import TABLE_HEADER, markdown_row

    run_dir = Path(run_dir)
    paths = resolve_data(cfg)
    print(f"data: {paths['train_annotations']} and {paths['val_annotations']}")

    resume = (run_dir / "checkpoints" / "last.pth").is_file()
    if resume:
        print(f"resuming the demo run in {run_dir}")
    metrics = train(cfg, run_dir, resume=resume)

    print()
    print(TABLE_HEADER)
    print(markdown_row(f"MRAE template {cfg.model.template} (demo)", metrics))
    write_json_atomic(run_dir / "demo_metrics.json", metrics)

    val_dir = Path(paths["val_images"])
    val_images = sorted(p for p in val_dir.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
    predictions = run_dir / "predictions"
    predict_images(
        run_dir / "checkpoints" / "best.pth",
        val_images[:images],
        predictions,
        score_thresh=score_thresh,
        attention=True,
        overwrite=True,  # the demo's own folder, also when an older version wrote it
    )
    print(f"\ntrained run: {run_dir}   predictions drawn in: {predictions}")
    print(f"tensorboard --logdir {run_dir / 'tb'}")
    return metrics
