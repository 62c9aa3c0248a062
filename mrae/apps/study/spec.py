"""The study file: rows, their roles in the paper's comparisons, and the budget overrides.

A study file (``configs/synth/study.yaml``) holds:

- ``rows``: a list of ``{name, config, role, seeds, init_from, schedule_scale}``. ``config`` is a
  training config relative to the study file; ``role`` says what the row stands for in the paper's
  comparisons (one of :data:`mrae.apps.study.facts.ROLES`; the claims find their rows by role and by the ``model.template``
  / ``model.level`` of the row's config, never by name); ``seeds`` (default 1) runs the row with
  ``train.seed`` 0..seeds-1; ``init_from`` names an earlier row whose final checkpoint this row
  continues (the mixed row); ``schedule_scale: N`` (default 1) trains the row N times the study's
  steps (``train.steps``, ``train.milestones``, ``train.warmup_steps`` and ``train.eval_every``
  times N: as many evaluations, at the same fractions of its schedule). A row's host is its
  config's ``model.detector`` (read into ``Row.detector``): the claims judge the rows of each host
  apart, and the runner trains the paper's host (Faster R-CNN) first;
- ``overrides``: ``key=value`` settings applied to every row (the budget); ``quick``: those added
  by ``--quick``; ``out``: the runs' folder; ``readme``: the README whose headline block the study
  rewrites; ``records``: the folder of the ledger of finished runs (:mod:`mrae.apps.study.records`);
  ``title``: the results page's heading (default: the synthetic benchmark's); ``about``: markdown
  put at the top of the page, for what every reader must see (the data's citation, rows cut);
  ``report``: the results page (default ``docs/results.md``; the results JSON goes beside it), so
  that a second study never writes over the first one's page; ``compare``: ``{results, this,
  other, readme, title}``, another study's results JSON whose verdicts the page sets beside this
  study's (:mod:`mrae.apps.study.compare`), the two studies' names in that comparison, the README
  whose comparison block it rewrites (optional) and the section's heading (optional). Paths outside ``rows`` are relative to the working
  folder (the repository's root), as the commands' own paths are.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from mrae.apps.study.facts import ROLES, fpn_anchors, role_fits
from mrae.errors import ConfigError
from mrae.inputs import CONFIG_LIMIT, read_text, shorten

ROW_KEYS = ("name", "config", "role", "seeds", "init_from", "schedule_scale")
STUDY_KEYS = ("rows", "overrides", "quick", "out", "readme", "records", "title", "about", "report", "compare")
COMPARE_KEYS = ("results", "this", "other", "readme", "title")
DEFAULT_REPORT = Path("docs/results.md")


@dataclass(frozen=True)
class Row:
    """One row of the study table."""

    name: str
    config: Path
    role: str
    seeds: int = 1
    init_from: str | None = None  # name of the row whose final checkpoint this row continues
    schedule_scale: int = 1  # trains schedule_scale times the study's steps
    detector: str = "faster_rcnn"  # the host: its config's model.detector (set by load_study)

    @property
    def slug(self) -> str:
        """The row's folder name under the study's ``out``."""
        return slug(self.name)


@dataclass(frozen=True)
class Compare:
    """Another study whose verdicts this study's page sets beside its own (study file's `compare`)."""

    results: Path  # the other study's results JSON
    this: str  # this study's name in the comparison ("HIT-UAV")
    other: str  # the other's ("synthetic")
    readme: Path | None = None  # README whose comparison block the study rewrites
    title: str | None = None  # the comparison section's heading (default "Against the <other> study")


# one run of the study: a row and a seed
Job = tuple[Row, int]


@dataclass(frozen=True)
class Study:
    rows: list[Row]
    out: Path
    overrides: list[str]
    quick_overrides: list[str]
    source: Path
    readme: Path | None = None  # README whose headline block the study rewrites (study file's `readme`)
    records: Path | None = None  # the ledger of finished runs (study file's `records`; records.py)
    title: str | None = None  # the results page's heading (study file's `title`)
    about: str | None = None  # markdown at the top of the results page (study file's `about`)
    report: Path = DEFAULT_REPORT  # the results page (study file's `report`)
    compare: Compare | None = None  # another study to compare verdicts with (study file's `compare`)


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def _text(path: Path, raw: dict, key: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{path}: `{key}` must be text (markdown), got {type(value).__name__}")
    return value.strip() if value else None


def _report(path: Path, value: Any) -> Path:
    if value is None:
        return DEFAULT_REPORT
    if not isinstance(value, str) or not value.lower().endswith(".md"):
        raise ConfigError(f"{path}: `report` must be the results page's path ending in .md, got {value!r}")
    return Path(value)


def _compare(path: Path, value: Any) -> Compare | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: `compare` must be a mapping with keys {list(COMPARE_KEYS)}")
    unknown = set(value) - set(COMPARE_KEYS)
    if unknown:
        raise ConfigError(f"{path}: compare has unknown key(s) {sorted(unknown)}; valid: {list(COMPARE_KEYS)}")
    for key in ("results", "this", "other"):
        if not isinstance(value.get(key), str) or not value[key].strip():
            raise ConfigError(f"{path}: compare.{key} must be non-empty text (the other study's results "
                              "JSON, this study's name, the other's name)")
    if not value["results"].lower().endswith(".json"):
        raise ConfigError(f"{path}: compare.results must be a results JSON (.json), got {value['results']!r}")
    readme = value.get("readme")
    if readme is not None and not isinstance(readme, str):
        raise ConfigError(f"{path}: compare.readme must be a path, got {readme!r}")
    title = value.get("title")
    if title is not None and (not isinstance(title, str) or not title.strip()):
        raise ConfigError(f"{path}: compare.title must be non-empty text (the section's heading), got {title!r}")
    return Compare(Path(value["results"]), value["this"].strip(), value["other"].strip(),
                   Path(readme) if readme else None, title.strip() if title else None)


def load_study(path: str | Path, out: str | None = None) -> Study:
    """Read and check a study file; every config path is relative to the study file's folder.

    Raises a one-line :class:`ConfigError` for anything wrong: a missing or unknown key, a role
    outside :data:`~mrae.apps.study.facts.ROLES` or one its config does not build, seeds or schedule_scale not an integer
    >= 1, two rows with the same run folder, an ``init_from`` that names no earlier row.
    """
    path = Path(path)
    text = read_text(path, CONFIG_LIMIT, what="study file", error=ConfigError)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({shorten(str(error))})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("rows"), list) or not raw["rows"]:
        raise ConfigError(f"{path}: a study file needs a non-empty list `rows`")
    unknown = set(raw) - set(STUDY_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)}; valid: {list(STUDY_KEYS)}")
    rows = [_row(path, i, item) for i, item in enumerate(raw["rows"])]
    folders: dict[str, str] = {}
    for row in rows:
        if row.slug in folders:
            raise ConfigError(
                f"{path}: rows {folders[row.slug]!r} and {row.name!r} would share the run folder "
                f"{row.slug!r}; rename one"
            )
        folders[row.slug] = row.name
    names = [r.name for r in rows]
    for row in rows:
        if row.init_from is not None:
            if row.init_from not in names or names.index(row.init_from) >= names.index(row.name):
                raise ConfigError(
                    f"{path}: row {row.name!r}: init_from {row.init_from!r} must name an earlier row"
                )
        elif row.role == "mixed":
            raise ConfigError(f"{path}: row {row.name!r}: role mixed needs init_from (the row it continues)")
    study = Study(
        rows=rows,
        out=Path(out or raw.get("out", "runs/study")),
        overrides=[str(o) for o in raw.get("overrides") or []],
        quick_overrides=[str(o) for o in raw.get("quick") or []],
        source=path,
        readme=Path(raw["readme"]) if raw.get("readme") else None,
        records=Path(raw["records"]) if raw.get("records") else None,
        title=_text(path, raw, "title"),
        about=_text(path, raw, "about"),
        report=_report(path, raw.get("report")),
        compare=_compare(path, raw.get("compare")),
    )
    hosts = [_check_role(study, row) for row in rows]
    rows[:] = [replace(row, detector=host) for row, host in zip(rows, hosts, strict=True)]
    for row in rows:
        if row.role == "start":
            _check_start(study, row)
    return study


def _trunk_free(config) -> dict[str, Any]:
    """A run's config without what its trunk start changes (``model.pretrained`` and the
    pretraining it asks for) and its name."""
    from mrae.engine.config import to_dict

    out = to_dict(config)
    out.pop("name", None)
    out.pop("pretrain", None)
    out["model"].pop("pretrained")
    return out


def _check_start(study: Study, row: Row) -> None:
    """A row of role ``start`` has its row of comparison: another row (not of role ``start``) whose
    config differs from its own only in the trunk start (:func:`_trunk_free`)."""
    mine = _trunk_free(row_config(study, row))
    if not any(other.role != "start" and _trunk_free(row_config(study, other)) == mine
               for other in study.rows):
        raise ConfigError(
            f"{study.source}: row {row.name!r} has role start, but no row of another role has the same "
            f"config apart from model.pretrained; add that row (the one this trunk start is compared "
            "with) or give this row another role"
        )


def _row(path: Path, i: int, item: Any) -> Row:
    if not isinstance(item, dict) or "name" not in item or "config" not in item:
        raise ConfigError(f"{path}: rows[{i}] needs `name` and `config`")
    unknown = set(item) - set(ROW_KEYS)
    if unknown:
        raise ConfigError(f"{path}: rows[{i}] has unknown key(s) {sorted(unknown)}; valid: {list(ROW_KEYS)}")
    name = item["name"]
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{path}: rows[{i}].name must be a non-empty string, got {name!r}")
    where = f"{path}: row {name!r}"
    role = item.get("role")
    if role not in ROLES:
        got = "no role" if role is None else f"role {role!r}"
        raise ConfigError(f"{where} has {got}; give `role`, one of: {', '.join(ROLES)}")
    for key in ("seeds", "schedule_scale"):
        value = item.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{where}: {key} must be an integer >= 1, got {value!r}")
    init_from = item.get("init_from")
    if init_from is not None and not isinstance(init_from, str):
        raise ConfigError(f"{where}: init_from must be a row name, got {init_from!r}")
    config = path.parent / str(item["config"])
    if not config.is_file():
        raise ConfigError(f"{where}: config {config} does not exist")
    return Row(name, config, role, item.get("seeds", 1), init_from, item.get("schedule_scale", 1))


def _check_role(study: Study, row: Row) -> str:
    """The row's config builds what its role stands for; returns its ``model.detector``."""
    m = row_config(study, row).model
    fits = role_fits(row.role, m)
    if not fits:
        raise ConfigError(
            f"{study.source}: row {row.name!r} has role {row.role} ({ROLES[row.role]}), but its config "
            f"{row.config} builds extractor {m.extractor} (mode {m.mode}, fpn_anchors {fpn_anchors(m)})"
        )
    return str(m.detector)


def row_config(study: Study, row: Row, seed: int = 0, quick: bool = False):
    """The training config of one run: the row's config, the study's overrides (and the quick ones),
    ``train.seed``, and the schedule (steps, milestones, warm-up, evaluation interval) times
    ``row.schedule_scale``."""
    from mrae.engine.config import load_config

    overrides = [*study.overrides, *(study.quick_overrides if quick else []), f"train.seed={seed}"]
    cfg = load_config(row.config, overrides)
    if row.schedule_scale > 1:
        n, t = row.schedule_scale, cfg.train
        milestones = ",".join(str(int(m) * n) for m in t.milestones)
        overrides += [f"train.steps={int(t.steps) * n}", f"train.milestones=[{milestones}]",
                      f"train.warmup_steps={int(t.warmup_steps) * n}",
                      f"train.eval_every={int(t.eval_every) * n}"]
        cfg = load_config(row.config, overrides)
    return cfg


def run_dir(study: Study, row: Row, seed: int) -> Path:
    return study.out / row.slug / f"seed{seed}"


def find_row(study: Study, name: str) -> Row:
    return next(r for r in study.rows if r.name == name)


def parent_run(study: Study, row: Row, seed: int) -> Job | None:
    """The (row, seed) whose final checkpoint this run continues, or None."""
    if row.init_from is None:
        return None
    parent = find_row(study, row.init_from)
    return parent, seed if seed < parent.seeds else 0
