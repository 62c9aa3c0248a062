"""metrics.jsonl: a half-written last line (a run killed mid-write) is dropped, not fatal."""

from __future__ import annotations

import json
import logging

import pytest

from mrae.engine.metrics_log import MetricsLog, read_metrics
from mrae.errors import DataError

RECORDS = [{"step": 1, "loss": 1.5, "lr": 0.01}, {"step": 2, "eval": {"AP": 0.1}},
           {"step": 3, "loss": 1.2, "lr": 0.01}]


def _write(tmp_path, tail: str = "") -> None:
    text = "".join(json.dumps(r) + "\n" for r in RECORDS) + tail
    (tmp_path / "metrics.jsonl").write_text(text, encoding="utf-8")


def test_read_metrics_leaves_out_a_half_written_last_line(tmp_path):
    _write(tmp_path, '{"step": 4, "loss": 1.1')
    assert read_metrics(tmp_path) == RECORDS


def test_a_damaged_line_before_the_last_is_a_one_line_error(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(
        json.dumps(RECORDS[0]) + "\n" + "garbage\n" + json.dumps(RECORDS[1]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"metrics\.jsonl: line 2 is not a metrics record") as error:
        read_metrics(tmp_path)
    assert "\n" not in str(error.value)


@pytest.fixture
def messages():
    """What the metrics log says, from its own logger: whatever handlers (the CLI's, pytest's)
    and propagation earlier tests left on the ``mrae`` loggers."""

    class Keep(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.DEBUG)
            self.said: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.said.append(record.getMessage())

    logger, keep = logging.getLogger("mrae.engine.metrics_log"), Keep()
    level = logger.level
    logger.addHandler(keep)
    logger.setLevel(logging.DEBUG)
    yield keep.said
    logger.removeHandler(keep)
    logger.setLevel(level)


def test_resuming_drops_a_torn_last_line_and_later_steps(tmp_path, messages):
    _write(tmp_path, '{"step": 4, "lo')
    log = MetricsLog(tmp_path, resume_step=2, tensorboard=False)
    assert messages == [(f"resume: dropped the half-written last line 4 of {tmp_path / 'metrics.jsonl'} "
                   "(the run was stopped while writing it)")]
    log.log_train(3, {"loss": 0.9}, 0.01)
    log.close()
    assert [(r["step"], r.get("loss")) for r in read_metrics(tmp_path)] == [(1, 1.5), (2, None), (3, 0.9)]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_resuming_an_intact_log_says_nothing(tmp_path, messages):
    _write(tmp_path)
    MetricsLog(tmp_path, resume_step=3, tensorboard=False).close()
    assert messages == []
    assert read_metrics(tmp_path) == RECORDS
