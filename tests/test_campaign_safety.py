"""The third campaign of bad inputs (issue 35), run through the `mrae` command line.

What a careless or hostile user tries beyond the first two campaigns (tests/test_campaign.py,
tests/test_campaign_ownership.py): an output inside a dataset, an images folder or another input
of the command (new or existing, directly or through a link, with and without `--overwrite`); an
ownership marker copied, linked or left by an earlier mrae; `.onnx` files that are another model's
graph, have outputs of the wrong shape or metadata of the wrong type; a `--slice` or
`--example-size` that multiplies the work without bound; and the silent cases of the issue
(`model.*` overrides eval would ignore, `--ignore-classes` naming every class, pretraining crops
without a box, two commands racing for one output). As in the other campaigns every case ends
with the expected exit code, one readable line on stderr, no traceback, every file present
before byte-identical and (refused) nothing new written; an alarm fails a case that hangs.

The README's reliability section states the count of the three campaigns.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import pytest
from campaign_harness import Case, World, run_case

from mrae import cli

#: Seconds a case may run before it counts as a hang (`--slice 1x1` used to run for hours).
HANG_SECONDS = 60


# ----------------------------------------------------------------------------- outputs inside inputs


def _link(w: World, name: str, target: Path) -> Path:
    link = w.tmp / name
    link.symlink_to(target)
    return link


#: Where an output is put: (id, the path of an output named `name`): inside the val images (an
#: input folder), beside them in `images/`, in `annotations/`, in the dataset folder itself, and
#: through a link into the val images.
PLACES: dict[str, Callable[[World, str], Path]] = {
    "in-val-images": lambda w, name: w.val_images / name,
    "in-images": lambda w, name: w.data / "images" / name,
    "in-annotations": lambda w, name: w.data / "annotations" / name,
    "in-dataset": lambda w, name: w.data / name,
    "through-a-link": lambda w, name: _link(w, "link", w.val_images) / name,
}

#: The commands that read the world's dataset, each `(name, argv for an output path, output name)`.
WRITERS: list[tuple[str, Callable[[World, Path], list[str]], str]] = [
    ("train", lambda w, out: ["train", "--config", str(w.config), "--out", str(out)], "run"),
    ("eval", lambda w, out: ["eval", "--checkpoint", str(w.checkpoint), "--out", str(out),
                             "--no-progress"], "ev"),
    ("predict", lambda w, out: ["predict", "--checkpoint", str(w.checkpoint), str(w.val_images),
                                "--out", str(out), "--no-progress"], "p"),
    ("export", lambda w, out: ["export", "--checkpoint", str(w.checkpoint), "--out", str(out)], "m.onnx"),
    ("pretrain", lambda w, out: ["pretrain", "--config", str(w.config), "--annotations", str(w.train_json),
                                 "--images", str(w.data / "images" / "train"), "--out", str(out)], "t.pth"),
    ("subset", lambda w, out: ["subset", str(w.train_json), "--out", str(out)], "s.json"),
    ("stats", lambda w, out: ["stats", str(w.train_json), "--plot", str(out)], "sizes.png"),
]


def _inside_input(command: str, argv: Callable, name: str, place: str, overwrite: bool) -> Case:
    flag = ["--overwrite"] if overwrite else []
    return Case(f"{command}-out-{place}" + ("-overwrite" if overwrite else ""),
                lambda w: [*argv(w, PLACES[place](w, name)), *flag], says="input")


INSIDE_INPUTS = [_inside_input(command, argv, name, place, overwrite)
                 for command, argv, name in WRITERS for place in PLACES for overwrite in (False, True)]


def _yolo_folder(w: World) -> Path:
    """A YOLO folder: one val image, its label and data.yaml."""
    images = w.tmp / "yolo"
    images.mkdir()
    first = sorted(w.val_images.iterdir())[0]
    (images / first.name).write_bytes(first.read_bytes())
    (images / f"{first.stem}.txt").write_text("0 0.5 0.5 0.1 0.1\n1 0.2 0.2 0.1 0.1\n")
    (images / "data.yaml").write_text("names: [car, DontCare]\n")
    return images


def _convert(w: World, out: Callable[[World, Path], Path], *extra: str) -> list[str]:
    images = _yolo_folder(w)
    return ["convert", "--format", "yolo", "--images", str(images), "--out", str(out(w, images)), *extra]


CONVERT_PLACES: dict[str, Callable[[World, Path], Path]] = {
    "in-images": lambda w, images: images / "o.json",
    "in-a-new-subfolder-of-images": lambda w, images: images / "new" / "o.json",
    "through-a-link": lambda w, images: _link(w, "link", images) / "o.json",
    "is-the-names-file": lambda w, images: images / "data.yaml",
    "is-a-label": lambda w, images: images / f"{sorted(w.val_images.iterdir())[0].stem}.txt",
}

CONVERT_INSIDE = [
    Case(f"convert-out-{place}" + ("-overwrite" if overwrite else ""),
         lambda w, place=place, overwrite=overwrite: _convert(w, CONVERT_PLACES[place],
                                                              *(["--overwrite"] if overwrite else [])),
         says="input")
    for place in CONVERT_PLACES for overwrite in (False, True)
]


# ----------------------------------------------------------------------------- ownership


def _trained_marker(w: World) -> Path:
    from mrae.ownership import MARKER

    return w.checkpoint.parent.parent / MARKER


def _users_run_folder(w: World, how: str) -> Path:
    """A user's folder with config.yaml and metrics.jsonl, and the trained run's marker put in."""
    from mrae.ownership import MARKER

    folder = w.tmp / "mine"
    folder.mkdir()
    (folder / "config.yaml").write_text("my own notes\n")
    (folder / "metrics.jsonl").write_text('{"my": "log"}\n')
    marker = _trained_marker(w)
    if how == "copy":
        shutil.copy(marker, folder / MARKER)
    elif how == "symlink":
        (folder / MARKER).symlink_to(marker)
    elif how == "hard-link":
        os.link(marker, folder / MARKER)
    elif how == "old-format":
        import hashlib

        record = {"format": "mrae-owner/1", "command": "train", "whole": True, "files": {}}
        body = json.dumps(record, sort_keys=True, separators=(",", ":"))
        record["signature"] = hashlib.sha256(("mrae-owner/1\0" + body).encode()).hexdigest()
        (folder / MARKER).write_text(json.dumps(record))
    return folder


def _own_run_with(w: World, change: str) -> Path:
    """A run folder train made (its marker lists config.yaml), then `change`d by the user."""
    from mrae.ownership import claim_folder

    folder = w.tmp / "run"
    claim = claim_folder(folder, "train", whole=True)
    (folder / "config.yaml").write_text("model: {}\n")
    claim.record([folder / "config.yaml"])
    if change == "a-users-file":
        (folder / "notes.txt").write_text("the user's notes")
    elif change == "an-edited-file":
        (folder / "config.yaml").write_text("model: {} # edited by the user\n")
    elif change == "a-file-in-a-subfolder":
        (folder / "tb").mkdir()
        (folder / "tb" / "events.out.tfevents.mine").write_text("the user's events")
    return folder


def _predict_folder(w: World, name: str = "p") -> Path:
    """A folder predict made: its marker lists the drawing of the first val image."""
    from mrae.ownership import claim_folder

    folder = w.tmp / name
    claim = claim_folder(folder, "predict", exclusive=True)
    first = sorted(w.val_images.iterdir())[0]
    (folder / f"{first.stem}.jpg").write_bytes(b"a drawing")
    claim.record([folder / f"{first.stem}.jpg"])
    return folder


def _copied_predict_folder(w: World) -> Path:
    folder = _predict_folder(w)
    shutil.copytree(folder, w.tmp / "copy")
    return w.tmp / "copy"


def _marked_by(w: World, command: str) -> Path:
    """An empty folder another command has just claimed (its marker, no files yet)."""
    from mrae.ownership import claim_folder

    claim_folder(w.tmp / "taken", command)
    return w.tmp / "taken"


def _predict_into(folder: Callable[[World], Path]) -> Callable[[World], list[str]]:
    return lambda w: ["predict", "--checkpoint", str(w.checkpoint), str(w.val_images), "--out",
                      str(folder(w)), "--no-progress"]


def _linked_drawing(w: World) -> Path:
    """A predict folder whose drawing is now a hard link to the user's album photo."""
    folder = _predict_folder(w)
    first = sorted(w.val_images.iterdir())[0]
    album = w.write("album/photo.jpg", b"the user's photo")
    (folder / f"{first.stem}.jpg").unlink()
    os.link(album, folder / f"{first.stem}.jpg")
    return folder


def _symlinked_drawing(w: World) -> Path:
    folder = _predict_folder(w)
    first = sorted(w.val_images.iterdir())[0]
    album = w.write("album/photo.jpg", b"a drawing")  # the very bytes the marker lists
    (folder / f"{first.stem}.jpg").unlink()
    (folder / f"{first.stem}.jpg").symlink_to(album)
    return folder


OWNERSHIP = [
    *(Case(f"train-over-a-{how}-run-marker",
           lambda w, how=how: ["train", "--config", str(w.config), "--out", str(_users_run_folder(w, how))],
           says=says)
      for how, says in (("copy", "another folder"), ("symlink", "is a link"), ("hard-link", "another folder"),
                        ("old-format", "earlier mrae"))),
    *(Case(f"train-into-its-run-with-{change}",
           lambda w, change=change: ["train", "--config", str(w.config), "--out", str(_own_run_with(w, change))],
           says="did not write")
      for change in ("a-users-file", "an-edited-file", "a-file-in-a-subfolder")),
    Case("predict-into-a-copied-predict-folder", _predict_into(_copied_predict_folder), says="another folder"),
    Case("predict-into-a-folder-eval-just-took", _predict_into(lambda w: _marked_by(w, "eval")),
         says="eval's folder"),
    Case("eval-into-a-folder-predict-just-took",
         lambda w: ["eval", "--checkpoint", str(w.checkpoint), "--out", str(_marked_by(w, "predict")),
                    "--no-progress"], says="predict's folder"),
    Case("predict-over-a-hard-linked-drawing", _predict_into(_linked_drawing), says="--overwrite"),
    Case("predict-over-a-symlinked-drawing", _predict_into(_symlinked_drawing), says="--overwrite"),
    Case("stats-plot-over-a-copied-marker",
         lambda w: ["stats", str(w.train_json), "--plot", str(_copied_plot(w))], says="--overwrite"),
]


def _copied_plot(w: World) -> Path:
    """A user's sizes.png beside a copy of a marker that lists another sizes.png of stats's."""
    from mrae.ownership import record_files

    theirs = w.write("stats/sizes.png", b"stats's plot")
    record_files([theirs], "stats")
    mine = w.write("mine/sizes.png", b"the user's plot")
    shutil.copy(theirs.parent / ".mrae-owner.json", mine.parent / ".mrae-owner.json")
    return mine


# ----------------------------------------------------------------------------- ONNX files


@lru_cache(maxsize=4)
def _stored(checkpoint: str) -> tuple[str, str, str]:
    """The metadata mrae export writes for the world's checkpoint: config, classes, label map."""
    from mrae.engine.checkpoint import load_checkpoint

    state = load_checkpoint(checkpoint)
    return (json.dumps(state["config"]), json.dumps(state["class_names"]),
            json.dumps({str(k): v for k, v in (state.get("label_to_cat") or {}).items()}))


def _onnx(w: World, name: str, *, image: tuple = (3, "h", "w"), image_name: str = "image",
          outputs: dict | None = None, values: dict | None = None, metadata: dict | None = None,
          drop: tuple[str, ...] = ()) -> Path:
    """An .onnx file of constant detections: `outputs` {name: (type, shape)} declared, `values`
    {name: (type, dims, numbers)} returned, the world's metadata with `metadata` replacing keys."""
    import onnx
    from onnx import TensorProto, helper

    from mrae.modeling.onnx_export import CLASSES_KEY, CONFIG_KEY, LABEL_TO_CAT_KEY

    declared = {"boxes": (TensorProto.FLOAT, ["D", 4]), "labels": (TensorProto.INT64, ["D"]),
                "scores": (TensorProto.FLOAT, ["D"]), **(outputs or {})}
    returned = {"boxes": (TensorProto.FLOAT, [1, 4], [2.0, 2.0, 9.0, 9.0]),
                "labels": (TensorProto.INT64, [1], [1]), "scores": (TensorProto.FLOAT, [1], [0.9]),
                **(values or {})}
    nodes = [helper.make_node("Constant", [], [out], value=helper.make_tensor(f"{out}_value", *returned[out]))
             for out in declared if out in returned]
    nodes += [helper.make_node("Identity", [image_name], [out]) for out in declared if out not in returned]
    graph = helper.make_graph(
        nodes, "detections", [helper.make_tensor_value_info(image_name, TensorProto.FLOAT, list(image))],
        [helper.make_tensor_value_info(out, kind, shape) for out, (kind, shape) in declared.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    config, classes, mapping = _stored(str(w.checkpoint))
    stored = {CONFIG_KEY: config, CLASSES_KEY: classes, LABEL_TO_CAT_KEY: mapping, **(metadata or {})}
    for key, value in stored.items():
        if key not in drop:
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
    path = w.tmp / name
    onnx.save(model, str(path))
    return path


def _another_models_graph(w: World) -> Path:
    from onnx import TensorProto

    return _onnx(w, "other.onnx", image=(1, 3, 8, 8), image_name="x",
                 outputs={"y": (TensorProto.FLOAT, [1, 3, 8, 8])}, values={})


def _onnx_cases() -> list[tuple[str, Callable[[World], Path], str, bool]]:
    """(id, the .onnx file, a word of the error, whether it fails only on the images)."""
    from onnx import TensorProto

    from mrae.modeling.onnx_export import CLASSES_KEY, CONFIG_KEY, LABEL_TO_CAT_KEY

    return [
        ("another-models-graph", _another_models_graph, "not a detector", False),
        ("boxes-of-5-columns", lambda w: _onnx(w, "b5.onnx", outputs={"boxes": (TensorProto.FLOAT, ["D", 5])},
                                                values={"boxes": (TensorProto.FLOAT, [1, 5], [1.0] * 5)}),
         "boxes", False),
        ("labels-as-floats", lambda w: _onnx(w, "lf.onnx", outputs={"labels": (TensorProto.FLOAT, ["D"])},
                                              values={"labels": (TensorProto.FLOAT, [1], [1.0])}),
         "labels", False),
        ("a-batch-input", lambda w: _onnx(w, "b.onnx", image=(1, 3, "h", "w")), "image", False),
        ("a-second-input-name", lambda w: _onnx(w, "n.onnx", image_name="pixels"), "inputs", False),
        ("config-not-json", lambda w: _onnx(w, "cj.onnx", metadata={CONFIG_KEY: "{model: "}), "not JSON", False),
        ("config-a-list", lambda w: _onnx(w, "cl.onnx", metadata={CONFIG_KEY: "[1, 2]"}), "not a dict", False),
        ("config-invalid", lambda w: _onnx(w, "ci.onnx", metadata={CONFIG_KEY: '{"model": {"extractor": "nope"}}'}),
         "extractor", False),
        ("no-config", lambda w: _onnx(w, "nc.onnx", drop=(CONFIG_KEY,)), "no mrae config", False),
        ("classes-a-dict", lambda w: _onnx(w, "cd.onnx", metadata={CLASSES_KEY: '{"a": 1}'}), "class_names",
         False),
        ("classes-numbers", lambda w: _onnx(w, "cn.onnx", metadata={CLASSES_KEY: "[1, 2]"}), "class names",
         False),
        ("label-map-of-text", lambda w: _onnx(w, "lm.onnx", metadata={LABEL_TO_CAT_KEY: '{"1": "x"}'}),
         "label_to_cat", False),
        ("labels-out-of-range", lambda w: _onnx(w, "lr.onnx", values={"labels": (TensorProto.INT64, [1], [99])}),
         "labels outside", True),
        ("scores-nan", lambda w: _onnx(w, "sn.onnx", values={"scores": (TensorProto.FLOAT, [1], [float("nan")])}),
         "not finite", True),
    ]


def _onnx_campaign() -> list[Case]:
    pytest.importorskip("onnx")
    cases = []
    for name, make, says, at_run in _onnx_cases():
        cases.append(Case(f"eval-onnx-{name}",
                          lambda w, make=make: ["eval", "--checkpoint", str(make(w)), "--no-progress"],
                          says=says))
        # a predict that fails on the images has claimed its folder: its record says it stopped
        cases.append(Case(f"predict-onnx-{name}",
                          lambda w, make=make: ["predict", "--checkpoint", str(make(w)), str(w.val_images),
                                                "--out", str(w.tmp / "p"), "--no-progress"],
                          says=says, new_files_ok=at_run))
    return cases


# ----------------------------------------------------------------------------- bounds


BOUNDS = [
    Case("predict-slice-1x1", lambda w: ["predict", "--checkpoint", str(w.checkpoint), str(w.val_images),
                                         "--out", str(w.tmp / "p"), "--slice", "1x1", "--no-progress"],
         says="4096"),
    Case("predict-slice-2x2-overlap-0.5",
         lambda w: ["predict", "--checkpoint", str(w.checkpoint), str(w.val_images), "--out", str(w.tmp / "p"),
                    "--slice", "2x2", "--overlap", "0.5", "--no-progress"], says="4096"),
    Case("eval-slice-1x1", lambda w: ["eval", "--checkpoint", str(w.checkpoint), "--out", str(w.tmp / "ev"),
                                      "--slice", "1x1", "--no-progress"], says="4096"),
    Case("eval-slice-3x3-overlap-0.9",
         lambda w: ["eval", "--checkpoint", str(w.checkpoint), "--out", str(w.tmp / "ev"), "--slice", "3x3",
                    "--overlap", "0.9", "--no-progress"], says="4096"),
    *(Case(f"export-example-size-{size}",
           lambda w, size=size: ["export", "--checkpoint", str(w.checkpoint), "--out", str(w.tmp / "m.onnx"),
                                 "--example-size", size], says=says)
      for size, says in (("100000x100000", "4096"), ("4097x64", "4096"), ("64x4097", "4096"),
                         ("0x64", "example-size"), ("64x-1", "example-size"))),
]


# ----------------------------------------------------------------------------- the silent cases


def _no_boxes(w: World) -> Path:
    return w.coco("no_boxes.json", lambda d: d.update(annotations=[]))


def _crowd_only(w: World) -> Path:
    def crowd(data: dict) -> None:
        for a in data["annotations"]:
            a["iscrowd"] = 1

    return w.coco("crowd.json", crowd)


def _racing_export(w: World, mp: pytest.MonkeyPatch) -> None:
    """Another export writes the same --out while this one traces the model."""
    import mrae.modeling.onnx_export as onnx_export

    real = onnx_export.export_onnx

    def export_then_find_the_other(model, path, **kwargs):
        (w.tmp / "m.onnx").write_bytes(b"the other export's model")
        return real(model, path, **kwargs)

    mp.setattr(onnx_export, "export_onnx", export_then_find_the_other)


def _eval_takes_the_folder(w: World, mp: pytest.MonkeyPatch) -> None:
    """An eval claims predict's new folder while predict loads its model."""
    import mrae.engine.trained as trained
    from mrae.ownership import claim_folder

    real = trained.load_trained

    def load_while_eval_claims(*args, **kwargs):
        claim_folder(w.tmp / "p", "eval")
        return real(*args, **kwargs)

    mp.setattr(trained, "load_trained", load_while_eval_claims)


SILENT = [
    *(Case(f"eval-override-{key}",
           lambda w, override=override: ["eval", "--checkpoint", str(w.checkpoint), "--out", str(w.tmp / "ev"),
                                         override, "--no-progress"], says="cannot change")
      for key, override in (("extractor", "model.extractor=sum"), ("backbone", "model.backbone=resnet34"),
                            ("detections-per-img", "model.detections_per_img=500"))),
    Case("convert-ignore-every-class",
         lambda w: _convert(w, lambda w, images: w.tmp / "o.json", "--ignore-classes", "car,DontCare"),
         says="every class"),
    Case("pretrain-annotations-without-boxes",
         lambda w: ["pretrain", "--config", str(w.config), "--annotations", str(_no_boxes(w)), "--images",
                    str(w.data / "images" / "train"), "--out", str(w.tmp / "t.pth")], says="no object box"),
    Case("pretrain-annotations-crowd-only",
         lambda w: ["pretrain", "--config", str(w.config), "--annotations", str(_crowd_only(w)), "--images",
                    str(w.data / "images" / "train"), "--out", str(w.tmp / "t.pth")], says="no object box"),
    Case("export-racing-another-export",
         lambda w: ["export", "--checkpoint", str(w.checkpoint), "--out", str(w.tmp / "m.onnx")],
         says="another command", new_files_ok=True, setup=_racing_export),
    Case("predict-racing-an-eval",
         lambda w: ["predict", "--checkpoint", str(w.checkpoint), str(w.val_images), "--out", str(w.tmp / "p"),
                    "--no-progress"], says="eval's folder", new_files_ok=True, setup=_eval_takes_the_folder),
]


def _study(w: World, report: Path, *extra: str) -> list[str]:
    shutil.copy(w.config, w.tmp / "row.yaml")
    study = w.write("study.yaml", f"out: {w.tmp / 'study'}\nrows:\n  - {{name: a, config: row.yaml, role: mrae}}\n")
    return ["study", str(study), "--quick", "--report", str(report), *extra]


STUDY = [
    Case(f"study-report-{place}" + ("-overwrite" if overwrite else ""),
         lambda w, place=place, overwrite=overwrite: _study(w, PLACES[place](w, "r.md"),
                                                             *(["--overwrite"] if overwrite else [])),
         says="input")
    for place in ("in-val-images", "in-annotations", "through-a-link") for overwrite in (False, True)
]


CASES = [*INSIDE_INPUTS, *STUDY, *CONVERT_INSIDE, *OWNERSHIP, *_onnx_campaign(), *BOUNDS, *SILENT]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_clear_line_and_loses_nothing(case, world_files, tmp_path, capsys, caplog, monkeypatch):
    run_case(case, world_files, tmp_path, capsys, caplog, monkeypatch, hang_seconds=HANG_SECONDS)


def test_the_third_campaign_has_its_cases():
    assert len(CASES) >= 100  # the README's reliability section states the count
    assert len({c.id for c in CASES}) == len(CASES)


# ----------------------------------------------------------------------------- what the record says


def test_a_predict_that_fails_on_the_images_leaves_a_record_that_says_so(world_files, tmp_path, capsys):
    data, _, checkpoint = world_files
    world = World(data, world_files[1], checkpoint, tmp_path)
    bad = _onnx(world, "lr.onnx", values={"labels": (__import__("onnx").TensorProto.INT64, [1], [99])})
    out = tmp_path / "p"
    assert cli.main(["predict", "--checkpoint", str(bad), str(data / "images" / "val"), "--out", str(out),
                     "--no-progress"]) == 2
    record = json.loads((out / "predict.json").read_text())
    assert record["complete"] is False and "labels outside" in record["stopped"]
    assert cli.main(["predict", "--checkpoint", str(checkpoint), str(data / "images" / "val"), "--out",
                     str(out), "--no-progress"]) in (0, 1)  # its own folder: written again
    assert json.loads((out / "predict.json").read_text())["complete"] is True
