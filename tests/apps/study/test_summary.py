"""Aggregating finished runs: roles and model settings from the configs, sample spread, curves,
divergences, the continued run's offset, and a results dict that is standard JSON."""

import json
import math

from mrae.apps.study.spec import load_study, run_dir
from mrae.apps.study.summary import build_results, summarize
from mrae.files import write_json_atomic


def _finish(folder, metrics: dict, curve: list[tuple[int, float]]) -> None:
    write_json_atomic(folder / "final_metrics.json", metrics)
    lines = [json.dumps({"step": s, "loss": 1.0}) for s, _ in curve]
    lines += [json.dumps({"step": s, "eval": {"AP": ap, "AP50": None}}) for s, ap in curve]
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def _study(tmp_path):
    (tmp_path / "c2.yaml").write_text("model: {extractor: single, level: 2}\ntrain: {steps: 20}\n")
    (tmp_path / "t1.yaml").write_text("model: {extractor: mrae, template: 1}\ntrain: {steps: 20}\n")
    (tmp_path / "t2.yaml").write_text("model: {extractor: mrae, template: 2}\ntrain: {steps: 20}\n")
    path = tmp_path / "study.yaml"
    path.write_text(
        f"out: {tmp_path / 'runs'}\n"
        "rows:\n"
        "  - {name: single C2, config: c2.yaml, role: baseline, seeds: 3}\n"
        "  - {name: MRAE template 1, config: t1.yaml, role: mrae}\n"
        "  - {name: mixed, config: t2.yaml, role: mixed, init_from: MRAE template 1}\n"
        "  - {name: long, config: t2.yaml, role: mrae_long, schedule_scale: 2}\n"
        "  - {name: not run, config: t2.yaml, role: mrae}\n"
    )
    return load_study(path)


def test_finished_runs_are_summarized_with_their_role_and_model(tmp_path):
    study = _study(tmp_path)
    c2, t1, mixed, long = study.rows[:4]
    _finish(run_dir(study, c2, 0), {"AP": 0.02, "APm": math.nan, "train_seconds": 5.0}, [(10, 0.01), (20, 0.02)])
    _finish(run_dir(study, c2, 1), {"AP": 0.04, "APm": math.nan, "train_seconds": 5.0}, [(10, 0.02), (20, 0.04)])
    write_json_atomic(run_dir(study, c2, 2) / "final_metrics.json", {"diverged": "at step 3", "train_seconds": 1.0})
    _finish(run_dir(study, t1, 0), {"AP": 0.03, "attention": [0.5, 0.3, 0.2]}, [(10, 0.01), (20, 0.03)])
    _finish(run_dir(study, mixed, 0), {"AP": 0.05, "attention": [0.2, 0.6, 0.2]}, [(10, 0.04), (20, 0.05)])
    _finish(run_dir(study, long, 0), {"AP": 0.06}, [(20, 0.04), (40, 0.06)])
    rows = summarize(study)
    assert [e["name"] for e in rows] == ["single C2", "MRAE template 1", "mixed", "long"]
    single = rows[0]
    assert single["role"] == "baseline" and single["model"]["level"] == 2
    assert single["seeds"] == [0, 1] and single["diverged"] == {"2": "at step 3"}
    assert single["mean"]["AP"] == 0.03
    assert math.isclose(single["std"]["AP"], 0.01 * math.sqrt(2))  # the sample std (n - 1)
    assert math.isnan(single["mean"]["APm"])
    assert single["curves"][0] == [[10, 0.01], [20, 0.02]]
    assert rows[1]["model"]["template"] == 1 and rows[1]["attention"] == [0.5, 0.3, 0.2]
    assert rows[2]["step_offset"] == 20 and rows[2]["init_from"] == "MRAE template 1"
    assert (rows[3]["schedule_scale"], rows[3]["steps"]) == (2, 40)
    assert rows[1]["std"]["AP"] == 0.0  # one seed: no spread

    results = build_results(study, rows, "mrae study study.yaml", "abc", quick=False)
    text = json.dumps(results, allow_nan=False)  # NaN became null: standard JSON
    assert json.loads(text)["rows"][0]["mean"]["APm"] is None
    assert results["budget"]["steps"] == 20 and results["budget"]["differs"] == []
    assert [s["name"] for s in results["budget"]["scaled"]] == ["long"]
    assert results["budget"]["continued"] == [
        {"name": "mixed", "init_from": "MRAE template 1", "steps": 20, "total_steps": 40}]
    claims = {c["id"]: c for c in results["claims"]}
    assert claims["mixed_hurts"]["comparisons"][0]["a"] == "long"
    assert claims["mixed_hurts"]["verdict"] == "undecided"  # one seed each: no interval
    # the diverged seed has a result; the rows without any are pending, by seed
    [pending] = results["pending"]
    assert (pending["name"], pending["role"], pending["model"]["template"], pending["seeds"]) == ("not run", "mrae", 2, [0])
    del rows[0]  # without single C2's results, its three seeds are pending; --quick runs one a row
    assert build_results(study, rows, "mrae study", "abc")["pending"][0]["seeds"] == [0, 1, 2]
    assert build_results(study, rows, "mrae study", "abc", quick=True)["pending"][0]["seeds"] == [0]


def test_the_page_says_where_the_runs_trained():
    from mrae.apps.study.budget import trained_on_lines
    from mrae.apps.study.summary import pinned_torch, trained_on

    pin = pinned_torch()  # pyproject's torch==X
    assert pin
    gpu = {"device": "NVIDIA H200", "torch": "2.11.0+cu130", "mixed_precision": True}
    # a record without `machine` trained on the CPU with the pinned torch: the same machine as a
    # record that names it, whatever the wheel's build label
    rows = [{"name": "single C2", "runs": [{"AP": 0.1}, {"AP": 0.2, "machine": {
                 "device": "CPU", "torch": f"{pin}+cu130", "mixed_precision": False}}]},
            {"name": "RetinaNet sum", "runs": [{"AP": 0.3, "machine": gpu}, {"AP": 0.3, "machine": gpu}]}]
    groups = trained_on(rows)
    assert [(g["device"], g["runs"], g["rows"]) for g in groups] == [
        ("CPU", 2, ["single C2"]), ("NVIDIA H200", 2, ["RetinaNet sum"])]
    lines = trained_on_lines(groups)
    assert lines[0].startswith("- runs trained on several machines")
    assert lines[2] == "  - NVIDIA H200, torch 2.11.0, mixed precision: 2 runs, rows RetinaNet sum"
    assert trained_on_lines(trained_on(rows[:1])) == [f"- runs trained on: CPU, torch {pin} (all 2 runs)"]
    # another torch on the same device is another machine
    other = [{"name": "single C2", "runs": [{"AP": 0.1}, {"AP": 0.2, "machine": {
                  "device": "CPU", "torch": "0.0.1", "mixed_precision": False}}]}]
    assert len(trained_on(other)) == 2


def test_the_budget_counts_epochs_of_a_coco_training_set_too(tmp_path):
    from mrae.apps.study.summary import budget

    images = [{"id": i, "file_name": f"{i}.png", "width": 64, "height": 48} for i in range(1, 9)]
    coco = {"images": images, "annotations": [], "categories": [{"id": 1, "name": "car"}]}
    (tmp_path / "train.json").write_text(json.dumps(coco))
    (tmp_path / "c2.yaml").write_text(
        "model: {extractor: single, level: 2}\ntrain: {steps: 20, batch_size: 2}\n"
        f"data: {{train_images: {tmp_path}, train_annotations: {tmp_path / 'train.json'}}}\n")
    path = tmp_path / "study.yaml"
    path.write_text(f"out: {tmp_path / 'runs'}\nrows:\n  - {{name: C2, config: c2.yaml, role: baseline}}\n")
    assert budget(load_study(path))["epochs"] == 5.0  # 20 steps x 2 images / 8 images
    (tmp_path / "train.json").unlink()  # rendered where the data is not: no epochs, no error
    (tmp_path / "c2.yaml").write_text((tmp_path / "c2.yaml").read_text().replace("train.json", "gone.json"))
    assert budget(load_study(path))["epochs"] is None


def test_trunk_start_rows_share_the_budget_but_their_initial_weights_and_coco_splits_are_named(tmp_path):
    from mrae.apps.study.budget import budget_lines
    from mrae.apps.study.summary import budget

    coco = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "car"}]}
    for split in ("train", "val"):
        (tmp_path / f"{split}.json").write_text(json.dumps(coco))
    data = (f"data: {{train_images: {tmp_path}, train_annotations: {tmp_path / 'train.json'}, "
            f"val_images: {tmp_path}, val_annotations: {tmp_path / 'val.json'}}}\n")
    (tmp_path / "c1.yaml").write_text("model: {extractor: single, level: 1, pretrained: synthetic}\n" + data)
    (tmp_path / "c1_scratch.yaml").write_text("model: {extractor: single, level: 1, pretrained: null}\n" + data)
    (tmp_path / "c2.yaml").write_text("model: {extractor: single, level: 2, pretrained: synthetic}\n"
                                      "train: {batch_size: 4}\n" + data)
    path = tmp_path / "study.yaml"
    path.write_text(f"out: {tmp_path / 'runs'}\nrows:\n"
                    "  - {name: C1, config: c1.yaml, role: baseline}\n"
                    "  - {name: C1 scratch, config: c1_scratch.yaml, role: start}\n"
                    "  - {name: C2, config: c2.yaml, role: baseline}\n")
    b = budget(load_study(path))
    assert b["differs"] == ["C2"]  # its batch; the start row differs in its initial weights by design
    assert b["starts"] == [{"name": "C1 scratch", "pretrained": None}]
    assert b["data"] == f"data: {tmp_path / 'train.json'} (train) and {tmp_path / 'val.json'} (val), images in {tmp_path}"
    line = budget_lines({"budget": b, "rows": []})[0]
    assert line.startswith("- budget, the first row's; different for C2 (the initial weights aside: "
                           "C1 scratch: random):")


def test_the_page_names_the_trunk_files_the_runs_began_from():
    from mrae.apps.study.budget import trunk_lines
    from mrae.apps.study.summary import trunks

    a = {"pretrained": "dataset", "sha256": "a" * 16, "held_out_accuracy": 0.895}
    b = {"pretrained": "dataset", "sha256": "b" * 16, "held_out_accuracy": 0.869}
    synthetic = {"pretrained": "synthetic", "sha256": "c" * 16}

    def entry(name, pretrained, runs):
        return {"name": name, "model": {"pretrained": pretrained}, "runs": runs}

    rows = [entry("single C1", "dataset", [{"AP": 0.1, "trunk": a}, {"AP": 0.1, "trunk": a}]),
            entry("single C1, no pretraining", None, [{"AP": 0.1}]),  # no trunk file: in neither
            entry("single C1, synthetic trunk", "synthetic", [{"AP": 0.1, "trunk": synthetic}])]
    one_per_start = trunks(rows)
    assert [(g["sha256"][0], g["runs"], g["rows"]) for g in one_per_start["groups"]] == [
        ("a", 2, ["single C1"]), ("c", 1, ["single C1, synthetic trunk"])]
    lines = trunk_lines(one_per_start)
    # a trunk per pretraining (the rows of role start differ in it by design): no warning
    assert lines[0] == ("- trunk files (sha256, first 16 digits): one per pretraining; every run of a "
                        "pretraining began from its file:")
    assert lines[1] == f"  - `{'a' * 16}` (model.pretrained: dataset, held-out accuracy 0.895): 2 runs, rows single C1"
    # the same recipe pretrained on two machines, and a run recorded before the study kept its trunk
    rows.append(entry("MRAE template 2", "dataset", [{"AP": 0.1}, {"AP": 0.1, "trunk": b}]))
    lines = trunk_lines(trunks(rows))
    assert lines[0].startswith("- trunk files (sha256, first 16 digits): the runs of one pretraining "
                               "(dataset) began from several. Pretraining is bit-reproducible")
    assert f"  - `{'b' * 16}` (model.pretrained: dataset, held-out accuracy 0.869): 1 runs, rows MRAE template 2" in lines
    assert lines[-1] == "  - not recorded (finished before the study kept it): 1 runs, rows MRAE template 2"
    # one trunk file, and a run that did not record its own
    unrecorded = trunk_lines(trunks([rows[0], entry("sum", "dataset", [{"AP": 0.1}])]))
    assert unrecorded[0].startswith("- trunk files (sha256, first 16 digits): the runs did not all record theirs.")
    # one trunk for every run: one line; none recorded (older results): no line
    assert trunk_lines(trunks(rows[:1])) == [
        "- trunk file (sha256, first 16 digits): every run with a pretrained trunk began from "
        f"`{'a' * 16}` (model.pretrained: dataset, held-out accuracy 0.895)"]
    assert trunk_lines(trunks(rows[1:2])) == [] and trunk_lines(None) == []
