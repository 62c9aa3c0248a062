"""configs/hituav: the study file loads with the study loader's checks, its rows are the ones that
decide the claims, and every row sees full 640x512 frames at native size with the same recipe."""

from __future__ import annotations

from pathlib import Path

from mrae.apps.study.spec import load_study, row_config
from mrae.data.augment import resize_scale

STUDY = Path(__file__).resolve().parents[1] / "configs" / "hituav" / "study.yaml"


def test_the_study_has_the_deciding_rows_three_seeds_and_one_budget() -> None:
    study = load_study(STUDY)
    assert [(r.name, r.role, r.seeds) for r in study.rows] == [
        ("single C1", "baseline", 3), ("single C2", "baseline", 3), ("single C3", "baseline", 3),
        ("MRAE template 2", "mrae", 3), ("sum", "fusion", 3),
        ("single C1, synthetic trunk", "start", 3), ("single C1, no pretraining", "start", 3),
    ]  # fmt: skip  (soft, templates 1 and 3 and FPN all anchors are cut for the CPU: the file says why)
    assert study.readme is None  # the README's headline block stays the synthetic study's
    configs = [row_config(study, row, seed) for row in study.rows for seed in range(row.seeds)
               if row.role != "start"]  # the pretraining comparison: its own test below
    budgets = {(c.train.steps, tuple(c.train.milestones), c.train.eval_every) for c in configs}
    assert budgets == {(1200, (840, 1080), 150)}  # at least 300 steps, evaluated 4 times or more
    starts = {(c.model.backbone, c.model.pretrained, c.pretrain.annotations) for c in configs}
    assert starts == {("resnet18", "dataset", ".cache/hituav/train.json")}
    assert {c.data.val_annotations for c in configs} == {".cache/hituav/val.json"}
    assert {tuple(c.model.faster_rcnn.anchor_sizes) for c in configs} == {(12.7, 20.0, 35.0, 69.0)}
    models = {(c.model.extractor, c.model.template if c.model.extractor == "mrae" else None,
               c.model.level if c.model.extractor == "single" else None, c.model.faster_rcnn.fpn_anchors)
              for c in configs}  # fmt: skip
    assert len(models) == 5  # every row builds its own extractor
    curve = {(c.eval.max_images, c.eval.curve_max_images) for c in configs}
    assert curve == {(None, 96)}  # the result on all 290 val frames, the curve's first points on 96


def test_the_cut_rows_keep_their_configs_at_the_same_budget() -> None:
    """The rows cut for the CPU stay runnable: their configs load on the study's recipe."""
    from mrae.engine.config import load_config

    for name in ("soft.yaml", "mrae_t1.yaml", "mrae_t3.yaml", "fpn_all_anchors.yaml"):
        cfg = load_config(STUDY.parent / name, load_study(STUDY).overrides)
        assert cfg.train.steps == 1200 and cfg.model.pretrained == "dataset"


def test_frames_are_seen_at_native_size() -> None:
    study = load_study(STUDY)
    for row in study.rows:
        m = row_config(study, row).model
        assert m.fixed_size is None and resize_scale(512, 640, m.min_size, m.max_size) == 1.0


def test_quick_keeps_the_pretraining_small() -> None:
    study = load_study(STUDY)
    quick = row_config(study, study.rows[0], quick=True)
    assert quick.train.steps == 4 and quick.pretrain.steps == 4 and quick.eval.max_images == 2


def test_the_pretraining_comparison_changes_only_the_trunk_start() -> None:
    from mrae.engine.config import load_config, to_dict
    from mrae.engine.pretrain import cache_path

    study = load_study(STUDY)
    by_name = {row.name: row_config(study, row) for row in study.rows}
    ours = by_name["single C1"]
    synthetic, scratch = by_name["single C1, synthetic trunk"], by_name["single C1, no pretraining"]
    assert (ours.model.pretrained, synthetic.model.pretrained, scratch.model.pretrained) == (
        "dataset", "synthetic", None)
    synth_base = load_config(STUDY.parents[1] / "synth" / "_base.yaml")
    assert cache_path(synthetic) == cache_path(synth_base)  # the synthetic study's very trunk
    for other in (synthetic, scratch):  # nothing else differs (the name and what pretrain reads aside)
        a, b = to_dict(ours), to_dict(other)
        for cfg in (a, b):
            cfg.pop("name", None), cfg.pop("pretrain", None), cfg["model"].pop("pretrained")
        assert a == b
