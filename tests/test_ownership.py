"""mrae.ownership: a command writes only into a place it made or can prove is its own."""

from __future__ import annotations

import json

import pytest

from mrae.errors import ConfigError
from mrae.ownership import (
    MARKER,
    check_file,
    check_not_input,
    claim_folder,
    dataset_root,
    read_marker,
    record_files,
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


def test_a_whole_folder_marker_covers_every_file(tmp_path):
    run = tmp_path / "run"
    claim_folder(run, "train", whole=True)
    (run / "config.yaml").write_text("x")
    claim = claim_folder(run, "train", whole=True)
    assert claim.check("config.yaml") == run / "config.yaml"
    assert claim_folder(run, "study", accept=("train",)).own


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
