"""What the study knows about hosts, roles and model settings, in one place.

- **Hosts**: the detectors a row may train in (``model.detector``), the paper's first: the names
  come from :data:`mrae.modeling.registry.HOSTS`, the words the page uses for them from
  :data:`HOST_TITLES` (a host without a title is shown by its name). The claims judge the paper's
  host and each other host apart; the runner trains the paper's host's rows first.
- **Roles**: what a row stands for in the paper's comparisons (:data:`ROLES`), what its config must
  build for it (:func:`role_fits`) and which roles keep attention weights.
- **Settings**: the model settings a summary entry records (:data:`MODEL_DEFAULTS` gives the value
  of one that an entry written before it was kept does not have), read with :func:`setting_of`.
"""

from __future__ import annotations

from typing import Any

from mrae.modeling import registry

PAPER_HOST = "faster_rcnn"
HOST_TITLES = {"faster_rcnn": "Faster R-CNN", "retinanet": "RetinaNet", "fcos": "FCOS"}
# the hosts besides the paper's, in the page's order (the host study)
OTHER_HOSTS: tuple[str, ...] = tuple(h for h in registry.HOSTS if h != PAPER_HOST)

# role -> what the row's config must build (checked when the study file is read: role_fits)
ROLES: dict[str, str] = {
    "baseline": "a single level (extractor single)",
    "soft": "soft attention (extractor soft)",
    "mrae": "MRAE in global mode (extractor mrae, mode global)",
    "mrae_spatial": "MRAE in spatial mode (extractor mrae, mode spatial)",
    "fusion": "a fusion of the levels (extractor concat or sum)",
    "fpn": "torchvision's FPN with its anchors per level (extractor fpn, fpn_anchors per_level)",
    "fpn_all_anchors": "FPN with every anchor size on every map (extractor fpn, fpn_anchors all)",
    "mixed": "MRAE continued from another row's run with another template (extractor mrae, init_from)",
    "mrae_long": "MRAE trained as long as the mixed row in all (extractor mrae)",
    "start": ("another trunk start of a row of the study: the pretraining comparison, left out of the "
              "claims (any extractor; the config differs from that row's only in model.pretrained)"),
}
# Rows whose model keeps attention weights: measured after training and drawn in the attention plot.
ATTENTION_ROLES = ("soft", "mrae", "mrae_spatial", "mixed", "mrae_long")
# Rows with an MRAE template (drawn as solid lines; the "where MRAE looks" observation).
MRAE_ROLES = ("mrae", "mrae_spatial", "mixed", "mrae_long")

# The value of a model setting in a summary entry written before the study kept it.
MODEL_DEFAULTS: dict[str, Any] = {"detector": PAPER_HOST, "box_similarity": "iou"}
SIMILARITY_TITLES = {"iou": "IoU", "nwd": "NWD"}


def host_title(host: str) -> str:
    """``Faster R-CNN`` for ``faster_rcnn``; a host without a title: its name."""
    return HOST_TITLES.get(host, host)


def setting_of(entry: dict[str, Any], key: str) -> Any:
    """The model setting `key` of a summary entry (``entry["model"]``), or its
    :data:`MODEL_DEFAULTS` value where the entry does not record it."""
    model = entry.get("model") or {}
    return model[key] if key in model else MODEL_DEFAULTS.get(key)


def host_of(entry: dict[str, Any]) -> str:
    """The row's host (``model.detector``); Faster R-CNN for an entry written before it was kept."""
    return setting_of(entry, "detector")


def role_fits(role: str, model: Any) -> bool:
    """Whether a config's ``model`` section builds what `role` stands for (:data:`ROLES`)."""
    return {
        "baseline": model.extractor == "single",
        "soft": model.extractor == "soft",
        "mrae": model.extractor == "mrae" and model.mode == "global",
        "mrae_spatial": model.extractor == "mrae" and model.mode == "spatial",
        "fusion": model.extractor in ("concat", "sum"),
        "fpn": model.extractor == "fpn" and fpn_anchors(model) == "per_level",
        "fpn_all_anchors": model.extractor == "fpn" and fpn_anchors(model) == "all",
        "mixed": model.extractor == "mrae",
        "mrae_long": model.extractor == "mrae",
        "start": True,  # its row of comparison: spec._check_start
    }[role]


def fpn_anchors(model: Any) -> str:
    """How the config's host puts anchors on several maps (``model.<host>.fpn_anchors``);
    ``per_level`` for a host without anchors."""
    host = model.get(str(model.get("detector", PAPER_HOST)))
    value = host.get("fpn_anchors") if hasattr(host, "get") else None
    return str(value) if value is not None else "per_level"


def box_similarity(model: Any) -> str:
    """The similarity a config's ``model`` section assigns boxes to anchors and proposals by
    (``box_similarity``, in the host's own section or the model's; ``iou`` where neither has it)."""
    host = model.get(str(model.get("detector", PAPER_HOST))) if hasattr(model, "get") else None
    for section in (host, model):
        value = section.get("box_similarity") if hasattr(section, "get") else None
        if value is not None:
            return str(value)
    return "iou"
