"""Hand-made study rows and results, the shape `mrae.apps.study.summary` gives them, and the small
study file that the runner and ledger tests share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

# a role's extractor, as the study file's check has it (role start: MRAE unless given)
EXTRACTORS = {"baseline": "single", "soft": "soft", "fusion": "sum", "fpn": "fpn",
              "fpn_all_anchors": "fpn"}


def make_row(name: str, role: str, aps: list[float], template: int = 2, level: int = 1,
             curves: list | None = None, attention: list[float] | None = None,
             extractor: str | None = None) -> dict:
    """A summary entry with one finished run per AP in `aps` (AP given x100, as in the tables)."""
    n = len(aps)
    mean = sum(aps) / n if n else 0.0
    std = (sum((a - mean) ** 2 for a in aps) / (n - 1)) ** 0.5 if n > 1 else 0.0
    return {
        "name": name,
        "role": role,
        "config": f"configs/{name}.yaml",
        "model": {"extractor": extractor or EXTRACTORS.get(role, "mrae"), "level": level,
                  "template": template, "mode": "global", "fpn_anchors": "per_level"},
        "init_from": None,
        "schedule_scale": 1,
        "steps": 100,
        "seeds": list(range(n)),
        "mean": {"AP": mean / 100, "AP50": 2 * mean / 100, "ms_per_image": 100.0, "params_M": 18.2,
                 "GFLOPs": 30.0},
        "std": {"AP": std / 100, "AP50": 2 * std / 100, "ms_per_image": 0.0, "GFLOPs": 0.0},
        "runs": [{"AP": a / 100, "train_seconds": 60.0} for a in aps],
        "curves": curves if curves is not None else [[[50, a / 200], [100, a / 100]] for a in aps],
        "attention": attention,
        "diverged": {},
        "step_offset": 0,
        "ms_images": 20,  # timed again after training (mrae.apps.study.measure.measure_speed)
    }


@pytest.fixture
def row() -> Callable[..., dict]:
    return make_row


@pytest.fixture
def paper_like() -> list[dict]:
    """A study whose numbers follow the paper (3 seeds each, a small spread)."""
    spread = (-0.1, 0.0, 0.1)

    def seeds(ap: float) -> list[float]:
        return [ap + d for d in spread]

    return [
        make_row("single C1", "baseline", seeds(2.3), level=1),
        make_row("single C2", "baseline", seeds(2.6), level=2),
        make_row("single C3", "baseline", seeds(2.4), level=3),
        make_row("soft", "soft", [0.03, 0.04, 0.05], attention=[0.34, 0.33, 0.33]),
        make_row("MRAE template 1", "mrae", seeds(3.6), template=1, attention=[0.6, 0.2, 0.2]),
        make_row("MRAE template 2", "mrae", seeds(5.0), template=2, attention=[0.2, 0.6, 0.2]),
        make_row("MRAE template 3", "mrae", seeds(3.6), template=3, attention=[0.2, 0.2, 0.6]),
        make_row("FPN", "fpn", seeds(2.5)),
        make_row("FPN all anchors", "fpn_all_anchors", seeds(2.7)),
        make_row("MRAE template 1 -> 2 (mixed)", "mixed", seeds(3.5), attention=[0.4, 0.4, 0.2]),
        make_row("MRAE template 2, long", "mrae_long", seeds(5.2)),
    ]


@pytest.fixture
def results(paper_like) -> dict:
    """A results JSON's content around `paper_like` (claims not judged: ``[]``)."""
    from mrae.apps.study.summary import MIXED_REASON

    return {
        "format": 1,
        "study": "configs/synth/study.yaml",
        "command": "mrae study configs/synth/study.yaml --jobs 2",
        "commit": "0123abc",
        "date": "2026-11-25 15:24 UTC",
        "quick": False,
        "machine": {"machine": "x86_64", "threads": 2, "torch": "2.14.1", "device": "CPU"},
        "budget": {
            "steps": 100, "batch_size": 2, "epochs": 0.25, "lr": 0.02, "momentum": 0.9,
            "milestones": [70, 90], "warmup_steps": 10, "eval_every": 50, "backbone": "resnet18",
            "pretrained": "synthetic", "head": "mlp", "out_channels": 256, "min_size": 300,
            "max_size": 512, "data": "synthetic data: 800 train and 200 val images (seed 0)",
            "differs": [],
            "scaled": [{"name": "MRAE template 2, long", "role": "mrae_long", "schedule_scale": 2,
                        "steps": 200, "milestones": [140, 180], "warmup_steps": 20,
                        "reason": MIXED_REASON}],
            "continued": [{"name": "MRAE template 1 -> 2 (mixed)", "init_from": "MRAE template 1",
                           "steps": 100, "total_steps": 200}],
        },
        "ms_images": 20,
        "rows": paper_like,
        "claims": [],
    }


def write_small_study(tmp_path: Path, steps: int = 20, records: bool = True):
    """A loaded study of three rows, 2 seeds each: single C1, MRAE template 1 and the mixed row
    continuing it (its config with its own data seed 5 and pretraining steps 7); runs under
    ``tmp_path/runs``, a budget of `steps` steps and, with `records`, a ledger in ``tmp_path/records``."""
    from mrae.apps.study.spec import load_study

    (tmp_path / "a.yaml").write_text("model: {extractor: single, pretrained: synthetic}\n")
    (tmp_path / "b.yaml").write_text("model: {extractor: mrae, template: 1, pretrained: synthetic}\n")
    (tmp_path / "c.yaml").write_text(
        "model: {extractor: mrae, template: 2, pretrained: synthetic}\ndata: {synthetic: {seed: 5}}\n"
        "pretrain: {steps: 7}\n")
    path = tmp_path / "study.yaml"
    path.write_text(
        f"out: {tmp_path / 'runs'}\n"
        + (f"records: {tmp_path / 'records'}\n" if records else "")
        + f"overrides: [train.steps={steps}, 'train.milestones=[10]', train.eval_every=10]\n"
        "rows:\n"
        "  - {name: single C1, config: a.yaml, role: baseline, seeds: 2}\n"
        "  - {name: MRAE template 1, config: b.yaml, role: mrae, seeds: 2}\n"
        "  - {name: mixed, config: c.yaml, role: mixed, seeds: 2, init_from: MRAE template 1}\n"
    )
    return load_study(path)


@pytest.fixture
def small_study() -> Callable[..., object]:
    """`small_study(tmp_path, steps=20, records=True)`: :func:`write_small_study`."""
    return write_small_study
