"""The trainer's seams: hooks run in their order around the steps and see the run through one
narrow object (TrainState), the evaluation reaches EvalHook as a function, the hooks module does
not import the trainer, a subclass's builders are used, and the expected time is said after the
warm-up."""

from __future__ import annotations

import ast
import logging
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from mrae.data.synth import generate
from mrae.engine import eta
from mrae.engine import hooks as hooks_module
from mrae.engine.checkpoint import load_checkpoint
from mrae.engine.config import load_config
from mrae.engine.hooks import Checkpointer, EvalHook, ExpectedTime, HookBase, TrainState
from mrae.engine.metrics_log import read_metrics
from mrae.engine.train import train
from mrae.engine.trainer import Trainer
from mrae.errors import ConfigError

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
        self.events.append(("before_train", self.state.step))

    def before_step(self):
        self.events.append(("before_step", self.state.step))

    def after_step(self):
        assert set(self.state.losses) >= {"loss", "grad_norm"}
        self.events.append(("after_step", self.state.step))
        if self.state.step == self.fail_at:
            raise RuntimeError("stop here")

    def after_train(self):
        self.events.append(("after_train", self.state.step))

    def close(self):
        self.events.append(("close", self.state.step))


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


class Watcher(HookBase):
    """A hook written against the narrow interface alone: it reads the state after each step."""

    def __init__(self, seen: list) -> None:
        self.seen = seen

    def after_step(self):
        s = self.state
        assert s.is_main and s.max_steps == 3 and s.log is not None
        self.seen.append((s.step, s.lr, s.losses["loss"], dict(s.metrics), s.metrics_step, s.best))


def test_a_custom_hook_and_evaluation_function_through_the_narrow_interface(config, tmp_path):
    values = iter([0.2, 0.5, 0.3])
    seen: list = []

    def evaluate():  # the evaluation as a function: no model, no val set needed
        return {"AP": next(values), "AP50": 0.9}

    class Custom(Trainer):
        def build_hooks(self):
            hooks = [h for h in super().build_hooks() if not isinstance(h, EvalHook)]
            at = next(i for i, h in enumerate(hooks) if isinstance(h, Checkpointer))
            hooks.insert(at, EvalHook(1, evaluate, best_metric="AP"))  # before the checkpoint
            return [*hooks, Watcher(seen)]

    run = tmp_path / "run"
    cfg = load_config(config, [*NO_VAL, "train.steps=3", "train.checkpoint_every=1"])
    assert train(cfg, run, trainer_class=Custom) == {"AP": 0.3, "AP50": 0.9}
    assert [(step, metrics["AP"], at, best) for step, _, _, metrics, at, best in seen] == [
        (1, 0.2, 1, 0.2), (2, 0.5, 2, 0.5), (3, 0.3, 3, 0.5)]
    assert all(math.isfinite(loss) and lr > 0 for _, lr, loss, *_ in seen)
    evals = [r for r in read_metrics(run) if "eval" in r]
    assert [(r["step"], r["eval"]["AP"]) for r in evals] == [(1, 0.2), (2, 0.5), (3, 0.3)]
    best = load_checkpoint(run / "checkpoints" / "best.pth")
    assert best["step"] == 2 and best["best_metric"] == 0.5
    last = load_checkpoint(run / "checkpoints" / "last.pth")
    assert last["step"] == 3 and last["metrics"]["AP"] == 0.3 and last["best_metric"] == 0.5


def test_eval_hook_and_checkpointer_need_no_trainer(tmp_path):
    """The default hooks run on a bare TrainState: what they need comes in their constructor."""
    state = TrainState(max_steps=4, is_main=True)
    saved = []

    def contents():
        saved.append(state.step)
        return {"model": {}, "config": {}, "step": state.step, "metrics": dict(state.metrics)}

    last = tmp_path / "checkpoints" / "last.pth"
    last.parent.mkdir()
    hooks = [EvalHook(2, lambda: {"AP": state.step / 10}), Checkpointer(0, 1, last, contents)]
    for hook in hooks:
        hook.state = state
        hook.before_train()
    while state.step < state.max_steps:
        state.step += 1
        for hook in hooks:
            hook.after_step()
    for hook in hooks:
        hook.after_train()
    assert state.metrics == {"AP": 0.4} and state.best == 0.4 and state.good == last
    assert saved == [2, 4]  # best.pth at step 2 (no last.pth then), then last.pth at step 4
    assert load_checkpoint(last.parent / "best.pth")["step"] == 4  # linked to last.pth
    assert sorted(p.name for p in last.parent.iterdir()) == ["best.pth", "last.pth", "step_0000004.pth"]
    assert not EvalHook(1, None).evaluate()  # no evaluation function: nothing to do


def test_the_hooks_do_not_import_the_trainer():
    """No import circle: importing the hooks loads no trainer, and the module does not name it in
    an import, not even for type checking."""
    code = "import sys, mrae.engine.hooks; sys.exit('mrae.engine.trainer' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr or "importing mrae.engine.hooks imported mrae.engine.trainer"
    tree = ast.parse(Path(hooks_module.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(name.startswith("mrae.engine.trainer") or name == "mrae.engine.train" for name in imported)


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


def test_curve_points_on_fewer_images_never_pick_best(tmp_path, tiny_sections):
    """eval.curve_max_images: the evaluations before the last run on the first N val images and
    say so (``partial``, ``images``); the last runs on all of them, and only it can be best.pth."""
    paths = generate(tmp_path / "data", train_images=2, val_images=3, width=128, height=96,
                     workers=0, progress=False)
    path = tmp_path / "tiny.yaml"
    path.write_text(tiny_sections("mrae", paths) + TRAIN)
    run = tmp_path / "run"
    train(load_config(path, ["train.steps=3", "train.eval_every=1", "eval.curve_max_images=1"]), run)
    evals = [(r["step"], r["eval"]) for r in read_metrics(run) if "eval" in r]
    assert [(step, e["images"], e.get(hooks_module.PARTIAL)) for step, e in evals] == [
        (1, 1.0, 1.0), (2, 1.0, 1.0), (3, 3.0, None)]
    best = load_checkpoint(run / "checkpoints" / "best.pth")
    assert best["step"] == 3 and best["metrics"]["images"] == 3.0


def test_curve_max_images_must_be_a_count(config):
    with pytest.raises(ConfigError, match="eval.curve_max_images"):
        load_config(config, ["eval.curve_max_images=0"])


def _state(steps: int) -> TrainState:
    return TrainState(max_steps=steps, is_main=True)


def _run(hook: ExpectedTime, state: TrainState) -> None:
    hook.state = state
    hook.before_train()
    while state.step < state.max_steps:
        hook.before_step()
        state.step += 1
        hook.after_step()


def test_the_hook_logs_the_steps_left_and_the_evaluations(caplog, monkeypatch) -> None:
    monkeypatch.setattr(eta, "matmul_gflops", lambda: 50.0)
    caplog.set_level(logging.INFO, logger="mrae")
    _run(ExpectedTime(eval_every=10, has_val=True), _state(steps=25))
    lines = [r.getMessage() for r in caplog.records if "expected about" in r.getMessage()]
    done = eta.SKIP + eta.MEASURED
    assert len(lines) == 1 and f"for the {25 - done} steps left" in lines[0]
    assert "plus 3 evaluations" in lines[0]  # at 10 and 20, and after the last step
    caplog.clear()
    _run(ExpectedTime(eval_every=0, has_val=True), _state(steps=done))  # too short: nothing to say
    assert not [r for r in caplog.records if "expected about" in r.getMessage()]


def test_the_trainer_times_the_warmup_right_after_the_step_timer() -> None:
    fake = SimpleNamespace(cfg=SimpleNamespace(name="fake", train=SimpleNamespace(
        log_every=10, eval_every=0, checkpoint_every=0, keep_last=1, batch_size=2, best_metric="AP")),
        has_val=False, process=SimpleNamespace(world_size=1), last="last.pth", state_dict=dict)
    names = [type(h).__name__ for h in Trainer.build_hooks(fake)]  # type: ignore[arg-type]
    assert names[:2] == ["StepTimer", "ExpectedTime"]
