"""The second campaign of bad inputs and faults (issue 19), run through the `mrae` command line.

Each case is what a careless or hostile user does that the first campaign (tests/test_campaign.py)
did not try: an output that would replace a user's file, a dataset or an input; a FIFO, a device or
a folder where a file is expected; an XML entity bomb or a YAML alias bomb; a config interpolation;
a checkpoint with garbage in it. As there, every case must end with the expected exit code, say
what is wrong in one readable line on stderr, print no traceback, leave every file that was there
before byte-identical and (refused) write nothing new; no case may take more than a few seconds
(an alarm fails a case that hangs).

The README's reliability section states the count of both campaigns.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from campaign_harness import Case, World, resume_from, run_case, study_file, train_argv

from mrae import cli

#: Seconds a case may run before it counts as a hang (a FIFO read blocks forever).
HANG_SECONDS = 60


# ----------------------------------------------------------------------------- helpers


def _folder_with(w: World, name: str, files: dict[str, str]) -> Path:
    folder = w.tmp / name
    folder.mkdir(parents=True)
    for file, text in files.items():
        (folder / file).write_text(text)
    return folder


def _fifo(w: World, name: str) -> Path:
    path = w.tmp / name
    os.mkfifo(path)
    return path


def _socket(w: World, name: str) -> Path:
    path = w.tmp / name
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    w.closing.append(server.close)
    return path


def _edited_checkpoint(w: World, name: str, edit: Callable[[dict], object], checksum: bool = True) -> Path:
    """A copy of the trained checkpoint changed by `edit`: saved with a fresh checksum (as mrae
    train would write it) or, `checksum=False`, without one (as an old or hand-edited file)."""
    import torch

    from mrae.engine.checkpoint import CHECKSUM_KEY, save_checkpoint

    state = torch.load(w.checkpoint, map_location="cpu", weights_only=True)
    state.pop(CHECKSUM_KEY)
    edit(state)
    path = w.tmp / name
    if checksum:
        save_checkpoint(path, state)
    else:
        torch.save(state, path)
    return path


def _nan_weight(state: dict) -> None:
    key = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][key] = state["model"][key].clone().fill_(float("nan"))


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo the payload ran",))


def _pickle_payload(w: World) -> Path:
    return w.write("payload.pth", pickle.dumps({"model": _Payload(), "config": {}}))


def _signed_marker(folder: Path, command: str, files: dict) -> None:
    from mrae.ownership import _write_marker

    _write_marker(folder, command, False, files)


def _forged_predict_folder(w: World) -> Path:
    """A folder whose predict.json (not predict's marker) lists the user's 'val image' drawing."""
    first = sorted(w.val_images.iterdir())[0]
    folder = _folder_with(w, "p", {f"{first.stem}.jpg": "the user's holiday photo"})
    (folder / "predict.json").write_text(json.dumps({"files": [f"{first.stem}.jpg"]}))
    return folder


def _copied_marker_folder(w: World) -> Path:
    """A folder with a correctly signed predict marker listing a drawing whose bytes changed since."""
    first = sorted(w.val_images.iterdir())[0]
    folder = _folder_with(w, "p", {f"{first.stem}.jpg": "the user's holiday photo"})
    _signed_marker(folder, "predict", {f"{first.stem}.jpg": {"sha256": "0" * 64, "by": None}})
    return folder


def _convert_one(w: World, fmt: str, suffix: str, label: str) -> list[str]:
    """`mrae convert` of a folder holding one val image and its `fmt` label file with `label`."""
    images = w.tmp / fmt
    images.mkdir()
    first = sorted(w.val_images.iterdir())[0]
    (images / first.name).write_bytes(first.read_bytes())
    (images / f"{first.stem}{suffix}").write_text(label)
    return ["convert", "--format", fmt, "--images", str(images), "--out", str(w.tmp / "o.json")]


def _voc(w: World, xml: str) -> list[str]:
    return _convert_one(w, "voc", ".xml", xml)


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<annotation><object><name>&lol9;</name>
<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>
"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE annotation [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<annotation><object><name>&secret;</name>
<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>
"""

ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8)
) + "names: [cat, *i]\n"


def _yolo(w: World, names: str, names_file: str = "data.yaml") -> list[str]:
    images = w.tmp / "yolo"
    images.mkdir()
    first = sorted(w.val_images.iterdir())[0]
    (images / first.name).write_bytes(first.read_bytes())
    (images / f"{first.stem}.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    names_path = w.write(names_file, names)
    return ["convert", "--format", "yolo", "--images", str(images), "--names", str(names_path),
            "--out", str(w.tmp / "o.json")]


def _read_only(module: str, function: str) -> Callable[[World, pytest.MonkeyPatch], None]:
    """A setup that makes `module.function` fail as a read-only folder would."""

    def setup(w: World, mp: pytest.MonkeyPatch) -> None:
        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied", str(args[0]) if args else None)

        mp.setattr(f"{module}.{function}", refuse)

    return setup


def _read_only_lock(w: World, mp: pytest.MonkeyPatch) -> None:
    """The run lock cannot be opened, as in a read-only run folder (the tests run as root)."""
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Read-only file system")

    mp.setattr("mrae.engine.runlock.open_lock_file", refuse)


def _full_disk(w: World, mp: pytest.MonkeyPatch) -> None:
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    mp.setattr("mrae.commands.synth.generate", full)


def _small_json_limit(w: World, mp: pytest.MonkeyPatch) -> None:
    mp.setattr("mrae.data.validate.JSON_LIMIT", 100)


def _study_with_corrupt_result(w: World) -> list[str]:
    study = study_file(w, "  - {name: a, config: row.yaml, role: mrae}\n")
    done = w.tmp / "study" / "a" / "seed0" / "final_metrics.json"
    done.parent.mkdir(parents=True)
    done.write_text('{"AP": 0.1')
    return ["study", str(study), "--quick", "--report-only"]


def _worker_data_error(w: World) -> list[str]:
    """A training run whose data-loader worker meets an image that disagrees with its annotation."""
    from PIL import Image

    first = json.loads(w.train_json.read_text())["images"][0]
    images = w.tmp / "images"
    images.mkdir()
    for path in (w.data / "images" / "train").iterdir():
        (images / path.name).write_bytes(path.read_bytes())
    Image.new("RGB", (first["width"] + 7, first["height"])).save(images / first["file_name"])
    config = w.config_with("c.yaml", {str(w.data / "images" / "train"): str(images)})
    return train_argv(w, "data.workers=1", config=config)


def _names_with(w: World, text: str) -> Path:
    return w.write("names.txt", text)


# ----------------------------------------------------------------------------- the cases

CASES: list[Case] = [
    # ---- 1. outputs: no command writes over what it did not make
    Case("train-out-ordinary-folder-with-config",
         lambda w: ["train", "--config", str(w.config), "--out",
                    str(_folder_with(w, "mine", {"config.yaml": "my notes"}))], says="overwrite"),
    Case("train-out-folder-holding-the-config-even-with-overwrite",
         lambda w: ["train", "--config", str(w.config_with("mine/config.yaml", {})), "--out",
                    str(w.tmp / "mine"), "--overwrite"], says="input"),
    Case("train-out-the-dataset-folder", lambda w: ["train", "--config", str(w.config), "--out", str(w.data)],
         says="input"),
    Case("train-out-the-dataset-folder-with-overwrite",
         lambda w: ["train", "--config", str(w.config), "--out", str(w.data), "--overwrite"], says="input"),
    Case("train-out-inside-the-images-with-overwrite",
         lambda w: ["train", "--config", str(w.config), "--out", str(w.data / "images"), "--overwrite"],
         says="input"),
    Case("train-out-read-only", lambda w: train_argv(w), says="cannot",
         setup=_read_only("mrae.ownership", "write_text_atomic")),
    Case("train-resume-in-a-read-only-run",
         lambda w: (resume_from(w, w.checkpoint.read_bytes()), train_argv(w, "--resume"))[1], says="cannot write",
         setup=_read_only_lock),
    Case("study-report-is-the-study-file",
         lambda w: ["study", str(s := study_file(w, "  - {name: a, config: row.yaml, role: mrae}\n")), "--quick",
                    "--report", str(s), "--overwrite"], says="input"),
    Case("study-report-json-sibling-is-the-users",
         lambda w: ["study", str(study_file(w, "  - {name: a, config: row.yaml, role: mrae}\n")), "--quick",
                    "--report", str(w.tmp / "mine.md"), "--rows", "a"]
         if w.write("mine.json", '{"mine": 1}') else [], says="overwrite"),
    Case("study-report-is-a-json-path",
         lambda w: ["study", str(study_file(w, "  - {name: a, config: row.yaml, role: mrae}\n")), "--quick",
                    "--report", str(w.tmp / "r.json")], says=".md"),
    Case("study-report-is-a-row-config",
         lambda w: ["study", str(study_file(w, "  - {name: a, config: row.yaml, role: mrae}\n")), "--quick",
                    "--report", str(w.tmp / "row.yaml"), "--overwrite"], says="input"),
    Case("stats-plot-over-a-dataset-image",
         lambda w: ["stats", str(w.train_json), "--plot", str(sorted((w.data / "images" / "train").iterdir())[0])],
         says="dataset"),
    Case("stats-plot-over-a-dataset-image-with-overwrite",
         lambda w: ["stats", str(w.train_json), "--plot", str(sorted((w.data / "images" / "train").iterdir())[0]),
                    "--overwrite"], says="dataset"),
    Case("stats-plot-over-an-existing-file",
         lambda w: ["stats", str(w.train_json), "--plot", str(w.write("holiday.png", b"\x89PNG mine"))],
         says="overwrite"),
    Case("stats-plot-is-a-folder", lambda w: ["stats", str(w.train_json), "--plot", str(w.tmp)], says="png"),
    Case("stats-plot-without-suffix", lambda w: ["stats", str(w.train_json), "--plot", str(w.tmp / "DIR")],
         says="png"),
    Case("eval-out-holds-earlier-metrics",
         lambda w: ["eval", "--checkpoint", str(w.checkpoint), "--out",
                    str(_folder_with(w, "mine", {"metrics_val.json": "{}", "detections_val.json": "[]"}))],
         says="overwrite"),
    Case("eval-out-holds-metrics-an-eval-of-another-checkpoint-wrote",
         lambda w: ["eval", "--checkpoint", str(w.checkpoint), "--out", str(_other_evaluation(w))],
         says="overwrite"),
    Case("eval-out-is-the-dataset-with-overwrite",
         lambda w: ["eval", "--checkpoint", str(w.checkpoint), "--out", str(w.data), "--overwrite"],
         says="input"),
    Case("predict-forged-manifest-lists-a-users-file",
         lambda w: ["predict", "--checkpoint", str(w.checkpoint), str(w.val_images), "--out",
                    str(_forged_predict_folder(w)), "--no-progress"], says="overwrite"),
    Case("predict-signed-marker-but-the-file-changed",
         lambda w: ["predict", "--checkpoint", str(w.checkpoint), str(w.val_images), "--out",
                    str(_copied_marker_folder(w)), "--no-progress"], says="overwrite"),
    Case("predict-out-holds-the-checkpoint-with-overwrite",
         lambda w: ["predict", "--checkpoint", str(w.checkpoint), str(w.val_images), "--out",
                    str(w.checkpoint.parent), "--overwrite", "--no-progress"], says="input"),
    Case("subset-over-the-datasets-other-split-with-overwrite",
         lambda w: ["subset", str(w.train_json), "--out", str(w.data / "annotations" / "instances_val.json"),
                    "--overwrite"], says="dataset"),
    Case("convert-out-exists",
         lambda w: _yolo(w, "cat\n", "classes.txt")[:-1] + [str(w.write("mine.json", '{"mine": 1}'))],
         says="overwrite"),
    Case("convert-out-inside-the-images-with-overwrite",
         lambda w: ["convert", "--format", "yolo", "--images", str(w.val_images), "--out",
                    str(sorted(w.val_images.iterdir())[0]), "--overwrite"], says="input"),
    Case("convert-out-is-the-names-file",
         lambda w: _yolo(w, "cat\n", "classes.txt")[:-1] + [str(w.tmp / "classes.txt"), "--overwrite"],
         says="input"),
    Case("pretrain-out-is-the-config",
         lambda w: ["pretrain", "--config", str(c := w.config_with("c.yaml", {})), "--out", str(c), "--overwrite"],
         says="input"),
    Case("pretrain-report-beside-out-is-the-users",
         lambda w: ["pretrain", "--config", str(w.config), "--out", str(w.tmp / "w.pth")]
         if w.write("w.json", "mine") else [], says="overwrite"),
    Case("synth-into-a-users-folder",
         lambda w: ["synth", str(_folder_with(w, "mine", {"notes.txt": "mine"})), "--images", "2"],
         says="overwrite"),
    # ---- 2. inputs that are not regular files, and size limits
    Case("stats-annotations-fifo", lambda w: ["stats", str(_fifo(w, "f.json"))], says="FIFO"),
    Case("subset-annotations-fifo", lambda w: ["subset", str(_fifo(w, "f.json")), "--out", str(w.tmp / "o.json")],
         says="FIFO"),
    Case("anchors-annotations-fifo", lambda w: ["anchors", str(_fifo(w, "f.json"))], says="FIFO"),
    Case("stats-dev-zero", lambda w: ["stats", "/dev/zero"], says="device"),
    Case("anchors-dev-urandom", lambda w: ["anchors", "/dev/urandom"], says="device"),
    Case("stats-annotations-socket", lambda w: ["stats", str(_socket(w, "s.json"))], says="socket"),
    Case("stats-annotations-folder", lambda w: ["stats", str(w.data)], says="directory"),
    Case("stats-annotations-over-the-size-limit", lambda w: ["stats", str(w.train_json)], says="limit",
         setup=_small_json_limit),
    Case("train-config-fifo", lambda w: train_argv(w, config=_fifo(w, "c.yaml")), says="FIFO"),
    Case("train-config-dev-zero", lambda w: train_argv(w, config=Path("/dev/zero")), says="device"),
    Case("train-pretrained-weights-fifo", lambda w: train_argv(w, f"model.pretrained={_fifo(w, 'w.pth')}"),
         says="FIFO"),
    Case("train-init-from-dev-zero", lambda w: train_argv(w, "--init-from", "/dev/zero"), says="device"),
    Case("eval-checkpoint-fifo", lambda w: ["eval", "--checkpoint", str(_fifo(w, "c.pth"))], says="FIFO"),
    Case("predict-checkpoint-dev-zero",
         lambda w: ["predict", "--checkpoint", "/dev/zero", str(w.val_images), "--out", str(w.tmp / "p")],
         says="device"),
    Case("predict-image-fifo",
         lambda w: ["predict", "--checkpoint", str(w.checkpoint), str(_fifo(w, "i.png")), "--out",
                    str(w.tmp / "p")], says="FIFO"),
    Case("train-image-is-a-fifo",
         lambda w: train_argv(w, config=w.config_with("c.yaml", {str(w.data / "images" / "train"): str(
             _images_with_a_fifo(w))})), says="000000.jpg"),
    Case("study-file-fifo", lambda w: ["study", str(_fifo(w, "s.yaml"))], says="FIFO"),
    Case("convert-names-fifo", lambda w: (a := _yolo(w, "cat\n"))[:-3] + [str(_fifo(w, "n.txt")), *a[-2:]],
         says="FIFO"),
    Case("convert-label-file-fifo",
         lambda w: ["convert", "--format", "yolo", "--images", str(_yolo_fifo_labels(w)), "--names",
                    str(w.write("classes.txt", "cat\n")), "--out", str(w.tmp / "o.json")], says="FIFO"),
    # ---- 3. parser bombs
    Case("convert-voc-billion-laughs", lambda w: _voc(w, BILLION_LAUGHS), says="entit"),
    Case("convert-voc-external-entity", lambda w: _voc(w, EXTERNAL_ENTITY), says="entit"),
    Case("convert-yolo-names-alias-bomb", lambda w: _yolo(w, ALIAS_BOMB), says="plain string"),
    Case("convert-names-long-duplicate", lambda w: _yolo(w, "x" * 5000 + "\n" + "x" * 5000 + "\n", "n.txt"),
         says="twice"),
    Case("train-base-is-etc-passwd",
         lambda w: train_argv(w, config=w.write("c.yaml", "base: /etc/passwd\n")), says="passwd"),
    # ---- 4. what used to be a traceback
    Case("train-interpolation-of-a-key", lambda w: train_argv(w, config=w.write("c.yaml", w.config.read_text()
                                                                            + "name: ${name}\n")),
         says="interpolation"),
    Case("train-interpolation-of-a-missing-key",
         lambda w: train_argv(w, config=w.config_with("c.yaml", {"extractor: mrae": "extractor: ${nope.value}"})),
         says="interpolation"),
    Case("train-interpolation-from-the-environment",
         lambda w: train_argv(w, config=w.write("c.yaml", w.config.read_text() + "name: ${oc.env:HOME}\n")),
         says="interpolation"),
    Case("train-override-interpolation", lambda w: train_argv(w, "name=${oc.env:HOME}"), says="interpolation"),
    Case("train-min-size-zero", lambda w: train_argv(w, "model.min_size=0"), says="min_size"),
    Case("train-max-size-negative", lambda w: train_argv(w, "model.max_size=-5"), says="max_size"),
    Case("train-fixed-size-zero", lambda w: train_argv(w, "model.fixed_size=[0,64]"), says="fixed_size"),
    Case("study-final-metrics-corrupt", _study_with_corrupt_result, says="final_metrics.json"),
    Case("study-render-only-results-not-a-record",
         lambda w: ["study", str(study_file(w, "  - {name: a, config: row.yaml, role: mrae}\n")), "--quick",
                    "--render-only", "--report", str(w.tmp / "r.md")] if w.write("r.json", "[1, 2]") else [],
         says="r.json"),
    Case("predict-garbage-label-to-cat",
         lambda w: ["predict", "--checkpoint", str(_edited_checkpoint(
             w, "g.pth", lambda s: s.update(label_to_cat={"a": "b"}))), str(w.val_images), "--out",
             str(w.tmp / "p"), "--no-progress"], says="label_to_cat"),
    Case("eval-garbage-class-names",
         lambda w: ["eval", "--checkpoint", str(_edited_checkpoint(
             w, "g.pth", lambda s: s.update(class_names=[1, {"a": 2}])))], says="class_names"),
    Case("train-resume-garbage-step",
         lambda w: (resume_from(w, _edited_checkpoint(w, "g.pth", lambda s: s.update(step="7")).read_bytes()),
                    train_argv(w, "--resume"))[1], says="step"),
    Case("eval-stored-config-reads-the-environment",
         lambda w: ["eval", "--checkpoint", str(_edited_checkpoint(
             w, "env.pth", lambda s: s["config"].update(name="${oc.env:HOME}")))], says="interpolation"),
    Case("synth-seed-negative", lambda w: ["synth", str(w.tmp / "s"), "--images", "2", "--seed", "-1"],
         says="seed"),
    Case("synth-full-disk", lambda w: ["synth", str(w.tmp / "s"), "--images", "2", "--workers", "0"],
         says="space", setup=_full_disk),
    Case("train-data-error-in-a-loader-worker", _worker_data_error, says="px but",
         new_files_ok=True),  # the run had started: its folder stays, to fix the image and resume,
    Case("eval-pickle-payload", lambda w: ["eval", "--checkpoint", str(_pickle_payload(w))], says="python objects"),
    # ---- 5. integrity without a checksum
    Case("eval-nan-weights-without-checksum",
         lambda w: ["eval", "--checkpoint", str(_edited_checkpoint(w, "nan.pth", _nan_weight, checksum=False))],
         says="not finite"),
    Case("eval-nan-weights-with-checksum",
         lambda w: ["eval", "--checkpoint", str(_edited_checkpoint(w, "nan.pth", _nan_weight))], says="not finite"),
    Case("train-init-from-nan-weights",
         lambda w: train_argv(w, "--init-from", str(_edited_checkpoint(w, "nan.pth", _nan_weight, checksum=False))),
         says="not finite"),
    # ---- 6. one COCO check for every command
    Case("anchors-duplicate-image-id",
         lambda w: ["anchors", str(w.coco("c.json", lambda d: d["images"].append(dict(d["images"][0]))))],
         says="twice"),
    Case("anchors-ignore-2",
         lambda w: ["anchors", str(w.coco("c.json", lambda d: d["annotations"][0].update(ignore=2)))],
         says="ignore"),
    Case("subset-ignore-2",
         lambda w: ["subset", str(w.coco("c.json", lambda d: d["annotations"][0].update(ignore=2))), "--out",
                    str(w.tmp / "o.json")], says="ignore"),
    Case("stats-image-width-infinity",
         lambda w: ["stats", str(w.coco("c.json", lambda d: d["images"][0].update(width=float("inf"))))],
         says="width"),
    Case("anchors-image-width-infinity",
         lambda w: ["anchors", str(w.coco("c.json", lambda d: d["images"][0].update(width=float("inf"))))],
         says="width"),
    Case("stats-area-nan",
         lambda w: ["stats", str(w.coco("c.json", lambda d: d["annotations"][0].update(area=float("nan")))),
                    "--area", "segm"], says="area"),
    Case("train-area-nan",
         lambda w: train_argv(w, config=w.config_with("c.yaml", {str(w.train_json): str(w.coco(
             "nan.json", lambda d: d["annotations"][0].update(area=float("nan"))))})), says="area"),
    Case("convert-dota-gsd-nan", lambda w: _dota(w, "gsd:nan\n1 1 5 1 5 5 1 5 ship\n"), says="gsd"),
    # ---- messages that were misleading
    Case("stats-utf8-bom", lambda w: ["stats", str(w.write("bom.json", b"\xef\xbb\xbf" + w.train_json.read_bytes()))],
         code=0, says=""),
]


def _other_evaluation(w: World) -> Path:
    """A folder with eval's own metrics file, written for another checkpoint."""
    folder = _folder_with(w, "ev", {"metrics_val.json": "{}", "detections_val.json": "[]"})
    from mrae.ownership import sha256_file

    producer = json.dumps({"checkpoint": "/elsewhere/best.pth", "split": "val", "slicing": None}, sort_keys=True)
    _signed_marker(folder, "eval", {name: {"sha256": sha256_file(folder / name), "by": producer}
                                    for name in ("metrics_val.json", "detections_val.json")})
    return folder


def _images_with_a_fifo(w: World) -> Path:
    """The training images, the first of them replaced by a FIFO (reading it would block)."""
    images = w.tmp / "images"
    images.mkdir()
    for path in sorted((w.data / "images" / "train").iterdir()):
        (images / path.name).write_bytes(path.read_bytes())
    first = sorted(images.iterdir())[0]
    first.unlink()
    os.mkfifo(first)
    return images


def _yolo_fifo_labels(w: World) -> Path:
    images = w.tmp / "yolo"
    images.mkdir()
    first = sorted(w.val_images.iterdir())[0]
    (images / first.name).write_bytes(first.read_bytes())
    os.mkfifo(images / f"{first.stem}.txt")
    return images


def _dota(w: World, label: str) -> list[str]:
    return _convert_one(w, "dota", ".txt", label)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_clear_line_and_loses_nothing(case, world_files, tmp_path, capsys, caplog, monkeypatch):
    run_case(case, world_files, tmp_path, capsys, caplog, monkeypatch, hang_seconds=HANG_SECONDS)


def test_the_second_campaign_has_its_cases():
    assert len(CASES) >= 82  # the README's reliability section states the count
    assert len({c.id for c in CASES}) == len(CASES)




# ----------------------------------------------------------------------------- what must still work


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_with_and_without_slicing_keeps_both_results(world_files, tmp_path, capsys):
    data, config, checkpoint = world_files
    import shutil

    run = tmp_path / "run"
    shutil.copytree(checkpoint.parent.parent, run)
    ckpt = run / "checkpoints" / "last.pth"
    base = ["eval", "--checkpoint", str(ckpt), "--no-progress"]
    assert _run([*base, "--slice", "64x64"], capsys)[0] == 0
    assert _run(base, capsys)[0] == 0
    sliced, whole = run / "eval" / "metrics_val_slice64x64.json", run / "eval" / "metrics_val.json"
    assert json.loads(sliced.read_text())["slicing"]["tile"] == [64, 64]
    assert json.loads(whole.read_text())["slicing"] is None
    assert _run(base, capsys)[0] == 0  # the same evaluation again replaces its own files
    other = run / "checkpoints" / "other.pth"
    other.write_bytes(ckpt.read_bytes())
    before = whole.read_bytes()
    code, _, err = _run(["eval", "--checkpoint", str(other), "--no-progress", "--out", str(run / "eval")], capsys)
    assert code == 2 and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert whole.read_bytes() == before


def test_stats_plot_writes_the_path_it_names_and_keeps_it(world_files, tmp_path, capsys):
    data, _, _ = world_files
    train = data / "annotations" / "instances_train.json"
    plot = tmp_path / "sizes.png"
    code, out, _ = _run(["stats", str(train), "--plot", str(plot)], capsys)
    assert code == 0 and f"wrote {plot}" in out and plot.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sizes.png"]
    first = plot.read_bytes()
    assert _run(["stats", str(train), "--plot", str(plot)], capsys)[0] == 2  # a user's file now
    assert plot.read_bytes() == first
    assert _run(["stats", str(train), "--plot", str(plot), "--overwrite"], capsys)[0] == 0


def test_a_checkpoint_without_checksum_loads_with_one_warning(world_files, tmp_path, capsys):
    import torch

    from mrae.engine.checkpoint import CHECKSUM_KEY

    data, _, checkpoint = world_files
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state.pop(CHECKSUM_KEY)
    old = tmp_path / "old.pth"
    torch.save(state, old)
    code, _, err = _run(["eval", "--checkpoint", str(old), "--no-progress", "--out", str(tmp_path / "ev")],
                        capsys)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "cannot be verified" in line]
    assert len(warnings) == 1 and str(old) in warnings[0]
