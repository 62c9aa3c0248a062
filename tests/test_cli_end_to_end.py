"""The whole pipeline through the `mrae` command line, on a few tiny synthetic images:
synth, train, a real kill (SIGKILL) mid-run, --resume, eval, predict, and a quick study."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mrae import cli
from mrae.engine.metrics_log import read_metrics

TINY_TRAIN = """
train:
  steps: {steps}
  batch_size: 2
  lr: 0.01
  warmup_steps: 2
  log_every: 1
  eval_every: {eval_every}
  checkpoint_every: 1
  keep_last: 2
  device: cpu
eval:
  max_images: 2
"""


def _config(tmp_path: Path, root: Path, steps: int, sections, extractor: str = "mrae") -> Path:
    paths = {f"{split}_{kind}": root / folder for split in ("train", "val")
             for kind, folder in (("images", f"images/{split}"),
                                  ("annotations", f"annotations/instances_{split}.json"))}
    path = tmp_path / "tiny.yaml"
    path.write_text(sections(extractor, paths) + TINY_TRAIN.format(steps=steps, eval_every=steps))
    return path


def test_train_kill_resume_eval_predict(tmp_path, tiny_data, tiny_sections):
    config = _config(tmp_path, tiny_data, steps=40, sections=tiny_sections)
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "mrae.cli", "train", "--config", str(config), "--out", str(run)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = run / "checkpoints" / "last.pth"
    deadline = time.monotonic() + 240
    while not last.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)  # no chance to clean up: what a crash or a lost machine does
    process.wait()
    killed_at = max(r["step"] for r in read_metrics(run) if "loss" in r)
    assert 0 < killed_at < 40

    assert cli.main(["train", "--config", str(config), "--out", str(run), "--resume"]) == 0
    steps = [r["step"] for r in read_metrics(run) if "loss" in r]
    assert steps[-1] == 40 and sorted(set(steps)) == list(range(1, 41))

    out = tmp_path / "eval"
    assert cli.main(["eval", "--config", str(config), "--checkpoint", str(last), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics_val.json").read_text())["metrics"]
    detections = out / "detections_val.json"
    truth = COCO(str(tiny_data / "annotations" / "instances_val.json"))
    if json.loads(detections.read_text()):
        evaluator = COCOeval(truth, truth.loadRes(str(detections)), "bbox")
        evaluator.params.imgIds = sorted(truth.getImgIds())[:2]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
        assert metrics["AP"] == pytest.approx(max(evaluator.stats[0], 0.0))
        assert metrics["AR100"] == pytest.approx(max(evaluator.stats[8], 0.0))

    pictures = tmp_path / "pictures"
    images = tiny_data / "images" / "val"
    assert cli.main(["predict", "--checkpoint", str(last), str(images), "--out", str(pictures),
                     "--score-thresh", "0.0", "--attention"]) == 0
    assert len(list(pictures.glob("*.jpg"))) == 2
    weights = json.loads((pictures / "attention.json").read_text())
    assert len(weights) == 2


def test_quick_study_runs_resumes_and_reports(tmp_path, tiny_data, tiny_sections):
    rows = tmp_path / "rows"
    rows.mkdir()
    config = _config(rows, tiny_data, steps=2, sections=tiny_sections)
    for name, extractor in [("single_c1", "single"), ("mrae_t1", "mrae")]:
        template = "  template: 1\n" if extractor == "mrae" else ""  # single reads no template
        (rows / f"{name}.yaml").write_text(f"base: {config.name}\nmodel:\n  extractor: {extractor}\n"
                                           + template)
    (rows / "mrae_t1_then_t2.yaml").write_text("base: mrae_t1.yaml\nmodel:\n  template: 2\n")
    study = rows / "study.yaml"
    study.write_text(
        f"out: {tmp_path / 'study'}\n"
        "rows:\n"
        "  - {name: single C1, config: single_c1.yaml, role: baseline, seeds: 2}\n"
        "  - {name: MRAE template 1, config: mrae_t1.yaml, role: mrae, seeds: 1}\n"
        "  - {name: MRAE template 1 -> 2 (mixed), config: mrae_t1_then_t2.yaml, role: mixed,"
        " init_from: MRAE template 1}\n"
        "quick: [train.steps=1, train.eval_every=1]\n"
    )
    report = tmp_path / "results.md"
    assert cli.main(["study", str(study), "--quick", "--report", str(report)]) == 0
    text = report.read_text()
    for row in ("single C1", "MRAE template 1", "MRAE template 1 -> 2 (mixed)"):
        assert f"| {row} | 1 |" in text
    assert (tmp_path / "results_convergence.png").is_file()
    assert (tmp_path / "results_attention.png").is_file()
    done = tmp_path / "study" / "single_c1" / "seed0" / "final_metrics.json"
    stamp = done.stat().st_mtime_ns
    # A second call finds every run finished and only writes the report again.
    assert cli.main(["study", str(study), "--quick", "--report", str(report)]) == 0
    assert done.stat().st_mtime_ns == stamp
    results = json.loads((tmp_path / "results.json").read_text())  # beside the page
    summary = results["rows"]
    assert [e["name"] for e in summary] == ["single C1", "MRAE template 1",
                                            "MRAE template 1 -> 2 (mixed)"]
    assert [e["role"] for e in summary] == ["baseline", "mrae", "mixed"]
    assert summary[1]["attention"] is not None and abs(sum(summary[1]["attention"]) - 1) < 1e-4
    # The mixed run is drawn after its parent's steps.
    assert summary[2]["step_offset"] == summary[1]["curves"][0][-1][0] > 0
    assert {c["id"] for c in results["claims"]} >= {"beats_baseline", "mixed_hurts"}
    # --render-only renders the same page again from results.json, without any run.
    page = report.read_bytes()
    (tmp_path / "results_convergence.png").unlink()
    assert cli.main(["study", str(study), "--quick", "--report", str(report), "--render-only"]) == 0
    assert report.read_bytes() == page
    assert (tmp_path / "results_convergence.png").is_file()
    assert done.stat().st_mtime_ns == stamp


def test_parallel_study_waits_for_the_parent_run_and_reports_divergence(
    tmp_path, tiny_data, tiny_sections, capsys
):
    rows = tmp_path / "rows"
    rows.mkdir()
    config = _config(rows, tiny_data, steps=2, sections=tiny_sections)
    (rows / "mrae_t1.yaml").write_text(f"base: {config.name}\nmodel:\n  extractor: mrae\n")
    (rows / "mrae_t1_then_t2.yaml").write_text("base: mrae_t1.yaml\nmodel:\n  template: 2\n")
    (rows / "huge_lr.yaml").write_text(
        f"base: {config.name}\nmodel:\n  extractor: sum\ntrain:\n  lr: 1.0e+6\n  warmup_steps: 0\n")
    study = rows / "study.yaml"
    study.write_text(
        f"out: {tmp_path / 'study'}\n"
        "rows:\n"
        "  - {name: MRAE template 1, config: mrae_t1.yaml, role: mrae}\n"
        "  - {name: MRAE template 1 -> 2 (mixed), config: mrae_t1_then_t2.yaml, role: mixed,"
        " init_from: MRAE template 1}\n"
        "  - {name: sum, config: huge_lr.yaml, role: fusion}\n"
    )
    # The mixed row alone cannot start: its parent has no finished run.
    assert cli.main(["study", str(study), "--rows", "MRAE template 1 -> 2 (mixed)"]) == 2
    assert "continues row 'MRAE template 1'" in capsys.readouterr().err
    report = tmp_path / "results.md"
    readme = Path("README.md")  # the study names no README: none may be touched
    before = readme.read_bytes() if readme.is_file() else None
    assert cli.main(["study", str(study), "--jobs", "2", "--report", str(report)]) == 0
    assert (readme.read_bytes() if readme.is_file() else None) == before
    out = capsys.readouterr().out
    # Two workers, three runs: the mixed run starts only after its parent's run is done.
    parent_done = out.index("MRAE template 1, seed 0: AP")
    assert out.index("MRAE template 1 -> 2 (mixed), seed 0: started") > parent_done
    assert "sum, seed 0: diverged" in out
    for run in ("mrae_template_1", "mrae_template_1____2__mixed", "sum"):
        assert (tmp_path / "study" / run / "seed0" / "study.log").is_file()
    text = report.read_text()
    assert "| sum (1 diverged) | 0 | diverged |" in text
    assert "**sum, seed 0 diverged** and is reported as such: training diverged at step" in text
    summary = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert all(entry["ms_per_image"] > 0 for entry in summary if entry["seeds"])


class _Payload:
    """A pickle whose loading creates a file: what a hostile checkpoint would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("command", ["eval", "predict", "init-from", "resume", "pretrained"])
def test_no_command_runs_code_from_a_checkpoint(command, tmp_path, tiny_data, tiny_sections, capsys):
    import torch

    marker = tmp_path / "code_ran"
    evil = tmp_path / "evil.pth"
    torch.save({"model": {}, "config": {}, "payload": _Payload(marker)}, evil)
    config = _config(tmp_path, tiny_data, steps=1, sections=tiny_sections)
    run = tmp_path / "run"
    if command == "eval":
        argv = ["eval", "--checkpoint", str(evil)]
    elif command == "predict":
        argv = ["predict", "--checkpoint", str(evil), str(tiny_data / "images" / "val"),
                "--out", str(tmp_path / "drawn")]
    elif command == "init-from":
        argv = ["train", "--config", str(config), "--out", str(run), "--init-from", str(evil)]
    elif command == "resume":
        (run / "checkpoints").mkdir(parents=True)
        (run / "checkpoints" / "last.pth").write_bytes(evil.read_bytes())
        argv = ["train", "--config", str(config), "--out", str(run), "--resume"]
    else:
        argv = ["train", "--config", str(config), "--out", str(run), f"model.pretrained={evil}"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert not marker.exists()
