"""`mrae eval` past 100 detections, with its error breakdown and AP per group, on the campaigns'
tiny trained checkpoint: what it prints and what its metrics file records."""

from __future__ import annotations

import json

from mrae import cli


def test_max_dets_cap_breakdown_and_groups(world_files, tmp_path, capsys):
    _, config, checkpoint = world_files
    out = tmp_path / "eval"
    code = cli.main(["eval", "--checkpoint", str(checkpoint), "--config", str(config), "--out", str(out),
                     "--no-progress", "--max-dets", "1,100,500", "--detections-per-img", "500",
                     "--group-by", r"^(?P<parity>\d{5}[02468])|^(?P<odd>\d{5}[13579])"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| model | AP@100 | AP@500 | AR1 | AR100 | AR500 |" in printed
    assert "TIDE's error breakdown" in printed and "dAP missed" in printed
    assert "AP per group (" in printed and "| parity | images | AP | AP50 |" in printed
    record = json.loads((out / "metrics_val.json").read_text())
    assert record["max_dets"] == [1, 100, 500]
    assert record["detections_per_img"] == 500
    assert record["group_by"].startswith("^(?P<parity>")
    metrics = record["metrics"]
    assert metrics["AP"] == metrics["AP@500"]
    assert {"TIDE_AP50", "dAP_cls", "dAP_miss", "errors_bkg", "AP_medium"} <= set(metrics)
    # the val set's two images, 000000.jpg and 000001.jpg, one in each grouping
    assert metrics["images[parity=000000]"] == metrics["images[odd=000001]"] == 1.0
