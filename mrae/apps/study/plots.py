"""The study's two plots, drawn from the ``rows`` of ``results.json``: AP against training step, and
the mean attention weight per level of every row whose model keeps attention weights."""

from __future__ import annotations

from pathlib import Path

from mrae.apps.study.claims import T2
from mrae.apps.study.facts import ATTENTION_ROLES, MRAE_ROLES
from mrae.apps.study.tables import start_reference
from mrae.files import save_figure


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    """Save as PNG through a temporary file in the same folder (a reader never sees half a file,
    a link at ``path`` is replaced, never written through)."""
    save_figure(fig, path, dpi=120, format="png", metadata={"Software": None})


# The convergence plot's panels: (title, the roles drawn). Beside its own rows a panel draws the
# rows they are compared with: MRAE template 2 (role mrae) in every panel beyond the first but the
# trunk's, the row a continued run starts from, and the row a trunk start is compared with
# (:func:`mrae.apps.study.tables.start_reference`). A panel without rows of its own is left out.
PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Table 2: single levels, soft attention, MRAE templates", ("baseline", "soft", "mrae")),
    ("Fusions and FPN (Fig. 1, 2)", ("fusion", "fpn", "fpn_all_anchors", "mrae_spatial")),
    ("Switching templates (Table 3)", ("mixed", "mrae_long")),
    ("The trunk's start", ("start",)),
)


def panels(rows: list[dict]) -> list[tuple[str, list[dict]]]:
    """The convergence plot's panels that have rows: (title, rows drawn in it), in :data:`PANELS`
    order, the rows compared with first; a row of a role that no panel names is drawn in the first
    panel."""
    named = {role for _, roles in PANELS for role in roles}
    reference = next(iter(T2.find(rows)), None)  # what later panels compare with
    out = []
    for i, (title, roles) in enumerate(PANELS):
        own = [e for e in rows if e.get("role") in roles or (i == 0 and e.get("role") not in named)]
        if not own:
            continue
        parents = [e for e in rows if e["name"] in {r.get("init_from") for r in own}]
        compared = ([start_reference(rows, e) for e in own] if "start" in roles
                    else [reference] if i else [])
        extra = [e for e in [*compared, *parents] if e is not None and e not in own]
        out.append((title, [*{id(e): e for e in extra}.values(), *own]))
    return out


def plot_convergence(rows: list[dict], path: Path) -> None:
    """AP on the validation split against training step (mean over seeds, band min..max), one
    panel per comparison (:func:`panels`); the page draws the Faster R-CNN rows
    (:func:`mrae.apps.study.tables.paper_rows`). A row keeps its colour in every panel."""
    import numpy as np

    plt = _pyplot()
    shown = panels(rows) or [("", [])]
    fig, axes = plt.subplots(1, len(shown), figsize=(5.2 * len(shown) + 0.8, 4.6), squeeze=False,
                             sharey=True)
    palette = plt.get_cmap("tab20")
    colours = {e["name"]: palette((2 * i) % 20 + (2 * i) // 20)  # 20 colours, dark shades first
               for i, e in enumerate(rows)}
    for ax, (title, entries) in zip(axes[0], shown, strict=True):
        for entry in entries:
            curves = [c for c in entry["curves"] if c]
            if not curves:
                continue
            length = min(len(c) for c in curves)
            # A run that continues another (the mixed row) is drawn after its parent's steps.
            steps = np.array([s for s, _ in curves[0][:length]]) + entry.get("step_offset", 0)
            values = np.array([[v for _, v in c[:length]] for c in curves]) * 100
            style = "-" if entry.get("role") in MRAE_ROLES else "--"
            ax.plot(steps, values.mean(0), style, color=colours[entry["name"]], label=entry["name"],
                    marker=".")
            if len(curves) > 1:
                ax.fill_between(steps, values.min(0), values.max(0), color=colours[entry["name"]],
                                alpha=0.15)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("training step (a continued run: after its parent's steps)", fontsize=8)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # no finished row drawn (a study of other hosts only)
            ax.legend(fontsize=7)
    axes[0][0].set_ylabel("AP@[.5:.95] on val (%)")
    fig.suptitle("Convergence (mean over seeds; band: min..max)")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def attention_rows(rows: list[dict]) -> list[dict]:
    """The rows whose model keeps attention weights (soft, every MRAE role) and that measured them."""
    return [e for e in rows if e.get("role") in ATTENTION_ROLES and e.get("attention")]


def plot_attention(rows: list[dict], path: Path) -> bool:
    """Bars of the mean level weight (C1, C2, C3) of every attention row; False if there is none."""
    import numpy as np

    shown = attention_rows(rows)
    if not shown:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(shown) + 2), 4))
    x = np.arange(len(shown))
    for level in range(3):
        ax.bar(x + (level - 1) * 0.27, [e["attention"][level] for e in shown], 0.27, label=f"C{level + 1}")
    ax.axhline(1 / 3, color="grey", lw=0.8, ls=":", label="uniform (1/3)")
    ax.set_xticks(x, [e["name"] for e in shown], rotation=15, fontsize=8)
    ax.set_ylabel("mean attention weight on val images")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return True
