"""mrae.ownership: a command writes only into a place it made or can prove is its own."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from mrae.errors import ConfigError
from mrae.ownership import (
    MARKER,
    binds,
    check_file,
    check_not_input,
    claim_folder,
    dataset_root,
    read_marker,
    record_files,
    record_whole,
)


def test_a_new_or_empty_folder_becomes_the_commands_own(tmp_path):
    claim = claim_folder(tmp_path / "new", "eval")
    assert claim.own and read_marker(tmp_path / "new")["command"] == "eval"
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".lock").write_text("1")  # housekeeping does not count
    assert claim_folder(tmp_path / "empty", "eval").own


def test_a_folder_with_other_files_needs_overwrite(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "config.yaml").write_text("my notes")
    with pytest.raises(ConfigError, match="config.yaml.*--overwrite"):
        claim_folder(tmp_path / "mine", "train")
    claim = claim_folder(tmp_path / "mine", "train", overwrite=True)
    assert not claim.own and read_marker(tmp_path / "mine") is None  # consent is not ownership


def test_a_file_with_the_markers_name_is_not_a_marker(tmp_path):
    folder = tmp_path / "f"
    claim_folder(folder, "predict")
    record = json.loads((folder / MARKER).read_text())
    record["command"] = "predict"
    record["files"] = {"holiday.jpg": {"sha256": "0" * 64, "by": None}}  # edited: signature fails
    (folder / MARKER).write_text(json.dumps(record))
    assert read_marker(folder) is None
    (folder / MARKER).write_text('{"files": ["holiday.jpg"]}')  # a foreign manifest
    assert read_marker(folder) is None


def test_own_files_are_replaced_changed_ones_are_not(tmp_path):
    folder = tmp_path / "ev"
    claim = claim_folder(folder, "eval")
    (folder / "metrics_val.json").write_text("{}")
    claim.record([folder / "metrics_val.json"], producer="ckpt A")
    claim = claim_folder(folder, "eval")
    assert claim.check("metrics_val.json", producer="ckpt A") == folder / "metrics_val.json"
    with pytest.raises(ConfigError, match="--overwrite"):  # another producer's result is kept
        claim.check("metrics_val.json", producer="ckpt B")
    (folder / "metrics_val.json").write_text('{"edited": 1}')
    with pytest.raises(ConfigError, match="changed since"):
        claim.check("metrics_val.json", producer="ckpt A")
    assert claim_folder(folder, "eval", overwrite=True).check("metrics_val.json", "ckpt A")


def test_a_whole_folder_is_the_commands_while_every_file_in_it_is_listed_unchanged(tmp_path):
    run = tmp_path / "run"
    claim = claim_folder(run, "train", whole=True)
    (run / "checkpoints").mkdir()
    (run / "config.yaml").write_text("x")
    (run / "checkpoints" / "step_0000001.pth").write_bytes(b"weights")
    claim.record([run / "config.yaml", run / "checkpoints" / "step_0000001.pth"])
    claim = claim_folder(run, "train", whole=True)
    assert claim.own and claim.check("config.yaml") == run / "config.yaml"
    assert claim_folder(run, "study", accept=("train",)).own

    (run / "notes.txt").write_text("the user's")  # a file the command did not write
    with pytest.raises(ConfigError, match="1 file.*notes.txt.*--overwrite"):
        claim_folder(run, "train", whole=True)
    (run / "notes.txt").unlink()
    (run / "checkpoints" / "step_0000001.pth").write_bytes(b"edited")  # changed since, at depth
    with pytest.raises(ConfigError, match="changed since.*checkpoints/step_0000001.pth"):
        claim_folder(run, "train", whole=True)
    assert not claim_folder(run, "train", whole=True, overwrite=True).own


def test_record_whole_lists_a_runs_files_in_its_bound_marker_only(tmp_path):
    run = tmp_path / "run"
    claim_folder(run, "study", whole=True)
    (run / "metrics.jsonl").write_text("{}\n")
    assert record_whole(run, [run / "metrics.jsonl"])
    marker = read_marker(run)
    assert marker["command"] == "study" and marker["whole"] and set(marker["files"]) == {"metrics.jsonl"}
    taken = tmp_path / "taken"  # a folder taken with --overwrite has no marker and gets none
    taken.mkdir()
    (taken / "metrics.jsonl").write_text("{}\n")
    assert not record_whole(taken, [taken / "metrics.jsonl"]) and read_marker(taken) is None


def test_a_copied_or_linked_marker_proves_nothing_about_another_folder(tmp_path):
    run = tmp_path / "run"
    claim_folder(run, "train", whole=True)
    for how in ("copy", "symlink", "hard link"):
        users = tmp_path / how.replace(" ", "_")
        users.mkdir()
        (users / "config.yaml").write_text("the user's config")
        (users / "metrics.jsonl").write_text("the user's log")
        if how == "copy":
            (users / MARKER).write_bytes((run / MARKER).read_bytes())
        elif how == "symlink":
            (users / MARKER).symlink_to(run / MARKER)
        else:
            os.link(run / MARKER, users / MARKER)
        assert read_marker(users) is None or not binds(read_marker(users), users)
        with pytest.raises(ConfigError, match="2 file.*--overwrite"):
            claim_folder(users, "train", whole=True)
    with pytest.raises(ConfigError, match="written in another folder"):
        claim_folder(tmp_path / "copy", "train", whole=True)
    with pytest.raises(ConfigError, match="is a link"):
        claim_folder(tmp_path / "symlink", "train", whole=True)


def test_a_copied_folder_is_not_the_commands_a_moved_one_stays_so(tmp_path):
    import shutil

    folder = tmp_path / "p"
    claim = claim_folder(folder, "predict", exclusive=True)
    (folder / "x.jpg").write_text("drawn")
    claim.record([folder / "x.jpg"])
    shutil.copytree(folder, tmp_path / "copy")
    with pytest.raises(ConfigError, match="another folder"):
        claim_folder(tmp_path / "copy", "predict", exclusive=True)
    folder.rename(tmp_path / "moved")
    assert claim_folder(tmp_path / "moved", "predict", exclusive=True).own


def test_a_marker_of_the_earlier_format_proves_nothing_and_says_so(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("the user's")
    record = {"format": "mrae-owner/1", "command": "train", "whole": True, "files": {}}
    body = json.dumps(record, sort_keys=True, separators=(",", ":"))
    record["signature"] = hashlib.sha256(("mrae-owner/1\0" + body).encode()).hexdigest()
    (run / MARKER).write_text(json.dumps(record))
    assert read_marker(run) is None
    with pytest.raises(ConfigError, match="earlier mrae.*mrae-owner/1.*--overwrite"):
        claim_folder(run, "train", whole=True)
    assert (run / "config.yaml").read_text() == "the user's"


def test_a_files_only_marker_proves_its_files_bytes_never_the_folder(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "results.md").write_text("page")
    record_files([docs / "results.md"], "study")
    assert read_marker(docs)["folder"] is None
    check_file(docs / "results.md", "study")  # the study's own bytes: it may write them again
    (docs / "results.md").write_text("edited by hand")
    with pytest.raises(ConfigError, match="--overwrite"):
        check_file(docs / "results.md", "study")
    (docs / "results.md").write_text("page")
    (docs / "notes.md").write_text("the user's")
    with pytest.raises(ConfigError, match="did not write"):  # never makes docs/ the study's
        claim_folder(docs, "study", exclusive=True)


def test_inputs_and_datasets_are_never_written_over(tmp_path):
    data = tmp_path / "data"
    (data / "annotations").mkdir(parents=True)
    (data / "images" / "train").mkdir(parents=True)
    ann = data / "annotations" / "train.json"
    ann.write_text("{}")
    image = data / "images" / "train" / "0.jpg"
    image.write_text("jpeg")
    assert dataset_root(ann) == data.resolve() and dataset_root(image) == data.resolve()
    with pytest.raises(ConfigError, match="is an input"):
        check_not_input(ann, [ann])
    with pytest.raises(ConfigError, match="holds the input"):
        check_not_input(data, [ann])
    with pytest.raises(ConfigError, match="inside the input dataset"):
        check_file(image, "stats", inputs=[ann], overwrite=True, datasets=[dataset_root(ann)])
    with pytest.raises(ConfigError, match="already exists"):
        check_file(image, "stats", inputs=[ann])
    with pytest.raises(ConfigError, match="holds the input"):
        claim_folder(data, "train", inputs=[ann], overwrite=True)
    check_file(tmp_path / "new.png", "stats", inputs=[ann])  # a new file anywhere is fine


def test_record_files_keeps_another_commands_marker(tmp_path):
    claim_folder(tmp_path / "run", "train", whole=True)
    (tmp_path / "run" / "page.md").write_text("x")
    record_files([tmp_path / "run" / "page.md"], "study")
    assert read_marker(tmp_path / "run")["command"] == "train"


def test_a_marker_copied_elsewhere_proves_nothing_about_other_bytes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    claim = claim_folder(a, "predict")
    (a / "x.jpg").write_text("drawn")
    claim.record([a / "x.jpg"])
    b.mkdir()
    (b / MARKER).write_bytes((a / MARKER).read_bytes())
    (b / "x.jpg").write_text("the user's photo")
    with pytest.raises(ConfigError, match="--overwrite"):
        claim_folder(b, "predict").check("x.jpg")


def test_a_listed_name_that_is_now_a_link_is_not_the_commands_file(tmp_path):
    folder = tmp_path / "ev"
    claim = claim_folder(folder, "eval")
    (folder / "metrics_val.json").write_text("{}")
    claim.record([folder / "metrics_val.json"], producer="A")
    users = tmp_path / "users.json"
    users.write_text("{}")  # the same bytes, but the user's file
    (folder / "metrics_val.json").unlink()
    (folder / "metrics_val.json").symlink_to(users)
    with pytest.raises(ConfigError, match="--overwrite"):
        claim_folder(folder, "eval").check("metrics_val.json", producer="A")


def test_a_log_the_command_keeps_does_not_count_in_its_whole_claim(tmp_path):
    run = tmp_path / "run"
    claim_folder(run, "study", whole=True)
    (run / "study.log").write_text("the worker's output so far")
    assert claim_folder(run, "train", whole=True, accept=("study",), kept=("study.log",)).own
    with pytest.raises(ConfigError, match="study.log"):
        claim_folder(run, "train", whole=True, accept=("study",))
