"""`mrae train ... model.detector=retinanet` and `=fcos` on tiny data through the command line:
train, resume, evaluate (whole and sliced), predict (whole and sliced) with the attention drawn."""

from __future__ import annotations

import json

import pytest

from mrae import cli
from mrae.engine.metrics_log import read_metrics

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.mark.parametrize("host", ["retinanet", "fcos"])
def test_train_resume_eval_predict(host, host_run_config, tiny_data, tmp_path):
    run = tmp_path / "run"
    train = ["train", "--config", str(host_run_config), "--out", str(run), f"model.detector={host}"]
    assert cli.main([*train, "train.steps=2"]) == 0
    assert cli.main([*train, "--resume"]) == 0  # from step 2 to the config's 4
    steps = [r["step"] for r in read_metrics(run) if "loss" in r]
    assert steps == [1, 2, 3, 4]
    last = run / "checkpoints" / "last.pth"

    for extra, folder, name in [([], "eval", "metrics_val.json"),
                                (["--slice", "48x64", "--overlap", "0.2"], "eval_sliced",
                                 "metrics_val_slice48x64.json")]:  # a sliced result named by its tiles
        out = tmp_path / folder
        assert cli.main(["eval", "--checkpoint", str(last), "--out", str(out), *extra]) == 0
        metrics = json.loads((out / name).read_text())["metrics"]
        assert 0.0 <= metrics["AP"] <= 1.0 or metrics["AP"] != metrics["AP"]  # a fraction, or NaN

    images = tiny_data / "images" / "val"
    for extra, folder in [([], "pictures"), (["--slice", "48x64"], "pictures_sliced")]:
        out = tmp_path / folder
        assert cli.main(["predict", "--checkpoint", str(last), str(images), "--out", str(out),
                         "--score-thresh", "0.0", "--attention", *extra]) == 0
        assert len(list(out.glob("*.jpg"))) == 2
        assert len(json.loads((out / "attention.json").read_text())) == 2
