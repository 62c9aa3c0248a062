"""The host sections of the config (issue 34: one switch between hosts) and the migration of the
layout before them (flat host keys in files, stored configs and checkpoints)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mrae.engine.config import config_from_dict, load_config, move_host_keys, to_dict
from mrae.errors import ConfigError
from mrae.modeling import registry

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
SWITCHABLE = sorted(p for folder in ("synth", "synth/hosts", "hituav", "hituav/synthetic_trunk")
                    for p in (CONFIGS / folder).glob("*.yaml") if not p.name.endswith("study.yaml"))

# configs/synth/_base.yaml's model section as it was written before the host sections
OLD_BASE = """
model:
  backbone: resnet18
  pretrained: synthetic
  trainable_layers: 5
  head: mlp
  out_channels: 256
  min_size: 300
  max_size: 512
  anchor_sizes: [6.8, 11.4, 19, 44]
  aspect_ratios: [0.76, 0.99, 1.31]
  rpn_pre_nms_top_n_train: 1000
  rpn_post_nms_top_n_train: 1000
  rpn_post_nms_top_n_test: 300
  rpn_batch_size_per_image: 128
  box_batch_size_per_image: 128
"""


def test_every_synthetic_and_hituav_config_switches_host_with_one_override():
    from omegaconf import OmegaConf

    from mrae.engine.config_schema import model_config_class

    defaults = OmegaConf.structured(model_config_class())
    assert len(SWITCHABLE) >= 20
    for path in SWITCHABLE:
        configs = {host: load_config(path, [f"model.detector={host}"]) for host in registry.HOSTS}
        for host, cfg in configs.items():
            assert cfg.model.detector == host
            for other in set(registry.HOSTS) - {host}:  # only the active host's section is kept
                assert cfg.model[other] == defaults[other], (path, host, other)
        # the data's clustered anchors come along to RetinaNet
        assert configs["retinanet"].model.retinanet.anchor_sizes == configs["faster_rcnn"].model.faster_rcnn.anchor_sizes
        assert list(configs["retinanet"].model.retinanet.anchor_sizes) != [8, 16, 32, 64], path


@pytest.mark.parametrize("host", list(registry.HOSTS))
def test_a_switched_config_builds_its_host(host):
    from mrae.engine.model import build_model

    cfg = load_config(CONFIGS / "hituav" / "fpn_all_anchors.yaml", [f"model.detector={host}"])
    model = build_model(cfg, num_classes=5)
    assert type(model).__name__ == {"faster_rcnn": "GeneralizedRCNN", "retinanet": "MraeRetinaNet",
                                    "fcos": "MraeFCOS"}[host]
    if host != "fcos":  # every anchor size on every map: 4 sizes x 3 ratios on each of the 4 maps
        generator = model.rpn.anchor_generator if host == "faster_rcnn" else model.anchor_generator
        assert generator.num_anchors_per_location() == [12] * 4


def test_the_other_hosts_sections_are_reset(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  faster_rcnn:\n    head: c4\n  retinanet:\n    fpn_anchors: all\n")
    cfg = load_config(path, ["model.detector=retinanet"])
    assert (cfg.model.faster_rcnn.head, cfg.model.retinanet.fpn_anchors) == ("mlp", "all")
    assert to_dict(cfg)["model"]["faster_rcnn"]["head"] == "mlp"  # what the run saves: what it used


def test_an_old_layout_config_file_loads_as_the_new_one(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text("name: x\n" + OLD_BASE)
    new = load_config(CONFIGS / "synth" / "_base.yaml", ["name=x"])
    assert to_dict(load_config(old))["model"] == to_dict(new)["model"]
    # its host switch works too: the flat anchors were read by RetinaNet as well
    switched = load_config(old, ["model.detector=retinanet"])
    assert list(switched.model.retinanet.anchor_sizes) == [6.8, 11.4, 19, 44]
    assert list(switched.model.faster_rcnn.anchor_sizes) == [8, 16, 32, 64]  # reset: not read


def test_move_host_keys_maps_each_key_into_every_host_that_reads_it():
    from omegaconf import OmegaConf

    layer = OmegaConf.create({"model": {"head": "c4", "anchor_sizes": [4, 8], "min_size": 200,
                                        "retinanet": {"anchor_sizes": [16]}}})
    moved = OmegaConf.to_container(move_host_keys(layer))
    assert moved == {"model": {"min_size": 200, "retinanet": {"anchor_sizes": [16]},
                               "faster_rcnn": {"head": "c4", "anchor_sizes": [4, 8]}}}


@pytest.mark.parametrize("record", ["mrae_template_2/seed0.json", "fpn_all_anchors/seed1.json",
                                    "retinanet_sum/seed2.json", "fcos_mrae_template_2/seed0.json"])
def test_a_stored_old_layout_config_equals_the_config_built_now(record):
    # the committed study records store the configs of runs trained before the host sections; a
    # record counts only while its config equals the one the study builds now
    from mrae.apps.study.spec import find_row, load_study, row_config

    stored = json.loads((ROOT / "docs" / "results_runs" / record).read_text())
    assert "rpn_batch_size_per_image" in stored["config"]["model"]  # the old, flat layout
    study = load_study(CONFIGS / "synth" / "study.yaml")
    row = next(r for r in study.rows if r.slug == record.split("/")[0])
    seed = int(record.split("seed")[1].split(".")[0])
    assert to_dict(config_from_dict(stored["config"])) == to_dict(row_config(study, find_row(study, row.name), seed))


def test_an_old_checkpoint_loads_and_builds_the_model_it_was_trained_as(tmp_path):
    from mrae.engine.checkpoint import save_checkpoint
    from mrae.engine.model import build_model
    from mrae.engine.trained import load_trained

    old = {"model": {"detector": "retinanet", "extractor": "sum", "backbone": "resnet18",
                     "out_channels": 16, "num_classes": 3, "min_size": 64, "max_size": 96,
                     "anchor_sizes": [6.0, 12.0], "aspect_ratios": [1.0], "fpn_anchors": "per_level",
                     "head": "mlp", "rpn_batch_size_per_image": 256, "box_score_thresh": 0.1}}
    cfg = config_from_dict(old)
    assert list(cfg.model.retinanet.anchor_sizes) == [6.0, 12.0]
    torch.manual_seed(0)
    weights = build_model(cfg).state_dict()
    path = tmp_path / "old.pth"
    save_checkpoint(path, {"model": weights, "step": 1, "config": old, "class_names": ["a", "b"]})
    trained = load_trained(path)
    assert trained.model.anchor_generator.num_anchors_per_location() == [2]
    assert trained.model.score_thresh == 0.1
    assert all(torch.equal(v, weights[k]) for k, v in trained.model.state_dict().items())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.detector=yolo"], r"model\.detector='yolo' is not valid; choose one of faster_rcnn, retinanet, fcos$"),
        (["model.fcos.anchor_sizes=[4]"], r"unknown key 'model\.fcos\.anchor_sizes'; valid keys of model\.fcos: box_coding$"),
        (["model.retinanet.head=c4"], r"unknown key 'model\.retinanet\.head'; valid keys of model\.retinanet: anchor_sizes, aspect_ratios, fpn_anchors, box_similarity, "),
        (["model.detector=fcos", "model.head=c4"], r"model\.head applies to detector faster_rcnn only \(model\.faster_rcnn\.head\), not to 'fcos'; remove it$"),
        (["model.detector=fcos", "model.anchor_sizes=[4]"], r"model\.anchor_sizes applies to detector faster_rcnn / retinanet only \(model\.faster_rcnn\.anchor_sizes or model\.retinanet\.anchor_sizes\)"),
        (["model.retinanet.fpn_anchors=some"], r"model\.retinanet\.fpn_anchors='some' is not valid; choose one of per_level, all$"),
        (["model.faster_rcnn.anchor_sizes=[1e9,8,16,32]"], r"model\.faster_rcnn\.anchor_sizes=\[1000000000\.0, 8\.0, 16\.0, 32\.0\] is not valid; give sizes of at most 2048 px, 4x the input's longer side \(model\.max_size=512\)$"),
        (["model.fixed_size=[100,200]", "model.retinanet.anchor_sizes=[801]"], r"model\.retinanet\.anchor_sizes=\[801\.0\] is not valid; give sizes of at most 800 px, 4x the input's longer side \(model\.fixed_size=\[100, 200\]\)$"),
        (["model.faster_rcnn=3"], r"model\.faster_rcnn"),
    ],
)
def test_bad_host_input_is_one_line_naming_the_key(tmp_path, overrides, message):
    path = tmp_path / "c.yaml"
    path.write_text("name: c\n")
    with pytest.raises(ConfigError, match=message) as error:
        load_config(path, overrides)
    assert "\n" not in str(error.value)


def test_a_refused_host_writes_nothing(tmp_path, capsys):
    from mrae import cli

    out = tmp_path / "run"
    code = cli.main(["train", "--config", str(CONFIGS / "synth" / "mrae_t2.yaml"), "--out", str(out),
                     "model.retinanet.rpn_batch_size_per_image=64"])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists() and not (tmp_path / "runs").exists()
    assert err.count("\n") == 1 and "model.retinanet.rpn_batch_size_per_image" in err and "Traceback" not in err
