"""The trainer's seams: hooks run in their order around the steps, and a subclass's builders are used."""

from __future__ import annotations

import pytest
import torch

from mrae.data.synth import generate
from mrae.engine.checkpoint import load_checkpoint
from mrae.engine.config import load_config
from mrae.engine.hooks import HookBase
from mrae.engine.metrics_log import read_metrics
from mrae.engine.train import train
from mrae.engine.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")

TRAIN = "train: {steps: 2, batch_size: 1, log_every: 1, checkpoint_every: 0, device: cpu}\n"
NO_VAL = ["data.val_images=null", "data.val_annotations=null"]


@pytest.fixture(scope="module")
def config(tmp_path_factory, tiny_sections):
    root = tmp_path_factory.mktemp("hooks")
    paths = generate(root / "data", train_images=2, val_images=1, width=128, height=96,
                     workers=0, progress=False)
    path = root / "tiny.yaml"
    path.write_text(tiny_sections("mrae", paths) + TRAIN)
    return path


class Recorder(HookBase):
    def __init__(self, events: list, fail_at: int | None = None) -> None:
        self.events, self.fail_at = events, fail_at

    def before_train(self):
        self.events.append(("before_train", self.trainer.step))

    def before_step(self):
        self.events.append(("before_step", self.trainer.step))

    def after_step(self):
        assert set(self.trainer.losses) >= {"loss", "grad_norm"}
        self.events.append(("after_step", self.trainer.step))
        if self.trainer.step == self.fail_at:
            raise RuntimeError("stop here")

    def after_train(self):
        self.events.append(("after_train", self.trainer.step))

    def close(self):
        self.events.append(("close", self.trainer.step))


def with_hooks(*hooks: HookBase) -> type[Trainer]:
    class HookedTrainer(Trainer):
        def build_hooks(self):
            return [*super().build_hooks(), *hooks]

    return HookedTrainer


def test_a_custom_hook_sees_the_run_in_order(config, tmp_path):
    events: list = []
    run = tmp_path / "run"
    train(load_config(config, NO_VAL), run, trainer_class=with_hooks(Recorder(events)))
    assert events == [("before_train", 0), ("before_step", 0), ("after_step", 1), ("before_step", 1),
                      ("after_step", 2), ("after_train", 2), ("close", 2)]
    # the default hooks ran before it: the log records and the final checkpoint are there
    assert [r["step"] for r in read_metrics(run)] == [1, 2]
    assert all(r["step_seconds"] > 0 and r["images_per_s"] > 0 for r in read_metrics(run))
    assert load_checkpoint(run / "checkpoints" / "last.pth")["step"] == 2


def test_a_failing_step_closes_the_hooks_without_after_train(config, tmp_path):
    events: list = []
    with pytest.raises(RuntimeError, match="stop here"):
        train(load_config(config, NO_VAL), tmp_path / "run", trainer_class=with_hooks(Recorder(events, fail_at=1)))
    assert [name for name, _ in events] == ["before_train", "before_step", "after_step", "close"]


def test_a_subclass_optimizer_is_used(config, tmp_path):
    built = []

    class AdamTrainer(Trainer):
        def build_optimizer(self, model):
            built.append(model)
            return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    run = tmp_path / "run"
    train(load_config(config, NO_VAL), run, trainer_class=AdamTrainer)
    assert len(built) == 1
    state = load_checkpoint(run / "checkpoints" / "last.pth")["optimizer"]
    assert state["param_groups"][0]["lr"] == pytest.approx(1e-4)
    assert all("exp_avg" in s for s in state["state"].values())  # Adam's moments, not SGD's momentum
