"""Which pretrained trunk each run of a study starts from, and one trunk per study.

Pretraining is bit-reproducible on one machine but not across CPUs (docs/hituav.md): a study resumed
on another machine would pretrain another trunk, and its rows would then compare trunks as well as
extractors. A run keeps the trunk it began from in its folder (:data:`TRUNK_FILE`, written as it
starts); the runner refuses a run that would start from another trunk file than the study's
finished runs of that pretraining (:func:`check_one_trunk`).
"""

from __future__ import annotations

import json

from mrae.apps.study.records import BadRecord, final_metrics
from mrae.apps.study.spec import Job, Row, Study, parent_run, row_config, run_dir
from mrae.errors import ConfigError

# in a run's folder: the pretrained trunk it began from (its file's hash), written as it starts
TRUNK_FILE = "trunk.json"


def trunk_setting(cfg) -> str:
    """The pretraining setting a run's trunk comes from (backbone, ``model.pretrained`` and the
    ``pretrain`` section), as a key: runs of one key start from one trunk file."""
    from mrae.engine.config import to_dict

    full = to_dict(cfg)
    return json.dumps([full["model"]["backbone"], full["model"]["pretrained"], full["pretrain"]], sort_keys=True)



def run_trunk(study: Study, row: Row, seed: int) -> dict:
    """``{"trunk": the pretrained trunk the run began from}`` (:func:`~mrae.apps.study.measure.
    trunk_identity`, kept in its folder when it started; a continued run's is its parent's), or
    ``{}`` for a random start or a run begun before the study kept it."""
    parent = parent_run(study, row, seed)
    folder = run_dir(study, *parent) if parent else run_dir(study, row, seed)
    try:
        trunk = json.loads((folder / TRUNK_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return {"trunk": trunk} if isinstance(trunk, dict) else {}



def finished_trunks(study: Study, quick: bool = False) -> dict[str, dict[str, int]]:
    """The trunk files the study's finished runs began from: ``{pretrained: {sha256: runs}}``
    (runs whose record keeps no trunk, finished before the study kept it, are left out)."""
    trunks: dict[str, dict[str, int]] = {}
    for row in study.rows:
        for seed in range(1 if quick else row.seeds):
            try:
                trunk = (final_metrics(study, row, seed, quick) or {}).get("trunk")
            except BadRecord:
                continue  # not a result (refused before any run trains)
            if isinstance(trunk, dict) and trunk.get("sha256"):
                shas = trunks.setdefault(str(trunk.get("pretrained")), {})
                shas[str(trunk["sha256"])] = shas.get(str(trunk["sha256"]), 0) + 1
    return trunks



def check_one_trunk(study: Study, todo: list[Job], quick: bool, refuse: bool = True) -> None:
    """Every run of a study that starts from a pretrained trunk starts from the one file its
    finished runs of that pretraining began from. Pretraining is bit-reproducible on one machine
    but not across CPUs (docs/hituav.md), so a study resumed on another machine would pretrain
    another trunk, and its rows would then compare trunks as well as extractors. Such a run is
    refused (:class:`ConfigError`, one line), or with ``refuse=False`` announced; a run that
    resumes or continues another run keeps the trunk it began from and is not checked."""
    from mrae.apps.study.measure import trunk_identity

    trunks = finished_trunks(study, quick)
    if not trunks:
        return
    identities: dict[str, dict | None] = {}  # by trunk setting: each trunk file hashed once
    for row, seed in todo:
        folder = run_dir(study, row, seed)
        if (parent_run(study, row, seed) or (folder / TRUNK_FILE).is_file()
                or (folder / "checkpoints" / "last.pth").is_file()):
            continue
        cfg = row_config(study, row, seed, quick)
        kind = str(cfg.model.pretrained)
        if kind not in trunks:
            continue
        if (key := trunk_setting(cfg)) not in identities:
            identities[key] = trunk_identity(cfg)
        if (trunk := identities[key]) is None or trunk["sha256"] in trunks[kind]:
            continue
        accuracy = (f", held-out accuracy {trunk['held_out_accuracy']}"
                    if "held_out_accuracy" in trunk else "")
        began = ", ".join(f"{sha} ({n} run{'s' * (n != 1)})" for sha, n in trunks[kind].items())
        message = (f"{row.name}, seed {seed} would start from the {kind}-pretrained trunk {trunk['sha256']}"
                   f"{accuracy}, but the study's finished runs of that pretraining began from {began} "
                   "(pretraining repeats on one machine, not across CPUs: docs/hituav.md); runs of two "
                   "trunks compare the trunks too")
        if refuse:
            raise ConfigError(message + ": train those rows again here (move their records aside) or "
                              "pass --mixed-trunks to train on anyway")
        print(f"warning: {message} (--mixed-trunks; the page lists each run's trunk)", flush=True)
        return
