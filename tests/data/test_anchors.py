import json

import numpy as np
import pytest
import yaml

from mrae.cli import main as cli_main
from mrae.data.anchors import (
    anchor_shapes,
    cluster_anchors,
    grid_best_iou,
    load_boxes,
    match_shares,
    mean_best_iou,
    resize_boxes,
)
from mrae.errors import DataError

SIZES = (6.0, 12.0, 24.0, 48.0)
RATIOS = (0.5, 1.0, 2.0)


def _boxes_around(n_per: int = 400, jitter: float = 0.03, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    wh = []
    for s in SIZES:
        for r in RATIOS:
            scale = s * np.exp(rng.normal(0, jitter, n_per))
            ratio = r * np.exp(rng.normal(0, jitter, n_per))
            wh.append(np.stack([scale / np.sqrt(ratio), scale * np.sqrt(ratio)], axis=1))
    return np.concatenate(wh)


def test_cluster_anchors_recovers_known_scales_and_ratios():
    sizes, ratios = cluster_anchors(_boxes_around(), seed=0)
    assert np.allclose(sizes, SIZES, rtol=0.03)
    assert np.allclose(ratios, RATIOS, rtol=0.03)
    assert list(sizes) == sorted(sizes) and list(ratios) == sorted(ratios)
    assert (sizes, ratios) == cluster_anchors(_boxes_around(), seed=0)  # deterministic


def test_cluster_anchors_too_few_distinct_boxes():
    with pytest.raises(DataError, match="distinct"):
        cluster_anchors(np.tile([[10.0, 10.0]], (50, 1)))
    with pytest.raises(DataError, match="no boxes"):
        cluster_anchors(np.zeros((0, 2)))


def test_anchor_shapes_follow_torchvision_rounding():
    shapes = anchor_shapes((8, 5), (0.5, 1.0))
    # 8 at ratio 0.5: w = 11.31, h = 5.66 -> corners (-6, -3, 6, 3); 5 at ratio 1: +-2.5 -> +-2
    assert shapes.tolist() == [[12, 6], [8, 8], [8, 4], [4, 4]]


def test_anchor_shapes_match_torchvision_anchor_generator():
    torch = pytest.importorskip("torch")
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    sizes, ratios = (5.0, 8.0, 13.4, 32.0), (0.6, 1.0, 1.7)
    base = AnchorGenerator((sizes,), (ratios,)).generate_anchors(sizes, ratios, dtype=torch.float64)
    expected = torch.stack([base[:, 2] - base[:, 0], base[:, 3] - base[:, 1]], 1).numpy()
    # torchvision orders ratio-major (ws = (w_ratios[:, None] * scales[None, :]))
    ours = anchor_shapes(sizes, ratios).reshape(4, 3, 2).transpose(1, 0, 2).reshape(-1, 2)
    assert np.array_equal(ours, expected)


def test_mean_best_iou_hand_checked():
    anchors = np.array([[8.0, 8.0], [16.0, 16.0]])
    assert mean_best_iou(np.array([[8.0, 8.0]]), anchors) == pytest.approx(1.0)
    # 8x4 box vs 8x8 anchor: 32 / 64
    assert mean_best_iou(np.array([[8.0, 4.0]]), anchors) == pytest.approx(0.5)
    assert mean_best_iou(np.array([[8.0, 8.0], [8.0, 4.0]]), anchors) == pytest.approx(0.75)


def test_grid_iou_is_one_for_a_box_equal_to_an_anchor_at_a_grid_point():
    anchors = anchor_shapes((8.0,), (1.0,))  # 8x8
    hw = np.array([[64.0, 64.0]] * 3)
    boxes = np.array([
        [12.0, 12.0, 8.0, 8.0],  # centre (16, 16): a grid point of stride 4, 8, 16
        [14.0, 12.0, 8.0, 8.0],  # centre (18, 16): 2 px off the stride-4 and stride-8 grid
        [0.0, 0.0, 8.0, 8.0],    # centre (4, 4): on the stride-4 grid; 4 px off the others
    ])  # fmt: skip
    iou4 = grid_best_iou(boxes, hw, anchors, stride=4)
    assert iou4 == pytest.approx([1.0, 6 * 8 / (2 * 64 - 48), 1.0])
    iou8 = grid_best_iou(boxes, hw, anchors, stride=8)
    assert iou8 == pytest.approx([1.0, 48 / 80, 16 / 112])  # 4 px off in x and y: 4x4 overlap
    shares = match_shares(boxes, hw, anchors, stride=8)
    assert shares == pytest.approx({0.7: 1 / 3, 0.5: 2 / 3})


def test_grid_is_clipped_to_the_padded_feature_map():
    anchors = np.array([[8.0, 8.0]])
    boxes = np.array([[56.0, 12.0, 8.0, 8.0]])  # centre (60, 16)
    # width 100 -> padded 128 -> 8 points at stride 16 (0..112): nearest x 64, 4 px off
    iou = grid_best_iou(boxes, np.array([[40.0, 100.0]]), anchors, stride=16)
    assert iou == pytest.approx([32 / 96])
    # width 40 -> padded 64 -> 4 points (0..48): nearest x 48, 12 px off, no overlap
    iou = grid_best_iou(boxes, np.array([[40.0, 40.0]]), anchors, stride=16)
    assert iou == pytest.approx([0.0])


def test_resize_boxes_torchvision_rule_and_fixed_size():
    boxes = np.array([[10.0, 20.0, 30.0, 40.0]])
    # 600x1024 -> scale min(300/600, 512/1024) = 0.5
    out, hw = resize_boxes(boxes, np.array([[600.0, 1024.0]]))
    assert out.tolist() == [[5.0, 10.0, 15.0, 20.0]] and hw.tolist() == [[300.0, 512.0]]
    # 100x100 -> min(3, 5.12) = 3
    out, hw = resize_boxes(boxes, np.array([[100.0, 100.0]]))
    assert np.allclose(out, [[30.0, 60.0, 90.0, 120.0]]) and hw.tolist() == [[300.0, 300.0]]
    out, hw = resize_boxes(boxes, np.array([[100.0, 200.0]]), fixed_size=(50, 50))
    assert np.allclose(out, [[2.5, 10.0, 7.5, 20.0]]) and hw.tolist() == [[50.0, 50.0]]


def _write_coco(path, boxes, crowd=()):
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 512, "height": 300}],
        "annotations": [
            {"id": i + 1, "image_id": 1, "category_id": 1, "bbox": [float(v) for v in b],
             "area": float(b[2] * b[3]), "iscrowd": int(i in crowd)}
            for i, b in enumerate(boxes)
        ],
        "categories": [{"id": 1, "name": "thing"}],
    }
    path.write_text(json.dumps(data))
    return path


def test_load_boxes_excludes_crowd_and_clips(tmp_path):
    ann = _write_coco(tmp_path / "a.json", [[1, 2, 3, 4], [5, 6, 7, 8], [500, 290, 20, 20]],
                      crowd=(1,))
    boxes, hw = load_boxes(ann)
    assert boxes.tolist() == [[1, 2, 3, 4], [500, 290, 12, 10]]
    assert hw.tolist() == [[300, 512]] * 2


def test_cli_prints_a_yaml_snippet_and_the_comparison(tmp_path, capsys):
    wh = _boxes_around(n_per=20)
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 1, (len(wh), 2)) * (np.array([512, 300]) - wh)
    ann = _write_coco(tmp_path / "a.json", np.concatenate([xy, wh], axis=1))
    assert cli_main(["anchors", str(ann), "--strides", "4", "8"]) == 0
    out = capsys.readouterr().out
    snippet = out.split("\n\n")[0]
    config = yaml.safe_load(snippet)
    assert list(config) == ["model"] and list(config["model"]) == ["faster_rcnn", "retinanet"]
    for section in config["model"].values():  # the same anchors for every anchored host
        assert list(section) == ["anchor_sizes", "aspect_ratios"]
        assert np.allclose(section["anchor_sizes"], SIZES, rtol=0.05)
        assert np.allclose(section["aspect_ratios"], RATIOS, rtol=0.05)
    assert "| ours |" in out and "| torchvision default |" in out
    assert "IoU>=0.7 @ stride 8" in out and "stride 16" not in out


def test_cli_bad_input(tmp_path, capsys):
    assert cli_main(["anchors", str(tmp_path / "missing.json")]) == 2
    assert "missing.json" in capsys.readouterr().err
    empty = _write_coco(tmp_path / "empty.json", [[1, 1, 5, 5]], crowd=(0,))
    assert cli_main(["anchors", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "no boxes" in err and err.count("\n") == 1
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [{"id": 1, "file_name": "a.png", "width": 5, "height": 5}], '
                   '"categories": [{"id": 1, "name": "a"}], '
                   '"annotations": [{"id": 7, "image_id": 1, "category_id": 1, "bbox": [1, 2]}]}')
    with pytest.raises(DataError, match="annotation id 7"):
        load_boxes(bad)
    bad.write_text('{"images": [], "categories": [], '
                   '"annotations": [{"id": 3, "image_id": 9, "bbox": [1, 2, 3, 4]}]}')
    with pytest.raises(DataError, match="annotation id 3 refers to image id 9"):
        load_boxes(bad)
    bad.write_text("{not json")
    with pytest.raises(DataError, match="malformed JSON"):
        load_boxes(bad)


def _anchors_of(out: str) -> tuple[list[float], list[float]]:
    model = yaml.safe_load(out.split("\n\n")[0])["model"]["faster_rcnn"]
    return model["anchor_sizes"], model["aspect_ratios"]


@pytest.fixture()
def synthetic_ann(tmp_path):
    """Boxes around SIZES x RATIOS on one 512 x 300 image, the synthetic benchmark's size."""
    wh = _boxes_around(n_per=20)
    xy = np.random.default_rng(1).uniform(0, 1, (len(wh), 2)) * (np.array([512, 300]) - wh)
    return _write_coco(tmp_path / "a.json", np.concatenate([xy, wh], axis=1))


def test_cli_takes_the_resize_from_a_config(tmp_path, capsys, synthetic_ann):
    half = tmp_path / "half.yaml"
    half.write_text("model: {min_size: 150, max_size: 256}\n")
    assert cli_main(["anchors", str(synthetic_ann), "--config", str(half), "--strides", "8"]) == 0
    out = capsys.readouterr().out
    sizes, _ = _anchors_of(out)
    assert np.allclose(sizes, np.array(SIZES) / 2, rtol=0.05)  # boxes scaled as the model would
    assert "Sizes in resized (model input) pixels" in out
    assert f"min_size 150, max_size 256, from {half}" in out
    assert "original-image pixels" in out

    same = tmp_path / "default.yaml"
    same.write_text("model: {extractor: mrae}\n")  # the default 300 / 512: 512 x 300 scales by 1.0
    assert cli_main(["anchors", str(synthetic_ann), "--config", str(same), "--strides", "8"]) == 0
    with_config = capsys.readouterr().out
    assert cli_main(["anchors", str(synthetic_ann), "--strides", "8"]) == 0
    plain = capsys.readouterr().out
    assert _anchors_of(with_config) == _anchors_of(plain)
    assert np.allclose(_anchors_of(plain)[0], SIZES, rtol=0.05)

    fixed = tmp_path / "fixed.yaml"
    fixed.write_text("model: {fixed_size: [600, 1024]}\n")  # 2x both ways
    assert cli_main(["anchors", str(synthetic_ann), "--config", str(fixed), "--strides", "8"]) == 0
    assert np.allclose(_anchors_of(capsys.readouterr().out)[0], np.array(SIZES) * 2, rtol=0.05)


def test_cli_config_and_explicit_resize_exclude_each_other(tmp_path, capsys, synthetic_ann):
    config = tmp_path / "c.yaml"
    config.write_text("model: {min_size: 150}\n")
    assert cli_main(["anchors", str(synthetic_ann), "--config", str(config), "--min-size", "300"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--min-size" in err and str(config) in err
    config.write_text("model: {min_sise: 150}\n")
    assert cli_main(["anchors", str(synthetic_ann), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "min_sise" in err


def test_anchors_without_config_does_not_import_torch(synthetic_ann):
    import subprocess
    import sys

    code = (
        "import sys; from mrae.cli import main; "
        f"rc = main(['anchors', {str(synthetic_ann)!r}, '--strides', '8']); "
        "sys.exit(rc if 'torch' not in sys.modules else 99)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
