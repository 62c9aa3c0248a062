"""The project's own campaign of bad inputs and faults, run through the `mrae` command line.

Each case is what a careless or hostile user does: a missing or broken file, a value out of range,
an output that would replace an input, a second writer, a damaged checkpoint. For every case the
command must end with the expected exit code, say what is wrong in one readable line on stderr
(argparse's usage line may precede its own error line), print no traceback, and leave every file
that was there before byte-identical; a refused command also writes nothing new.

The table is the campaign; the README's reliability section states its count
(`pytest tests/test_campaign.py -q`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from campaign_harness import Case, World, resume_from, run_case, study_file, train_argv


def _deep_json(w: World, name: str) -> Path:
    return w.write(name, "[" * 100_000 + "]" * 100_000)


def _lock_run(w: World, mp: pytest.MonkeyPatch) -> None:
    from mrae.engine.runlock import RunLock

    run = w.tmp / "run"
    run.mkdir()
    lock = RunLock(run)
    lock.__enter__()
    w.closing.append(lambda: lock.__exit__(None, None, None))  # released when the case ends


def _no_network(w: World, mp: pytest.MonkeyPatch) -> None:
    import urllib.error

    import torchvision.models._api

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("no network in this test")

    mp.setenv("TORCH_HOME", str(w.tmp / "torch_home"))
    mp.setattr(torchvision.models._api, "load_state_dict_from_url", refuse)


def _overwritten(w: World) -> Path:
    data = bytearray(w.checkpoint.read_bytes())
    data[len(data) // 2: len(data) // 2 + 4096] = b"\xff" * 4096
    return w.write("overwritten.pth", bytes(data))


def _images_with_a_broken_one(w: World) -> Path:
    folder = w.tmp / "images"
    shutil.copytree(w.val_images, folder)
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    return folder


def _truncated(w: World) -> Path:
    data = w.checkpoint.read_bytes()
    return w.write("truncated.pth", data[: len(data) // 2])


def _other_architecture(w: World) -> Path:
    import torch

    state = torch.load(w.checkpoint, map_location="cpu", weights_only=True)
    state["model"] = {k: v for k, v in state["model"].items() if "extractor" not in k}
    state["model"]["unexpected.weight"] = torch.zeros(3)
    path = w.tmp / "other.pth"
    torch.save(state, path)
    return path


CASES: list[Case] = [
    # ---- mrae synth
    Case("synth-into-existing-dataset", lambda w: ["synth", str(w.data), "--images", "2"], says="overwrite"),
    Case("synth-out-is-a-file", lambda w: ["synth", str(w.train_json), "--images", "2"]),
    Case("synth-zero-images", lambda w: ["synth", str(w.tmp / "s"), "--images", "0"], says="images"),
    Case("synth-negative-images", lambda w: ["synth", str(w.tmp / "s"), "--images", "-3"], says="images"),
    Case("synth-tiny-width", lambda w: ["synth", str(w.tmp / "s"), "--images", "2", "--width", "4"],
         says="width"),
    Case("synth-medium-fraction-above-1",
         lambda w: ["synth", str(w.tmp / "s"), "--images", "2", "--medium-fraction", "1.5"], says="fraction"),
    Case("synth-negative-workers", lambda w: ["synth", str(w.tmp / "s"), "--images", "2", "--workers", "-1"],
         says="workers"),
    # ---- mrae subset
    Case("subset-missing-input", lambda w: ["subset", str(w.tmp / "nope.json"), "--out", str(w.tmp / "o.json")],
         says="nope.json"),
    Case("subset-not-json", lambda w: ["subset", str(w.write("bad.json", "{not json")), "--out",
                                       str(w.tmp / "o.json")], says="bad.json"),
    Case("subset-deeply-nested-json", lambda w: ["subset", str(_deep_json(w, "deep.json")), "--out",
                                                 str(w.tmp / "o.json")], says="deep.json"),
    Case("subset-out-is-the-input", lambda w: ["subset", str(w.train_json), "--out", str(w.train_json)],
         says="input"),
    Case("subset-out-exists", lambda w: ["subset", str(w.train_json), "--out", str(w.write("o.json", "{}"))],
         says="overwrite"),
    Case("subset-no-annotations-key",
         lambda w: ["subset", str(w.coco("c.json", lambda d: d.pop("annotations"))), "--out",
                    str(w.tmp / "o.json")], says="annotations"),
    Case("subset-string-bbox",
         lambda w: ["subset", str(w.coco("c.json", lambda d: d["annotations"][0].update(bbox="1,2,3,4"))),
                    "--out", str(w.tmp / "o.json")], says="bbox"),
    Case("subset-split-val-lands-on-input",
         lambda w: ["subset", str(w.coco("x_val.json", lambda d: None)), "--out", str(w.tmp / "x.json"),
                    "--split-val", "1"], says="x_val.json"),
    Case("subset-split-val-zero",
         lambda w: ["subset", str(w.train_json), "--out", str(w.tmp / "o.json"), "--split-val", "0"],
         says="split-val"),
    # ---- mrae stats
    Case("stats-missing-file", lambda w: ["stats", str(w.tmp / "nope.json")], says="nope.json"),
    Case("stats-deeply-nested-json", lambda w: ["stats", str(_deep_json(w, "deep.json"))], says="deep.json"),
    Case("stats-json-is-a-list", lambda w: ["stats", str(w.write("list.json", "[]"))], says="list.json"),
    # a box of negative width is dropped with one warning line, by stats and anchors alike
    Case("stats-negative-box-width",
         lambda w: ["stats", str(w.coco("c.json", lambda d: d["annotations"][0].update(bbox=[1, 1, -5, 3])))],
         code=0, says="dropped 1 box"),
    Case("anchors-negative-box-width",
         lambda w: ["anchors", str(w.coco("c.json", lambda d: d["annotations"][0].update(bbox=[1, 1, -5, 3])))],
         code=0, says="1 empty or outside boxes dropped"),
    Case("stats-category-not-declared",
         lambda w: ["stats", str(w.coco("c.json", lambda d: d["annotations"][0].update(category_id=999)))],
         says="category"),
    Case("stats-plot-onto-the-annotations",
         lambda w: ["stats", str(w.train_json), "--plot", str(w.train_json)], says="png"),
    # ---- mrae anchors
    Case("anchors-missing-file", lambda w: ["anchors", str(w.tmp / "nope.json")], says="nope.json"),
    Case("anchors-string-boxes",
         lambda w: ["anchors", str(w.coco("c.json", lambda d: d["annotations"][0].update(bbox=["a", 1, 2, 3])))],
         says="bbox"),
    Case("anchors-boolean-boxes",
         lambda w: ["anchors", str(w.coco("c.json", lambda d: d["annotations"][0].update(bbox=[True, 1, 2, 3])))],
         says="bbox"),
    Case("anchors-no-annotations",
         lambda w: ["anchors", str(w.coco("c.json", lambda d: d.update(annotations=[])))], says="c.json"),
    Case("anchors-zero-scales", lambda w: ["anchors", str(w.train_json), "--scales", "0"], says="scales"),
    Case("anchors-native-with-config",
         lambda w: ["anchors", str(w.train_json), "--native", "--config", str(w.config)], says="--native"),
    # ---- mrae convert: the class options
    Case("convert-map-without-equals",
         lambda w: ["convert", "--format", "voc", "--images", str(w.val_images), "--out",
                    str(w.tmp / "o.json"), "--map", "car"], says="old=new"),
    Case("convert-list-missing",
         lambda w: ["convert", "--format", "voc", "--images", str(w.val_images), "--out",
                    str(w.tmp / "o.json"), "--list", str(w.tmp / "nope.txt")], says="nope.txt"),
    # ---- mrae pretrain on a dataset's boxes
    Case("pretrain-annotations-without-images",
         lambda w: ["pretrain", "--config", str(w.config), "--annotations", str(w.train_json)],
         says="go together"),
    Case("pretrain-annotations-missing",
         lambda w: ["pretrain", "--config", str(w.config), "--annotations", str(w.tmp / "nope.json"),
                    "--images", str(w.val_images)], says="nope.json"),
    # ---- mrae train: the config file
    Case("train-config-missing", lambda w: train_argv(w, config=w.tmp / "nope.yaml"), says="nope.yaml"),
    Case("train-yaml-syntax-error", lambda w: train_argv(w, config=w.write("bad.yaml", "model: [1, 2\n")),
         says="bad.yaml"),
    Case("train-empty-config", lambda w: train_argv(w, config=w.write("empty.yaml", "")), says="empty"),
    Case("train-config-is-a-list", lambda w: train_argv(w, config=w.write("list.yaml", "- 1\n- 2\n")),
         says="list.yaml"),
    Case("train-unknown-key", lambda w: train_argv(w, "model.extractr=mrae"), says="extractr"),
    Case("train-override-without-equals", lambda w: train_argv(w, "train.lr"), says="train.lr"),
    # ---- mrae train: values out of range
    Case("train-lr-infinite", lambda w: train_argv(w, "train.lr=.inf"), says="lr"),
    Case("train-lr-nan", lambda w: train_argv(w, "train.lr=.nan"), says="lr"),
    Case("train-lr-negative", lambda w: train_argv(w, "train.lr=-0.1"), says="lr"),
    Case("train-lr-string", lambda w: train_argv(w, "train.lr=fast"), says="lr"),
    Case("train-batch-size-zero", lambda w: train_argv(w, "train.batch_size=0"), says="batch_size"),
    Case("train-steps-negative", lambda w: train_argv(w, "train.steps=-5"), says="steps"),
    Case("train-rpn-nms-negative", lambda w: train_argv(w, "model.rpn_nms_thresh=-1"), says="rpn_nms_thresh"),
    Case("train-box-score-above-1", lambda w: train_argv(w, "model.box_score_thresh=2"), says="box_score_thresh"),
    Case("train-nan-anchor-size", lambda w: train_argv(w, "model.anchor_sizes=[.nan,8,16,32]"), says="anchor"),
    Case("train-negative-anchor-size", lambda w: train_argv(w, "model.anchor_sizes=[-4,8,16,32]"), says="anchor"),
    Case("train-unknown-extractor", lambda w: train_argv(w, "model.extractor=bogus"), says="bogus"),
    Case("train-unknown-backbone", lambda w: train_argv(w, "model.backbone=resnet7"), says="resnet7"),
    Case("train-trainable-layers-9", lambda w: train_argv(w, "model.trainable_layers=9"), says="trainable_layers"),
    Case("train-crop-zero", lambda w: train_argv(w, "data.train_crop=[0,0]"), says="train_crop"),
    Case("train-warmup-negative", lambda w: train_argv(w, "train.warmup_steps=-1"), says="warmup_steps"),
    Case("train-clip-grad-nan", lambda w: train_argv(w, "train.clip_grad_norm=.nan"), says="clip_grad_norm"),
    Case("train-cuda-without-gpu", lambda w: train_argv(w, "train.device=cuda:7"), says="cuda"),
    Case("train-name-leaves-folder",
         lambda w: ["train", "--config", str(w.config), "name=../escape"], says="name"),
    # ---- mrae train: files and folders
    Case("train-out-is-a-file", lambda w: ["train", "--config", str(w.config), "--out", str(w.train_json)],
         says="instances_train.json"),
    Case("train-out-is-an-existing-run",
         lambda w: (resume_from(w, w.checkpoint.read_bytes()), train_argv(w))[1], says="resume"),
    Case("train-annotations-missing",
         lambda w: train_argv(w, config=w.config_with("c.yaml", {"instances_train.json": "nope.json"})),
         says="nope.json"),
    Case("train-file-name-leaves-folder",
         lambda w: train_argv(w, config=w.config_with("c.yaml", {
             str(w.train_json): str(w.coco("up.json", lambda d: d["images"][0].update(
                 file_name="../../etc/passwd")))})), says="file_name"),
    Case("train-image-file-missing",
         lambda w: train_argv(w, config=w.config_with("c.yaml", {
             str(w.train_json): str(w.coco("gone.json", lambda d: d["images"][0].update(
                 file_name="gone.png")))})), says="gone.png"),
    Case("train-pretrained-missing", lambda w: train_argv(w, f"model.pretrained={w.tmp / 'nope.pth'}"),
         says="nope.pth"),
    Case("train-pretrained-not-a-checkpoint",
         lambda w: train_argv(w, f"model.pretrained={w.write('text.pth', 'hello')}"), says="text.pth"),
    Case("train-imagenet-without-network", lambda w: train_argv(w, "model.pretrained=imagenet"),
         says="imagenet", setup=_no_network),
    Case("train-init-from-missing", lambda w: train_argv(w, "--init-from", str(w.tmp / "nope.pth")), says="nope.pth"),
    Case("train-init-from-other-architecture", lambda w: train_argv(w, "--init-from", str(_other_architecture(w))),
         says="other.pth"),
    Case("train-init-from-truncated", lambda w: train_argv(w, "--init-from", str(_truncated(w))), says="truncated.pth"),
    Case("train-resume-without-run", lambda w: train_argv(w, "--resume"), says="resume"),
    Case("train-resume-text-checkpoint", lambda w: (resume_from(w, b"not a checkpoint"), train_argv(w, "--resume"))[1],
         says="last.pth"),
    Case("train-second-writer", lambda w: train_argv(w), says="another process", setup=_lock_run),
    # ---- mrae eval
    Case("eval-checkpoint-missing", lambda w: ["eval", "--checkpoint", str(w.tmp / "nope.pth")], says="nope.pth"),
    Case("eval-checkpoint-text", lambda w: ["eval", "--checkpoint", str(w.write("t.pth", "hello"))], says="t.pth"),
    Case("eval-checkpoint-truncated", lambda w: ["eval", "--checkpoint", str(_truncated(w))], says="truncated.pth"),
    Case("eval-yaml-syntax-error", lambda w: ["eval", "--checkpoint", str(w.checkpoint), "--config",
                                              str(w.write("bad.yaml", "data: {a: 1\n"))], says="bad.yaml"),
    Case("eval-max-images-zero", lambda w: ["eval", "--checkpoint", str(w.checkpoint), "--max-images", "0"],
         says="max_images"),
    Case("eval-max-dets-empty", lambda w: ["eval", "--checkpoint", str(w.checkpoint), "--max-dets", ""],
         says="--max-dets"),
    Case("eval-max-dets-negative", lambda w: ["eval", "--checkpoint", str(w.checkpoint), "--max-dets=-5,10"],
         says="--max-dets"),
    Case("eval-max-dets-unsorted", lambda w: ["eval", "--checkpoint", str(w.checkpoint), "--max-dets", "100,10"],
         says="increasing"),
    Case("eval-max-dets-over-the-cap",
         lambda w: ["eval", "--checkpoint", str(w.checkpoint), "--max-dets", "1,100,1500"], says="cap of 300"),
    Case("eval-group-by-matches-no-image",
         lambda w: ["eval", "--checkpoint", str(w.checkpoint), "--group-by", "^(?P<light>night)_"],
         says="matches none"),
    Case("eval-group-by-does-not-compile",
         lambda w: ["eval", "--checkpoint", str(w.checkpoint), "--group-by", "(?P<light>[01]"],
         says="regular expression"),
    Case("train-eval-max-dets-unsorted", lambda w: train_argv(w, "eval.max_dets=[100,10]"),
         says="eval.max_dets"),
    Case("eval-out-is-a-file", lambda w: ["eval", "--checkpoint", str(w.checkpoint), "--out",
                                          str(w.write("f.txt", "x"))], says="f.txt"),
    Case("eval-checkpoint-4kib-overwritten", lambda w: ["eval", "--checkpoint", str(_overwritten(w))],
         says="damaged"),
    # ---- mrae predict
    Case("predict-one-unreadable-image",
         lambda w: ["predict", "--checkpoint", str(w.checkpoint), str(_images_with_a_broken_one(w)),
                    "--out", str(w.tmp / "p"), "--no-progress"], code=1, says="broken.png"),
    Case("predict-checkpoint-missing",
         lambda w: ["predict", "--checkpoint", str(w.tmp / "nope.pth"), str(w.val_images), "--out",
                    str(w.tmp / "p")], says="nope.pth"),
    Case("predict-input-missing",
         lambda w: ["predict", "--checkpoint", str(w.checkpoint), str(w.tmp / "nope.png"), "--out",
                    str(w.tmp / "p")], says="nope.png"),
    Case("predict-out-is-a-file",
         lambda w: ["predict", "--checkpoint", str(w.checkpoint), str(w.val_images), "--out",
                    str(w.write("f.txt", "x"))], says="f.txt"),
    Case("predict-out-is-the-image-folder",
         lambda w: ["predict", "--checkpoint", str(w.checkpoint), str(w.val_images), "--out",
                    str(w.val_images)], says="out"),
    Case("predict-score-thresh-5",
         lambda w: ["predict", "--checkpoint", str(w.checkpoint), str(w.val_images), "--out",
                    str(w.tmp / "p"), "--score-thresh", "5"], says="score"),
    Case("predict-folder-without-images",
         lambda w: ["predict", "--checkpoint", str(w.checkpoint), str(w.write("e/readme.txt", "x").parent),
                    "--out", str(w.tmp / "p")], says="image"),
    Case("predict-slice-zero-height",
         lambda w: ["predict", "--checkpoint", str(w.checkpoint), str(w.val_images), "--out",
                    str(w.tmp / "p"), "--slice", "0x64"], says="--slice"),
    Case("predict-overlap-one",
         lambda w: ["predict", "--checkpoint", str(w.checkpoint), str(w.val_images), "--out",
                    str(w.tmp / "p"), "--slice", "64x64", "--overlap", "1"], says="--overlap"),
    Case("eval-slice-not-hxw",
         lambda w: ["eval", "--checkpoint", str(w.checkpoint), "--slice", "axb"], says="--slice"),
    # ---- mrae export, and an exported model
    Case("export-checkpoint-missing",
         lambda w: ["export", "--checkpoint", str(w.tmp / "nope.pth"), "--out", str(w.tmp / "m.onnx")],
         says="nope.pth"),
    Case("export-out-not-onnx",
         lambda w: ["export", "--checkpoint", str(w.checkpoint), "--out", str(w.tmp / "m.txt")], says=".onnx"),
    Case("export-out-exists",
         lambda w: ["export", "--checkpoint", str(w.checkpoint), "--out", str(w.write("m.onnx", "x"))],
         says="exists"),
    Case("export-example-size-not-hxw",
         lambda w: ["export", "--checkpoint", str(w.checkpoint), "--out", str(w.tmp / "m.onnx"),
                    "--example-size", "axb"], says="--example-size"),
    Case("eval-onnx-damaged",
         lambda w: ["eval", "--checkpoint", str(w.write("bad.onnx", "not an onnx model"))], says="bad.onnx"),
    Case("train-detector-unknown", lambda w: train_argv(w, "model.detector=yolo"), says="model.detector"),
    Case("train-c4-head-in-fcos", lambda w: train_argv(w, "model.detector=fcos", "model.head=c4"),
         says="model.head"),
    # ---- mrae demo
    Case("demo-score-thresh-5", lambda w: ["demo", "--out", str(w.tmp / "demo"), "--score-thresh", "5"],
         says="score"),
    Case("demo-zero-images", lambda w: ["demo", "--out", str(w.tmp / "demo"), "--images", "0"], says="images"),
    # ---- mrae pretrain
    Case("pretrain-out-exists",
         lambda w: ["pretrain", "--config", str(w.config), "--out", str(w.write("w.pth", "x"))], says="overwrite"),
    Case("pretrain-crop-size-zero",
         lambda w: ["pretrain", "--config", str(w.config), "--out", str(w.tmp / "w.pth"), "pretrain.crop_size=0"],
         says="crop_size"),
    # ---- mrae study
    Case("study-file-missing", lambda w: ["study", str(w.tmp / "nope.yaml")], says="nope.yaml"),
    Case("study-seeds-not-a-number",
         lambda w: ["study", str(study_file(w, "  - {name: a, config: row.yaml, role: mrae, seeds: abc}\n"))],
         says="seeds"),
    Case("study-name-not-text",
         lambda w: ["study", str(study_file(w, "  - {name: 123, config: row.yaml, role: mrae}\n"))], says="name"),
    Case("study-two-rows-one-folder",
         lambda w: ["study", str(study_file(w, "  - {name: single C1, config: row.yaml, role: mrae}\n"
                                           "  - {name: single-C1, config: row.yaml, role: mrae}\n"))],
         says="folder"),
    Case("study-unknown-role",
         lambda w: ["study", str(study_file(w, "  - {name: a, config: row.yaml, role: magic}\n"))], says="role"),
    Case("study-row-config-missing",
         lambda w: ["study", str(study_file(w, "  - {name: a, config: nope.yaml, role: mrae}\n"))], says="nope.yaml"),
    Case("study-init-from-unknown-row",
         lambda w: ["study", str(study_file(w, "  - {name: a, config: row.yaml, role: mixed, init_from: zz}\n"))],
         says="zz"),
    Case("study-no-rows", lambda w: ["study", str(study_file(w, "  []\n"))], says="rows"),
    Case("study-jobs-zero",
         lambda w: ["study", str(study_file(w, "  - {name: a, config: row.yaml, role: mrae}\n")), "--jobs", "0"],
         says="jobs"),
    # --rows names rows of the study file in every mode (issue 35: --status showed the others)
    *[Case(f"study-rows-unknown{'-' + mode[2:] if mode else ''}",
           lambda w, mode=mode: ["study", str(study_file(w, "  - {name: a, config: row.yaml, role: mrae}\n")),
                                 *([mode] if mode else []), "--rows", "zz"], says="'zz'")
      for mode in ("", "--status", "--report-only", "--render-only")],
    # ---- unknown command and options
    Case("unknown-command", lambda w: ["trian"], says="invalid choice"),
    Case("unknown-option", lambda w: ["train", "--config", str(w.config), "--learning-rate", "3"],
         says="unrecognized"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_clear_line_and_loses_nothing(case, world_files, tmp_path, capsys, caplog, monkeypatch):
    run_case(case, world_files, tmp_path, capsys, caplog, monkeypatch)


def test_the_campaign_has_at_least_60_cases():
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)
