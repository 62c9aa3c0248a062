"""`mrae stats`: what a COCO instances JSON holds, by class and by object size, and the paper's Fig. 4.

Counts are of objects (non-crowd annotations); crowd annotations are counted on their own. Size
buckets (:mod:`mrae.data.sizes`): COCO's small/medium/large by area (bbox ``w * h`` by default, or
COCO's ``area`` field as COCOeval uses), and very tiny/tiny/small by the box side ``sqrt(w * h)``.
``--plot`` draws box width against height (2D histogram, log axes) per split, side by side.

Every size is in **original-image pixels**, as the annotation file gives them (the pixels the
evaluation's buckets count too), not the model's resized input; the output says so.
``mrae anchors --config X.yaml`` shows the boxes at the size the model sees them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mrae.data.sizes import (
    COCO_AREA_RANGES,
    ORIGINAL_PIXELS,
    TINY_AREA_RANGES,
    bucket_counts,
    bucket_label,
)
from mrae.errors import ConfigError, DataError
from mrae.files import save_figure
from mrae.tables import markdown_table

# Curves of constant area drawn on the plot: the tiny-bucket and COCO bounds (box side, px).
_SIDES = (8, 16, 32, 96)


def summarize(data: dict[str, Any], *, area: str = "bbox") -> dict[str, Any]:
    """Counts of a checked COCO dict.

    Returns a dict: ``images``, ``images_with_objects``, ``objects``, ``crowd`` (ints),
    ``per_class`` (category id -> objects, every category), ``names`` (category id -> name),
    ``coco`` and ``tiny`` (bucket -> objects), ``wh`` (float array [K, 2]: box width, height in px).
    """
    objects = [a for a in data["annotations"] if not a["iscrowd"]]
    n = len(objects)
    wh = np.array([a["bbox"][2:4] for a in objects], dtype=np.float64).reshape(n, 2)
    box_areas = wh[:, 0] * wh[:, 1]
    areas = (
        box_areas if area == "bbox" else np.fromiter((a["area"] for a in objects), np.float64, n)
    )
    names = {c["id"]: c["name"] for c in sorted(data["categories"], key=lambda c: c["id"])}
    per_class = dict.fromkeys(names, 0)
    for a in objects:
        per_class[a["category_id"]] += 1
    tiny = bucket_counts(box_areas, TINY_AREA_RANGES)
    tiny[">= 32 px"] = n - sum(tiny.values())
    return {
        "images": len(data["images"]),
        "images_with_objects": len({a["image_id"] for a in objects}),
        "objects": n,
        "crowd": len(data["annotations"]) - n,
        "per_class": per_class,
        "names": names,
        "coco": {k: v for k, v in bucket_counts(areas, COCO_AREA_RANGES).items() if k != "all"},
        "tiny": tiny,
        "wh": wh,
    }


def format_tables(summaries: dict[str, dict[str, Any]]) -> str:
    """The markdown tables of :func:`summarize` results, one column group per split."""
    splits = list(summaries)
    first = summaries[splits[0]]
    out = [
        _table(
            ["split", "images", "images with objects", "objects", "crowd", "classes"],
            [
                [
                    name,
                    f"{s['images']:,}",
                    f"{s['images_with_objects']:,}",
                    f"{s['objects']:,}",
                    f"{s['crowd']:,}",
                    str(len(s["names"])),
                ]
                for name, s in summaries.items()
            ],
        )
    ]

    names: dict[int, str] = {}
    for s in summaries.values():
        names.update(s["names"])
    rows = [
        [str(cat_id), name, *(f"{summaries[sp]['per_class'].get(cat_id, 0):,}" for sp in splits)]
        for cat_id, name in sorted(names.items())
    ]
    rows.append(["", "**total**", *(f"{summaries[sp]['objects']:,}" for sp in splits)])
    out.append(_table(["category id", "class", *splits], rows))

    for key, ranges, title in (
        ("coco", COCO_AREA_RANGES, f"COCO size ({ORIGINAL_PIXELS})"),
        ("tiny", TINY_AREA_RANGES, f"box side sqrt(w*h) ({ORIGINAL_PIXELS})"),
    ):
        rows = []
        for bucket in first[key]:
            label = bucket_label(bucket, ranges) if bucket in ranges else bucket
            cells = []
            for sp in splits:
                count, total = summaries[sp][key][bucket], summaries[sp]["objects"]
                cells += [f"{count:,}", f"{count / total:.1%}" if total else "-"]
            rows.append([label, *cells])
        header = [title]
        for sp in splits:
            header += [sp, "%"]
        out.append(_table(header, rows))
    return "\n\n".join(out)


def _table(header: list[str], rows: list[list[str]]) -> str:
    return markdown_table(header, rows)


def plot_sizes(wh: dict[str, np.ndarray], path: str | Path) -> None:
    """The paper's Fig. 4: a 2D histogram of box width against height (px, log axes) per split.

    ``wh`` maps a split name to a float array [K, 2] of box widths and heights in original-image
    pixels (the axes say so).
    Dashed curves mark the areas 8^2, 16^2, 32^2 and 96^2.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    every = np.concatenate([v for v in wh.values()] + [np.ones((1, 2))])
    lo = max(float(every.min()), 0.25)
    hi = max(float(every.max()), 64.0)
    bins = np.geomspace(lo / 1.01, hi * 1.01, 60)

    fig, axes = plt.subplots(
        1, len(wh), figsize=(5.5 * len(wh), 5), squeeze=False, sharex=True, sharey=True
    )
    for i, (ax, (name, boxes)) in enumerate(zip(axes[0], wh.items(), strict=True)):
        if len(boxes):
            *_, image = ax.hist2d(
                boxes[:, 0], boxes[:, 1], bins=[bins, bins], norm=LogNorm(), cmap="viridis"
            )
            fig.colorbar(image, ax=ax, label="boxes")
        else:
            ax.text(0.5, 0.5, "no boxes", transform=ax.transAxes, ha="center")
        curve_w = np.geomspace(bins[0], bins[-1], 100)
        for side in _SIDES:
            ax.plot(curve_w, side**2 / curve_w, "--", color="tab:red", lw=0.8)
            if bins[0] <= side <= bins[-1]:  # label only the area curves inside the axes
                ax.text(side, side, f"{side}²", color="tab:red", fontsize=8)
        ax.set(xscale="log", yscale="log", xlim=(bins[0], bins[-1]), ylim=(bins[0], bins[-1]))
        ax.set_xlabel(f"box width ({ORIGINAL_PIXELS})")
        ax.set_ylabel(f"box height ({ORIGINAL_PIXELS})")
        ax.set_title(f"({chr(ord('a') + i)}) {name}: {len(boxes):,} boxes")
    fig.tight_layout()
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_figure(fig, path, dpi=120)
    except OSError as error:
        raise DataError(f"{path}: cannot write the plot ({error.strerror})") from None
    except ValueError as error:  # matplotlib: an unknown file extension
        raise ConfigError(f"--plot {path}: {error}; use a .png path") from None
    finally:
        plt.close(fig)
