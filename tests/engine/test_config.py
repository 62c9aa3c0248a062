"""Config loading: base chains, overrides, and one-line errors naming the key and its choices."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mrae.engine.config import (
    ModelConfig,
    config_from_dict,
    load_config,
    resolve_data,
    synthetic_dir,
    to_dict,
    to_yaml,
)
from mrae.errors import ConfigError
from mrae.modeling.detector import build_detector

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PAPER_ROWS = [
    "baseline_c1_1024x600", "baseline_c1", "baseline_c2", "baseline_c3",
    "soft", "mrae_t1", "mrae_t2", "mrae_t3", "mrae_t1_then_t2",
]
SYNTH_ROWS = [
    "single_c1", "single_c2", "single_c3", "soft", "mrae_t1", "mrae_t2", "mrae_t3",
    "mrae_spatial_t2", "concat", "sum", "fpn", "mrae_t1_then_t2", "demo",
]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_the_model_section_is_derived_from_the_declarations():
    from mrae.modeling import registry
    from mrae.modeling.settings import defaults

    flat = ["detector", "extractor", *registry.backbone_fields(), *registry.extractor_fields(),
            *registry.common_host_fields()]
    assert [f.name for f in dataclasses.fields(ModelConfig)] == [*flat, *registry.HOSTS]
    config = ModelConfig()
    for host, entry in registry.HOSTS.items():
        section = getattr(config, host)
        assert {f.name for f in dataclasses.fields(section)} == set(registry.host_section_fields(host))
        declared = defaults(entry.settings)
        assert {k: _plain(v) for k, v in dataclasses.asdict(section).items()} == \
            {k: _plain(declared[k]) for k in registry.host_section_fields(host)}, host
        for key in registry.common_host_fields():
            assert _plain(getattr(config, key)) == _plain(declared[key]), key
    # build_detector takes exactly these keys: a config's model section builds as it is
    with pytest.raises(ConfigError, match=r"unknown settings \['colour'\]"):
        build_detector(colour="red")


def _plain(value):
    """Sequences as lists of floats (the config's lists, the declarations' tuples)."""
    return [float(v) for v in value] if isinstance(value, list | tuple) else value


@pytest.mark.parametrize("row", PAPER_ROWS)
def test_paper_rows_hold_the_papers_setting(row):
    cfg = load_config(CONFIGS / "paper" / f"{row}.yaml")
    assert cfg.name == row
    m, t = cfg.model, cfg.train
    assert (m.backbone, m.pretrained, m.faster_rcnn.head, m.out_channels) == ("resnet101", "imagenet", "c4", 1024)
    assert (t.lr, t.momentum, list(t.milestones), t.gamma, t.batch_size) == (3e-4, 0.9, [600000, 900000], 0.1, 1)
    if row == "baseline_c1_1024x600":
        assert (m.min_size, m.max_size, m.detections_per_class, m.detections_per_img) == (600, 1024, 300, 600)
    else:
        assert (m.min_size, m.max_size, m.detections_per_class, m.detections_per_img) == (300, 512, 100, 300)


def test_paper_rows_pick_their_extractor():
    picked = {row: load_config(CONFIGS / "paper" / f"{row}.yaml").model for row in PAPER_ROWS}
    assert [picked[f"baseline_c{k}"].level for k in (1, 2, 3)] == [1, 2, 3]
    assert {picked[f"baseline_c{k}"].extractor for k in (1, 2, 3)} == {"single"}
    assert [picked[f"mrae_t{k}"].template for k in (1, 2, 3)] == [1, 2, 3]
    assert picked["mrae_t1_then_t2"].template == 2
    assert picked["soft"].extractor == "soft"


@pytest.mark.parametrize("row", SYNTH_ROWS)
def test_synth_rows_share_the_base_schedule(row):
    base = load_config(CONFIGS / "synth" / "_base.yaml")
    cfg = load_config(CONFIGS / "synth" / f"{row}.yaml")
    assert cfg.train == base.train and cfg.data == base.data and cfg.eval == base.eval
    assert (cfg.model.backbone, cfg.model.pretrained, cfg.model.faster_rcnn.head) == ("resnet18", "synthetic", "mlp")
    assert cfg.data.train_images is None  # the synthetic data


def test_base_chain_and_overrides(tmp_path):
    write(tmp_path / "root.yaml", "train:\n  steps: 10\n  lr: 0.5\nmodel:\n  head: c4\n")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "mid.yaml", "base: ../root.yaml\ntrain:\n  steps: 20\n")
    leaf = write(tmp_path / "sub" / "leaf.yaml", "base: mid.yaml\nmodel:\n  extractor: fpn\n")
    cfg = load_config(leaf, ["train.lr=0.1", "model.anchor_sizes=[4,8,16,32]", "eval.max_images=null"])
    assert cfg.name == "leaf"
    # root.yaml's flat `head` (the layout before the host sections) and the flat override land
    # in the section of the config's host
    assert (cfg.train.steps, cfg.train.lr, cfg.model.faster_rcnn.head, cfg.model.extractor) == (20, 0.1, "c4", "fpn")
    assert list(cfg.model.faster_rcnn.anchor_sizes) == [4, 8, 16, 32]
    assert cfg.eval.max_images is None
    assert "base" not in cfg
    assert "steps: 20" in to_yaml(cfg)


def test_base_cycle_is_refused(tmp_path):
    write(tmp_path / "a.yaml", "base: b.yaml\n")
    write(tmp_path / "b.yaml", "base: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "a.yaml")


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="not found") as error:
        load_config(tmp_path / "nope.yaml")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("text", "overrides", "expected"),
    [
        ("train:\n  stepz: 3\n", [], r"unknown key 'train\.stepz'.*valid keys of train: steps, batch_size"),
        ("name: c\n", ["model.colour=red"], r"unknown key 'model\.colour'.*extractor"),
        ("name: c\n", ["data.synthetic.size=3"], r"unknown key 'data\.synthetic\.size'.*valid keys of data\.synthetic"),
        ("optimizer: sgd\n", [], r"unknown key 'optimizer'.*valid keys of the top level: name, model"),
    ],
)
def test_unknown_keys_name_the_key_and_the_valid_ones(tmp_path, text, overrides, expected):
    path = write(tmp_path / "c.yaml", text)
    with pytest.raises(ConfigError, match=expected) as error:
        load_config(path, overrides)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["model.extractor=foo"], r"model\.extractor='foo'.*choose one of single, soft, mrae, concat, sum, fpn"),
        (["model.faster_rcnn.head=bar"], r"model\.faster_rcnn\.head='bar'.*choose one of mlp, c4"),
        (["model.head=bar"], r"model\.faster_rcnn\.head='bar'.*choose one of mlp, c4"),
        (["model.backbone=vgg16"], r"model\.backbone='vgg16'.*resnet18"),
        (["model.template=4"], r"model\.template=4.*choose one of 1, 2, 3"),
        (["train.device=tpu"], r"train\.device='tpu'.*auto, cpu, cuda, cuda:N"),
        (["train.best_metric=loss"], r"train\.best_metric='loss'.*AP, AP50"),
        (["train.steps=0"], r"train\.steps=0 must be >= 1"),
        (["train.milestones=[20,10]"], r"train\.milestones"),
        (["data.train_images=x"], r"data\.train_images and data\.train_annotations go together"),
    ],
)
def test_bad_values_name_the_key_and_the_choices(tmp_path, overrides, expected):
    path = write(tmp_path / "c.yaml", "name: c\n")
    with pytest.raises(ConfigError, match=expected):
        load_config(path, overrides)


@pytest.mark.parametrize(
    ("text", "overrides", "key"),
    [
        ("name: c\n", ["train.steps=abc"], "train.steps"),
        ("train:\n  lr: fast\n", [], "train.lr"),
        ("name: c\n", ["train.milestones=3"], "train.milestones"),
        ("model:\n  anchor_sizes: [a, b]\n", [], "model.faster_rcnn.anchor_sizes"),
        ("model:\n  retinanet:\n    anchor_sizes: [[4, 8]]\n", [], "model.retinanet.anchor_sizes"),
        ("name: c\n", ["model.faster_rcnn.anchor_sizes=[[4,8],16]"], "model.faster_rcnn.anchor_sizes"),
        ("name: c\n", ["model.anchor_sizes=[[4,8],16]"], "model.faster_rcnn.anchor_sizes"),
    ],
)
def test_wrong_types_name_the_key(tmp_path, text, overrides, key):
    path = write(tmp_path / "c.yaml", text)
    with pytest.raises(ConfigError) as error:
        load_config(path, overrides)
    assert key in str(error.value)
    assert "\n" not in str(error.value)


def test_override_without_equals_sign(tmp_path):
    with pytest.raises(ConfigError, match="key.sub=value"):
        load_config(write(tmp_path / "c.yaml", "name: c\n"), ["train.steps"])


def test_synthetic_data_is_generated_once_and_reused(tmp_path):
    cache = tmp_path / "cache"
    cfg = load_config(
        write(tmp_path / "c.yaml", "name: c\n"),
        ["data.synthetic.train_images=1", "data.synthetic.val_images=1", "data.synthetic.width=128",
         "data.synthetic.height=96", f"data.synthetic.cache_dir={cache}"],
    )
    paths = resolve_data(cfg, progress=False)
    assert Path(paths["train_annotations"]).parent.parent == synthetic_dir(cfg)
    assert all(Path(p).exists() for p in paths.values())
    stamp = Path(paths["val_annotations"]).stat().st_mtime_ns
    assert resolve_data(cfg, progress=False) == paths
    assert Path(paths["val_annotations"]).stat().st_mtime_ns == stamp


def test_missing_data_path_is_refused(tmp_path):
    cfg = load_config(
        write(tmp_path / "c.yaml", "name: c\n"),
        [f"data.train_images={tmp_path}", f"data.train_annotations={tmp_path / 'none.json'}"],
    )
    with pytest.raises(ConfigError, match="data.train_annotations"):
        resolve_data(cfg)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("train.lr=.inf", "train"),
        ("train.lr=.nan", "train"),
        ("model.faster_rcnn.rpn_nms_thresh=-1", "model.faster_rcnn.rpn_nms_thresh"),
        ("model.box_score_thresh=2", "model.box_score_thresh"),
        ("model.faster_rcnn.anchor_sizes=[.nan,8,16,32]", "model.faster_rcnn.anchor_sizes"),
        ("model.retinanet.aspect_ratios=[0,1]", "model.retinanet.aspect_ratios"),
        ("model.embed_channels=0", "model.embed_channels"),
        ("model.pool_size=0", "model.pool_size"),
        ("model.embed_dim=-1", "model.embed_dim"),
        ("name=../outside", "name"),
        ("name=a/b", "name"),
    ],
)
def test_values_are_checked_where_they_enter(tmp_path, override, key):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  steps: 10\n")
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as error:
        load_config(path, [override])
    assert "\n" not in str(error.value)


def test_a_stored_config_with_the_retired_eval_keys_still_loads(tmp_path):
    # eval.score_thresh and eval.batch_size were checked but never read; older runs stored them.
    fresh = load_config(write(tmp_path / "c.yaml", "name: old\ntrain:\n  steps: 10\n"))
    old_yaml = to_yaml(fresh).replace("eval:\n", "eval:\n  score_thresh: 0.5\n  batch_size: 1\n")
    assert "score_thresh: 0.5" in old_yaml
    run = tmp_path / "runs" / "old"
    run.mkdir(parents=True)
    loaded = load_config(write(run / "config.yaml", old_yaml))  # a run folder's config.yaml
    assert loaded == fresh and "score_thresh" not in loaded.eval and "batch_size" not in loaded.eval
    stored = to_dict(fresh)  # a checkpoint's config (mrae.engine.checkpoint reads it with config_from_dict)
    stored["eval"].update(score_thresh=0.3, batch_size=4)
    assert config_from_dict(stored) == fresh
    with pytest.raises(ConfigError, match=r"unknown key 'eval\.score_thresh'"):
        load_config(run / "config.yaml", ["eval.score_thresh=0.5"])  # a new setting is refused


def test_empty_and_broken_yaml_are_one_line_errors(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="empty"):
        load_config(empty)
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: {steps: 10\n")
    with pytest.raises(ConfigError, match="cannot read") as error:
        load_config(broken)
    assert "\n" not in str(error.value)


def test_loading_a_config_imports_neither_torch_nor_pycocotools():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from mrae.engine.config import load_config\n"
        "load_config('configs/synth/mrae_t2.yaml', ['model.extractor=fpn', 'train.lr=0.01'])\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'torchvision', 'pycocotools'})\n"
        "print(heavy)\n"
    )
    root = __import__("pathlib").Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_eval_max_dets_and_group_by(tmp_path):
    path = write(tmp_path / "c.yaml", "model:\n  detections_per_img: 1500\n")
    cfg = load_config(path, ["eval.max_dets=[1,100,1500]", "eval.group_by=^(?P<light>[01])_"])
    assert list(cfg.eval.max_dets) == [1, 100, 1500]
    assert list(load_config(write(tmp_path / "d.yaml", "eval: {}\n")).eval.max_dets) == [1, 10, 100]
    with pytest.raises(ConfigError, match="over the model's cap of 300.*model.detections_per_img=1500"):
        load_config(write(tmp_path / "e.yaml", "eval:\n  max_dets: [1, 100, 1500]\n"))
    with pytest.raises(ConfigError, match="eval.group_by.*no named group"):
        load_config(write(tmp_path / "f.yaml", "eval:\n  group_by: '^[01]_'\n"))
