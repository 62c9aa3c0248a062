"""Which pretrained trunk each study run starts from: kept in the run's folder as it starts (and
through a resume on another machine), and one trunk per study (a run from another is refused)."""

import json

import pytest

from mrae.apps.study import runner, trunks
from mrae.apps.study.spec import run_dir
from mrae.errors import ConfigError
from mrae.files import write_json_atomic


def test_a_run_keeps_the_trunk_it_began_from_even_when_resumed_on_another_machine(tmp_path, monkeypatch, small_study):
    import mrae.apps.study.measure
    import mrae.engine.train
    from mrae.errors import TrainingDiverged

    trunk = {"pretrained": "synthetic", "sha256": "a" * 16, "held_out_accuracy": 0.9}
    monkeypatch.setattr(mrae.apps.study.measure, "trunk_identity", lambda cfg: dict(trunk))

    def diverges(cfg, folder, resume, init_from):
        # the trunk is kept before the first step, where a resume finds it
        assert json.loads((folder / trunks.TRUNK_FILE).read_text()) == {**trunk, "sha256": "a" * 16}
        # and listed in the folder's marker, so that training's own claim of the folder takes it
        from mrae.ownership import claim_folder

        claim_folder(folder, "train", whole=True, accept=("study",), create=False)
        raise TrainingDiverged("training diverged at step 3")

    monkeypatch.setattr(mrae.engine.train, "train", diverges)
    study = small_study(tmp_path, records=False)
    record = runner.run_row(study, study.rows[0], 0, quick=False)
    assert record["trunk"]["sha256"] == "a" * 16
    # resumed where the cache holds another trunk (another CPU pretrained it): the start is kept
    folder = run_dir(study, study.rows[0], 1)
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "last.pth").write_bytes(b"")
    write_json_atomic(folder / trunks.TRUNK_FILE, trunk)
    trunk["sha256"] = "b" * 16
    monkeypatch.setattr(mrae.engine.train, "train",
                        lambda *a, **k: (_ for _ in ()).throw(TrainingDiverged("diverged at step 9")))
    assert runner.run_row(study, study.rows[0], 1, quick=False)["trunk"]["sha256"] == "a" * 16
    # a run continuing another began from that run's trunk; a run begun before the study kept it has none
    assert trunks.run_trunk(study, study.rows[2], 1) == {}
    write_json_atomic(run_dir(study, study.rows[1], 1) / trunks.TRUNK_FILE, trunk)
    assert trunks.run_trunk(study, study.rows[2], 1) == {"trunk": trunk}


def test_the_trunk_is_named_by_its_file_hash_and_held_out_accuracy(tmp_path):
    import hashlib

    from mrae.apps.study.measure import trunk_identity
    from mrae.engine.config import load_config

    weights = tmp_path / "trunk.pth"
    weights.write_bytes(b"weights")
    (tmp_path / "c.yaml").write_text(f"model: {{pretrained: {weights}}}\n")
    cfg = load_config(tmp_path / "c.yaml")
    assert trunk_identity(cfg) == {"pretrained": str(weights),
                                   "sha256": hashlib.sha256(b"weights").hexdigest()[:16]}
    (tmp_path / "trunk.json").write_text(json.dumps({"val_accuracy": 0.86894}))
    assert trunk_identity(cfg)["held_out_accuracy"] == 0.8689
    assert trunk_identity(load_config(tmp_path / "c.yaml", ["model.pretrained=null"])) is None


def _trunk_study(tmp_path, small_study, monkeypatch, this_machine: str):
    """single C1 seed 0 finished from trunk `aaaa`; this machine's trunk is `this_machine`; runs
    record that they started instead of training."""
    import mrae.apps.study.measure

    study = small_study(tmp_path, records=False)
    write_json_atomic(run_dir(study, study.rows[0], 0) / "final_metrics.json",
                      {"AP": 0.1, "trunk": {"pretrained": "synthetic", "sha256": "aaaa"}})
    monkeypatch.setattr(mrae.apps.study.measure, "trunk_identity", lambda cfg: {
        "pretrained": str(cfg.model.pretrained), "sha256": this_machine, "held_out_accuracy": 0.87})
    monkeypatch.setattr(runner, "prepare_shared", lambda *args: None)
    started = []

    def run_row(study, row, seed, quick):
        started.append((row.name, seed))
        return {"AP": 0.1}

    monkeypatch.setattr(runner, "run_row", run_row)
    return study, started


def test_a_run_from_another_trunk_than_the_finished_runs_is_refused(tmp_path, small_study, monkeypatch):
    study, started = _trunk_study(tmp_path, small_study, monkeypatch, this_machine="bbbb")
    with pytest.raises(ConfigError, match=r"single C1, seed 1 would start from the synthetic-pretrained "
                       r"trunk bbbb, held-out accuracy 0.87, but the study's finished runs of that "
                       r"pretraining began from aaaa \(1 run\).*--mixed-trunks"):
        runner.run_jobs(study, [(study.rows[0], 1), (study.rows[1], 0)], quick=False)
    assert started == []  # refused before any run starts


def test_mixed_trunks_train_on_with_a_warning(tmp_path, small_study, monkeypatch, capsys):
    study, started = _trunk_study(tmp_path, small_study, monkeypatch, this_machine="bbbb")
    runner.run_jobs(study, [(study.rows[0], 1)], quick=False, mixed_trunks=True)
    assert started == [("single C1", 1)]
    assert "warning: single C1, seed 1 would start from the synthetic-pretrained trunk bbbb" in capsys.readouterr().out


def test_runs_from_the_finished_runs_trunk_and_resumed_runs_are_not_held_up(tmp_path, small_study, monkeypatch):
    study, started = _trunk_study(tmp_path, small_study, monkeypatch, this_machine="aaaa")
    runner.run_jobs(study, [(study.rows[0], 1)], quick=False)
    assert started == [("single C1", 1)]
    # another trunk here, but the run already began (its trunk file is in its folder): it resumes
    (tmp_path / "b").mkdir()
    study, started = _trunk_study(tmp_path / "b", small_study, monkeypatch, this_machine="bbbb")
    write_json_atomic(run_dir(study, study.rows[1], 0) / trunks.TRUNK_FILE, {"sha256": "aaaa"})
    runner.run_jobs(study, [(study.rows[1], 0)], quick=False)
    assert started == [("MRAE template 1", 0)]
